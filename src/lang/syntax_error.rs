//! Pest's parse errors, turned into a [`Diagnostic`] a person can read: what was expected
//! ("`=` after key `steps`", "a value"), what was found, and never a grammar rule's name.

use super::ast::Span;
use super::parser::Rule;
use crate::diag::Diagnostic;
use crate::spec::schema::{self, Lookup};

/// What a rule stands for in "expected ..." messages; `None` for rules not worth naming.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr
        | Rule::number
        | Rule::duration
        | Rule::string
        | Rule::boolean
        | Rule::name
        | Rule::list
        | Rule::parens
        | Rule::call
        | Rule::callee => "a value",
        Rule::key | Rule::assign | Rule::clause => "a key",
        Rule::ident => "a name",
        Rule::objective | Rule::vary | Rule::grid | Rule::zip | Rule::find => "a statement",
        Rule::block | Rule::block_kind | Rule::phase | Rule::final_run => {
            "`model`, `data`, `train`, `params`, `budget`, `objective`, `phase`, `final` or `find`"
        }
        Rule::goal => "`minimize` or `maximize`",
        Rule::body => "`{`",
        Rule::find_opts => "`(`",
        Rule::named_arg => "`name = value`",
        Rule::EOI => "end of file",
        Rule::kw_phase => "`phase`",
        Rule::kw_after | Rule::after => "`after`",
        Rule::kw_final => "`final`",
        Rule::kw_combine => "`combine`",
        Rule::kw_objective => "`objective`",
        Rule::kw_vary => "`vary`",
        Rule::kw_grid => "`grid`",
        Rule::kw_zip => "`zip`",
        Rule::kw_find => "`find`",
        Rule::kw_in => "`in`",
        Rule::kw_from => "`from`",
        Rule::kw_to => "`to`",
        _ => return None,
    })
}

/// The token at `pos` for "found ..." (`` `100` ``, `end of line`), and its span.
pub(super) fn found_token(source: &str, pos: usize) -> (String, Span) {
    let pos = boundary(source, pos);
    let rest = &source[pos.min(source.len())..];
    let Some(c) = rest.chars().next() else {
        return ("end of file".to_owned(), Span::new(source.len(), source.len()));
    };
    if c == '\n' || c == '\r' {
        return ("end of line".to_owned(), Span::new(pos, pos));
    }
    let len = if c.is_alphanumeric() || c == '_' || c == '.' {
        rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len())
    } else {
        c.len_utf8()
    };
    (format!("`{}`", &rest[..len]), Span::new(pos, pos + len))
}

/// The identifier just before `pos` (skipping spaces), if any.
fn word_before(source: &str, pos: usize) -> Option<&str> {
    let pos = boundary(source, pos);
    let before = source[..pos.min(source.len())].trim_end_matches([' ', '\t']);
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    (!word.is_empty() && word.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')).then_some(word)
}

fn has_closer(expected: &[String]) -> bool {
    expected.iter().any(|e| e == "`]`" || e == "`)`")
}

/// The nearest character boundary at or before `pos`, within the source.
fn boundary(source: &str, pos: usize) -> usize {
    let mut pos = pos.min(source.len());
    while !source.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

/// A literal token (`` `=` ``) rather than a description (`a value`).
fn is_token(s: &str) -> bool {
    s.starts_with('`') && s.ends_with('`') && s.matches('`').count() == 2
}

fn join_alternatives(items: &[String]) -> String {
    match items {
        [] => "something else".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What the parser expected where it stopped: that position, the expected tokens and
/// descriptions (without duplicates), and whether a line break would have done.
fn expected_at(err: &pest::error::Error<Rule>, source: &str) -> (usize, Vec<String>, bool) {
    use pest::error::{ErrorVariant, InputLocation};
    let mut pos = match err.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p.min(source.len()),
    };
    let mut expected: Vec<String> = Vec::new();
    let mut newline = false;
    let mut push = |s: String| {
        if !expected.contains(&s) {
            expected.push(s);
        }
    };
    // Literal tokens (`=`, `}`) are tracked only by the detailed attempts, which may reach
    // further than the rules pest reports by default.
    let attempts = err.parse_attempts().filter(|a| a.max_position >= pos && a.max_position <= source.len());
    if let Some(attempts) = &attempts {
        pos = attempts.max_position;
        for token in attempts.expected_tokens() {
            let text = token.to_string();
            // Character ranges (`a..z`) and built-in rules say nothing to a person.
            if text == "BUILTIN_RULE" || text.chars().count() == 4 && text.contains("..") {
                continue;
            }
            if matches!(text.as_str(), "\n" | "\r\n" | "\r") {
                newline = true;
            }
            if text.trim().is_empty() || matches!(text.as_str(), "#" | "\u{feff}" | "_" | "." | "\\" | "\"") {
                continue;
            }
            push(format!("`{text}`"));
        }
        for stack in attempts.call_stacks() {
            let rule = stack.deepest.get_rule().copied().or(stack.parent);
            if let Some(d) = rule.and_then(describe) {
                push(d.to_owned());
            }
        }
    } else if let ErrorVariant::ParsingError { positives, .. } = &err.variant {
        for r in positives {
            if let Some(d) = describe(*r) {
                push(d.to_owned());
            }
        }
    }
    (pos, expected, newline)
}

/// Where the word around `pos` starts, when `pos` is inside a word (`phase|s`): the parser
/// matched a keyword's letters and then found that the word goes on.
fn inside_word(source: &str, pos: usize) -> Option<usize> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let starts_word = source[pos..].chars().next().is_some_and(is_word);
    let start = source[..pos].char_indices().rev().take_while(|&(_, c)| is_word(c)).last().map(|(i, _)| i)?;
    starts_word.then_some(start)
}

/// The keywords among what was expected (`phase` from "`model`, ... or `phase`").
fn keywords(expected: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for e in expected {
        for w in e.split('`').skip(1).step_by(2) {
            if w.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !w.is_empty() && !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

/// Statements that begin with a keyword, for a word that was taken for a key (`vry`).
const STATEMENTS: [&str; 5] = ["vary", "grid", "zip", "find", "objective"];

/// Turns pest's error into a diagnostic. `rule` is what was being parsed, for parsing again
/// where pest stopped inside a word.
pub(super) fn convert_error(err: &pest::error::Error<Rule>, source: &str, rule: Rule) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    if let ErrorVariant::CustomError { message } = &err.variant {
        let pos = match err.location {
            InputLocation::Pos(p) | InputLocation::Span((p, _)) => p.min(source.len()),
        };
        return Diagnostic::error(message.to_lowercase()).at(found_token(source, pos).1, "");
    }
    let (mut pos, mut expected, mut newline) = expected_at(err, source);
    pos = boundary(source, pos);
    if let Some(d) = bad_underscore(source, pos) {
        return d;
    }
    // Stopped inside a word (`phases`, `afterr`, `combined`): a keyword's letters matched but
    // the word goes on, and pest names nothing it expected there. What was expected is what
    // was expected where the word starts: parsing again with a character nothing accepts
    // there says what that is.
    if let Some(start) = inside_word(source, pos) {
        let patched = format!("{}\u{1}{}", &source[..start], &source[start..]);
        if let Err(again) = <super::parser::LrxParser as pest::Parser<Rule>>::parse(rule, &patched) {
            let (at, exp, nl) = expected_at(&again, &patched);
            if at == start {
                (pos, expected, newline) = (start, exp, nl);
            }
        }
    }
    let (found, found_span) = found_token(source, pos);
    if let Some(d) = bad_underscore(source, pos).or_else(|| unclosed(source, pos, &found)) {
        return d;
    }
    // An unterminated string: an odd number of quotes on the line before the error.
    let line_start = source[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = &source[line_start..pos];
    let quotes: Vec<usize> =
        line.match_indices('"').map(|(i, _)| i).filter(|&i| i == 0 || !line[..i].ends_with('\\')).collect();
    if quotes.len() % 2 == 1 && (found == "end of line" || found == "end of file") {
        let start = line_start + quotes.last().copied().unwrap_or(0);
        return Diagnostic::error("unterminated string").at(Span::new(start, start + 1), "this string is never closed");
    }
    // Operators may always follow a value; naming them is noise.
    expected.retain(|e| !matches!(e.as_str(), "`+`" | "`-`" | "`*`" | "`/`"));
    // A token already named by a description (`minimize` in "`minimize` or `maximize`"), or
    // one that merely starts a value, says nothing more.
    let descriptions: Vec<String> = expected.iter().filter(|e| !is_token(e)).cloned().collect();
    let value_expected = descriptions.iter().any(|d| d == "a value");
    expected.retain(|e| {
        !is_token(e)
            || !(descriptions.iter().any(|d| d.contains(e.as_str()))
                || value_expected && matches!(e.as_str(), "`(`" | "`[`" | "`true`" | "`false`" | "`-`"))
    });
    // After a list's or a call's last value, the value itself is not what is missing.
    if has_closer(&expected) && expected.iter().any(|e| e == "`,`") {
        expected.retain(|e| e != "a value");
    }
    expected.sort_by_key(|e| (!is_token(e), e.clone()));
    if expected.is_empty() && newline {
        return Diagnostic::error(format!("expected a line break before {found}"))
            .at(found_span, "")
            .help("statements and blocks are separated by line breaks");
    }
    let has = |t: &str| expected.iter().any(|e| e == t);

    let before = word_before(source, pos);
    let message = match before {
        Some(w @ ("grid" | "zip")) if has("`{`") => format!("expected `{{` after `{w}`"),
        Some("in") if has("`in`") => "expected a key before `in`".to_owned(),
        Some(w) if has("`=`") && !has("`in`") => format!("expected `=` after key `{w}`"),
        Some(w) if has("`in`") && !has("`=`") => format!("expected `in` after `{w}`"),
        _ => format!("expected {}, found {found}", join_alternatives(&expected)),
    };
    // A misspelt keyword (`phases`, `afterr`, `minimise`): the expected keyword nearest to it.
    let word = found
        .strip_prefix('`')
        .and_then(|f| f.strip_suffix('`'))
        .filter(|f| f.starts_with(|c: char| c.is_ascii_alphabetic()));
    let suggestion = word.and_then(|w| schema::suggest(w, keywords(&expected)));
    let label = match (&suggestion, message.contains(", found ")) {
        (Some(s), _) => format!("did you mean `{s}`?"),
        (None, true) => String::new(),
        (None, false) => format!("found {found}"),
    };
    let mut d = Diagnostic::error(message).at(found_span, label);
    // A statement keyword taken for a key (`vry matrix_lr in [...]`).
    if let Some(w) = before
        && has("`=`")
        && matches!(schema::lookup(None, w), Lookup::Unknown { .. })
        && let Some(s) = schema::suggest(w, STATEMENTS)
    {
        d = d.help(format!("`{w}` is not a key; did you mean `{s}`?"));
    }
    d
}

/// A number with an underscore that does not stand between two digits (`500_`, `1_.5`),
/// touching `pos`: pest only sees a number that stops early.
fn bad_underscore(source: &str, pos: usize) -> Option<Diagnostic> {
    let is_tok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let start = source[..pos].char_indices().rev().find(|(_, c)| !is_tok(*c)).map_or(0, |(i, c)| i + c.len_utf8());
    let end = source[pos..].find(|c: char| !is_tok(c)).map_or(source.len(), |i| pos + i);
    let token = &source[start..end];
    if !token.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let bytes = token.as_bytes();
    let bad = (0..bytes.len()).find(|&i| {
        bytes[i] == b'_' && !(i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit() && bytes[i - 1].is_ascii_digit())
    })?;
    let at = Span::new(start + bad, start + bad + 1);
    let d = if bad + 1 == bytes.len() {
        Diagnostic::error(format!("number `{token}` ends with an underscore")).at(at, "nothing follows this `_`")
    } else {
        Diagnostic::error(format!("misplaced underscore in number `{token}`")).at(at, "")
    };
    Some(d.help("an underscore may only stand between two digits, as in `500_000`"))
}

/// The words that start a top-level item.
const ITEMS: [&str; 9] = ["model", "data", "train", "params", "budget", "objective", "phase", "final", "find"];

/// An opening bracket that is never closed, when the parse error is where its closer should
/// be: at the end of the file, at the next top-level item, or at a closer of another kind.
fn unclosed(source: &str, pos: usize, found: &str) -> Option<Diagnostic> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut mismatch = None;
    for (i, c) in super::parser::brackets(source) {
        let want = match c {
            '(' | '[' | '{' => {
                stack.push((c, i));
                continue;
            }
            ')' => '(',
            ']' => '[',
            _ => '{',
        };
        match stack.last() {
            Some(&(open, _)) if open == want => {
                stack.pop();
            }
            Some(_) => {
                mismatch = Some((c, i));
                break;
            }
            None => return None,
        }
    }
    let &(open, at) = stack.last()?;
    if at >= pos {
        return None;
    }
    let close = match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    };
    // The parser stopped at (or just after) a top-level keyword starting a line: the block
    // ran into the next item.
    let line_start = source[..pos].rfind('\n').map_or(0, |i| i + 1);
    let head = source[line_start..pos].trim_start();
    let indent = source[line_start..pos].len() - head.len();
    let next_item = if head.is_empty() && ITEMS.iter().any(|k| found == format!("`{k}`")) {
        Some(found_token(source, pos).1)
    } else {
        ITEMS
            .iter()
            .find(|k| head.trim_end() == **k)
            .map(|k| Span::new(line_start + indent, line_start + indent + k.len()))
    };
    let d = Diagnostic::error(format!("unclosed `{open}`")).at(Span::new(at, at + 1), "this is never closed");
    let d = match (mismatch, next_item) {
        (Some((c, i)), _) if i == pos => d.also(Span::new(i, i + 1), format!("`{c}` does not close it")),
        _ if found == "end of file" => d,
        (_, Some(item)) if item.start > at => d.also(item, "the next item starts here"),
        _ => return None,
    };
    Some(d.help(format!("close it with `{close}`")))
}
