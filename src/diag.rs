//! The one `Diagnostic` type of lrx: a message with labelled source spans and help, rendered
//! like rustc's by `annotate-snippets`.
//!
//! Messages are lowercase, name identifiers in backticks and end without a period.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// A byte range in the source. Compares equal to every other span.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// A span of the source with an optional label. The first primary label is where the
/// diagnostic points (its line and column).
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Vec<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(message) }
    }

    /// Points at `span`, with a label (may be empty).
    #[must_use]
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: label.into(), primary: true });
        self
    }

    /// Adds a secondary span (`first set here`).
    #[must_use]
    pub fn also(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: label.into(), primary: false });
        self
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }

    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The main span, if the diagnostic points into the source.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).or(self.labels.first()).map(|l| l.span)
    }

    /// 1-based line and column (in characters) of the main span.
    pub fn line_col(&self, source: &str) -> Option<(usize, usize)> {
        self.primary_span().map(|s| line_col(source, s.start))
    }

    /// Renders like rustc: `error: ...`, ` --> file:line:col`, the source line and its carets.
    pub fn render(&self, source: &str, path: &str, color: bool) -> String {
        let renderer = if color { Renderer::styled() } else { Renderer::plain() };
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let mut group: Group<'_> = Group::with_title(level.primary_title(self.message.as_str()));
        if !self.labels.is_empty() {
            let mut snippet = Snippet::source(source).path(path);
            for label in &self.labels {
                let kind = if label.primary { AnnotationKind::Primary } else { AnnotationKind::Context };
                let mut ann = kind.span(clamp(source, label.span.range()));
                if !label.message.is_empty() {
                    ann = ann.label(label.message.as_str());
                }
                snippet = snippet.annotation(ann);
            }
            group = group.element(snippet);
        }
        for note in &self.notes {
            group = group.element(Level::NOTE.message(note.as_str()));
        }
        for help in &self.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        renderer.render(&[group])
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Keeps a span inside the source and on character boundaries.
fn clamp(source: &str, r: Range<usize>) -> Range<usize> {
    let mut start = r.start.min(source.len());
    let mut end = r.end.clamp(start, source.len());
    while !source.is_char_boundary(start) {
        start -= 1;
    }
    while !source.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = clamp(source, offset..offset).start;
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A file that did not check: its diagnostics and what is needed to render them.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", self.summary())]
pub struct Failure {
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    pub fn new(path: &Path, source: &str, diagnostics: Vec<Diagnostic>) -> Failure {
        Failure { path: path.to_owned(), text: source.to_owned(), diagnostics }
    }

    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// `could not check `x.lrx`: 2 errors`.
    pub fn summary(&self) -> String {
        let n = self.errors();
        format!("`{}` has {n} error{}", self.path.display(), if n == 1 { "" } else { "s" })
    }

    /// Every diagnostic, rendered, separated by blank lines.
    pub fn render(&self, color: bool) -> String {
        render_all(&self.diagnostics, &self.text, &self.path.display().to_string(), color)
    }
}

/// Renders diagnostics one after another, each followed by a blank line.
pub fn render_all(diagnostics: &[Diagnostic], source: &str, path: &str, color: bool) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.render(source, path, color));
        out.push_str("\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let source = "train {\n  matrx_lr = 0.04\n}\n";
        let d = Diagnostic::error("unknown key `matrx_lr`").at(Span::new(10, 18), "did you mean `matrix_lr`?");
        let text = d.render(source, "pipelines/muon_adamw.lrx", false);
        assert_eq!(
            text,
            "error: unknown key `matrx_lr`\n --> pipelines/muon_adamw.lrx:2:3\n  |\n2 |   matrx_lr = 0.04\n  |   ^^^^^^^^ did you mean `matrix_lr`?"
        );
        assert_eq!(d.line_col(source), Some((2, 3)));
    }
}
