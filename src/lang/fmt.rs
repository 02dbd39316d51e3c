//! Canonical formatting (`lrx fmt`): two-space indents, one blank line between top-level
//! items, `=` aligned in runs of assignments, `in` aligned in `grid {}` and `zip {}`,
//! end-of-line comments aligned, every comment kept. Statements that share a line keep
//! sharing it. Formatting is idempotent and never changes what a file means.

use std::fmt::Write as _;

use super::ast::{Arg, Body, Clause, Comment, Expr, ExprKind, File, Final, FinalFrom, Find, Item, Span, Stmt};
use crate::diag::Diagnostic;

/// Lists longer than this on one line are written one element per line.
const WIDTH: usize = 100;

/// Formats a file's text canonically.
pub fn format(source: &str) -> Result<String, Diagnostic> {
    let file = super::parser::parse_file(source)?;
    Ok(format_file(source, &file))
}

/// Formats a parsed file; `source` is the text it was parsed from.
pub fn format_file(source: &str, file: &File) -> String {
    let mut p = Printer { src: source, comments: &file.comments, next: 0, out: String::new() };
    for (i, item) in file.items.iter().enumerate() {
        let start = item.span().start;
        let lead = p.take_comments(start);
        if i > 0 {
            p.out.push('\n');
        }
        p.comment_lines(&lead, 0, start);
        p.item(item);
    }
    let rest = p.take_comments(source.len());
    if !rest.is_empty() {
        if !file.items.is_empty() {
            p.out.push('\n');
        }
        p.comment_lines(&rest, 0, source.len());
    }
    p.out
}

struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    next: usize,
    out: String,
}

/// One output line of a block.
struct Line {
    /// Assignments of the line as (key, value), when the line is only assignments.
    cells: Option<Vec<(String, String)>>,
    code: String,
    comment: Option<String>,
    blank_before: bool,
    /// Part of a statement that spans several lines: breaks alignment runs.
    multi: bool,
}

impl Printer<'_> {
    /// Comments starting before `pos` that are not printed yet.
    fn take_comments(&mut self, pos: usize) -> Vec<Comment> {
        let mut out = Vec::new();
        while let Some(c) = self.comments.get(self.next).filter(|c| c.span.start < pos) {
            out.push(c.clone());
            self.next += 1;
        }
        out
    }

    /// The comment on the same line right after `pos`, if any.
    fn trailing(&mut self, pos: usize) -> Option<String> {
        let c = self.comments.get(self.next)?;
        if c.span.start >= pos && !self.src[pos..c.span.start].contains('\n') {
            self.next += 1;
            return Some(c.text.clone());
        }
        None
    }

    /// Whether a blank line lies between offsets `a` and `b`.
    fn blank_between(&self, a: usize, b: usize) -> bool {
        let gap = &self.src[a.min(b)..b];
        let segs: Vec<&str> = gap.split('\n').collect();
        segs.len() >= 3 && segs[1..segs.len() - 1].iter().any(|l| l.trim().is_empty())
    }

    /// The source text of `span` with its comments, taking them as printed.
    fn verbatim(&mut self, span: Span) -> String {
        self.take_comments(span.end);
        self.src[span.range()].to_owned()
    }

    fn comment_lines(&mut self, comments: &[Comment], indent: usize, before: usize) {
        for (i, c) in comments.iter().enumerate() {
            self.out.push_str(&"  ".repeat(indent));
            self.out.push_str(&c.text);
            self.out.push('\n');
            let next = comments.get(i + 1).map_or(before, |n| n.span.start);
            if next < self.src.len() && self.blank_between(c.span.end, next) && i + 1 < comments.len() {
                self.out.push('\n');
            }
        }
        if let Some(last) = comments.last()
            && before <= self.src.len()
            && self.blank_between(last.span.end, before)
        {
            self.out.push('\n');
        }
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Block(b) => self.body(b.kind.name(), &b.body, 0),
            Item::Objective(o) => {
                let line = format!("objective {} {}", o.goal.name(), o.metric.name);
                self.simple_line(&line, o.span.end);
            }
            Item::Phase(p) if self.has_comment(Span::new(p.span.start, p.body.span.start)) => {
                let head = self.verbatim(Span::new(p.span.start, p.body.span.start)).trim_end().to_owned();
                self.body(&head, &p.body, 0);
            }
            Item::Phase(p) => {
                let mut head = format!("phase {}", p.name.name);
                if !p.after.is_empty() {
                    head.push_str(" after ");
                    head.push_str(&p.after.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", "));
                }
                self.body(&head, &p.body, 0);
            }
            Item::Final(f) => self.final_run(f),
            Item::Find(f) => {
                let line = self.find(f);
                self.simple_line(&line, f.span.end);
            }
        }
    }

    fn simple_line(&mut self, code: &str, end: usize) {
        self.out.push_str(code);
        if let Some(c) = self.trailing(end) {
            self.out.push_str("  ");
            self.out.push_str(&c);
        }
        self.out.push('\n');
    }

    fn final_run(&mut self, f: &Final) {
        let names = |list: &[super::ast::Ident]| list.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ");
        let head_span = Span::new(f.span.start, f.body.as_ref().map_or(f.span.end, |b| b.span.start));
        let head = if self.has_comment(head_span) {
            self.verbatim(head_span).trim_end().to_owned()
        } else {
            match &f.from {
                FinalFrom::Combine(list) => format!("final combine({})", names(list)),
                FinalFrom::After(list) => format!("final after {}", names(list)),
            }
        };
        match &f.body {
            Some(b) => self.body(&head, b, 0),
            None => self.simple_line(&head, f.span.end),
        }
    }

    /// `head { statements }` at `indent`.
    fn body(&mut self, head: &str, body: &Body, indent: usize) {
        let stmts: Vec<(Span, Option<&Clause>, &Stmt)> = body.stmts.iter().map(|s| (s.span(), None, s)).collect();
        self.block(head, body.span, &stmts, indent, false);
    }

    /// Prints a braced list of statements (or of `grid`/`zip` clauses, with `clauses`).
    fn block(
        &mut self,
        head: &str,
        span: Span,
        stmts: &[(Span, Option<&Clause>, &Stmt)],
        indent: usize,
        clauses: bool,
    ) {
        let pad = "  ".repeat(indent);
        let open = span.start + 1;
        let head_comment = if self.comments.get(self.next).is_some_and(|c| c.span.start < span.end) {
            self.trailing(open)
        } else {
            None
        };
        let inner_has_comments = self.comments.get(self.next).is_some_and(|c| c.span.start < span.end);
        if stmts.is_empty() && head_comment.is_none() && !inner_has_comments {
            let _ = writeln!(self.out, "{pad}{head} {{}}");
            return;
        }
        let _ = write!(self.out, "{pad}{head} {{");
        if let Some(c) = head_comment {
            self.out.push_str("  ");
            self.out.push_str(&c);
        }
        self.out.push('\n');
        let mut lines: Vec<Line> = Vec::new();
        let mut prev_end = open;
        let mut i = 0;
        while i < stmts.len() {
            // Statements starting on the same line as the previous one's end share its line.
            let mut j = i + 1;
            while j < stmts.len() && !self.src[stmts[j - 1].0.end..stmts[j].0.start].contains('\n') {
                j += 1;
            }
            let group = &stmts[i..j];
            let first = group[0].0.start;
            let lead = self.take_comments(first);
            let mut blank =
                !lines.is_empty() && self.blank_between(prev_end, lead.first().map_or(first, |c| c.span.start));
            for (k, c) in lead.iter().enumerate() {
                let next = lead.get(k + 1).map_or(first, |n| n.span.start);
                lines.push(Line {
                    cells: None,
                    code: String::new(),
                    comment: Some(c.text.clone()),
                    blank_before: blank,
                    multi: true,
                });
                blank = self.blank_between(c.span.end, next);
            }
            let end = group[group.len() - 1].0.end;
            let mut cells = Vec::new();
            let mut codes = Vec::new();
            let mut multi = false;
            for (_, clause, stmt) in group {
                let (code, cell) = match clause {
                    Some(c) => (
                        format!("{} in {}", c.key.text(), self.expr(&c.values, indent + 1)),
                        Some((c.key.text(), format!("in {}", self.expr(&c.values, indent + 1)))),
                    ),
                    None => self.stmt(stmt, indent + 1),
                };
                multi |= code.contains('\n');
                cells.push(cell);
                codes.push(code);
            }
            let all_cells = cells.iter().all(Option::is_some) && !multi;
            let comment = self.trailing(end);
            let code = codes.join("   ");
            if multi {
                let mut code_lines = code.split('\n');
                let first_line = code_lines.next().unwrap_or_default().to_owned();
                lines.push(Line { cells: None, code: first_line, comment: None, blank_before: blank, multi: true });
                let rest: Vec<&str> = code_lines.collect();
                for (k, l) in rest.iter().enumerate() {
                    let c = if k + 1 == rest.len() { comment.clone() } else { None };
                    lines.push(Line {
                        cells: None,
                        code: (*l).to_owned(),
                        comment: c,
                        blank_before: false,
                        multi: true,
                    });
                }
            } else {
                let cells = all_cells.then(|| cells.into_iter().flatten().collect());
                lines.push(Line { cells, code, comment, blank_before: blank, multi: false });
            }
            prev_end = end;
            i = j;
        }
        let rest = self.take_comments(span.end);
        let mut blank = !lines.is_empty() && rest.first().is_some_and(|c| self.blank_between(prev_end, c.span.start));
        for c in &rest {
            lines.push(Line {
                cells: None,
                code: String::new(),
                comment: Some(c.text.clone()),
                blank_before: blank,
                multi: true,
            });
            blank = false;
        }
        align(&mut lines, clauses);
        for l in &lines {
            if l.blank_before {
                self.out.push('\n');
            }
            let inner = "  ".repeat(indent + 1);
            // Continuation lines of a multi-line statement carry their own indentation.
            let code_pad = if l.multi && !l.code.is_empty() && l.code.starts_with(' ') { "" } else { inner.as_str() };
            match (&l.code, &l.comment) {
                (code, Some(c)) if code.is_empty() => {
                    let _ = writeln!(self.out, "{inner}{c}");
                }
                (code, Some(c)) => {
                    let _ = writeln!(self.out, "{code_pad}{code}  {c}");
                }
                (code, None) => {
                    let _ = writeln!(self.out, "{code_pad}{code}");
                }
            }
        }
        let _ = writeln!(self.out, "{pad}}}");
    }

    /// A statement's text (possibly several lines, continuation lines fully indented), and
    /// its (key, `= value`) cell when it is an assignment.
    fn stmt(&mut self, stmt: &Stmt, indent: usize) -> (String, Option<(String, String)>) {
        match stmt {
            Stmt::Assign(a) => {
                let v = self.expr(&a.value, indent);
                (format!("{} = {v}", a.key.text()), Some((a.key.text(), format!("= {v}"))))
            }
            Stmt::Objective(o) => (format!("objective {} {}", o.goal.name(), o.metric.name), None),
            Stmt::Vary(c) => (format!("vary {} in {}", c.key.text(), self.expr(&c.values, indent)), None),
            Stmt::Grid(g) | Stmt::Zip(g) => {
                let word = if matches!(stmt, Stmt::Grid(_)) { "grid" } else { "zip" };
                let items: Vec<(Span, Option<&Clause>, &Stmt)> =
                    g.clauses.iter().map(|c| (c.span, Some(c), stmt)).collect();
                let saved = std::mem::take(&mut self.out);
                self.block(word, Span::new(self.brace(g.span), g.span.end), &items, indent, true);
                let text = std::mem::replace(&mut self.out, saved);
                let text = text.trim_end_matches('\n');
                // The first line is placed by the caller; the rest keep their indentation.
                (text.trim_start().to_owned(), None)
            }
            Stmt::Find(f) => (self.find(f), None),
        }
    }

    /// The offset of the first `{` at or after `from`.
    fn brace(&self, span: Span) -> usize {
        self.src[span.start..span.end].find('{').map_or(span.start, |i| span.start + i)
    }

    fn find(&mut self, f: &Find) -> String {
        if self.has_comment(f.span) {
            return self.verbatim(f.span);
        }
        let mut s = format!("find {} from {} to {}", f.key.text(), self.expr(&f.from, 0), self.expr(&f.to, 0));
        if !f.options.is_empty() {
            let opts: Vec<String> =
                f.options.iter().map(|o| format!("{} = {}", o.name.name, self.expr(&o.value, 0))).collect();
            let _ = write!(s, " ({})", opts.join(", "));
        }
        s
    }

    fn has_comment(&self, span: Span) -> bool {
        self.comments[self.next..].iter().any(|c| c.span.start >= span.start && c.span.start < span.end)
    }

    /// An expression's canonical text. A list written over several lines stays one element
    /// per line (with its comments); any other expression holding a comment is kept verbatim.
    fn expr(&mut self, e: &Expr, indent: usize) -> String {
        if let ExprKind::List(items) = &e.kind
            && !items.is_empty()
            && (self.src[e.span.range()].contains('\n') || flat(e).len() > WIDTH)
            && !items.iter().any(|i| self.has_comment(i.span))
        {
            return self.multiline_list(e, items, indent);
        }
        if self.has_comment(e.span) {
            return self.verbatim(e.span);
        }
        flat(e)
    }

    fn multiline_list(&mut self, e: &Expr, items: &[Expr], indent: usize) -> String {
        let pad = "  ".repeat(indent + 1);
        let mut out = String::from("[");
        for (i, item) in items.iter().enumerate() {
            for c in self.take_comments(item.span.start) {
                let _ = write!(out, "\n{pad}{}", c.text);
            }
            let _ = write!(out, "\n{pad}{},", flat(item));
            // A comment after the element (and its comma) on the same line.
            let after = items.get(i + 1).map_or(e.span.end, |n| n.span.start);
            let line_end = self.src[item.span.end..after].find('\n').map_or(after, |k| item.span.end + k);
            if let Some(c) =
                self.comments.get(self.next).filter(|c| c.span.start >= item.span.end && c.span.start < line_end)
            {
                let _ = write!(out, "  {}", c.text);
                self.next += 1;
            }
        }
        for c in self.take_comments(e.span.end) {
            let _ = write!(out, "\n{pad}{}", c.text);
        }
        let _ = write!(out, "\n{}]", "  ".repeat(indent));
        out
    }
}

/// An expression on one line: `lin(base * 0.5, base * 1.5, n = 11)`.
pub fn flat(e: &Expr) -> String {
    let list = |items: &[Expr]| items.iter().map(flat).collect::<Vec<_>>().join(", ");
    match &e.kind {
        ExprKind::Number { text, .. } | ExprKind::Duration { text, .. } => text.clone(),
        ExprKind::Str(s) => quote(s),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Name(p) => p.text(),
        ExprKind::List(items) => format!("[{}]", list(items)),
        ExprKind::Tuple(items) => format!("({})", list(items)),
        ExprKind::Call { name, args } => {
            format!("{}({})", name.name, args.iter().map(arg).collect::<Vec<_>>().join(", "))
        }
        ExprKind::Neg(inner) => format!("-{}", flat(inner)),
        ExprKind::Binary { op, lhs, rhs } => format!("{} {} {}", flat(lhs), op.symbol(), flat(rhs)),
        ExprKind::Group(inner) => format!("({})", flat(inner)),
    }
}

fn arg(a: &Arg) -> String {
    match &a.name {
        Some(n) => format!("{} = {}", n.name, flat(&a.value)),
        None => flat(&a.value),
    }
}

/// A string literal that parses back to `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Aligns `=` (or `in`, for clauses) in runs of assignment lines, and end-of-line comments in
/// runs of one-line statements. A blank line, a comment line or a multi-line statement ends
/// a run.
fn align(lines: &mut [Line], clauses: bool) {
    let _ = clauses;
    let mut start = 0;
    while start < lines.len() {
        let mut end = start;
        while end < lines.len() && !lines[end].multi && (end == start || !lines[end].blank_before) {
            end += 1;
        }
        if end == start {
            start += 1;
            continue;
        }
        let run = &mut lines[start..end];
        // Columns of cells.
        let cols = run.iter().filter_map(|l| l.cells.as_ref().map(Vec::len)).max().unwrap_or(0);
        let mut key_w = vec![0; cols];
        let mut cell_w = vec![0; cols];
        for l in run.iter() {
            for (j, (k, _)) in l.cells.iter().flatten().enumerate() {
                key_w[j] = key_w[j].max(k.chars().count());
            }
        }
        for l in run.iter() {
            for (j, (_, v)) in l.cells.iter().flatten().enumerate() {
                cell_w[j] = cell_w[j].max(key_w[j] + 1 + v.chars().count());
            }
        }
        for l in run.iter_mut() {
            if let Some(cells) = &l.cells {
                let n = cells.len();
                let parts: Vec<String> = cells
                    .iter()
                    .enumerate()
                    .map(|(j, (k, v))| {
                        let cell = format!("{k:<w$} {v}", w = key_w[j]);
                        if j + 1 < n { format!("{cell:<w$}", w = cell_w[j]) } else { cell }
                    })
                    .collect();
                l.code = parts.join("   ");
            }
        }
        let comment_col =
            run.iter().filter(|l| l.comment.is_some() && !l.code.is_empty()).map(|l| l.code.chars().count()).max();
        if let Some(col) = comment_col {
            for l in run.iter_mut().filter(|l| l.comment.is_some() && !l.code.is_empty()) {
                let w = l.code.chars().count();
                l.code.push_str(&" ".repeat(col - w));
            }
        }
        start = end;
    }
}
