//! Checks `budget { max_runs = N  time = D }`: the limits on how much of a study runs. They are
//! constants of the study (no keys, no `base`), each a positive number of its kind.

use crate::diag::Diagnostic;
use crate::lang::ast::{Block, Stmt};
use crate::lang::eval::{self, NoEnv};
use crate::lang::study::{BudgetDef, Opt};
use crate::spec::schema;
use crate::spec::value::Value;

use super::Checker;

/// The keys a `budget {}` block may set.
const KEYS: &[&str] = &["max_runs", "time"];

impl Checker {
    /// The budget a `budget {}` block sets, every problem in it reported.
    pub(super) fn budget_block(&mut self, block: &Block) -> BudgetDef {
        let mut def = BudgetDef { max_runs: None, time: None, span: block.span };
        let mut first: Vec<(String, crate::diag::Span)> = Vec::new();
        for stmt in &block.body.stmts {
            let Stmt::Assign(a) = stmt else {
                self.misplaced(stmt, "`budget {}`");
                continue;
            };
            let name = a.key.text();
            if !KEYS.contains(&name.as_str()) {
                let label = schema::suggest(&name, KEYS.iter().copied())
                    .map_or_else(|| "not a budget key".to_owned(), |s| format!("did you mean `{s}`?"));
                self.error(
                    Diagnostic::error(format!("unknown key `{name}` in `budget {{}}`")).at(a.key.span, label).help(
                        "a budget sets `max_runs = N` (runs, cached ones included) and `time = 2.5h` (training time)",
                    ),
                );
                continue;
            }
            if let Some((_, span)) = first.iter().find(|(n, _)| *n == name) {
                self.error(
                    Diagnostic::error(format!("`{name}` is set twice in `budget {{}}`"))
                        .at(a.key.span, "")
                        .also(*span, "first set here"),
                );
                continue;
            }
            first.push((name.clone(), a.key.span));
            let value = if eval::is_constant(&a.value) { eval::eval(&a.value, &mut NoEnv).ok() } else { None };
            match (name.as_str(), value) {
                ("max_runs", Some(Value::Int(n))) if n > 0 => {
                    def.max_runs = Some(Opt { value: n.unsigned_abs(), span: a.value.span });
                }
                ("max_runs", v) => self.error(
                    Diagnostic::error("`max_runs` must be a whole number of runs, at least 1")
                        .at(
                            a.value.span,
                            v.map_or_else(|| "not a constant number".to_owned(), |v| format!("this is {v}")),
                        )
                        .help("write `max_runs = 30`; leave `max_runs` out for no limit on the runs"),
                ),
                (_, Some(Value::Duration(s))) if s > 0.0 && s.is_finite() => {
                    def.time = Some(Opt { value: s, span: a.value.span });
                }
                (_, v) => self.error(
                    Diagnostic::error("`time` must be a positive duration")
                        .at(
                            a.value.span,
                            v.map_or_else(|| "not a constant duration".to_owned(), |v| format!("this is {v}")),
                        )
                        .help("write a duration with its unit: `time = 90m`, `time = 2.5h` (s, m or h)"),
                ),
            }
        }
        if block.body.stmts.is_empty() {
            self.error(
                Diagnostic::warning("`budget {}` sets no limit")
                    .at(block.kind_span, "")
                    .help("set `max_runs = N` or `time = 2h`, or remove the block"),
            );
        }
        def
    }
}
