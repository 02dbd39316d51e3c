//! What `lrx check` assumes about winners it cannot know yet: a dry run takes each phase's
//! first candidate as its winner, so a problem found under that assumption is an error only
//! if no other candidate of those phases would avoid it. Otherwise it is a warning: the
//! candidate is checked again when the real winner is known.

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::lang::study::Study;

use super::Changes;
use super::compile::{Resolved, dry_phase};
use super::resolve::Problem;

/// Another winner of a phase run before, with which a candidate that fails under the
/// assumed winners would be valid: (that phase, its candidate's name, the assumed one's).
pub(super) struct Other {
    phase: String,
    variant: String,
    assumed: String,
}

/// The dry runs of one phase with each winner it needs replaced, in turn, by each other
/// candidate of that phase: computed once, on the first failure.
pub(super) struct Alternatives<'a> {
    study: &'a Study,
    phase: usize,
    assumed: &'a BTreeMap<String, Changes>,
    possible: &'a BTreeMap<usize, Vec<Changes>>,
    runs: Option<Vec<Run>>,
}

/// A dry run under another winner: that phase, its changes, and what the dry run gave.
type Run = (usize, Changes, Result<Vec<Resolved>, Vec<Problem>>);

/// The most alternative winners tried for one phase (each is a dry run of the whole phase).
const MAX_ALTERNATIVES: usize = 64;

impl<'a> Alternatives<'a> {
    pub(super) fn new(
        study: &'a Study,
        phase: usize,
        assumed: &'a BTreeMap<String, Changes>,
        possible: &'a BTreeMap<usize, Vec<Changes>>,
    ) -> Alternatives<'a> {
        Alternatives { study, phase, assumed, possible, runs: None }
    }

    /// An alternative winner with which candidate `index` (the whole phase, for `None`)
    /// resolves.
    pub(super) fn valid_with(&mut self, index: Option<usize>) -> Option<Other> {
        let (study, p, assumed, possible) = (self.study, self.phase, self.assumed, self.possible);
        let runs = self.runs.get_or_insert_with(|| {
            let mut runs = Vec::new();
            for a in study.ancestry.of(p) {
                let name = &study.phases[a].name;
                for changes in possible.get(&a).into_iter().flatten() {
                    if runs.len() >= MAX_ALTERNATIVES || assumed.get(name) == Some(changes) {
                        continue;
                    }
                    let mut winners = assumed.clone();
                    winners.insert(name.clone(), changes.clone());
                    runs.push((a, changes.clone(), dry_phase(study, p, &winners)));
                }
            }
            runs
        });
        let (a, changes, _) = runs.iter().find(|(_, _, r)| match (index, r) {
            (None, Ok(_)) => true,
            (Some(i), Ok(cands)) => cands.get(i).is_some_and(Result::is_ok),
            _ => false,
        })?;
        let phase = study.phases[*a].name.clone();
        let assumed = super::variant_name(assumed.get(&phase).map_or(&[][..], Vec::as_slice));
        Some(Other { phase, variant: super::variant_name(changes), assumed })
    }
}

/// A problem that arises only from the winners `lrx check` assumes: a warning.
pub(super) fn assumed_only(p: &Problem, other: &Other) -> Diagnostic {
    let mut d =
        Diagnostic::warning(format!("{}, under the assumed incoming config; the actual winner may differ", p.message));
    if let Some(s) = p.span {
        d = d.at(s, "");
    }
    d.note(format!(
        "`lrx check` assumes that `{}` keeps its first candidate (`{}`); with its candidate `{}`, this is valid",
        other.phase, other.assumed, other.variant
    ))
    .help("the candidate is checked again when the winner is known, and skipped if it is invalid then")
}
