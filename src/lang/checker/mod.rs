//! Checks a parsed file against the key schema and the language's rules, and builds the
//! checked [`Study`]. Every problem found is reported, not just the first.
//!
//! What needs a resolved config (ranges that depend on several keys, values that depend on a
//! winner) is checked later by the planner; everything that can be known from the text alone
//! is checked here.

mod budget;
mod phases;

use std::collections::HashMap;

use crate::diag::Diagnostic;
use crate::spec::schema::{self, Lookup, Role, Section};
use crate::spec::value::Value;

use super::ast::{
    Assign, Block, BlockKind, Body, Expr, ExprKind, File, Final, Find, Goal, Ident, Item, KeyPath, Objective, Span,
    Stmt,
};
use super::eval::{self, NameRef, NoEnv, Target};
use super::study::{Ancestry, Binding, ObjectiveDef, Options, PhaseDef, Prune, Study, Sweep, SweepKind};

/// What the final run is called wherever phases are named (`lrx why FILE final`, outputs).
pub const FINAL: &str = "final";

/// The most phases a study may have: checking keeps, for each phase, which others it comes
/// after (quadratic in the number of phases).
pub const MAX_PHASES: usize = 10_000;

/// Metrics the built-in trainer reports (a command trainer may report others).
pub const METRICS: &[&str] =
    &["val_loss", "val_accuracy", "val_ppl", "val_bpb", "train_loss", "aux_loss", "acc_per_min"];

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
    let mut c = Checker { diags: Vec::new(), params: Vec::new() };
    let study = c.file(file);
    let mut diagnostics = c.diags;
    diagnostics.sort_by_key(|d| d.primary_span().map_or(usize::MAX, |s| s.start));
    Checked { study, diagnostics }
}

/// Where a statement is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctx {
    Section(Section),
    Phase,
    Final,
}

pub(super) struct Checker {
    pub(super) diags: Vec<Diagnostic>,
    /// The names the study declares in `params {}`: the only declared keys it may use.
    pub(super) params: Vec<String>,
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
        let mut budget = None;
        // Declared keys first: any block or phase may use them, wherever they are declared.
        for item in &file.items {
            if let Item::Block(b) = item
                && b.kind == BlockKind::Params
            {
                self.params_block(b, &mut root);
            }
        }
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
                    match b.kind {
                        BlockKind::Params => {}
                        BlockKind::Budget => {
                            let def = self.budget_block(b);
                            budget.get_or_insert(def);
                        }
                        _ => self.section_block(b, &mut root, &mut options),
                    }
                }
                Item::Objective(o) => {
                    if let Some(first) = &objective {
                        self.error(
                            Diagnostic::error("the study has two objectives")
                                .at(Span::new(o.span.start, o.span.start + "objective".len()), "")
                                .also(first.span.unwrap_or_default(), "first set here"),
                        );
                    }
                    objective = Some(objective_def(o));
                }
                Item::Phase(p) => raw.push(RawPhase {
                    name: p.name.clone(),
                    after: &p.after,
                    body: Some(&p.body),
                    find: None,
                    span: p.span,
                }),
                Item::Find(f) => {
                    let name = format!("find_{}", f.key.text().replace('.', "_"));
                    raw.push(RawPhase {
                        name: Ident { name, span: f.key.span },
                        after: &[],
                        body: None,
                        find: Some(f),
                        span: f.span,
                    });
                }
                Item::Final(f) => finals.push(f),
            }
        }
        if raw.len() > MAX_PHASES {
            self.error(
                Diagnostic::error(format!("the study has more than {MAX_PHASES} phases"))
                    .at(raw[MAX_PHASES].name.span, "")
                    .help("split the study into several files"),
            );
            raw.truncate(MAX_PHASES);
        }
        let objective =
            objective.unwrap_or(ObjectiveDef { goal: Goal::Minimize, metric: "val_loss".into(), span: None });

        // Phase names first, so that `after` can point forwards.
        let mut index: HashMap<String, usize> = HashMap::new();
        // Output files and folders are named after phases: names equal but for case would be
        // one file on a case-insensitive file system.
        let mut folded: HashMap<String, usize> = HashMap::new();
        for (i, p) in raw.iter().enumerate() {
            if p.name.name.eq_ignore_ascii_case(FINAL) {
                self.error(
                    Diagnostic::error(format!("a phase cannot be named `{}`", p.name.name))
                        .at(p.name.span, "`final` names the final run")
                        .help("`lrx why`, `lrx run --rerun`, `lrx graph` and the output files call the final run `final`; rename the phase"),
                );
            } else if let Some(&first) = folded.get(&p.name.name.to_ascii_lowercase())
                && raw[first].name.name != p.name.name
            {
                self.error(
                    Diagnostic::error(format!("phases `{}` and `{}` differ only in case", raw[first].name.name, p.name.name))
                        .at(p.name.span, "")
                        .also(raw[first].name.span, "first defined here")
                        .help("output files are named after phases, and on a case-insensitive file system these would be one file; rename one"),
                );
            } else {
                folded.insert(p.name.name.to_ascii_lowercase(), i);
            }
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
            let after = self.phase_refs(p.after, &index, &names, |missing| {
                format!("phase `{}` comes after `{missing}`, which is not defined", p.name.name)
            });
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
                || p.body.is_some_and(|b| {
                    b.stmts.iter().any(|s| matches!(s, Stmt::Vary(_) | Stmt::Grid(_) | Stmt::Zip(_) | Stmt::Find(_)))
                });
            if !sweeps_written {
                // `baseline = false` may come from the phase or, as a default, from `train {}`.
                let own = def.options.baseline.as_ref();
                if let Some(off) = own.or(options.baseline.as_ref()).filter(|b| !b.value) {
                    let help = if own.is_some() {
                        "add `vary KEY in [...]`, or remove `baseline = false`"
                    } else {
                        "add `vary KEY in [...]`, or set `baseline = true` in this phase"
                    };
                    self.error(
                        Diagnostic::error(format!("phase `{}` has no candidates", def.name))
                            .at(def.name_span, "it varies nothing and leaves out its baseline")
                            .also(off.span, "the baseline is turned off here")
                            .help(help),
                    );
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
        let after: Vec<&[usize]> = phase_defs.iter().map(|p| p.after.as_slice()).collect();
        let ancestry = Ancestry::new(&after, &order);
        let mut study = Study { root, options, objective, phases: phase_defs, order, ancestry, final_run, budget };
        phases::check_conflicts(self, &study);
        phases::check_derived(self, &study);
        self.check_objectives(&mut study);
        study
    }

    /// Links phase names to indices, reporting unknown and repeated ones.
    pub(super) fn phase_refs(
        &mut self,
        refs: &[Ident],
        index: &HashMap<String, usize>,
        names: &[&str],
        missing: impl Fn(&str) -> String,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        for r in refs {
            match index.get(&r.name) {
                Some(&i) if out.contains(&i) => {
                    self.error(Diagnostic::error(format!("phase `{}` is listed twice", r.name)).at(r.span, ""));
                }
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

    /// `params { dropout = 0.1  data_dir = "data/owt" }`: declares each key, typed by its value
    /// (a derived one, `head_lr = lr * 0.1`, is a number), and sets it in the root config.
    fn params_block(&mut self, block: &Block, root: &mut Vec<Binding>) {
        let mut declared = Vec::new();
        for stmt in &block.body.stmts {
            let Stmt::Assign(a) = stmt else {
                self.misplaced(stmt, "`params {}`");
                continue;
            };
            let name = a.key.text();
            let taken = schema::keys().any(|k| k.name() == name || k.qualified() == name)
                || crate::spec::command::TRAINER_SLOTS.contains(&name.as_str())
                || matches!(name.as_str(), "base" | "steps" | "params");
            if a.key.parts.len() != 1 || taken {
                let d = if a.key.parts.len() == 1 {
                    Diagnostic::error(format!("`{name}` is already a name of lrx"))
                        .at(a.key.span, "declared keys need names of their own")
                        .help("lrx's own keys are set in `model {}`, `data {}` or `train {}`; choose another name for your key")
                } else {
                    Diagnostic::error(format!("a declared key is one name, not `{name}`"))
                        .at(a.key.span, "")
                        .help("write `name = value`, and use it as `{name}` in the command")
                };
                self.error(d);
                continue;
            }
            if let Some(first) = self.params.iter().position(|p| *p == name) {
                let first: &Assign = declared[first];
                self.error(
                    Diagnostic::error(format!("`{name}` is declared twice"))
                        .at(a.key.span, "")
                        .also(first.key.span, "first declared here"),
                );
                continue;
            }
            let ty = if eval::is_constant(&a.value) {
                match eval::eval(&a.value, &mut NoEnv).map(|v| (schema::ParamTy::of(&v), v)) {
                    Ok((Some(ty), _)) => ty,
                    Ok((None, v)) => {
                        self.error(
                            Diagnostic::error(format!(
                                "`{name} = {v}`: a declared key holds a number, an integer, a string or a boolean"
                            ))
                            .at(a.value.span, ""),
                        );
                        continue;
                    }
                    Err(e) => {
                        self.error(Diagnostic::error(e.message).at(e.span, ""));
                        continue;
                    }
                }
            } else {
                // Derived from other keys: arithmetic gives a number.
                schema::ParamTy::Float
            };
            schema::param(&name, ty);
            self.params.push(name);
            declared.push(a);
        }
        // Values last: a derived key may read one declared after it.
        for a in declared {
            let Some(key) = schema::declared(&a.key.text()) else { continue };
            let target = Target::whole(key);
            self.value(&target, &a.value, false);
            root.push(Binding { target, value: a.value.clone(), span: a.span, key_span: a.key.span });
        }
    }

    /// Whether `key` is a declared key this study does not declare (another study's).
    fn undeclared(&self, key: schema::Key) -> bool {
        key.section() == Section::Params && !self.params.iter().any(|p| p == key.name())
    }

    /// The declared key closest to `name`, for a "did you mean".
    fn suggest_param(&self, name: &str) -> Option<String> {
        schema::suggest(name, self.params.iter().map(String::as_str))
    }

    fn section_block(&mut self, block: &Block, root: &mut Vec<Binding>, options: &mut Options) {
        let section = match block.kind {
            BlockKind::Model => Section::Model,
            BlockKind::Data => Section::Data,
            BlockKind::Train => Section::Train,
            BlockKind::Params => Section::Params,
            BlockKind::Budget => return,
        };
        let mut seen = Seen::default();
        for stmt in &block.body.stmts {
            match stmt {
                Stmt::Assign(a) => self.assign(a, Ctx::Section(section), &mut seen, root, options),
                other => self.misplaced(other, &format!("`{} {{}}`", block.kind.name())),
            }
        }
    }

    pub(super) fn misplaced(&mut self, stmt: &Stmt, place: &str) {
        let (what, help) = match stmt {
            Stmt::Vary(_) => ("`vary`", "sweeps belong in a phase: `phase NAME { vary KEY in [...] }`"),
            Stmt::Grid(_) => ("`grid`", "sweeps belong in a phase: `phase NAME { grid { ... } }`"),
            Stmt::Zip(_) => ("`zip`", "sweeps belong in a phase: `phase NAME { zip { ... } }`"),
            Stmt::Find(_) => {
                ("`find`", "a range test is a phase of its own: `phase NAME { find lr from 1e-6 to 1.0 }`")
            }
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
                        self.error(
                            Diagnostic::error(format!("phase `{}` has two objectives", def.name))
                                .at(stmt_head(stmt), ""),
                        );
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
                        self.error(
                            Diagnostic::error(format!("phase `{}` has two `find` statements", def.name))
                                .at(stmt_head(stmt), "")
                                .help("a range test phase finds one key"),
                        );
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
            && let Some(b) = def.options.baseline.as_ref().filter(|b| b.value)
        {
            self.error(
                Diagnostic::error("a range test has no baseline")
                    .at(b.span, "")
                    .help("a range test is a single run; remove `baseline = true`"),
            );
        }
        if def.find.is_some()
            && let Some(p) = &def.options.prune
            && matches!(p.value, Prune::Halving { .. })
        {
            self.error(
                Diagnostic::error("a range test cannot use successive halving")
                    .at(p.span, "")
                    .help("a range test has a single run"),
            );
        }
    }

    /// Resolves a statement's key for the block it is in.
    pub(super) fn target(&mut self, key: &KeyPath, ctx: Ctx) -> Option<Target> {
        let section = match ctx {
            Ctx::Section(s) => Some(s),
            Ctx::Phase | Ctx::Final => None,
        };
        let text = key.text();
        match schema::lookup(section, &text) {
            Lookup::Found(k) if self.undeclared(k) => {
                let d = Diagnostic::error(format!("unknown key `{text}`"));
                self.error(match self.suggest_param(&text) {
                    Some(s) => d.at(key.span, format!("did you mean `{s}`?")),
                    None => d.at(key.span, "").help("declare keys of your own in `params { ... }`"),
                });
                return None;
            }
            Lookup::Found(k) => {
                if let Some(s) = section
                    && k.section() != s
                    && !(s == Section::Train && k.section() == Section::Options)
                {
                    self.error(
                        Diagnostic::error(format!("`{text}` belongs in `{} {{}}`", k.section())).at(key.span, ""),
                    );
                    return None;
                }
                return Some(Target::whole(k));
            }
            Lookup::WrongSection { key: k } if key.parts.len() == 1 => {
                let place = if k.section() == Section::Options {
                    "`train {}` or a phase".to_owned()
                } else {
                    format!("`{} {{}}`", k.section())
                };
                self.error(Diagnostic::error(format!("`{text}` belongs in {place}")).at(key.span, ""));
                return None;
            }
            Lookup::Unknown { suggestion } if key.parts.len() == 1 => {
                let suggestion = self.suggest_param(&text).or(suggestion);
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
                    self.error(
                        Diagnostic::error(format!("`{}` belongs in `{} {{}}`", t.key.name(), t.key.section()))
                            .at(key.span, ""),
                    );
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

    pub(super) fn assign(
        &mut self,
        a: &Assign,
        ctx: Ctx,
        seen: &mut Seen,
        out: &mut Vec<Binding>,
        options: &mut Options,
    ) {
        let Some(target) = self.target(&a.key, ctx) else { return };
        let path = target.path();
        let written = a.key.text();
        if let Some(first) = seen.keys.insert(path.clone(), a.key.span) {
            self.error(
                Diagnostic::error(format!("`{written}` is set twice in this block"))
                    .at(a.key.span, "")
                    .also(first, "first set here"),
            );
            return;
        }
        // `time = none` (or `tokens = none`) sets no budget: it leaves `steps` in charge.
        let unset = matches!(&a.value.kind, ExprKind::Name(p) if p.is("none"));
        if target.key.info().role == Role::Budget && target.arg.is_none() && !unset {
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
                // A word that is no allowed value may be a key's name written as a value;
                // unless the message already suggests a value.
                if let Value::Word(w) = &v
                    && !msg.contains("did you mean")
                    && let Some(s) = schema::suggest(w, schema::keys().map(schema::Key::name))
                {
                    d = d.help(format!("to use the value of a key, write its name: did you mean `{s}`?"));
                }
                self.error(d);
                None
            }
        }
    }

    /// Checks the names in an expression; false when one is wrong.
    pub(super) fn names(&mut self, expr: &Expr, base_allowed: bool, in_arith: bool) -> bool {
        match &expr.kind {
            ExprKind::Name(path) => match eval::resolve_name(path) {
                NameRef::Key(t) if self.undeclared(t.key) => {
                    let d = Diagnostic::error(format!("unknown key `{}`", path.text()));
                    self.error(match self.suggest_param(&path.text()) {
                        Some(s) => d.at(expr.span, format!("did you mean `{s}`?")),
                        None => d.at(expr.span, ""),
                    });
                    false
                }
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
                    let suggestion =
                        self.suggest_param(&w).or_else(|| schema::suggest(&w, schema::keys().map(schema::Key::name)));
                    self.error(match suggestion {
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
            // Every item is checked, so that every wrong name is reported.
            ExprKind::List(items) | ExprKind::Tuple(items) => {
                items.iter().filter(|e| !self.names(e, base_allowed, false)).count() == 0
            }
            ExprKind::Call { name, args } => {
                let arith = matches!(name.name.as_str(), "log" | "lin");
                args.iter().filter(|a| !self.names(&a.value, base_allowed, arith)).count() == 0
            }
            ExprKind::Number { .. } | ExprKind::Duration { .. } | ExprKind::Str(_) | ExprKind::Bool(_) => true,
        }
    }
}

#[derive(Default)]
pub(super) struct Seen {
    keys: HashMap<String, Span>,
    budget: Option<(String, Span)>,
}

pub(super) fn objective_def(o: &Objective) -> ObjectiveDef {
    ObjectiveDef { goal: o.goal, metric: o.metric.name.clone(), span: Some(o.metric.span) }
}

/// The first word of a statement, for pointing at it.
fn stmt_head(stmt: &Stmt) -> Span {
    let s = stmt.span();
    let len = match stmt {
        Stmt::Vary(_) | Stmt::Grid(_) => 4,
        Stmt::Zip(_) | Stmt::Find(_) => 3,
        Stmt::Objective(_) => 9,
        Stmt::Assign(a) => a.key.span.end - a.key.span.start,
    };
    Span::new(s.start, s.start + len)
}
