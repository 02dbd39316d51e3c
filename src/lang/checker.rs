//! Checks a parsed file against the key schema and the language's rules, and builds the
//! checked [`Study`]. Every problem found is reported, not just the first.
//!
//! What needs a resolved config (ranges that depend on several keys, values that depend on a
//! winner) is checked later by the planner; everything that can be known from the text alone
//! is checked here.

use std::collections::HashMap;

use crate::diag::Diagnostic;
use crate::spec::schema::{self, Lookup, Role, Section, Ty};
use crate::spec::value::Value;

use super::ast::{
    Assign, Block, BlockKind, Body, Clause, Expr, ExprKind, File, Final, FinalFrom, Find, Goal, Group, Ident, Item, KeyPath, Objective,
    Span, Stmt,
};
use super::eval::{self, NameRef, NoEnv, Target};
use super::phases;
use super::study::{Binding, FinalDef, FinalSource, FindDef, ObjectiveDef, Options, Opt, PhaseDef, Prune, Study, Sweep, SweepClause, SweepKind};

/// Metrics the built-in trainer reports (a command trainer may report others).
pub const METRICS: &[&str] = &["val_loss", "val_accuracy", "val_ppl", "val_bpb", "train_loss", "aux_loss", "acc_per_min"];

/// The checked study and every diagnostic (errors and warnings), in source order.
#[derive(Clone, Debug)]
pub struct Checked {
    pub study: Study,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks a parsed file.
pub fn check(file: &File) -> Checked {
    let mut c = Checker { diags: Vec::new() };
    let study = c.file(file);
    let mut diagnostics = c.diags;
    diagnostics.sort_by_key(|d| d.primary_span().map_or(usize::MAX, |s| s.start));
    Checked { study, diagnostics }
}

/// Where a statement is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Section(Section),
    Phase,
    Final,
}

pub(super) struct Checker {
    pub(super) diags: Vec<Diagnostic>,
}

/// A phase as collected, before its `after` names are linked.
struct RawPhase<'a> {
    name: Ident,
    after: &'a [Ident],
    body: Option<&'a Body>,
    find: Option<&'a Find>,
    span: Span,
}

impl Checker {
    pub(super) fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn file(&mut self, file: &File) -> Study {
        let mut root = Vec::new();
        let mut options = Options::default();
        let mut objective: Option<ObjectiveDef> = None;
        let mut seen_blocks: HashMap<&str, Span> = HashMap::new();
        let mut raw: Vec<RawPhase<'_>> = Vec::new();
        let mut finals: Vec<&Final> = Vec::new();
        for item in &file.items {
            match item {
                Item::Block(b) => {
                    if let Some(first) = seen_blocks.insert(b.kind.name(), b.kind_span) {
                        self.error(
                            Diagnostic::error(format!("`{} {{}}` is written twice", b.kind.name()))
                                .at(b.kind_span, "")
                                .also(first, "first written here")
                                .help("put all its keys in one block"),
                        );
                    }
                    self.section_block(b, &mut root, &mut options);
                }
                Item::Objective(o) => {
                    if let Some(first) = &objective {
                        self.error(
                            Diagnostic::error("the study has two objectives")
                                .at(o.span, "")
                                .also(first.span.unwrap_or_default(), "first set here"),
                        );
                    }
                    objective = Some(objective_def(o));
                }
                Item::Phase(p) => raw.push(RawPhase { name: p.name.clone(), after: &p.after, body: Some(&p.body), find: None, span: p.span }),
                Item::Find(f) => {
                    let name = format!("find_{}", f.key.text().replace('.', "_"));
                    raw.push(RawPhase { name: Ident { name, span: f.key.span }, after: &[], body: None, find: Some(f), span: f.span });
                }
                Item::Final(f) => finals.push(f),
            }
        }
        let objective = objective.unwrap_or(ObjectiveDef { goal: Goal::Minimize, metric: "val_loss".into(), span: None });

        // Phase names first, so that `after` can point forwards.
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, p) in raw.iter().enumerate() {
            if let Some(&first) = index.get(&p.name.name) {
                self.error(
                    Diagnostic::error(format!("phase `{}` is defined twice", p.name.name))
                        .at(p.name.span, "")
                        .also(raw[first].name.span, "first defined here"),
                );
            } else {
                index.insert(p.name.name.clone(), i);
            }
        }
        let names: Vec<&str> = raw.iter().map(|p| p.name.name.as_str()).collect();
        let mut phase_defs = Vec::with_capacity(raw.len());
        for p in &raw {
            let after = self.phase_refs(p.after, &index, &names, |missing| format!("phase `{}` comes after `{missing}`, which is not defined", p.name.name));
            let mut def = PhaseDef {
                name: p.name.name.clone(),
                name_span: p.name.span,
                after,
                overrides: Vec::new(),
                options: Options::default(),
                objective: None,
                sweeps: Vec::new(),
                find: None,
                span: p.span,
            };
            if let Some(body) = p.body {
                self.phase_body(body, &mut def);
            }
            if let Some(f) = p.find {
                def.find = self.find(f);
            }
            let sweeps_written = p.find.is_some()
                || p.body.is_some_and(|b| b.stmts.iter().any(|s| matches!(s, Stmt::Vary(_) | Stmt::Grid(_) | Stmt::Zip(_) | Stmt::Find(_))));
            if !sweeps_written {
                if def.options.baseline.as_ref().is_some_and(|b| !b.value) {
                    self.error(Diagnostic::error(format!("phase `{}` has no candidates", def.name)).at(def.name_span, "").help("add `vary KEY in [...]`, or remove `baseline = false`"));
                } else {
                    self.error(
                        Diagnostic::warning(format!("phase `{}` varies nothing", def.name))
                            .at(def.name_span, "its only candidate is its incoming config")
                            .help("add `vary KEY in [...]`"),
                    );
                }
            }
            phase_defs.push(def);
        }

        let final_run = self.final_run(&finals, &index, &names);
        let order = phases::order(self, &phase_defs);
        let mut study = Study { root, options, objective, phases: phase_defs, order, final_run };
        phases::check_conflicts(self, &study);
        phases::check_derived(self, &study);
        self.check_objectives(&mut study);
        study
    }

    /// Links phase names to indices, reporting unknown and repeated ones.
    fn phase_refs(&mut self, refs: &[Ident], index: &HashMap<String, usize>, names: &[&str], missing: impl Fn(&str) -> String) -> Vec<usize> {
        let mut out = Vec::new();
        for r in refs {
            match index.get(&r.name) {
                Some(&i) if out.contains(&i) => self.error(Diagnostic::error(format!("phase `{}` is listed twice", r.name)).at(r.span, "")),
                Some(&i) => out.push(i),
                None => {
                    let mut d = Diagnostic::error(missing(&r.name));
                    d = match schema::suggest(&r.name, names.iter().copied()) {
                        Some(s) => d.at(r.span, format!("did you mean `{s}`?")),
                        None => d.at(r.span, "no phase has this name"),
                    };
                    self.error(d);
                }
            }
        }
        out
    }

    fn section_block(&mut self, block: &Block, root: &mut Vec<Binding>, options: &mut Options) {
        let section = match block.kind {
            BlockKind::Model => Section::Model,
            BlockKind::Data => Section::Data,
            BlockKind::Train => Section::Train,
        };
        let mut seen = Seen::default();
        for stmt in &block.body.stmts {
            match stmt {
                Stmt::Assign(a) => self.assign(a, Ctx::Section(section), &mut seen, root, options),
                other => self.misplaced(other, &format!("`{} {{}}`", block.kind.name())),
            }
        }
    }

    fn misplaced(&mut self, stmt: &Stmt, place: &str) {
        let (what, help) = match stmt {
            Stmt::Vary(_) => ("`vary`", "sweeps belong in a phase: `phase NAME { vary KEY in [...] }`"),
            Stmt::Grid(_) => ("`grid`", "sweeps belong in a phase: `phase NAME { grid { ... } }`"),
            Stmt::Zip(_) => ("`zip`", "sweeps belong in a phase: `phase NAME { zip { ... } }`"),
            Stmt::Find(_) => ("`find`", "a range test is a phase of its own: `phase NAME { find lr from 1e-6 to 1.0 }`"),
            Stmt::Objective(_) => ("`objective`", "write it at the top level, or in a phase or final block"),
            Stmt::Assign(_) => ("an assignment", ""),
        };
        let mut d = Diagnostic::error(format!("{what} cannot be written in {place}")).at(stmt_head(stmt), "");
        if !help.is_empty() {
            d = d.help(help);
        }
        self.error(d);
    }

    fn phase_body(&mut self, body: &Body, def: &mut PhaseDef) {
        let mut seen = Seen::default();
        for stmt in &body.stmts {
            match stmt {
                Stmt::Assign(a) => self.assign(a, Ctx::Phase, &mut seen, &mut def.overrides, &mut def.options),
                Stmt::Objective(o) => {
                    if def.objective.is_some() {
                        self.error(Diagnostic::error(format!("phase `{}` has two objectives", def.name)).at(o.span, ""));
                    }
                    def.objective = Some(objective_def(o));
                }
                Stmt::Vary(c) => {
                    if let Some(clause) = self.clause(c, "vary ") {
                        def.sweeps.push(Sweep { kind: SweepKind::Vary, clauses: vec![clause], span: c.span });
                    }
                }
                Stmt::Grid(g) => {
                    if let Some(s) = self.group(g, SweepKind::Grid) {
                        def.sweeps.push(s);
                    }
                }
                Stmt::Zip(g) => {
                    if let Some(s) = self.group(g, SweepKind::Zip) {
                        def.sweeps.push(s);
                    }
                }
                Stmt::Find(f) => {
                    if def.find.is_some() {
                        self.error(Diagnostic::error(format!("phase `{}` has two `find` statements", def.name)).at(stmt_head(stmt), "").help("a range test phase finds one key"));
                    } else {
                        def.find = self.find(f);
                    }
                }
            }
        }
        if def.find.is_some() && !def.sweeps.is_empty() {
            let at = def.sweeps[0].span;
            self.error(
                Diagnostic::error(format!("phase `{}` both finds and varies keys", def.name))
                    .at(at, "")
                    .help("a range test is a phase of its own; vary keys in a phase after it"),
            );
        }
        if def.find.is_some()
            && let Some(p) = &def.options.prune
            && matches!(p.value, Prune::Halving { .. })
        {
            self.error(Diagnostic::error("a range test cannot use successive halving").at(p.span, "").help("a range test has a single run"));
        }
    }

    /// Resolves a statement's key for the block it is in.
    fn target(&mut self, key: &KeyPath, ctx: Ctx) -> Option<Target> {
        let section = match ctx {
            Ctx::Section(s) => Some(s),
            Ctx::Phase | Ctx::Final => None,
        };
        let text = key.text();
        match schema::lookup(section, &text) {
            Lookup::Found(k) => {
                if let Some(s) = section
                    && k.section() != s
                    && !(s == Section::Train && k.section() == Section::Options)
                {
                    self.error(Diagnostic::error(format!("`{text}` belongs in `{} {{}}`", k.section())).at(key.span, ""));
                    return None;
                }
                return Some(Target::whole(k));
            }
            Lookup::WrongSection { key: k } if key.parts.len() == 1 => {
                let place = if k.section() == Section::Options { "`train {}` or a phase".to_owned() } else { format!("`{} {{}}`", k.section()) };
                self.error(Diagnostic::error(format!("`{text}` belongs in {place}")).at(key.span, ""));
                return None;
            }
            Lookup::Unknown { suggestion } if key.parts.len() == 1 => {
                let d = Diagnostic::error(format!("unknown key `{text}`"));
                self.error(match suggestion {
                    Some(s) => d.at(key.span, format!("did you mean `{s}`?")),
                    None => d.at(key.span, ""),
                });
                return None;
            }
            _ => {}
        }
        match eval::resolve_name(key) {
            NameRef::Key(t) => {
                if let Some(s) = section
                    && t.key.section() != s
                {
                    self.error(Diagnostic::error(format!("`{}` belongs in `{} {{}}`", t.key.name(), t.key.section())).at(key.span, ""));
                    return None;
                }
                Some(t)
            }
            NameRef::Unknown { suggestion } => {
                let d = Diagnostic::error(format!("unknown key `{text}`"));
                self.error(match suggestion {
                    Some(s) => d.at(key.span, format!("did you mean `{s}`?")),
                    None => d.at(key.span, ""),
                });
                None
            }
            NameRef::Base | NameRef::Word(_) => {
                self.error(Diagnostic::error(format!("unknown key `{text}`")).at(key.span, ""));
                None
            }
        }
    }

    fn assign(&mut self, a: &Assign, ctx: Ctx, seen: &mut Seen, out: &mut Vec<Binding>, options: &mut Options) {
        let Some(target) = self.target(&a.key, ctx) else { return };
        let path = target.path();
        let written = a.key.text();
        if let Some(first) = seen.keys.insert(path.clone(), a.key.span) {
            self.error(Diagnostic::error(format!("`{written}` is set twice in this block")).at(a.key.span, "").also(first, "first set here"));
            return;
        }
        if target.key.info().role == Role::Budget && target.arg.is_none() {
            if let Some((other, span)) = &seen.budget {
                self.error(
                    Diagnostic::error(format!("`{written}` and `{other}` are both set: a run has one budget"))
                        .at(a.key.span, "")
                        .also(*span, "also set here"),
                );
                return;
            }
            seen.budget = Some((written.clone(), a.key.span));
        }
        if target.key.section() == Section::Options {
            self.option(&target, a, options);
            return;
        }
        self.value(&target, &a.value, !matches!(ctx, Ctx::Section(_)));
        out.push(Binding { target, value: a.value.clone(), span: a.span, key_span: a.key.span });
    }

    /// Checks what can be checked of a value without a config: names, and constants' types.
    fn value(&mut self, target: &Target, expr: &Expr, base_allowed: bool) {
        if !self.names(expr, base_allowed, false) {
            return;
        }
        if eval::is_constant(expr) {
            self.constant(target, expr);
        }
    }

    /// Checks a constant value against its target's type, reporting `` `key = v`: why ``.
    pub(super) fn constant(&mut self, target: &Target, expr: &Expr) -> Option<Value> {
        let v = match eval::eval(expr, &mut NoEnv) {
            Ok(v) => v,
            Err(e) => {
                self.error(Diagnostic::error(e.message).at(e.span, ""));
                return None;
            }
        };
        let (ty, noun) = target.ty()?;
        match ty.check(&noun, &v) {
            Ok(v) => Some(v),
            Err(msg) => {
                let mut d = Diagnostic::error(format!("`{} = {v}`: {msg}", target.path())).at(expr.span, "");
                if let Value::Word(w) = &v
                    && let Some(s) = schema::suggest(w, schema::keys().map(|k| k.name()))
                {
                    d = d.help(format!("to use the value of a key, write its name: did you mean `{s}`?"));
                }
                self.error(d);
                None
            }
        }
    }

    /// Checks the names in an expression; false when one is wrong.
    fn names(&mut self, expr: &Expr, base_allowed: bool, in_arith: bool) -> bool {
        match &expr.kind {
            ExprKind::Name(path) => match eval::resolve_name(path) {
                NameRef::Base if !base_allowed => {
                    self.error(
                        Diagnostic::error("`base` is only meaningful inside a phase")
                            .at(expr.span, "")
                            .help("`base` is the incoming value of the key a phase sets or varies"),
                    );
                    false
                }
                NameRef::Word(w) if in_arith => {
                    let d = Diagnostic::error(format!("unknown key `{w}`"));
                    self.error(match schema::suggest(&w, schema::keys().map(|k| k.name())) {
                        Some(s) => d.at(expr.span, format!("did you mean `{s}`?")),
                        None => d.at(expr.span, ""),
                    });
                    false
                }
                NameRef::Unknown { suggestion } => {
                    let d = Diagnostic::error(format!("unknown key `{}`", path.text()));
                    self.error(match suggestion {
                        Some(s) => d.at(expr.span, format!("did you mean `{s}`?")),
                        None => d.at(expr.span, ""),
                    });
                    false
                }
                _ => true,
            },
            ExprKind::Neg(e) => self.names(e, base_allowed, true),
            ExprKind::Group(e) => self.names(e, base_allowed, in_arith),
            ExprKind::Binary { lhs, rhs, .. } => {
                let a = self.names(lhs, base_allowed, true);
                self.names(rhs, base_allowed, true) && a
            }
            ExprKind::List(items) | ExprKind::Tuple(items) => items.iter().fold(true, |ok, e| self.names(e, base_allowed, false) && ok),
            ExprKind::Call { name, args } => {
                let arith = matches!(name.name.as_str(), "log" | "lin");
                args.iter().fold(true, |ok, a| self.names(&a.value, base_allowed, arith) && ok)
            }
            ExprKind::Number { .. } | ExprKind::Duration { .. } | ExprKind::Str(_) | ExprKind::Bool(_) => true,
        }
    }

    fn option(&mut self, target: &Target, a: &Assign, options: &mut Options) {
        let Some(v) = self.constant_option(target, &a.value) else { return };
        let span = a.span;
        match target.key.name() {
            "repeats" => options.repeats = v.as_i64().map(|r| Opt { value: r as u32, span }),
            "seeds" => {
                if let Value::List(items) = v {
                    options.seeds = Some(Opt { value: items.iter().filter_map(Value::as_i64).map(|s| s as u64).collect(), span });
                }
            }
            "baseline" => options.baseline = Some(Opt { value: v == Value::Bool(true), span }),
            "prune" => {
                if let Value::Call(c) = v {
                    let prune = match c.name.as_str() {
                        "none" => Prune::None,
                        "halving" => {
                            let rungs: Vec<u64> = match c.arg("rungs") {
                                Some(Value::List(r)) => r.iter().filter_map(Value::as_i64).map(|x| x as u64).collect(),
                                _ => Vec::new(),
                            };
                            if rungs.windows(2).any(|w| w[0] >= w[1]) {
                                self.error(Diagnostic::error("the rungs of `halving` must increase").at(a.value.span, ""));
                                return;
                            }
                            Prune::Halving { rungs, keep: c.arg("keep").and_then(Value::as_f64).unwrap_or(1.0 / 3.0) }
                        }
                        _ => Prune::Diverged,
                    };
                    options.prune = Some(Opt { value: prune, span });
                }
            }
            _ => {}
        }
    }

    fn constant_option(&mut self, target: &Target, expr: &Expr) -> Option<Value> {
        if !eval::is_constant(expr) {
            self.error(Diagnostic::error(format!("`{}` must be a constant", target.path())).at(expr.span, "it cannot depend on keys or `base`"));
            return None;
        }
        self.constant(target, expr)
    }

    fn clause(&mut self, c: &Clause, prefix: &str) -> Option<SweepClause> {
        let target = self.target(&c.key, Ctx::Phase)?;
        if target.key.section() == Section::Options {
            self.error(Diagnostic::error(format!("`{}` is a block option and cannot be varied", c.key.text())).at(c.key.span, "").help(format!("set it instead: `{} = ...`", c.key.text())));
            return None;
        }
        if !self.names(&c.values, true, false) {
            return None;
        }
        let head = format!("`{prefix}{} in {}`", target.path(), c.values);
        match &c.values.kind {
            ExprKind::List(items) => {
                if items.is_empty() {
                    self.error(Diagnostic::error(format!("{head}: a sweep needs at least one value")).at(c.values.span, ""));
                    return None;
                }
                let mut ok = true;
                for item in items {
                    if eval::is_constant(item) && self.constant(&target, item).is_none() {
                        ok = false;
                    }
                }
                if !ok {
                    return None;
                }
            }
            ExprKind::Call { name, .. } if matches!(name.name.as_str(), "log" | "lin") => {
                if eval::is_constant(&c.values) {
                    match eval::eval(&c.values, &mut NoEnv) {
                        Ok(Value::List(items)) => {
                            if let Some((ty, noun)) = target.ty() {
                                for v in &items {
                                    if let Err(msg) = ty.check(&noun, v) {
                                        self.error(Diagnostic::error(format!("`{} = {v}`: {msg}", target.path())).at(c.values.span, format!("generated from this")));
                                        return None;
                                    }
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            self.error(Diagnostic::error(e.message).at(e.span, ""));
                            return None;
                        }
                    }
                }
            }
            _ => {
                self.error(
                    Diagnostic::error(format!("{head}: expected a list of values"))
                        .at(c.values.span, "")
                        .help("write a list like `[0.01, 0.02]`, or generate one with `log(a, b, n = N)` or `lin(a, b, step = s)`"),
                );
                return None;
            }
        }
        Some(SweepClause { target, values: c.values.clone(), span: c.span, key_span: c.key.span })
    }

    fn group(&mut self, g: &Group, kind: SweepKind) -> Option<Sweep> {
        let word = if kind == SweepKind::Grid { "grid" } else { "zip" };
        if g.clauses.is_empty() {
            self.error(Diagnostic::error(format!("`{word} {{}}` needs at least one `KEY in VALUES`")).at(g.span, ""));
            return None;
        }
        let mut clauses: Vec<SweepClause> = Vec::new();
        let mut ok = true;
        for c in &g.clauses {
            match self.clause(c, "") {
                Some(sc) => {
                    if let Some(first) = clauses.iter().find(|o| o.target.overlaps(&sc.target)) {
                        self.error(Diagnostic::error(format!("`{}` appears twice in this `{word}`", sc.target.path())).at(sc.key_span, "").also(first.key_span, "first here"));
                        ok = false;
                    }
                    clauses.push(sc);
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        if kind == SweepKind::Zip {
            let lens: Vec<(String, usize)> =
                clauses.iter().filter_map(|c| literal_len(&c.values).map(|n| (c.target.path(), n))).collect();
            if let Some((first, n)) = lens.first()
                && let Some((other, m)) = lens.iter().find(|(_, m)| m != n)
            {
                self.error(
                    Diagnostic::error(format!("`zip` needs lists of equal length: `{first}` has {n} values, `{other}` has {m}"))
                        .at(g.span, "")
                        .help("`zip` pairs values in order; use `grid` for every combination"),
                );
                return None;
            }
        }
        Some(Sweep { kind, clauses, span: g.span })
    }

    fn find(&mut self, f: &Find) -> Option<FindDef> {
        let target = self.target(&f.key, Ctx::Phase)?;
        let lr_like = target.arg.is_none() && matches!(target.key.info().ty, Ty::Float(b) if b.lo == 0.0 && b.lo_open && b.hi.is_infinite());
        if !lr_like {
            self.error(
                Diagnostic::error(format!("`find` searches a learning rate, and `{}` is not one", f.key.text()))
                    .at(f.key.span, "")
                    .help("find `lr` (with derived keys), `matrix_lr`, `embedding_lr`, ..."),
            );
            return None;
        }
        let number = |c: &mut Checker, e: &Expr, what: &str| -> Option<f64> {
            let v = eval::is_constant(e).then(|| eval::eval(e, &mut NoEnv).ok()).flatten().and_then(|v| v.as_f64());
            match v {
                Some(x) if x > 0.0 && x.is_finite() => Some(x),
                _ => {
                    c.error(Diagnostic::error(format!("`{what}` of `find` must be a positive number")).at(e.span, ""));
                    None
                }
            }
        };
        let from = number(self, &f.from, "from");
        let to = number(self, &f.to, "to");
        let (from, to) = (from?, to?);
        if to <= from {
            self.error(Diagnostic::error("`find` must go from a lower to a higher value").at(f.to.span, format!("{to} is not above {from}")));
            return None;
        }
        let mut steps = 100u64;
        let mut divisor = 10.0;
        for opt in &f.options {
            match opt.name.name.as_str() {
                "steps" => match eval::is_constant(&opt.value).then(|| eval::eval(&opt.value, &mut NoEnv).ok()).flatten() {
                    Some(Value::Int(n)) if n >= 2 => steps = n as u64,
                    _ => {
                        self.error(Diagnostic::error("`steps` of `find` must be a whole number of at least 2").at(opt.value.span, ""));
                        return None;
                    }
                },
                "pick" => divisor = self.pick(&opt.value)?,
                other => {
                    let d = Diagnostic::error(format!("`find` has no option `{other}`"));
                    self.error(match schema::suggest(other, ["steps", "pick"]) {
                        Some(s) => d.at(opt.name.span, format!("did you mean `{s}`?")),
                        None => d.at(opt.name.span, "it takes `steps` and `pick`"),
                    });
                    return None;
                }
            }
        }
        Some(FindDef { target, from, to, steps, divisor, span: f.span })
    }

    /// `pick = min` or `pick = min / N`: the divisor.
    fn pick(&mut self, e: &Expr) -> Option<f64> {
        let is_min = |e: &Expr| matches!(&e.kind, ExprKind::Name(p) if p.is("min"));
        let inner = match &e.kind {
            ExprKind::Group(g) => g,
            _ => e,
        };
        let divisor = match &inner.kind {
            _ if is_min(inner) => Some(1.0),
            ExprKind::Binary { op: super::ast::BinOp::Div, lhs, rhs } if is_min(lhs) => {
                eval::is_constant(rhs).then(|| eval::eval(rhs, &mut NoEnv).ok()).flatten().and_then(|v| v.as_f64()).filter(|d| *d > 0.0 && d.is_finite())
            }
            _ => None,
        };
        if divisor.is_none() {
            self.error(Diagnostic::error("`pick` must be `min` or `min / N`").at(e.span, "").help("`pick = min / 10` takes a tenth of the LR where the smoothed loss is lowest"));
        }
        divisor
    }

    fn final_run(&mut self, finals: &[&Final], index: &HashMap<String, usize>, names: &[&str]) -> Option<FinalDef> {
        let f = finals.first()?;
        for extra in &finals[1..] {
            self.error(Diagnostic::error("the study has two final runs").at(extra.span, "").also(f.span, "first here"));
        }
        let source = match &f.from {
            FinalFrom::Combine(list) => {
                FinalSource::Combine(self.phase_refs(list, index, names, |m| format!("the final run combines `{m}`, which is not defined")))
            }
            FinalFrom::After(list) => {
                if list.len() != 1 {
                    let at = list.get(1).map_or(f.span, |i| i.span);
                    self.error(Diagnostic::error("`final after` takes one phase").at(at, "").help("to merge several winners, write `final combine(a, b)`"));
                }
                let refs = self.phase_refs(&list[..list.len().min(1)], index, names, |m| format!("the final run comes after `{m}`, which is not defined"));
                FinalSource::After(*refs.first()?)
            }
        };
        let mut def = FinalDef { source, overrides: Vec::new(), options: Options::default(), objective: None, span: f.span };
        let mut seen = Seen::default();
        for stmt in f.body.iter().flat_map(|b| &b.stmts) {
            match stmt {
                Stmt::Assign(a) => self.assign(a, Ctx::Final, &mut seen, &mut def.overrides, &mut def.options),
                Stmt::Objective(o) => def.objective = Some(objective_def(o)),
                other => self.misplaced(other, "a final block"),
            }
        }
        if let Some(b) = &def.options.baseline {
            self.error(Diagnostic::error("a final run has no baseline to turn off").at(b.span, ""));
        }
        Some(def)
    }

    fn check_objectives(&mut self, study: &mut Study) {
        let custom_trainer = study.root.iter().any(|b| b.target.key.name() == "trainer" && !matches!(&b.value.kind, ExprKind::Name(p) if p.is("builtin")));
        if custom_trainer {
            return;
        }
        let mut all: Vec<ObjectiveDef> = vec![study.objective.clone()];
        all.extend(study.phases.iter().filter_map(|p| p.objective.clone()));
        all.extend(study.final_run.iter().filter_map(|f| f.objective.clone()));
        for o in all {
            if !METRICS.contains(&o.metric.as_str()) {
                let mut d = Diagnostic::error(format!("unknown metric `{}`", o.metric));
                let span = o.span.unwrap_or_default();
                d = match schema::suggest(&o.metric, METRICS.iter().copied()) {
                    Some(s) => d.at(span, format!("did you mean `{s}`?")),
                    None => d.at(span, "").help(format!("the built-in trainer reports {}", METRICS.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "))),
                };
                self.error(d);
            }
        }
    }
}

#[derive(Default)]
struct Seen {
    keys: HashMap<String, Span>,
    budget: Option<(String, Span)>,
}

fn objective_def(o: &Objective) -> ObjectiveDef {
    ObjectiveDef { goal: o.goal, metric: o.metric.name.clone(), span: Some(o.metric.span) }
}

/// The first word of a statement, for pointing at it.
fn stmt_head(stmt: &Stmt) -> Span {
    let s = stmt.span();
    let len = match stmt {
        Stmt::Vary(_) => 4,
        Stmt::Grid(_) => 4,
        Stmt::Zip(_) | Stmt::Find(_) => 3,
        Stmt::Objective(_) => 9,
        Stmt::Assign(a) => a.key.span.end - a.key.span.start,
    };
    Span::new(s.start, s.start + len)
}

/// The number of values of a list literal or a constant generated list.
fn literal_len(e: &Expr) -> Option<usize> {
    match &e.kind {
        ExprKind::List(items) => Some(items.len()),
        _ if eval::is_constant(e) => match eval::eval(e, &mut NoEnv) {
            Ok(Value::List(items)) => Some(items.len()),
            _ => None,
        },
        _ => None,
    }
}
