//! Text to syntax tree: runs the pest grammar (`grammar/lrx.pest`), builds the typed AST, and
//! turns pest's errors into a [`Diagnostic`] a person can read (rule names never leak).

use pest::Parser as _;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::{
    Arg, Assign, BinOp, Block, BlockKind, Body, Clause, Comment, Expr, ExprKind, File, Final, FinalFrom, Find, Goal,
    Group, Ident, Item, KeyPath, NamedArg, Number, Objective, Phase, Span, Stmt,
};
use crate::diag::Diagnostic;

#[allow(unreachable_pub, clippy::pedantic)]
mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/lrx.pest"]
    pub struct LrxParser;
}

use super::syntax_error::{convert_error, found_token};
pub(super) use grammar::LrxParser;
pub(super) use grammar::Rule;

/// How deeply brackets may nest, and how many operators one expression may hold: beyond
/// these a file is rejected rather than risking the stack.
const MAX_NESTING: usize = 64;
const MAX_OPERATORS: usize = 512;

type Result<T> = std::result::Result<T, Diagnostic>;

/// Parses a whole file.
pub fn parse_file(source: &str) -> Result<File> {
    check_nesting(source)?;
    pest::set_error_detail(true);
    let mut pairs = LrxParser::parse(Rule::file, source).map_err(|e| convert_error(&e, source, Rule::file))?;
    let file = next(&mut pairs)?;
    let mut items = Vec::new();
    for pair in file.into_inner() {
        match pair.as_rule() {
            Rule::EOI => {}
            _ => items.push(item(pair)?),
        }
    }
    Ok(File { items, comments: comments(source) })
}

/// Parses one expression (the whole text): `cosine(warmup = 0.1)`.
pub fn parse_expr(source: &str) -> Result<Expr> {
    check_nesting(source)?;
    pest::set_error_detail(true);
    let mut pairs = LrxParser::parse(Rule::expr, source).map_err(|e| convert_error(&e, source, Rule::expr))?;
    let pair = next(&mut pairs)?;
    let end = pair.as_span().end();
    let rest = &source[end..];
    if let Some(offset) = rest.find(|c: char| !c.is_whitespace()) {
        let at = end + offset;
        return Err(Diagnostic::error(format!("unexpected {} after the value", found_token(source, at).0))
            .at(found_token(source, at).1, ""));
    }
    expr(pair)
}

/// Parses `KEY = VALUE` (as given to `--set`).
pub fn parse_assign(source: &str) -> Result<Assign> {
    check_nesting(source)?;
    pest::set_error_detail(true);
    let mut pairs = LrxParser::parse(Rule::assign, source).map_err(|e| convert_error(&e, source, Rule::assign))?;
    let pair = next(&mut pairs)?;
    let end = pair.as_span().end();
    if let Some(offset) = source[end..].find(|c: char| !c.is_whitespace()) {
        let at = end + offset;
        let (text, span) = found_token(source, at);
        return Err(Diagnostic::error(format!("unexpected {text} after the value")).at(span, ""));
    }
    assign(pair)
}

// ---- building the tree ----------------------------------------------------------------------

/// A pair's span, without the spaces and comment pest may have skipped after its last token.
fn span(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    let text = pair.as_str();
    let line_start = text.rfind('\n').map_or(0, |i| i + 1);
    let mut in_str = false;
    let mut cut = text.len();
    let mut escaped = false;
    for (i, c) in text[line_start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            '#' if !in_str => {
                cut = line_start + i;
                break;
            }
            _ => {}
        }
    }
    let trimmed = text[..cut].trim_end_matches([' ', '\t']);
    Span::new(s.start(), s.start() + trimmed.len())
}

fn internal(what: &str) -> Diagnostic {
    Diagnostic::error(format!("internal parser error: missing {what}"))
}

fn next<'i>(pairs: &mut Pairs<'i, Rule>) -> Result<Pair<'i, Rule>> {
    pairs.next().ok_or_else(|| internal("a token"))
}

fn is_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_phase
            | Rule::kw_after
            | Rule::kw_final
            | Rule::kw_combine
            | Rule::kw_objective
            | Rule::kw_vary
            | Rule::kw_grid
            | Rule::kw_zip
            | Rule::kw_find
            | Rule::kw_in
            | Rule::kw_from
            | Rule::kw_to
    )
}

fn words(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner().filter(|p| !is_keyword(p.as_rule()))
}

fn ident(pair: &Pair<'_, Rule>) -> Ident {
    Ident { name: pair.as_str().to_owned(), span: span(pair) }
}

fn key(pair: Pair<'_, Rule>) -> KeyPath {
    let sp = span(&pair);
    KeyPath { parts: pair.into_inner().map(|p| ident(&p)).collect(), span: sp }
}

fn item(pair: Pair<'_, Rule>) -> Result<Item> {
    let sp = span(&pair);
    match pair.as_rule() {
        Rule::block => {
            let mut inner = pair.into_inner();
            let kind_pair = next(&mut inner)?;
            let kind = match kind_pair.as_str() {
                "model" => BlockKind::Model,
                "data" => BlockKind::Data,
                "params" => BlockKind::Params,
                "budget" => BlockKind::Budget,
                _ => BlockKind::Train,
            };
            Ok(Item::Block(Block { kind, kind_span: span(&kind_pair), body: body(next(&mut inner)?)?, span: sp }))
        }
        Rule::objective => Ok(Item::Objective(objective(pair)?)),
        Rule::phase => {
            let mut inner = words(pair);
            let name = ident(&inner.next().ok_or_else(|| internal("a phase name"))?);
            let mut after = Vec::new();
            let mut phase_body = None;
            for p in inner {
                match p.as_rule() {
                    Rule::after => after = words(p).map(|i| ident(&i)).collect(),
                    _ => phase_body = Some(body(p)?),
                }
            }
            let body = phase_body.ok_or_else(|| internal("a phase body"))?;
            Ok(Item::Phase(Phase { name, after, body, span: sp }))
        }
        Rule::final_run => {
            let mut from = None;
            let mut final_body = None;
            for p in words(pair) {
                match p.as_rule() {
                    Rule::combine => from = Some(FinalFrom::Combine(words(p).map(|i| ident(&i)).collect())),
                    Rule::after => from = Some(FinalFrom::After(words(p).map(|i| ident(&i)).collect())),
                    _ => final_body = Some(body(p)?),
                }
            }
            let from = from.ok_or_else(|| internal("`combine` or `after`"))?;
            Ok(Item::Final(Final { from, body: final_body, span: sp }))
        }
        Rule::find => Ok(Item::Find(find(pair)?)),
        _ => Err(internal("an item")),
    }
}

fn body(pair: Pair<'_, Rule>) -> Result<Body> {
    let sp = span(&pair);
    let stmts = pair.into_inner().map(stmt).collect::<Result<_>>()?;
    Ok(Body { stmts, span: sp })
}

fn stmt(pair: Pair<'_, Rule>) -> Result<Stmt> {
    let sp = span(&pair);
    match pair.as_rule() {
        Rule::assign => Ok(Stmt::Assign(assign(pair)?)),
        Rule::objective => Ok(Stmt::Objective(objective(pair)?)),
        Rule::vary => {
            let mut c = clause(words(pair).next().ok_or_else(|| internal("a clause"))?)?;
            c.span = sp;
            Ok(Stmt::Vary(c))
        }
        Rule::grid | Rule::zip => {
            let grid = pair.as_rule() == Rule::grid;
            let clauses = words(pair).map(clause).collect::<Result<_>>()?;
            let g = Group { clauses, span: sp };
            Ok(if grid { Stmt::Grid(g) } else { Stmt::Zip(g) })
        }
        Rule::find => Ok(Stmt::Find(find(pair)?)),
        _ => Err(internal("a statement")),
    }
}

fn assign(pair: Pair<'_, Rule>) -> Result<Assign> {
    let sp = span(&pair);
    let mut inner = pair.into_inner();
    let k = key(next(&mut inner)?);
    let value = expr(next(&mut inner)?)?;
    Ok(Assign { key: k, value, span: sp })
}

fn objective(pair: Pair<'_, Rule>) -> Result<Objective> {
    let sp = span(&pair);
    let mut inner = words(pair);
    let goal = match inner.next().ok_or_else(|| internal("a goal"))?.as_str() {
        "maximize" => Goal::Maximize,
        _ => Goal::Minimize,
    };
    let metric = ident(&inner.next().ok_or_else(|| internal("a metric"))?);
    Ok(Objective { goal, metric, span: sp })
}

fn clause(pair: Pair<'_, Rule>) -> Result<Clause> {
    let sp = span(&pair);
    let mut inner = words(pair);
    let k = key(inner.next().ok_or_else(|| internal("a key"))?);
    let values = expr(inner.next().ok_or_else(|| internal("values"))?)?;
    Ok(Clause { key: k, values, span: sp })
}

fn find(pair: Pair<'_, Rule>) -> Result<Find> {
    let sp = span(&pair);
    let mut inner = words(pair);
    let k = key(inner.next().ok_or_else(|| internal("a key"))?);
    let from = expr(inner.next().ok_or_else(|| internal("`from`"))?)?;
    let to = expr(inner.next().ok_or_else(|| internal("`to`"))?)?;
    let mut options = Vec::new();
    if let Some(opts) = inner.next() {
        for arg in opts.into_inner() {
            options.push(named_arg(arg)?);
        }
    }
    Ok(Find { key: k, from, to, options, span: sp })
}

fn named_arg(pair: Pair<'_, Rule>) -> Result<NamedArg> {
    let sp = span(&pair);
    let mut inner = pair.into_inner();
    let name = ident(&next(&mut inner)?);
    let value = expr(next(&mut inner)?)?;
    Ok(NamedArg { name, value, span: sp })
}

fn pratt() -> PrattParser<Rule> {
    PrattParser::new()
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left))
        .op(Op::prefix(Rule::neg))
}

fn expr(pair: Pair<'_, Rule>) -> Result<Expr> {
    let operators = pair
        .clone()
        .into_inner()
        .filter(|p| matches!(p.as_rule(), Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::neg))
        .count();
    if operators > MAX_OPERATORS {
        return Err(
            Diagnostic::error(format!("this expression has more than {MAX_OPERATORS} operators")).at(span(&pair), "")
        );
    }
    thread_local! {
        static PRATT: PrattParser<Rule> = pratt();
    }
    PRATT.with(|p| {
        p.map_primary(primary)
            .map_prefix(|op, rhs| {
                let rhs = rhs?;
                let sp = span(&op).to(rhs.span);
                Ok(Expr { kind: ExprKind::Neg(Box::new(rhs)), span: sp })
            })
            .map_infix(|lhs, op, rhs| {
                let (lhs, rhs) = (lhs?, rhs?);
                let op = match op.as_rule() {
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    _ => BinOp::Div,
                };
                let sp = lhs.span.to(rhs.span);
                Ok(Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span: sp })
            })
            .parse(pair.into_inner())
    })
}

fn primary(pair: Pair<'_, Rule>) -> Result<Expr> {
    let sp = span(&pair);
    let kind = match pair.as_rule() {
        Rule::number => number(pair.as_str(), sp)?,
        Rule::duration => {
            let text = pair.as_str();
            let (digits, unit) = text.split_at(text.len() - 1);
            let n: f64 =
                digits.replace('_', "").parse().map_err(|_| Diagnostic::error("invalid duration").at(sp, ""))?;
            let scale = match unit {
                "h" => 3600.0,
                "m" => 60.0,
                _ => 1.0,
            };
            ExprKind::Duration { text: text.to_owned(), seconds: n * scale }
        }
        Rule::string => ExprKind::Str(unescape(pair.into_inner().next().map_or("", |p| p.as_str()))),
        Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
        Rule::name => ExprKind::Name(key(pair)),
        Rule::list => ExprKind::List(pair.into_inner().map(expr).collect::<Result<_>>()?),
        Rule::parens => {
            let mut items: Vec<Expr> = pair.into_inner().map(expr).collect::<Result<_>>()?;
            if items.len() == 1 { ExprKind::Group(Box::new(items.remove(0))) } else { ExprKind::Tuple(items) }
        }
        Rule::call => {
            let mut inner = pair.into_inner();
            let name = ident(&next(&mut inner)?);
            let mut args = Vec::new();
            for a in inner {
                if a.as_rule() == Rule::named_arg {
                    let n = named_arg(a)?;
                    args.push(Arg { name: Some(n.name), value: n.value });
                } else {
                    args.push(Arg { name: None, value: expr(a)? });
                }
            }
            ExprKind::Call { name, args }
        }
        Rule::expr => return expr(pair),
        _ => return Err(internal("a value")),
    };
    Ok(Expr { kind, span: sp })
}

fn number(text: &str, sp: Span) -> Result<ExprKind> {
    let clean = text.replace('_', "");
    let is_float = clean.contains(['.', 'e', 'E']);
    let value = if is_float {
        let x: f64 = clean.parse().map_err(|_| Diagnostic::error(format!("invalid number `{text}`")).at(sp, ""))?;
        if !x.is_finite() {
            return Err(Diagnostic::error(format!("the number `{text}` is too large")).at(sp, ""));
        }
        Number::Float(x)
    } else {
        match clean.parse::<i64>() {
            Ok(i) => Number::Int(i),
            Err(_) => {
                return Err(Diagnostic::error(format!("the integer `{text}` is too large"))
                    .at(sp, "at most 9223372036854775807"));
            }
        }
    };
    Ok(ExprKind::Number { text: text.to_owned(), value })
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---- comments and nesting -------------------------------------------------------------------

/// Every `# ...` comment outside strings, in order.
pub fn comments(source: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_str {
            match b {
                b'\\' => i += 1,
                b'"' | b'\n' => in_str = false,
                _ => {}
            }
        } else if b == b'"' {
            in_str = true;
        } else if b == b'#' {
            let end = source[i..].find(['\n', '\r']).map_or(source.len(), |e| i + e);
            out.push(Comment { text: source[i..end].trim_end().to_owned(), span: Span::new(i, end) });
            i = end;
            continue;
        }
        i += 1;
    }
    out
}

fn check_nesting(source: &str) -> Result<()> {
    let mut depth = 0usize;
    for (i, c) in brackets(source) {
        if matches!(c, '(' | '[' | '{') {
            depth += 1;
            if depth > MAX_NESTING {
                return Err(Diagnostic::error(format!("brackets nest more than {MAX_NESTING} deep"))
                    .at(Span::new(i, i + 1), ""));
            }
        } else {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(())
}

/// The brackets of `source` outside strings and comments, with their byte offsets.
pub(super) fn brackets(source: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let (mut in_str, mut escaped, mut in_comment) = (false, false, false);
    source.char_indices().filter(move |&(_, c)| {
        if in_comment {
            in_comment = c != '\n';
        } else if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' || c == '\n' {
                in_str = false;
            }
        } else {
            match c {
                '"' => in_str = true,
                '#' => in_comment = true,
                '(' | '[' | '{' | ')' | ']' | '}' => return true,
                _ => {}
            }
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> (String, (usize, usize)) {
        let d = parse_file(src).unwrap_err();
        (d.message.clone(), d.line_col(src).unwrap())
    }

    #[test]
    fn brackets_nested_too_deep_are_an_error_not_a_stack_overflow() {
        let deep = format!("train {{ steps = {}1{} }}\n", "(".repeat(200), ")".repeat(200));
        let (message, (line, col)) = err(&deep);
        assert_eq!(message, format!("brackets nest more than {MAX_NESTING} deep"));
        assert_eq!((line, col), (1, 17 + MAX_NESTING - 1));
        // Brackets inside strings and comments do not count.
        let quoted = format!("# {}\ndata {{ corpus = \"{}\" }}\n", "(".repeat(200), "[".repeat(200));
        assert!(parse_file(&quoted).is_ok());
    }

    #[test]
    fn parses_the_design_example_shapes() {
        let src = "model {\n  d_model = 384      layers = 6\n}\ntrain { lr = 0.065   matrix_lr = lr   embedding_lr = lr * 0.1 }\nphase a { vary lr in log(0.001, 1.0, n = 26) }\nphase b after a {\n  grid {\n    schedule.warmup in [0.01, 0.05]\n    matrix_lr in [\n      0.03,\n      0.05,  # c\n    ]\n  }\n}\nfinal combine(a, b) { repeats = 3 }\n";
        let f = parse_file(src).unwrap();
        assert_eq!(f.items.len(), 5);
        assert_eq!(f.comments.len(), 1);
    }

    #[test]
    fn missing_equals_names_the_key() {
        assert_eq!(err("train {\n  steps 100\n}\n"), ("expected `=` after key `steps`".to_owned(), (2, 9)));
    }
}
