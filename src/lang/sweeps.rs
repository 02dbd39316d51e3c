//! Checks of a block's options (`repeats`, `seeds`, `baseline`, `prune`) and of what a phase
//! varies: `vary`, `grid` and `zip` clauses (keys, lists, lengths) and `find` range tests.

use crate::diag::Diagnostic;
use crate::spec::schema::{self, Section, Ty};
use crate::spec::value::{Value, fmt_float};

use super::ast::{Assign, Clause, Expr, ExprKind, Find, Group, Ident};
use super::checker::{Checker, Ctx};
use super::eval::{self, NoEnv, Target};
use super::study::{FindDef, Opt, Options, Pick, Prune, Sweep, SweepClause, SweepKind};

impl Checker {
    pub(super) fn option(&mut self, target: &Target, a: &Assign, options: &mut Options) {
        let Some(v) = self.constant_option(target, &a.value) else { return };
        // Where a diagnostic about the option points: the value for `prune` (its rungs), the
        // key for the others.
        let span = if target.key.name() == "prune" { a.value.span } else { a.key.span };
        match target.key.name() {
            "repeats" => options.repeats = v.as_i64().map(|r| Opt { value: r as u32, span }),
            "seeds" => {
                if let Value::List(items) = v {
                    options.seeds =
                        Some(Opt { value: items.iter().filter_map(Value::as_i64).map(|s| s as u64).collect(), span });
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
                                self.error(
                                    Diagnostic::error("the rungs of `halving` must increase").at(a.value.span, ""),
                                );
                                return;
                            }
                            Prune::Halving {
                                rungs,
                                keep: c.arg("keep").and_then(Value::as_f64).unwrap_or(1.0 / 3.0),
                                cooldown: match c.arg("cooldown") {
                                    Some(Value::Word(w)) => crate::spec::CooldownRule::from_word(w),
                                    _ => crate::spec::CooldownRule::Auto,
                                },
                            }
                        }
                        _ => Prune::Diverged,
                    };
                    options.prune = Some(Opt { value: prune, span });
                }
            }
            _ => {}
        }
    }

    pub(super) fn constant_option(&mut self, target: &Target, expr: &Expr) -> Option<Value> {
        if !eval::is_constant(expr) {
            self.error(
                Diagnostic::error(format!("`{}` must be a constant", target.path()))
                    .at(expr.span, "it cannot depend on keys or `base`"),
            );
            return None;
        }
        self.constant(target, expr)
    }

    pub(super) fn clause(&mut self, c: &Clause, prefix: &str) -> Option<SweepClause> {
        let target = self.target(&c.key, Ctx::Phase)?;
        if target.key.section() == Section::Options {
            self.error(
                Diagnostic::error(format!("`{}` is a block option and cannot be varied", c.key.text()))
                    .at(c.key.span, "")
                    .help(format!("set it instead: `{} = ...`", c.key.text())),
            );
            return None;
        }
        if !self.names(&c.values, true, false) {
            return None;
        }
        let head = format!("`{prefix}{} in {}`", target.path(), c.values);
        match &c.values.kind {
            ExprKind::List(items) => {
                if items.is_empty() {
                    self.error(
                        Diagnostic::error(format!("{head}: a sweep needs at least one value")).at(c.values.span, ""),
                    );
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
                                        self.error(
                                            Diagnostic::error(format!("`{} = {v}`: {msg}", target.path()))
                                                .at(c.values.span, "generated from this"),
                                        );
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

    pub(super) fn group(&mut self, g: &Group, kind: SweepKind) -> Option<Sweep> {
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
                        self.error(
                            Diagnostic::error(format!("`{}` appears twice in this `{word}`", sc.target.path()))
                                .at(sc.key_span, "")
                                .also(first.key_span, "first here"),
                        );
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
                    Diagnostic::error(format!(
                        "`zip` needs lists of equal length: `{first}` has {n} values, `{other}` has {m}"
                    ))
                    .at(g.span, "")
                    .help("`zip` pairs values in order; use `grid` for every combination"),
                );
                return None;
            }
        }
        Some(Sweep { kind, clauses, span: g.span })
    }

    pub(super) fn find(&mut self, f: &Find) -> Option<FindDef> {
        let target = self.target(&f.key, Ctx::Phase)?;
        let lr_like = target.arg.is_none()
            && matches!(target.key.info().ty, Ty::Float(b) if b.lo == 0.0 && b.lo_open && b.hi.is_infinite());
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
                    c.error(
                        Diagnostic::error(format!("`{what}` of `find` must be a positive number"))
                            .at(e.span, "")
                            .help("write a constant, like `find lr from 1e-6 to 1.0`"),
                    );
                    None
                }
            }
        };
        // Every problem is reported, so the bounds and the options are all checked before
        // giving up.
        let from = number(self, &f.from, "from");
        let to = number(self, &f.to, "to");
        let mut ok = true;
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                self.error(
                    Diagnostic::error("`find` must go from a lower to a higher value")
                        .at(f.to.span, format!("{} is not above {}", fmt_float(to), fmt_float(from)))
                        .help("the learning rate grows from `from` to `to`"),
                );
                ok = false;
            } else if !(to / from).is_finite() {
                self.error(
                    Diagnostic::error("`find` spans too wide a range: `to / from` is not a finite number")
                        .at(f.to.span, ""),
                );
                ok = false;
            }
        }
        let mut steps = 100u64;
        let mut pick = Some(Pick::Min { divisor: 10.0 });
        let mut stop = 4.0;
        let mut seen: Vec<&Ident> = Vec::new();
        for opt in &f.options {
            if let Some(first) = seen.iter().find(|i| i.name == opt.name.name) {
                self.error(
                    Diagnostic::error(format!("`{}` is given twice", opt.name.name))
                        .at(opt.name.span, "")
                        .also(first.span, "first given here"),
                );
                ok = false;
                continue;
            }
            seen.push(&opt.name);
            match opt.name.name.as_str() {
                "steps" => {
                    match eval::is_constant(&opt.value).then(|| eval::eval(&opt.value, &mut NoEnv).ok()).flatten() {
                        Some(Value::Int(n)) if n >= 2 => steps = n as u64,
                        Some(Value::Float(x)) if x.fract() == 0.0 && (2.0..9.0e15).contains(&x) => steps = x as u64,
                        _ => {
                            self.error(
                                Diagnostic::error("`steps` of `find` must be a whole number of at least 2")
                                    .at(opt.value.span, ""),
                            );
                            ok = false;
                        }
                    }
                }
                "pick" => pick = self.pick(&opt.value),
                "stop" => {
                    match eval::is_constant(&opt.value)
                        .then(|| eval::eval(&opt.value, &mut NoEnv).ok())
                        .flatten()
                        .and_then(|v| v.as_f64())
                    {
                        Some(k) if k > 1.0 && k.is_finite() => stop = k,
                        _ => {
                            self.error(
                                Diagnostic::error("`stop` of `find` must be a number above 1")
                                    .at(opt.value.span, "")
                                    .help("`stop = 4` ends the test where the loss exceeds 4 times its minimum"),
                            );
                            ok = false;
                        }
                    }
                }
                other => {
                    let d = Diagnostic::error(format!("`find` has no option `{other}`"));
                    let mut d = match schema::suggest(other, ["steps", "pick", "stop"]) {
                        Some(s) => d.at(opt.name.span, format!("did you mean `{s}`?")),
                        None => d.at(opt.name.span, "it takes `steps`, `pick` and `stop`"),
                    };
                    if other == "gamma" {
                        d = d.help("the growth follows from the bounds: the schedule is `exponential(gamma = to / from)` over `steps` steps");
                    }
                    self.error(d);
                    ok = false;
                }
            }
        }
        let (from, to, pick) = (from?, to?, pick?);
        ok.then_some(FindDef { target, from, to, steps, pick, stop, span: f.span })
    }

    /// `pick = min`, `pick = min / N` or `pick = steepest`.
    pub(super) fn pick(&mut self, e: &Expr) -> Option<Pick> {
        if matches!(&e.kind, ExprKind::Name(p) if p.is("steepest")) {
            return Some(Pick::Steepest);
        }
        let is_min = |e: &Expr| matches!(&e.kind, ExprKind::Name(p) if p.is("min"));
        let inner = match &e.kind {
            ExprKind::Group(g) => g,
            _ => e,
        };
        let divisor = match &inner.kind {
            _ if is_min(inner) => Some(1.0),
            ExprKind::Binary { op: super::ast::BinOp::Div, lhs, rhs } if is_min(lhs) => eval::is_constant(rhs)
                .then(|| eval::eval(rhs, &mut NoEnv).ok())
                .flatten()
                .and_then(|v| v.as_f64())
                .filter(|d| *d > 0.0 && d.is_finite()),
            _ => None,
        };
        if divisor.is_none() {
            self.error(
                Diagnostic::error("`pick` must be `min`, `min / N` or `steepest`")
                    .at(e.span, "")
                    .help("`pick = min / 10` takes a tenth of the LR where the smoothed loss is lowest"),
            );
        }
        divisor.map(|divisor| Pick::Min { divisor })
    }
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
