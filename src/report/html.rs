//! Renders the report document as one self-contained HTML page: figures inlined as SVG, light
//! CSS, tables sortable by clicking their headers (a few lines of inline JavaScript), and
//! nothing fetched from the network.

use std::fmt::Write as _;

use super::doc::{Block, Doc, Inline, Table, Text};

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d1d1f;
       background: #fff; max-width: 1320px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 1.9em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.45em; margin-top: 2.2em; padding-bottom: 0.2em; border-bottom: 1px solid #e3e3e3; }
h3 { font-size: 1.15em; margin-top: 1.6em; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
       background: #f3f4f6; padding: 0.05em 0.3em; border-radius: 4px; }
nav { background: #f8f9fb; border: 1px solid #e6e8ec; border-radius: 6px; padding: 8px 16px; margin: 1em 0; }
nav ol { margin: 0.3em 0; padding-left: 1.4em; columns: 2; }
.table-wrap { overflow-x: auto; margin: 0.8em 0 1.2em; }
table { border-collapse: collapse; font-size: 13.5px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e6e6e6; white-space: nowrap; vertical-align: top; }
td:not(.num) { white-space: normal; max-width: 34em; }
th { background: #f3f4f6; text-align: left; cursor: pointer; user-select: none; position: sticky; top: 0; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
th[aria-sort="ascending"]::after { content: " \25B2"; font-size: 0.75em; }
th[aria-sort="descending"]::after { content: " \25BC"; font-size: 0.75em; }
tbody tr:nth-child(even) { background: #fafafa; }
tr.winner, tr.winner:nth-child(even) { background: #fff4cc; font-weight: 600; }
tr.muted td { color: #8a8a8a; }
.note { background: #fff6e6; border-left: 4px solid #f0a020; padding: 8px 14px; margin: 1em 0; border-radius: 0 6px 6px 0; }
figure { margin: 1.2em 0 1.8em; }
figure svg { max-width: 100%; height: auto; display: block; border: 1px solid #eee; }
@media (max-width: 900px) { body { padding: 16px 12px 48px; } }
figcaption { color: #555; font-size: 0.92em; margin-top: 0.4em; }
"#;

const SCRIPT: &str = r"
(function () {
  function key(row, col) {
    var cell = row.cells[col];
    if (!cell) { return null; }
    var v = cell.getAttribute('data-sort');
    if (v !== null) { var x = parseFloat(v); return isNaN(x) ? null : x; }
    var t = cell.textContent.trim();
    return t === '' || t === '\u2014' ? null : t;
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.title = 'sort by ' + th.textContent;
      th.addEventListener('click', function () {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a, col), y = key(b, col);
          if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
          var c = (typeof x === 'number' && typeof y === 'number') ? x - y
                : String(x).localeCompare(String(y), undefined, { numeric: true });
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
";

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(ch),
        }
    }
    out
}

fn inline(t: &Text) -> String {
    t.0.iter()
        .map(|i| match i {
            Inline::Plain(s) => escape(s),
            // Long variant names may wrap after their commas.
            Inline::Code(s) => format!("<code>{}</code>", escape(s).replace(',', ",<wbr>")),
            Inline::Strong(s) => format!("<strong>{}</strong>", escape(s)),
            Inline::Em(s) => format!("<em>{}</em>", escape(s)),
        })
        .collect()
}

fn slug(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').to_owned()
}

fn table(t: &Table, out: &mut String) {
    out.push_str("<div class=\"table-wrap\"><table class=\"sortable\">\n<thead><tr>");
    for (h, num) in t.header.iter().zip(&t.numeric) {
        let _ = write!(out, "<th{}>{}</th>", if *num { " class=\"num\"" } else { "" }, escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &t.rows {
        let class = match (r.highlight, r.muted) {
            (true, _) => " class=\"winner\"",
            (false, true) => " class=\"muted\"",
            _ => "",
        };
        let _ = write!(out, "<tr{class}>");
        for (i, c) in r.cells.iter().enumerate() {
            let num = t.numeric.get(i).copied().unwrap_or(false);
            let sort = if num {
                format!(" data-sort=\"{}\"", c.sort.map_or_else(|| "NaN".to_owned(), |v| format!("{v:e}")))
            } else {
                String::new()
            };
            let _ = write!(out, "<td{}{sort}>{}</td>", if num { " class=\"num\"" } else { "" }, inline(&c.text));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

/// An SVG document made fit to sit inside HTML: no XML declaration, no namespace URL (HTML
/// knows `<svg>`), a title for screen readers.
pub fn inline_svg(svg: &str, title: &str) -> String {
    let body = svg.trim_start();
    let body = if body.starts_with("<?xml") {
        body.split_once("?>").map_or(body, |(_, rest)| rest.trim_start())
    } else {
        body
    };
    let body = body.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    match body.find('>') {
        Some(end) if body.starts_with("<svg") => {
            format!(
                "{} role=\"img\" aria-label=\"{}\">{}",
                &body[..end].trim_end_matches('/'),
                escape(title),
                &body[end + 1..]
            )
        }
        _ => body,
    }
}

/// The whole document as one HTML page.
pub fn render(doc: &Doc) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{}<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        doc.refresh.map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">\n")).unwrap_or_default(),
        escape(&doc.title),
        escape(&doc.title)
    );
    let sections: Vec<&Text> =
        doc.blocks.iter().filter_map(|b| if let Block::Heading(2, t) = b { Some(t) } else { None }).collect();
    if sections.len() > 2 {
        out.push_str("<nav><strong>Contents</strong><ol>");
        for t in &sections {
            let _ = write!(out, "<li><a href=\"#{}\">{}</a></li>", slug(&t.to_plain()), inline(t));
        }
        out.push_str("</ol></nav>\n");
    }
    for b in &doc.blocks {
        match b {
            Block::Heading(level, t) => {
                let l = (*level).clamp(2, 6);
                let _ = writeln!(out, "<h{l} id=\"{}\">{}</h{l}>", slug(&t.to_plain()), inline(t));
            }
            Block::Para(t) => {
                let _ = writeln!(out, "<p>{}</p>", inline(t));
            }
            Block::Note(t) => {
                let _ = writeln!(out, "<div class=\"note\">{}</div>", inline(t));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    let _ = writeln!(out, "<li>{}</li>", inline(i));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => table(t, &mut out),
            Block::Figure(f) => {
                let _ = writeln!(
                    out,
                    "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>",
                    inline_svg(&f.svg, &f.caption.to_plain()),
                    inline(&f.caption)
                );
            }
        }
    }
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_loses_its_namespace_url_and_gains_a_label() {
        let svg = "<svg width=\"10\" height=\"10\" viewBox=\"0 0 10 10\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect/>\n</svg>\n";
        let s = inline_svg(svg, "a <b>");
        assert_eq!(
            s,
            "<svg width=\"10\" height=\"10\" viewBox=\"0 0 10 10\" role=\"img\" aria-label=\"a &lt;b&gt;\">\n<rect/>\n</svg>\n"
        );
        assert!(!s.contains("http"));
    }

    #[test]
    fn headings_get_anchors() {
        assert_eq!(slug("Phase `matrix_lr`"), "phase-matrix-lr");
    }
}
