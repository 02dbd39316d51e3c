//! The `.lrx` language: parsing text into a syntax tree, checking it against the key schema,
//! evaluating expressions, and formatting files canonically.
//!
//! Entry points: [`parse`] (text → [`ast::File`]), [`check`] (text → [`checker::Checked`]),
//! [`fmt::format`] (text → canonical text), and for the command line [`parse_assignment`]
//! (`--set KEY=VALUE`) and [`eval_standalone`] (`lrx schedule EXPR`).

pub mod ast;
pub mod checker;
pub mod command;
pub mod eval;
pub mod fmt;
pub mod parser;
pub mod study;
mod sweeps;
mod syntax_error;

use crate::diag::Diagnostic;
use crate::spec::value::Value;

pub use checker::Checked;
pub use eval::Target;

/// Parses a file into its syntax tree.
pub fn parse(source: &str) -> Result<ast::File, Diagnostic> {
    parser::parse_file(source)
}

/// Parses and checks a file: the checked study and every diagnostic, or the parse error.
pub fn check(source: &str) -> Result<Checked, Diagnostic> {
    parse(source).map(|file| {
        let mut checked = checker::check(&file);
        checked.diagnostics.extend(command::check_templates(&file, source));
        checked.diagnostics.sort_by_key(|d| d.primary_span().map_or(usize::MAX, |s| s.start));
        checked
    })
}

/// Parses `KEY=VALUE` (as given to `lrx train --set`): the key's canonical path
/// (`matrix_lr`, `schedule.warmup`, `data.tokens`) and its checked value. The value must be a
/// constant. Spans in the diagnostic point into `text`.
pub fn parse_assignment(text: &str) -> Result<(String, Value), Diagnostic> {
    let assign = parser::parse_assign(text)?;
    let target = match eval::resolve_name(&assign.key) {
        eval::NameRef::Key(t) => t,
        eval::NameRef::Unknown { suggestion } => return Err(unknown_key(&assign.key, suggestion)),
        _ => {
            let suggestion = crate::spec::schema::suggest(
                &assign.key.text(),
                crate::spec::schema::keys().map(crate::spec::schema::Key::name),
            );
            return Err(unknown_key(&assign.key, suggestion));
        }
    };
    let value = eval::eval(&assign.value, &mut eval::NoEnv).map_err(|e| Diagnostic::error(e.message).at(e.span, ""))?;
    let (ty, noun) = target
        .ty()
        .ok_or_else(|| Diagnostic::error(format!("`{}` cannot be set", target.path())).at(assign.key.span, ""))?;
    let value = ty
        .check(&noun, &value)
        .map_err(|msg| Diagnostic::error(format!("`{} = {value}`: {msg}", target.path())).at(assign.value.span, ""))?;
    Ok((target.path(), value))
}

fn unknown_key(key: &ast::KeyPath, suggestion: Option<String>) -> Diagnostic {
    let d = Diagnostic::error(format!("unknown key `{}`", key.text()));
    match suggestion {
        Some(s) => d.at(key.span, format!("did you mean `{s}`?")),
        None => d.at(key.span, ""),
    }
}

/// Evaluates a standalone constant expression (`cosine(warmup = 0.1)`, `log(1e-3, 1, n = 4)`).
/// Spans in the diagnostic point into `text`.
pub fn eval_standalone(text: &str) -> Result<Value, Diagnostic> {
    let expr = parser::parse_expr(text)?;
    eval::eval(&expr, &mut eval::NoEnv).map_err(|e| Diagnostic::error(e.message).at(e.span, ""))
}
