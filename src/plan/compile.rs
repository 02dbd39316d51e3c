//! From a checked study to a [`Plan`]: phases in topological order with their options, a dry
//! run of every phase (assuming each phase it needs keeps its first candidate) that reports
//! configs the text makes invalid, and the resolution of candidates once winners are known.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::diag::{Diagnostic, Failure};
use crate::lang::ast::Span;
use crate::lang::eval::Target;
use crate::lang::study::{Binding, FinalSource as DefSource, ObjectiveDef, Options, PhaseDef, Prune, Study};
use crate::spec::config::{RunConfig, key};
use crate::spec::schema::Key;
use crate::spec::value::{Call, Value};

use super::assume::{Alternatives, assumed_only};
use super::expand::{self, Item, Variant};
use super::resolve::{Layers, Problem};
use super::{
    Candidate, Changes, FinalRun, FinalSource, InvalidCandidate, MAX_RUNS, Objective, Phase, PhaseKind, Plan,
    ResolveError, StudyBudget,
};

/// Checks and compiles a study; with `base` (the folder its relative paths start from), what
/// it names on disk is checked too.
pub(super) fn compile(source: &str, path: &Path, base: Option<&Path>) -> Result<Plan, Failure> {
    let checked = crate::lang::check(source).map_err(|d| Failure::new(path, source, vec![d]))?;
    let mut diags = checked.diagnostics;
    let mut study = checked.study;
    if let Some(base) = base {
        diags.extend(super::files::check(&study, base));
    }
    // The checks that need resolved configs (across keys, per candidate) run even when the
    // checker found errors, so that one pass reports everything: on the study without the
    // statements at fault, dropping what they find about those statements' keys.
    let faulty = set_aside(&mut study, &diags);
    let errors_before: Vec<Span> = diags.iter().filter(|d| d.is_error()).filter_map(Diagnostic::primary_span).collect();
    let news = |p: &Problem| {
        !p.keys.iter().any(|k| faulty.contains(k))
            && !p.span.is_some_and(|s| {
                errors_before.iter().any(|e| e.start < s.end.max(s.start + 1) && s.start < e.end.max(e.start + 1))
            })
    };
    let root = match root_layers(&study).and_then(|l| l.config()) {
        Ok(c) => c,
        Err(problems) => {
            diags.extend(problems.into_iter().filter(news).map(|p| to_diag(p, None, None)));
            return Err(Failure::new(path, source, dedupe(diags)));
        }
    };

    // Dry runs, in topological order: each phase's assumed winner is its first candidate.
    let mut assumed: BTreeMap<String, Changes> = BTreeMap::new();
    // Every candidate's changes, by phase: the winners a dry run could have assumed instead.
    let mut possible: BTreeMap<usize, Vec<Changes>> = BTreeMap::new();
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    let mut merged = Merged::new(&study);
    let mut runs = 0usize;
    for &p in &study.order {
        let def = &study.phases[p];
        let ctx = |p: Problem| to_diag(p, Some(def.name_span), Some(&def.name));
        let mut alternatives = Alternatives::new(&study, p, &assumed, &possible);
        let incoming = merged.incoming(&study, p, &assumed);
        match candidates(&study, p, &incoming, false).map(|cands| cands.into_iter().map(|(_, r)| r).collect::<Vec<_>>())
        {
            Ok(cands) => {
                // Counted before anything else is done with them: past the limit, the engine
                // would hold more runs than memory allows.
                let opts = def.options.or(&study.options);
                let (repeats, _, _) = run_options(&opts);
                runs = runs.saturating_add(cands.len().saturating_mul(repeats as usize));
                if runs > MAX_RUNS {
                    let seeds = opts.seeds.as_ref().map(|s| s.span).or(opts.repeats.as_ref().map(|r| r.span));
                    diags.push(too_many_runs(
                        def.name_span,
                        format!("{} candidates × {repeats} runs each bring the study to {runs}", cands.len()),
                        seeds,
                    ));
                    break;
                }
                counts.insert(p, cands.len());
                let rung = last_rung(def, &study.options);
                let mut first = None;
                let mut all = Vec::new();
                for (i, c) in cands.into_iter().enumerate() {
                    match c {
                        Ok((changes, config)) => {
                            first.get_or_insert_with(|| changes.clone());
                            all.push(changes);
                            if let Some(d) = check_halving(rung, &config) {
                                diags.push(d);
                            }
                            if let Some(d) = script_rungs_before_decay(def, &study.options, &config) {
                                diags.push(d);
                            }
                        }
                        Err(problems) => {
                            let problems: Vec<Problem> = problems.into_iter().filter(news).collect();
                            match alternatives.valid_with(Some(i)) {
                                Some(other) => diags.extend(problems.iter().map(|p| assumed_only(p, &other))),
                                None => diags.extend(problems.into_iter().map(ctx)),
                            }
                        }
                    }
                }
                if def.find.is_some() {
                    first = Some(Vec::new());
                }
                assumed.insert(def.name.clone(), first.unwrap_or_default());
                possible.insert(p, all);
            }
            Err(problems) => {
                let problems: Vec<Problem> = problems.into_iter().filter(news).collect();
                match alternatives.valid_with(None) {
                    Some(other) => diags.extend(problems.iter().map(|p| assumed_only(p, &other))),
                    None => diags.extend(problems.into_iter().map(ctx)),
                }
            }
        }
    }
    if let Some(f) = &study.final_run
        && runs <= MAX_RUNS
    {
        let opts = f.options.or(&study.options);
        let (repeats, _, _) = run_options(&opts);
        if runs.saturating_add(repeats as usize) > MAX_RUNS {
            let seeds = opts.seeds.as_ref().map(|s| s.span).or(opts.repeats.as_ref().map(|r| r.span));
            diags.push(too_many_runs(
                f.span,
                format!("its {repeats} runs bring the study to {}", runs + repeats as usize),
                seeds,
            ));
        }
    }
    if let Some(f) = &study.final_run
        && let Err(problems) = final_layers(&study, &assumed).and_then(|(l, _)| l.config())
    {
        diags.extend(problems.into_iter().filter(news).map(|p| to_diag(p, Some(f.span), None)));
    }
    let diags = dedupe(diags);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(Failure::new(path, source, diags));
    }

    let phases: Vec<Phase> =
        study.order.iter().map(|&p| phase(&study, p, counts.get(&p).copied().unwrap_or(0))).collect();
    let final_run = study.final_run.as_ref().map(|f| {
        let opts = f.options.or(&study.options);
        let (repeats, seeds, prune) = run_options(&opts);
        let (source, needs) = match &f.source {
            DefSource::Combine(list) => {
                let names: Vec<String> = list.iter().map(|&i| study.phases[i].name.clone()).collect();
                (FinalSource::Combine(names), topo_names(&study, &list.iter().copied().collect()))
            }
            DefSource::After(p) => {
                let mut set: BTreeSet<usize> = study.ancestry.of(*p).collect();
                set.insert(*p);
                (FinalSource::After(study.phases[*p].name.clone()), topo_names(&study, &set))
            }
        };
        FinalRun {
            source,
            needs,
            objective: objective(f.objective.as_ref().unwrap_or(&study.objective)),
            repeats,
            seeds,
            prune,
        }
    });
    let name = path.file_stem().map_or_else(|| "study".to_owned(), |s| s.to_string_lossy().into_owned());
    let graph = super::graph::build(&phases, final_run.as_ref());
    let by_name = phases.iter().enumerate().map(|(i, p)| (p.name.clone(), i)).collect();
    Ok(Plan {
        name,
        path: path.to_owned(),
        objective: objective(&study.objective),
        phases,
        final_run,
        graph,
        budget: study.budget.as_ref().map(|b| StudyBudget {
            max_runs: b.max_runs.as_ref().map(|m| usize::try_from(m.value).unwrap_or(usize::MAX)),
            time: b.time.as_ref().map(|t| t.value),
        }),
        warnings: diags,
        source: source.to_owned(),
        study,
        root,
        by_name,
    })
}

/// A study over [`MAX_RUNS`] runs: at the phase (or final run) that goes over, and at the
/// `repeats` or `seeds` that multiplied it.
fn too_many_runs(at: Span, label: String, repeats: Option<Span>) -> Diagnostic {
    let mut d = Diagnostic::error(format!("the study has more than {MAX_RUNS} runs")).at(at, label);
    if let Some(r) = repeats {
        d = d.also(r, "runs per candidate");
    }
    d.help("sweep fewer values or use fewer repeats, or split the study into several files")
}

/// Takes out of the study every statement an error points into, so that checking what is
/// left does not report the same fault again; returns the keys those statements set.
fn set_aside(study: &mut Study, diags: &[Diagnostic]) -> Vec<Key> {
    let at_fault: Vec<Span> = diags.iter().filter(|d| d.is_error()).filter_map(Diagnostic::primary_span).collect();
    let mut keys = Vec::new();
    let mut keep = |b: &Binding| {
        let bad = at_fault.iter().any(|e| b.span.start <= e.start && e.end <= b.span.end);
        if bad {
            keys.push(b.target.key);
        }
        !bad
    };
    study.root.retain(&mut keep);
    for p in &mut study.phases {
        p.overrides.retain(&mut keep);
    }
    if let Some(f) = &mut study.final_run {
        f.overrides.retain(&mut keep);
    }
    keys
}

fn to_diag(p: Problem, fallback: Option<Span>, phase: Option<&str>) -> Diagnostic {
    let mut d = Diagnostic::error(p.message);
    match (p.span, fallback) {
        (Some(s), _) => d = d.at(s, ""),
        (None, Some(s)) => d = d.at(s, phase.map(|n| format!("in phase `{n}`")).unwrap_or_default()),
        (None, None) => {}
    }
    d
}

/// Drops repeated diagnostics (a root problem seen again by every phase), keeping order.
fn dedupe(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<Diagnostic> =
        diags.into_iter().filter(|d| seen.insert((d.message.clone(), d.primary_span().map(|s| s.start)))).collect();
    out.sort_by_key(|d| d.primary_span().map_or(usize::MAX, |s| s.start));
    out
}

/// The last rung of a phase's successive halving, and where it was set.
fn last_rung(def: &PhaseDef, study_opts: &Options) -> Option<(u64, Span)> {
    let prune = def.options.prune.as_ref().or(study_opts.prune.as_ref())?;
    let Prune::Halving { rungs, .. } = &prune.value else { return None };
    Some((*rungs.last()?, prune.span))
}

fn check_halving(rung: Option<(u64, Span)>, config: &RunConfig) -> Option<Diagnostic> {
    let (last, span) = rung?;
    let total = config.total_steps()?;
    if last > total {
        return Some(
            Diagnostic::error(format!("the last rung of `halving` ({last}) is past the budget of {total} steps"))
                .at(span, ""),
        );
    }
    // The survivors of the last rung train to the budget: a last rung below it would be
    // silently skipped, and its candidates compared at the budget instead.
    (last < total).then(|| {
        Diagnostic::error(format!("the last rung of `halving` ({last}) is below the budget of {total} steps"))
            .at(span, "the last rung is where the survivors finish")
            .help(format!("end the rungs with the budget (`rungs = [..., {total}]`), or set `steps = {last}`"))
    })
}

/// A script stopped at its rungs (`{stop_at}`) cannot be branched off for a cooldown: under a
/// schedule that decays late, a rung before the decay has finished compares candidates before
/// it, which favours low LRs. Only where the script is given the schedule (`{schedule...}`, or
/// the whole config as `{config}`): one with a schedule of its own is its own business. (A
/// script not told where to stop trains each rung as a run that long, decay included.)
fn script_rungs_before_decay(def: &PhaseDef, study_opts: &Options, config: &RunConfig) -> Option<Diagnostic> {
    let prune = def.options.prune.as_ref().or(study_opts.prune.as_ref())?;
    let Prune::Halving { rungs, cooldown: crate::spec::CooldownRule::Auto, .. } = &prune.value else { return None };
    let crate::spec::TrainerSpec::Command { cmd, resumable: true, .. } = &config.train.trainer else { return None };
    let total = config.total_steps()?;
    let early = rungs
        .iter()
        .take(rungs.len().saturating_sub(1))
        .find(|r| config.train.schedule.cooldown(**r, total).is_some())?;
    let template = crate::spec::command::Template::parse(cmd).ok()?;
    let (mut stops, mut scheduled) = (false, false);
    for (name, _) in template.slots() {
        stops |= name == "stop_at";
        scheduled |= name == "config" || name == "schedule" || name.starts_with("schedule.");
    }
    if !(stops && scheduled) {
        return None;
    }
    Some(
        Diagnostic::warning(format!(
            "the rung at step {early} compares the script's runs before their schedule's decay has finished, \
             which favours low LRs"
        ))
        .at(prune.span, "lrx measures rungs on a cooldown branch only with the built-in trainer")
        .help(
            "use a schedule that decays throughout (`cosine`, `linear`), leave `{stop_at}` out of the command \
             (each rung is then a run of its own length, decay included), or say `cooldown = none` to accept it",
        ),
    )
}

fn objective(o: &ObjectiveDef) -> Objective {
    Objective { metric: o.metric.clone(), goal: o.goal }
}

fn run_options(opts: &Options) -> (u32, Option<Vec<u64>>, Prune) {
    let seeds = opts.seeds.as_ref().map(|s| s.value.clone());
    let repeats = seeds.as_ref().map_or_else(|| opts.repeats.as_ref().map_or(1, |r| r.value), |s| s.len() as u32);
    (repeats, seeds, opts.prune.as_ref().map_or(Prune::Diverged, |p| p.value.clone()))
}

fn topo_names(study: &Study, set: &BTreeSet<usize>) -> Vec<String> {
    study.order.iter().filter(|p| set.contains(p)).map(|&p| study.phases[p].name.clone()).collect()
}

fn phase(study: &Study, p: usize, count: usize) -> Phase {
    let def = &study.phases[p];
    let opts = def.options.or(&study.options);
    let (repeats, seeds, prune) = run_options(&opts);
    let kind = match &def.find {
        Some(f) => {
            PhaseKind::Find { key: f.target.path(), from: f.from, to: f.to, steps: f.steps, pick: f.pick, stop: f.stop }
        }
        None => PhaseKind::Sweep,
    };
    Phase {
        name: def.name.clone(),
        after: def.after.iter().map(|&a| study.phases[a].name.clone()).collect(),
        needs: study.ancestry.of(p).map(|a| study.phases[a].name.clone()).collect(),
        objective: objective(def.objective.as_ref().unwrap_or(&study.objective)),
        repeats,
        seeds,
        baseline: def.find.is_none() && opts.baseline.as_ref().is_none_or(|b| b.value),
        prune: if def.find.is_some() { Prune::None } else { prune },
        kind,
        swept_keys: def.swept().into_iter().map(Target::path).collect(),
        candidate_count: count,
        def: p,
    }
}

fn root_layers(study: &Study) -> Result<Layers<'_>, Vec<Problem>> {
    let mut layers = Layers::default();
    for b in &study.root {
        layers.apply_binding(b).map_err(|p| vec![p])?;
    }
    Ok(layers)
}

fn apply_bindings<'s>(layers: &mut Layers<'s>, bindings: &'s [Binding]) -> Result<(), Vec<Problem>> {
    for b in bindings {
        layers.apply_binding(b).map_err(|p| vec![p])?;
    }
    Ok(())
}

/// The winning changes phase `p` starts from: `W(a₁) ⊕ W(a₂) ⊕ …` over the phases it comes
/// after, in topological order (those without a winner in `winners` left out).
fn incoming(study: &Study, p: usize, winners: &BTreeMap<String, Changes>) -> Changes {
    study.ancestry.of(p).filter_map(|a| winners.get(&study.phases[a].name)).flatten().cloned().collect()
}

/// [`incoming`] for every phase of a dry run, each from its parents' in constant time per
/// parent and key, where resolving each phase's ancestors anew is quadratic in the length of
/// a chain of phases.
///
/// A phase's incoming changes keep each key only as last set (by the latest phase in
/// topological order, then the latest change of its winner): applying them gives the same
/// config as applying every ancestor's winner in turn, since a later setting of a key
/// replaces an earlier one (and resets the same other budgets). The ancestors of a phase are
/// its parents and theirs, so its changes are its parents' changes and winners, merged.
struct Merged {
    /// By phase, once its parents are done.
    by_phase: Vec<Option<Settings>>,
}

/// Key path → (topological rank of the phase whose winner set it, index in that winner's
/// changes, value).
type Settings = BTreeMap<String, (usize, usize, Value)>;

impl Merged {
    fn new(study: &Study) -> Merged {
        Merged { by_phase: vec![None; study.phases.len()] }
    }

    /// Phase `p`'s incoming changes; `winners` holds the winners of (at least) every phase
    /// before `p` in topological order.
    fn incoming(&mut self, study: &Study, p: usize, winners: &BTreeMap<String, Changes>) -> Changes {
        let mut set = Settings::new();
        for &q in &study.phases[p].after {
            // A parent not done yet is in a cycle (an error already): resolve the long way.
            let Some(Some(from_q)) = self.by_phase.get(q) else { return incoming(study, p, winners) };
            let own = winners.get(&study.phases[q].name).into_iter().flatten().enumerate();
            let rank = study.ancestry.rank(q);
            let entries = from_q
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(own.map(|(i, (k, v))| (k.clone(), (rank, i, v.clone()))));
            for (k, v) in entries {
                match set.get(&k) {
                    Some(old) if (old.0, old.1) >= (v.0, v.1) => {}
                    _ => {
                        set.insert(k, v);
                    }
                }
            }
        }
        let mut ordered: Vec<(&String, &(usize, usize, Value))> = set.iter().collect();
        ordered.sort_by_key(|(_, (rank, i, _))| (*rank, *i));
        let changes = ordered.into_iter().map(|(k, (_, _, v))| (k.clone(), v.clone())).collect();
        self.by_phase[p] = Some(set);
        changes
    }
}

/// `C(P) ⊕ overrides(P)`: the config a phase's baseline runs, from its incoming changes.
fn phase_layers<'s>(study: &'s Study, p: usize, incoming: &Changes) -> Result<Layers<'s>, Vec<Problem>> {
    let mut layers = root_layers(study)?;
    layers.apply_changes(incoming, None).map_err(|p| vec![p])?;
    apply_bindings(&mut layers, &study.phases[p].overrides)?;
    Ok(layers)
}

/// The final run's layers, and its changes relative to the root.
fn final_layers<'s>(
    study: &'s Study,
    winners: &BTreeMap<String, Changes>,
) -> Result<(Layers<'s>, Changes), Vec<Problem>> {
    let Some(f) = &study.final_run else { return Ok((Layers::default(), Vec::new())) };
    let mut layers = root_layers(study)?;
    let set: BTreeSet<usize> = match &f.source {
        DefSource::Combine(list) => list.iter().copied().collect(),
        DefSource::After(p) => {
            let mut s: BTreeSet<usize> = study.ancestry.of(*p).collect();
            s.insert(*p);
            s
        }
    };
    let mut changes: Changes = Vec::new();
    for &a in study.order.iter().filter(|a| set.contains(a)) {
        if let Some(w) = winners.get(&study.phases[a].name) {
            layers.apply_changes(w, None).map_err(|p| vec![p])?;
            for (k, v) in w {
                changes.retain(|(k2, _)| k2 != k);
                changes.push((k.clone(), v.clone()));
            }
        }
    }
    apply_bindings(&mut layers, &f.overrides)?;
    let opts = f.options.or(&study.options);
    if matches!(opts.prune.as_ref().map(|p| &p.value), Some(Prune::None)) {
        layers.set_value(&Target::whole(key("diverge_factor")), Value::Float(f64::MAX), None);
    }
    Ok((layers, changes))
}

/// A candidate's changes and config, or every problem with it.
pub(super) type Resolved = Result<(Changes, RunConfig), Vec<Problem>>;

/// Resolves a phase's candidates; `Err` when the phase as a whole cannot be resolved.
/// With `named`, each candidate's variant name is built (a dry run does without).
fn candidates(
    study: &Study,
    p: usize,
    incoming: &Changes,
    named: bool,
) -> Result<Vec<(String, Resolved)>, Vec<Problem>> {
    let def = &study.phases[p];
    let mut layers = phase_layers(study, p, incoming)?;
    let opts = def.options.or(&study.options);
    if let Some(f) = &def.find {
        let changes: Changes = vec![
            (f.target.path(), Value::Float(f.from)),
            (
                "schedule".into(),
                Value::Call(Call {
                    name: "exponential".into(),
                    args: vec![("gamma".into(), Value::Float(f.to / f.from))],
                }),
            ),
            ("steps".into(), Value::Int(f.steps as i64)),
        ];
        layers.apply_changes(&changes, Some(f.span)).map_err(|p| vec![p])?;
        layers.set_value(&Target::whole(key("log_every")), Value::Int(1), None);
        layers.set_value(&Target::whole(key("eval_every")), Value::Int(f.steps as i64), None);
        // The trainer stops past `stop` × its first loss, which is above `stop` × the minimum
        // the pick cuts at: it never stops before the pick's cut, and spares the steps after.
        layers.set_value(&Target::whole(key("diverge_factor")), Value::Float(f.stop), None);
        let name = super::variant_name(&changes);
        return Ok(vec![(name, layers.config().map(|c| (changes, c)))]);
    }
    if matches!(opts.prune.as_ref().map(|p| &p.value), Some(Prune::None)) {
        layers.set_value(&Target::whole(key("diverge_factor")), Value::Float(f64::MAX), None);
    }
    let variants = expand::variants(&def.sweeps, &layers, false).map_err(|p| vec![p])?;
    let mut out = Vec::with_capacity(variants.len() + 1);
    if opts.baseline.as_ref().is_none_or(|b| b.value) {
        out.push(("baseline".to_owned(), layers.config().map(|c| (Vec::new(), c))));
    }
    out.extend(variants.iter().map(|v| variant(&layers, v, named)));
    Ok(out)
}

fn variant(layers: &Layers<'_>, v: &Variant, named: bool) -> (String, Resolved) {
    let name = if named { expand::describe(v).0 } else { String::new() };
    let mut layers = layers.clone();
    let mut changes = Vec::with_capacity(v.len());
    let mut problems = Vec::new();
    for c in v {
        match &c.value {
            Ok(Item::Known(value)) => {
                layers.set_value(&c.target, value.clone(), Some(c.span));
                changes.push((c.target.path(), value.clone()));
            }
            Ok(Item::Symbolic(_)) => {}
            Err(p) => problems.push(p.clone()),
        }
    }
    if !problems.is_empty() {
        return (name, Err(problems));
    }
    (name, layers.config().map(|c| (changes, c)))
}

pub(super) fn dry_phase(
    study: &Study,
    p: usize,
    assumed: &BTreeMap<String, Changes>,
) -> Result<Vec<Resolved>, Vec<Problem>> {
    Ok(candidates(study, p, &incoming(study, p, assumed), false)?.into_iter().map(|(_, r)| r).collect())
}

fn seeds(opts: &Options, seed: u64) -> Vec<u64> {
    match &opts.seeds {
        Some(s) => s.value.clone(),
        None => (0..u64::from(opts.repeats.as_ref().map_or(1, |r| r.value))).map(|i| seed.saturating_add(i)).collect(),
    }
}

fn finish(mut config: RunConfig, opts: &Options, variant: String, changes: Changes) -> Candidate {
    let seeds = seeds(opts, config.train.seed);
    config.train.seed = seeds.first().copied().unwrap_or(config.train.seed);
    Candidate { variant, changes, config, seeds }
}

fn messages(problems: Vec<Problem>) -> String {
    problems.into_iter().map(|p| p.message).collect::<Vec<_>>().join("; ")
}

pub(super) fn resolve_phase(
    plan: &Plan,
    name: &str,
    winners: &BTreeMap<String, Changes>,
) -> Result<Vec<Result<Candidate, InvalidCandidate>>, ResolveError> {
    let phase = plan.phase(name).ok_or_else(|| ResolveError::UnknownPhase(name.to_owned()))?;
    let missing: Vec<String> = phase.needs.iter().filter(|n| !winners.contains_key(*n)).cloned().collect();
    if !missing.is_empty() {
        return Err(ResolveError::Waiting { phase: name.to_owned(), missing });
    }
    let study = &plan.study;
    let opts = study.phases[phase.def].options.or(&study.options);
    let cands = candidates(study, phase.def, &incoming(study, phase.def, winners), true)
        .map_err(|ps| ResolveError::Invalid { phase: name.to_owned(), message: messages(ps) })?;
    Ok(cands
        .into_iter()
        .map(|(variant, r)| match r {
            Ok((changes, config)) => Ok(finish(config, &opts, variant, changes)),
            Err(ps) => Err(InvalidCandidate { variant, message: messages(ps) }),
        })
        .collect())
}

pub(super) fn resolve_final(plan: &Plan, winners: &BTreeMap<String, Changes>) -> Result<Candidate, ResolveError> {
    let f = plan.final_run.as_ref().ok_or(ResolveError::NoFinal)?;
    let missing: Vec<String> = f.needs.iter().filter(|n| !winners.contains_key(*n)).cloned().collect();
    if !missing.is_empty() {
        return Err(ResolveError::Waiting { phase: "final".into(), missing });
    }
    let study = &plan.study;
    let invalid = |ps| ResolveError::Invalid { phase: "final".into(), message: messages(ps) };
    let (layers, changes) = final_layers(study, winners).map_err(invalid)?;
    let config = layers.config().map_err(invalid)?;
    let opts = study.final_run.as_ref().map(|d| d.options.or(&study.options)).unwrap_or_default();
    let variant = if matches!(f.source, FinalSource::Combine(_)) { "combined" } else { "winner" };
    Ok(finish(config, &opts, variant.to_owned(), changes))
}

pub(super) fn root_with(plan: &Plan, changes: &[(String, Value)]) -> Result<RunConfig, String> {
    let mut layers = root_layers(&plan.study).map_err(messages)?;
    layers.apply_changes(changes, None).map_err(|p| p.message)?;
    layers.config().map_err(messages)
}

/// A preview of a phase's candidates: concrete where the winners it needs are known,
/// symbolic (`lr=base*0.5`) where a value depends on a winner still to come.
pub(super) fn preview(
    plan: &Plan,
    phase: &Phase,
    winners: &BTreeMap<String, Changes>,
) -> Vec<(String, Vec<(String, Item)>)> {
    let study = &plan.study;
    let def = &study.phases[phase.def];
    let ready = phase.needs.iter().all(|n| winners.contains_key(n));
    if let Some(f) = &def.find {
        let changes: Vec<(String, Item)> = vec![
            (f.target.path(), Item::Known(Value::Float(f.from))),
            (
                "schedule".into(),
                Item::Known(Value::Call(Call {
                    name: "exponential".into(),
                    args: vec![("gamma".into(), Value::Float(f.to / f.from))],
                })),
            ),
            ("steps".into(), Item::Known(Value::Int(f.steps as i64))),
        ];
        let name = changes
            .iter()
            .map(|(k, i)| if let Item::Known(v) = i { format!("{k}={v}") } else { k.clone() })
            .collect::<Vec<_>>()
            .join(",");
        return vec![(name, changes)];
    }
    let Ok(layers) = phase_layers(study, phase.def, &incoming(study, phase.def, winners)) else { return Vec::new() };
    let variants = expand::variants(&def.sweeps, &layers, !ready).unwrap_or_default();
    let mut out = Vec::new();
    if phase.baseline {
        out.push(("baseline".to_owned(), Vec::new()));
    }
    out.extend(variants.iter().map(expand::describe));
    out
}

/// The config a phase's baseline would run with the winners known so far (missing winners
/// are left out), for estimates.
pub(super) fn final_estimate(plan: &Plan, winners: &BTreeMap<String, Changes>) -> Option<RunConfig> {
    final_layers(&plan.study, winners).ok()?.0.config().ok()
}

pub(super) fn baseline_config(plan: &Plan, phase: &Phase, winners: &BTreeMap<String, Changes>) -> Option<RunConfig> {
    phase_layers(&plan.study, phase.def, &incoming(&plan.study, phase.def, winners)).ok()?.config().ok()
}
