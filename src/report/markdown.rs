//! Renders the report document as GitHub-flavoured Markdown; figures are linked, not inlined.

use std::fmt::Write as _;

use super::doc::{Block, Doc, Inline, Table, Text};

fn escape(s: &str, in_table: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '*' | '[' | ']' | '<' | '>' | '`' => {
                out.push('\\');
                out.push(ch);
            }
            '|' if in_table => out.push_str("\\|"),
            '\n' if in_table => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

fn code(s: &str, in_table: bool) -> String {
    let s = if in_table { s.replace('|', "\\|") } else { s.to_owned() };
    if s.contains('`') { format!("`` {s} ``") } else { format!("`{s}`") }
}

/// Bold or italic text with surrounding whitespace moved outside the markers (`CommonMark` does not
/// close emphasis after a space).
fn emphasis(s: &str, mark: &str, in_table: bool) -> String {
    let core = s.trim();
    if core.is_empty() {
        return escape(s, in_table);
    }
    let lead = &s[..s.len() - s.trim_start().len()];
    let trail = &s[s.trim_end().len()..];
    format!("{lead}{mark}{}{mark}{trail}", escape(core, in_table))
}

pub fn inline(t: &Text, in_table: bool) -> String {
    t.0.iter()
        .map(|i| match i {
            Inline::Plain(s) => escape(s, in_table),
            Inline::Code(s) => code(s, in_table),
            Inline::Strong(s) => emphasis(s, "**", in_table),
            Inline::Em(s) => emphasis(s, "*", in_table),
        })
        .collect()
}

fn table(t: &Table, out: &mut String) {
    let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    out.push_str(&row(t.header.iter().map(|h| escape(h, true)).collect()));
    out.push_str(&row(t.numeric.iter().map(|&n| if n { "---:".to_owned() } else { "---".to_owned() }).collect()));
    for r in &t.rows {
        let cells = r
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let s = inline(&c.text, true);
                if r.highlight && i < 2 && !s.is_empty() && !s.starts_with('*') { format!("**{s}**") } else { s }
            })
            .collect();
        out.push_str(&row(cells));
    }
}

/// The whole document as Markdown.
pub fn render(doc: &Doc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", escape(&doc.title, false));
    for b in &doc.blocks {
        match b {
            Block::Heading(level, t) => {
                let _ = writeln!(out, "{} {}\n", "#".repeat(usize::from((*level).clamp(2, 6))), inline(t, false));
            }
            Block::Para(t) => {
                let _ = writeln!(out, "{}\n", inline(t, false));
            }
            Block::Note(t) => {
                let _ = writeln!(out, "> {}\n", inline(t, false));
            }
            Block::List(items) => {
                for i in items {
                    let _ = writeln!(out, "- {}", inline(i, false));
                }
                out.push('\n');
            }
            Block::Table(t) => {
                table(t, &mut out);
                out.push('\n');
            }
            Block::Figure(f) => {
                let _ = writeln!(out, "![{}]({})\n", escape(&f.caption.to_plain(), false), f.path);
                let _ = writeln!(out, "*{}*\n", inline(&f.caption, false));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::doc::Cell;

    #[test]
    fn tables_escape_pipes_and_bold_the_winner() {
        let mut t = Table::new(vec![("variant".into(), false), ("val_loss".into(), true)]);
        t.push(vec![Cell::text(Text::new().code("a|b")), Cell::num("1.5", Some(1.5))], true, false);
        t.push(vec![Cell::text("x*y"), Cell::num("2", Some(2.0))], false, false);
        let mut s = String::new();
        table(&t, &mut s);
        assert_eq!(s, "| variant | val_loss |\n| --- | ---: |\n| **`a\\|b`** | **1.5** |\n| x\\*y | 2 |\n");
        assert_eq!(inline(&Text::new().strong("Winner: ").plain("x"), false), "**Winner:** x");
    }
}
