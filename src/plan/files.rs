//! What a study names on disk, checked before anything runs: every corpus it sets (in
//! `data {}`, a phase, the final run, or a sweep) must be one lrx can read, relative to the
//! study's folder, so that `lrx check` refuses a study whose runs would all fail.

use std::path::Path;

use crate::corpus::{self, CorpusError};
use crate::diag::Diagnostic;
use crate::lang::ast::{Expr, ExprKind, Span};
use crate::lang::study::{Binding, Study};
use crate::spec::schema;

/// The built-in corpus's name (any other value is a path).
const DEFAULT: &str = "default";

/// Every corpus of the study that cannot be read, as an error on its value. `base` is the
/// folder relative paths are resolved against (the study's).
pub(super) fn check(study: &Study, base: &Path) -> Vec<Diagnostic> {
    let mut values: Vec<(&str, Span)> = Vec::new();
    let bindings = study
        .root
        .iter()
        .chain(study.phases.iter().flat_map(|p| &p.overrides))
        .chain(study.final_run.iter().flat_map(|f| &f.overrides));
    for b in bindings.filter(|b| is_corpus(b)) {
        strings(&b.value, &mut values);
    }
    for c in study.phases.iter().flat_map(|p| &p.sweeps).flat_map(|s| &s.clauses) {
        if c.target.key.name() == "corpus" && c.target.arg.is_none() {
            strings(&c.values, &mut values);
        }
    }
    values
        .into_iter()
        .filter(|(v, _)| *v != DEFAULT)
        .filter_map(|(v, span)| corpus::locate(v, base).err().map(|e| problem(v, span, &e, base)))
        .collect()
}

fn is_corpus(b: &Binding) -> bool {
    b.target.key.name() == "corpus" && b.target.arg.is_none()
}

/// The string constants of a value: itself, or a list's items.
fn strings<'e>(e: &'e Expr, out: &mut Vec<(&'e str, Span)>) {
    match &e.kind {
        ExprKind::Str(s) => out.push((s, e.span)),
        ExprKind::List(items) => items.iter().for_each(|i| strings(i, out)),
        ExprKind::Group(inner) => strings(inner, out),
        _ => {}
    }
}

fn problem(value: &str, span: Span, e: &CorpusError, base: &Path) -> Diagnostic {
    let kinds = "a corpus is `\"default\"`, a `.txt` file, a folder of `.txt` files or a `.jsonl` file";
    match e {
        CorpusError::Missing(path) => {
            let mut d = Diagnostic::error(format!("corpus `{value}` does not exist"));
            // A file of a similar name beside where it was looked for.
            let near = path.parent().zip(path.file_name()).and_then(|(dir, name)| {
                let names: Vec<String> =
                    std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
                schema::suggest(&name.to_string_lossy(), names.iter().map(String::as_str))
            });
            d = match near {
                Some(n) => d.at(span, format!("did you mean `{n}`?")),
                None => d.at(span, format!("no such file or folder in `{}`", base.display())),
            };
            d.help(format!("{kinds}; a path is relative to the study's folder"))
        }
        CorpusError::Unsupported(_) => {
            Diagnostic::error(format!("corpus `{value}` is neither a `.txt` file, a `.jsonl` file nor a folder"))
                .at(span, "")
                .help(kinds)
        }
        CorpusError::EmptyFolder(_) => {
            Diagnostic::error(format!("corpus folder `{value}` has no `.txt` files")).at(span, "").help(kinds)
        }
        other => Diagnostic::error(format!("cannot read corpus `{value}`")).at(span, other.to_string()),
    }
}
