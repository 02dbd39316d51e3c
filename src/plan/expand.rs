//! Expands a phase's sweeps into variants, in source order: one per value of each `vary`, the
//! Cartesian product of a `grid` (first clause outermost), the pairs of a `zip`.
//!
//! Values are evaluated against the phase's config (`base` is the value of the swept key
//! there), or, for a preview of a phase still waiting on a winner, left symbolic where they
//! depend on it.

use crate::lang::ast::{ExprKind, Span};
use crate::lang::eval::{self, MAX_GENERATED, Target};
use crate::lang::study::{Sweep, SweepClause, SweepKind};
use crate::spec::value::Value;

use super::resolve::{Layers, Problem};

/// The most variants one phase may have.
pub(crate) const MAX_VARIANTS: usize = 100_000;

/// A swept value: known, or (in a preview) an expression waiting on a winner.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Item {
    Known(Value),
    Symbolic(String),
}

/// One changed key of a variant: its value (or why it has none) and where it was written.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub target: Target,
    pub value: Result<Item, Problem>,
    pub span: Span,
    /// The value as written (`base*0.5`), to name a candidate whose value failed.
    pub written: String,
}

pub(crate) type Variant = Vec<Change>;

/// A clause's values: each with where it was written and how.
type ClauseValues = Vec<(Result<Item, Problem>, Span, String)>;

/// Brings a value to its target's canonical form (`1` → `1.0` for a float key), or says why
/// it does not fit.
pub(crate) fn canonical(target: &Target, v: &Value, span: Span) -> Result<Value, Problem> {
    match target.ty() {
        Some((ty, noun)) => {
            ty.check(&noun, v).map_err(|msg| Problem::new(format!("`{} = {v}`: {msg}", target.path()), Some(span)))
        }
        None => Ok(v.clone()),
    }
}

/// The values of one clause. With `symbolic`, values that depend on the config are not
/// evaluated (a generated list is still evaluated, against `layers`, to count its values).
fn clause_values(clause: &SweepClause, layers: &Layers<'_>, symbolic: bool) -> Result<ClauseValues, Problem> {
    let t = &clause.target;
    let known = |v: Result<Value, Problem>, span: Span| v.and_then(|v| canonical(t, &v, span)).map(Item::Known);
    if let ExprKind::List(items) = &clause.values.kind {
        return Ok(items
            .iter()
            .map(|e| {
                let value = if symbolic && !eval::is_constant(e) {
                    Ok(Item::Symbolic(e.to_string()))
                } else {
                    known(layers.eval_with_base(e, t), e.span)
                };
                (value, e.span, e.to_string())
            })
            .collect());
    }
    let span = clause.values.span;
    let list = match layers.eval_with_base(&clause.values, t)? {
        Value::List(items) => items,
        other => {
            return Err(Problem::new(
                format!("`{} in {}`: expected a list, found {} `{other}`", t.path(), clause.values, other.kind()),
                Some(span),
            ));
        }
    };
    if list.is_empty() {
        return Err(Problem::new(
            format!("`{} in {}`: a sweep needs at least one value", t.path(), clause.values),
            Some(span),
        ));
    }
    if symbolic && !eval::is_constant(&clause.values) {
        return Ok((0..list.len())
            .map(|i| (Ok(Item::Symbolic(format!("{}[{i}]", clause.values))), span, format!("{}[{i}]", clause.values)))
            .collect());
    }
    Ok(list
        .into_iter()
        .enumerate()
        .map(|(i, v)| (known(Ok(v), span), span, format!("{}[{i}]", clause.values)))
        .collect())
}

/// Every variant of the sweeps, in source order.
pub(crate) fn variants(sweeps: &[Sweep], layers: &Layers<'_>, symbolic: bool) -> Result<Vec<Variant>, Problem> {
    let mut out: Vec<Variant> = Vec::new();
    let too_many = |span: Span| Problem::new(format!("this phase has more than {MAX_VARIANTS} variants"), Some(span));
    for sweep in sweeps {
        let lists: Vec<ClauseValues> =
            sweep.clauses.iter().map(|c| clause_values(c, layers, symbolic)).collect::<Result<_, _>>()?;
        let change = |ci: usize, vi: usize| {
            let (value, span, written) = &lists[ci][vi];
            Change {
                target: sweep.clauses[ci].target.clone(),
                value: value.clone(),
                span: *span,
                written: written.clone(),
            }
        };
        match sweep.kind {
            SweepKind::Vary | SweepKind::Grid => {
                let total = lists
                    .iter()
                    .try_fold(1usize, |acc, l| acc.checked_mul(l.len()))
                    .filter(|n| out.len() + n <= MAX_VARIANTS)
                    .ok_or_else(|| too_many(sweep.span))?;
                let mut index = vec![0usize; lists.len()];
                for _ in 0..total {
                    out.push(index.iter().enumerate().map(|(ci, &vi)| change(ci, vi)).collect());
                    // Odometer: the last clause turns fastest.
                    for ci in (0..index.len()).rev() {
                        index[ci] += 1;
                        if index[ci] < lists[ci].len() {
                            break;
                        }
                        index[ci] = 0;
                    }
                }
            }
            SweepKind::Zip => {
                let n = lists.first().map_or(0, Vec::len);
                if let Some((ci, l)) = lists.iter().enumerate().find(|(_, l)| l.len() != n) {
                    return Err(Problem::new(
                        format!(
                            "`zip` needs lists of equal length: `{}` has {n} values, `{}` has {}",
                            sweep.clauses[0].target.path(),
                            sweep.clauses[ci].target.path(),
                            l.len()
                        ),
                        Some(sweep.span),
                    ));
                }
                if out.len() + n > MAX_VARIANTS.min(MAX_GENERATED) {
                    return Err(too_many(sweep.span));
                }
                for vi in 0..n {
                    out.push((0..lists.len()).map(|ci| change(ci, vi)).collect());
                }
            }
        }
    }
    Ok(out)
}

/// A variant's display name and changes, known values canonical and symbolic ones as written.
pub(crate) fn describe(variant: &Variant) -> (String, Vec<(String, Item)>) {
    let changes: Vec<(String, Item)> = variant
        .iter()
        .map(|c| {
            let item = match &c.value {
                Ok(i) => i.clone(),
                Err(_) => Item::Symbolic(c.written.clone()),
            };
            (c.target.path(), item)
        })
        .collect();
    let name = if changes.is_empty() {
        "baseline".to_owned()
    } else {
        changes
            .iter()
            .map(|(k, i)| match i {
                Item::Known(v) => format!("{k}={v}"),
                Item::Symbolic(s) => format!("{k}={s}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    (name, changes)
}
