//! What can be known of `trainer = command("...")` before anything runs: from the text, that
//! the command splits into arguments and that each placeholder names a key of the run; against
//! the study's folder, that its program and every `deps` file exist.
//!
//! Spans point inside the string literal at the placeholder or program at fault.

use std::path::Path;

use crate::diag::Diagnostic;
use crate::spec::command::{Template, TemplateError, placeholder_names, suggest};

use super::ast::{BlockKind, Expr, ExprKind, File, Item, Span, Stmt};

/// The problems of the file's commands that its text shows.
pub fn check_templates(file: &File, source: &str) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    // Keys the study declares fill placeholders too (`{dropout}` or `{params.dropout}`).
    let declared: Vec<String> = file
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Block(b) if b.kind == BlockKind::Params => Some(&b.body.stmts),
            _ => None,
        })
        .flatten()
        .filter_map(|s| match s {
            Stmt::Assign(a) => Some(a.key.text()),
            _ => None,
        })
        .collect();
    for (cmd, lit) in commands(file) {
        let template = match Template::parse(&cmd) {
            Ok(t) => t,
            Err(e) => {
                let help = match e {
                    TemplateError::UnclosedQuote => {
                        "the command is split into arguments the way a shell splits words (quotes group, `\\` escapes); no shell runs it"
                    }
                    TemplateError::Empty => {
                        "write the program and its arguments: `command(\"python3 train.py --out {out}\")`"
                    }
                };
                diags.push(Diagnostic::error(e.to_string()).at(lit, "").help(help));
                continue;
            }
        };
        for (name, range) in template.slots() {
            if placeholder_names().contains(name)
                || declared.iter().any(|d| d == name || name.strip_prefix("params.") == Some(d.as_str()))
            {
                continue;
            }
            let span = Span::new(in_source(source, lit, range.start), in_source(source, lit, range.end));
            let d = Diagnostic::error(format!("`{{{name}}}` is not a key of the run"));
            let near = crate::spec::schema::suggest(name, declared.iter().map(String::as_str));
            diags.push(match near.or_else(|| suggest(name)) {
                Some(s) => d.at(span, format!("did you mean `{{{s}}}`?")),
                None => d.at(span, "").help("placeholders name keys (`{matrix_lr}`, `{schedule.warmup}`, `{seed}`), `{out}`, `{config}`, `{stop_at}` or `{checkpoint}`; `{{` and `}}` are literal braces"),
            });
        }
    }
    diags
}

/// The problems of the file's commands that only the study's folder `dir` shows: a program
/// that is neither on `PATH` nor a file, and `deps` files that do not exist.
pub fn check_files(file: &File, source: &str, dir: &Path) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (cmd, lit) in commands(file) {
        let Some(program) = Template::parse(&cmd).ok().and_then(|t| t.program()) else { continue };
        // The program's place in the literal: the command's first word.
        let first = cmd.len() - cmd.trim_start().len();
        let end = cmd[first..].find(char::is_whitespace).map_or(cmd.len(), |n| first + n);
        let span = Span::new(in_source(source, lit, first), in_source(source, lit, end));
        if let Some(d) = missing_program(&program, dir) {
            diags.push(d.at(span, ""));
        }
    }
    for (dep, lit) in deps(file) {
        if !dir.join(&dep).is_file() {
            diags.push(
                Diagnostic::error(format!("`deps` file `{dep}` does not exist"))
                    .at(lit, "")
                    .help("paths in `deps` are relative to the study's folder"),
            );
        }
    }
    diags
}

/// Why `program` cannot be started from `dir`, if it cannot: as the trainer starts it, a name
/// with a `/` is a path (relative to the study's folder), any other name is looked up on `PATH`.
fn missing_program(program: &str, dir: &Path) -> Option<Diagnostic> {
    if program.contains('/') {
        let path = dir.join(program);
        return match std::fs::metadata(&path) {
            Err(_) => Some(Diagnostic::error(format!("`{program}` does not exist")).help("a program's path is relative to the study's folder")),
            Ok(m) if !m.is_file() => Some(Diagnostic::error(format!("`{program}` is not a file"))),
            Ok(m) if !executable(&m) => Some(
                Diagnostic::error(format!("`{program}` is not executable"))
                    .help(format!("make it executable (`chmod +x {program}`), or run it through its interpreter: `sh {program}`, `python3 {program}`")),
            ),
            Ok(_) => None,
        };
    }
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .any(|p| std::fs::metadata(p.join(program)).is_ok_and(|m| m.is_file() && executable(&m)))
    });
    if on_path {
        return None;
    }
    let d = Diagnostic::error(format!("`{program}` is not a program on PATH"));
    Some(if dir.join(program).is_file() {
        d.help(format!("no shell runs the command, and a name without `/` is looked up on PATH only: write `./{program}` for the file in the study's folder"))
    } else {
        d
    })
}

fn executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

/// Every `command("...")` with a literal command, anywhere in the file: the command and the
/// span of its string literal.
fn commands(file: &File) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    for e in exprs(file) {
        e.walk(&mut |e| {
            if let ExprKind::Call { name, args } = &e.kind
                && name.name == "command"
                && let Some(arg) = args.iter().find(|a| a.name.as_ref().is_none_or(|n| n.name == "cmd"))
                && let ExprKind::Str(s) = &arg.value.kind
            {
                out.push((s.clone(), arg.value.span));
            }
        });
    }
    out
}

/// Every string written as a `deps` value (set or swept): the path and its literal's span.
fn deps(file: &File) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    let mut strings = |e: &Expr| {
        e.walk(&mut |e| {
            if let ExprKind::Str(s) = &e.kind {
                out.push((s.clone(), e.span));
            }
        });
    };
    for stmt in stmts(file) {
        let is_deps = |k: &super::ast::KeyPath| k.is("deps") || k.text() == "train.deps";
        match stmt {
            Stmt::Assign(a) if is_deps(&a.key) => strings(&a.value),
            Stmt::Vary(c) if is_deps(&c.key) => strings(&c.values),
            Stmt::Grid(g) | Stmt::Zip(g) => {
                g.clauses.iter().filter(|c| is_deps(&c.key)).for_each(|c| strings(&c.values));
            }
            _ => {}
        }
    }
    out
}

/// Every statement of every block, phase and final run.
fn stmts(file: &File) -> Vec<&Stmt> {
    let mut out = Vec::new();
    for item in &file.items {
        let body = match item {
            Item::Block(b) => Some(&b.body),
            Item::Phase(p) => Some(&p.body),
            Item::Final(f) => f.body.as_ref(),
            Item::Objective(_) | Item::Find(_) => None,
        };
        out.extend(body.into_iter().flat_map(|b| b.stmts.iter()));
    }
    out
}

/// Every top-level expression of the file's statements.
fn exprs(file: &File) -> Vec<&Expr> {
    let mut out = Vec::new();
    for stmt in stmts(file) {
        match stmt {
            Stmt::Assign(a) => out.push(&a.value),
            Stmt::Vary(c) => out.push(&c.values),
            Stmt::Grid(g) | Stmt::Zip(g) => out.extend(g.clauses.iter().map(|c| &c.values)),
            Stmt::Find(_) | Stmt::Objective(_) => {}
        }
    }
    out
}

/// The source offset of byte `at` of the string a literal spelled (`lit` covers its quotes):
/// escapes (`\"`, `\n`) are longer in the source than in the string.
fn in_source(source: &str, lit: Span, at: usize) -> usize {
    let Some(raw) = source.get(lit.start + 1..lit.end.saturating_sub(1)) else { return lit.start };
    let mut decoded = 0;
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if decoded >= at {
            return lit.start + 1 + i;
        }
        decoded += if c == '\\' {
            match chars.next() {
                Some((_, 'n' | 't')) => 1,
                Some((_, other)) => other.len_utf8(),
                None => 0,
            }
        } else {
            c.len_utf8()
        };
    }
    lit.start + 1 + raw.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(source: &str, dir: Option<&Path>) -> Vec<(String, (usize, usize), String)> {
        let file = crate::lang::parse(source).unwrap();
        let diags = match dir {
            Some(d) => check_files(&file, source, d),
            None => check_templates(&file, source),
        };
        diags
            .iter()
            .map(|d| (d.message.clone(), d.line_col(source).unwrap(), d.render(source, "s.lrx", false)))
            .collect()
    }

    #[test]
    fn an_unknown_placeholder_is_pointed_at_inside_the_string() {
        let src = "train {\n  trainer = command(\"x \\\"q\\\" {matrx_lr} {out} {{literal}} {config} {seed}\")\n}\n";
        let e = errors(src, None);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "`{matrx_lr}` is not a key of the run");
        // Column 30: each escaped `\"` takes two columns in the source, one in the string.
        assert_eq!(e[0].1, (2, 30), "{}", e[0].2);
        assert!(e[0].2.contains("^^^^^^^^^^ did you mean `{matrix_lr}`?"), "{}", e[0].2);
        let e = errors("phase p {\n  vary trainer in [command(\"a {zzz}\"), command(\"b 'c\")]\n}\n", None);
        assert_eq!(
            e.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["`{zzz}` is not a key of the run", "the command has an unclosed quote"]
        );
    }

    #[test]
    fn programs_and_deps_are_looked_for_in_the_studys_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.py"), "").unwrap();
        std::fs::write(dir.path().join("run.sh"), "").unwrap();
        let src = "train {\n  trainer = command(\"sh train.py\")\n  deps = [\"train.py\", \"gone.py\"]\n}\nphase a {\n  trainer = command(\"./run.sh {out}\")\n  vary deps in [[\"x/y.py\"]]\n}\nphase b {\n  trainer = command(\"  train.py\")\n}\nphase c {\n  trainer = command(\"{python} x\")\n}\n";
        let e = errors(src, Some(dir.path()));
        let messages: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`./run.sh` is not executable",
                "`train.py` is not a program on PATH",
                "`deps` file `gone.py` does not exist",
                "`deps` file `x/y.py` does not exist"
            ]
        );
        assert_eq!(e[1].1, (10, 24), "the first word, after the blanks: {}", e[1].2);
        assert_eq!(e[2].1, (3, 23));
    }
}
