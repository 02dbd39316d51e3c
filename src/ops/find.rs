//! Finding a phase or a candidate by the name a person typed (`--phase`, `--rerun`, `lrx why`),
//! with a "did you mean" when it is a near miss: one lookup for every command.

use crate::results::{CandidateResult, StudyResults};
use crate::spec::schema::suggest;

/// A name that matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotFound {
    #[error("the study has no phase `{name}`{}", hint(.suggestion.as_deref()))]
    Phase { name: String, suggestion: Option<String> },
    #[error("phase `{phase}` has no candidate `{variant}`{}", hint(.suggestion.as_deref()))]
    Candidate { phase: String, variant: String, suggestion: Option<String> },
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion.map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
}

/// Checks that `name` is one of `names` (phase names, `final` included where it is meant).
pub fn phase<'a>(name: &str, names: impl IntoIterator<Item = &'a str> + Clone) -> Result<(), NotFound> {
    if names.clone().into_iter().any(|n| n == name) {
        return Ok(());
    }
    Err(NotFound::Phase { name: name.to_owned(), suggestion: suggest(name, names) })
}

/// Every candidate of the study with its phase's name (`final` for the final run).
fn all(results: &StudyResults) -> Vec<(&str, &CandidateResult)> {
    results
        .phases
        .iter()
        .flat_map(|p| p.candidates.iter().map(move |c| (p.name.as_str(), c)))
        .chain(results.final_run.iter().map(|c| ("final", c)))
        .collect()
}

/// The candidates asked about: one (`phase` and `variant`), a phase's (`phase`), or, without
/// either, every one that is not cached.
pub fn candidates<'r>(
    results: &'r StudyResults,
    phase_name: Option<&str>,
    variant: Option<&str>,
) -> Result<Vec<(&'r str, &'r CandidateResult)>, NotFound> {
    let all = all(results);
    let Some(phase_name) = phase_name else {
        return Ok(all.into_iter().filter(|(_, c)| !c.cached()).collect());
    };
    phase(phase_name, results.phases.iter().map(|p| p.name.as_str()).chain(["final"]))?;
    let in_phase: Vec<_> = all.into_iter().filter(|(p, _)| *p == phase_name).collect();
    let Some(variant) = variant else { return Ok(in_phase) };
    // A candidate that is another's run (same keys) is listed under the other's name.
    let alias = results
        .phases
        .iter()
        .filter(|p| p.name == phase_name)
        .flat_map(|p| p.same_runs.iter().filter(|(a, _)| a == variant).map(|(_, j)| p.candidates[*j].variant.as_str()))
        .next();
    let variant = alias.unwrap_or(variant);
    let found: Vec<_> = in_phase.iter().copied().filter(|(_, c)| c.variant == variant).collect();
    if found.is_empty() {
        return Err(NotFound::Candidate {
            phase: phase_name.to_owned(),
            variant: variant.to_owned(),
            suggestion: suggest(variant, in_phase.iter().map(|(_, c)| c.variant.as_str())),
        });
    }
    Ok(found)
}

/// One candidate of one phase.
pub fn candidate<'r>(results: &'r StudyResults, phase: &str, variant: &str) -> Result<&'r CandidateResult, NotFound> {
    let found = candidates(results, Some(phase), Some(variant))?;
    Ok(found[0].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_name_the_closest_and_far_ones_nothing() {
        let names = ["matrix_lr", "warmup", "final"];
        assert_eq!(phase("warmup", names), Ok(()));
        assert_eq!(
            phase("warmpu", names).unwrap_err().to_string(),
            "the study has no phase `warmpu`; did you mean `warmup`?"
        );
        assert_eq!(phase("zzz", names).unwrap_err().to_string(), "the study has no phase `zzz`");
    }
}
