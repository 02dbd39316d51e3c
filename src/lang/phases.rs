//! Checks that span phases and keys: the order of phases (cycles, topological order),
//! conflicting merges of winners, and cycles among derived keys.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use petgraph::Direction;
use petgraph::algo::{astar, is_cyclic_directed, tarjan_scc};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::diag::Diagnostic;
use crate::spec::schema::{self, Key};

use super::ast::{ExprKind, Final, FinalFrom, Span, Stmt};
use super::checker::{Checker, Ctx, METRICS, Seen, objective_def};
use super::eval;
use super::study::{Ancestry, Binding, FinalDef, FinalSource, ObjectiveDef, Options, PhaseDef, Study};

/// Reports cycles among phases and returns a topological order (ties in source order).
/// Phases caught in a cycle come last, in source order.
pub(super) fn order(c: &mut Checker, phases: &[PhaseDef]) -> Vec<usize> {
    let n = phases.len();
    // An edge from each phase to each phase it comes after.
    let mut g: DiGraph<(), (), usize> = DiGraph::default();
    (0..n).for_each(|_| _ = g.add_node(()));
    let node = NodeIndex::<usize>::new;
    g.extend_with_edges(phases.iter().enumerate().flat_map(|(p, d)| d.after.iter().map(move |&a| (node(p), node(a)))));
    if is_cyclic_directed(&g) {
        // One error per knot of phases that come after each other, at its first phase, naming
        // a way round it: from that phase along its first `after` in the knot, the shortest
        // way back.
        let mut knots: Vec<Vec<usize>> = tarjan_scc(&g)
            .into_iter()
            .map(|scc| scc.into_iter().map(NodeIndex::index).collect::<Vec<usize>>())
            .filter(|scc| scc.len() > 1 || phases[scc[0]].after.contains(&scc[0]))
            .collect();
        for knot in &mut knots {
            knot.sort_unstable();
        }
        knots.sort();
        for knot in knots {
            let first = knot[0];
            let Some(&next) = phases[first].after.iter().find(|a| knot.contains(a)) else { continue };
            let way = astar(&g, node(next), |x| x == node(first), |_| 1, |_| 0).map(|(_, way)| way);
            let names: Vec<&str> = std::iter::once(first)
                .chain(way.unwrap_or_default().into_iter().map(NodeIndex::index))
                .map(|p| phases[p].name.as_str())
                .collect();
            c.error(
                Diagnostic::error(format!("phases form a cycle: {}", names.join(" -> ")))
                    .at(phases[first].name_span, "")
                    .help(concat!(
                        "a phase starts from the winners of the phases it comes after, so none of them can come ",
                        "after it: drop one `after` of the cycle"
                    )),
            );
        }
    }
    // Phases caught in a cycle come last: they are never ready.
    match toposort_in_source_order(&g) {
        Ok(order) => order,
        Err(placed) => {
            let mut order = placed.clone();
            let mut seen = vec![false; n];
            for &p in &placed {
                seen[p] = true;
            }
            order.extend((0..n).filter(|&p| !seen[p]));
            order
        }
    }
}

/// Kahn's order over the graph of `order`, always taking the earliest-written ready phase:
/// petgraph's `toposort` gives *a* topological order (depth first), not the one with ties in
/// source order, which is what users see phases listed in. `Err` holds the phases it could
/// place when others are caught in a cycle.
fn toposort_in_source_order(g: &DiGraph<(), (), usize>) -> Result<Vec<usize>, Vec<usize>> {
    // The phases each phase still waits for (one per `after`).
    let mut waiting: Vec<usize> = g.node_indices().map(|p| g.neighbors(p).count()).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..waiting.len()).filter(|&p| waiting[p] == 0).map(Reverse).collect();
    let mut out = Vec::with_capacity(waiting.len());
    while let Some(Reverse(p)) = ready.pop() {
        out.push(p);
        for q in g.neighbors_directed(NodeIndex::new(p), Direction::Incoming) {
            waiting[q.index()] -= 1;
            if waiting[q.index()] == 0 {
                ready.push(Reverse(q.index()));
            }
        }
    }
    if out.len() == waiting.len() { Ok(out) } else { Err(out) }
}

/// Two phases whose winners are merged, that are not ordered relative to each other and both
/// vary the same key, conflict. A pair is reported once, at the first phase (in topological
/// order) that merges both.
pub(super) fn check_conflicts(c: &mut Checker, study: &Study) {
    let phases = &study.phases;
    let anc = &study.ancestry;
    let swept: Vec<Vec<&eval::Target>> = phases.iter().map(PhaseDef::swept).collect();
    let mut reported: BTreeSet<(usize, usize)> = BTreeSet::new();
    for &p in &study.order {
        // With one parent, every pair of ancestors was already merged by the parent (or is
        // ordered, the parent being one of the two): only a merge of several brings new pairs.
        if phases[p].after.len() < 2 {
            continue;
        }
        for (x, y, key) in unordered_overlaps(&swept, anc, anc.of(p)) {
            if !reported.insert((x, y)) {
                continue;
            }
            let (a, b) = (&phases[x].name, &phases[y].name);
            c.error(
                Diagnostic::error(format!(
                    "phase `{}` comes after `{a}` and `{b}`, which both vary `{key}`",
                    phases[p].name
                ))
                .at(phases[p].name_span, "")
                .note("their winners would both set it, and neither comes after the other")
                .help(format!("order them (`phase {b} after {a}`) or vary `{key}` in one of them only")),
            );
        }
    }
    if let Some(f) = &study.final_run
        && let FinalSource::Combine(list) = &f.source
    {
        let mut set = list.clone();
        set.sort_by_key(|&x| anc.rank(x));
        set.dedup();
        for (x, y, key) in unordered_overlaps(&swept, anc, set.into_iter()) {
            let (a, b) = (&phases[x].name, &phases[y].name);
            c.error(
                Diagnostic::error(format!("the final run combines `{a}` and `{b}`, which both vary `{key}`"))
                    .at(f.span, "")
                    .note("their winners would both set it, and neither comes after the other")
                    .help(format!("order them (`phase {b} after {a}`) or combine only one of them")),
            );
        }
    }
}

/// Pairs of phases of `set` (given in topological order) that vary overlapping keys without
/// one coming after the other, with the key (as the later phase writes it), earlier phase
/// first.
///
/// Linear in the size of `set` per key rather than quadratic: the phases of `set` that vary
/// overlapping keys, in topological order, are all ordered exactly when each comes after the
/// one before it (ancestry is transitive), so only neighbours need comparing; each unordered
/// pair of neighbours is a conflict.
fn unordered_overlaps<'t>(
    swept: &[Vec<&'t eval::Target>],
    anc: &Ancestry,
    set: impl Iterator<Item = usize>,
) -> Vec<(usize, usize, String)> {
    let mut by_key: BTreeMap<Key, Vec<(usize, &'t eval::Target)>> = BTreeMap::new();
    for x in set {
        for &t in &swept[x] {
            by_key.entry(t.key).or_default().push((x, t));
        }
    }
    let mut out: Vec<(usize, usize, String)> = Vec::new();
    for members in by_key.values() {
        // A whole key (`schedule`) overlaps each of its arguments; two different arguments
        // (`schedule.warmup`, `schedule.min_lr`) do not overlap.
        let args: BTreeSet<&str> = members.iter().filter_map(|(_, t)| t.arg.as_deref()).collect();
        let groups: Vec<Vec<(usize, &eval::Target)>> = if args.is_empty() {
            vec![members.clone()]
        } else {
            args.iter()
                .map(|a| members.iter().copied().filter(|(_, t)| t.arg.as_deref().is_none_or(|b| b == *a)).collect())
                .collect()
        };
        for mut group in groups {
            // Already in topological order; a phase varying `schedule` and `schedule.warmup`
            // is one member.
            group.dedup_by_key(|(x, _)| *x);
            for pair in group.windows(2) {
                let ((x, _), (y, t)) = (pair[0], pair[1]);
                if !anc.contains(y, x) && !anc.contains(x, y) && !out.iter().any(|(a, b, _)| (*a, *b) == (x, y)) {
                    out.push((x, y, t.path()));
                }
            }
        }
    }
    out.sort_by_key(|&(x, y, _)| (anc.rank(x), anc.rank(y)));
    out
}

/// Dependencies among derived keys of one config: key → (keys it reads, where it is set).
type Deps = BTreeMap<Key, (Vec<Key>, Span)>;

fn add(deps: &mut Deps, b: &Binding) {
    let refs: Vec<Key> = eval::references(&b.value).into_iter().map(|(t, _)| t.key).collect();
    if b.target.arg.is_none() || !deps.contains_key(&b.target.key) {
        deps.insert(b.target.key, (refs, b.span));
    } else if let Some(entry) = deps.get_mut(&b.target.key) {
        entry.0.extend(refs);
    }
}

/// Reports cycles among derived keys (of the root config, and of each phase's and the final
/// run's config with their overrides), and sweeps over `lr` that nothing reads.
pub(super) fn check_derived(c: &mut Checker, study: &Study) {
    let mut root = Deps::new();
    for b in &study.root {
        add(&mut root, b);
    }
    let mut reported = BTreeSet::new();
    cycles(c, &root, &mut reported, false);
    let override_sets = study.phases.iter().map(|p| &p.overrides).chain(study.final_run.iter().map(|f| &f.overrides));
    for overrides in override_sets {
        if overrides.is_empty() {
            continue;
        }
        let mut deps = root.clone();
        for b in overrides {
            add(&mut deps, b);
        }
        cycles(c, &deps, &mut reported, true);
    }

    let reads_lr = study
        .root
        .iter()
        .chain(study.phases.iter().flat_map(|p| &p.overrides))
        .chain(study.final_run.iter().flat_map(|f| &f.overrides))
        .any(|b| eval::references(&b.value).iter().any(|(t, _)| t.key.name() == "lr"));
    if !reads_lr {
        let swept = study
            .phases
            .iter()
            .flat_map(|p| p.sweeps.iter().flat_map(|s| &s.clauses).map(|c| (c.target.key, c.key_span)));
        let found = study.phases.iter().filter_map(|p| p.find.as_ref().map(|f| (f.target.key, f.span)));
        for (key, span) in swept.chain(found) {
            if key.name() == "lr" {
                c.error(
                    Diagnostic::warning("no key is derived from `lr`, so varying it changes nothing")
                        .at(span, "")
                        .help(
                            "derive the learning rates from it: `train { matrix_lr = lr   embedding_lr = lr * 0.1 }`",
                        ),
                );
            }
        }
    }
    unread_params(c, study);
}

/// A declared key varied where only the built-in trainer runs, and no key derived from it: the
/// built-in trainer never reads declared keys, so each variant trains the same model again.
fn unread_params(c: &mut Checker, study: &Study) {
    let bindings = || {
        study
            .root
            .iter()
            .chain(study.phases.iter().flat_map(|p| &p.overrides))
            .chain(study.final_run.iter().flat_map(|f| &f.overrides))
    };
    let mut commands = false;
    let mut visit = |e: &super::ast::Expr| {
        e.walk(&mut |x| commands |= matches!(&x.kind, ExprKind::Call { name, .. } if name.name == "command"));
    };
    bindings().for_each(|b| visit(&b.value));
    study.phases.iter().flat_map(|p| p.sweeps.iter().flat_map(|s| &s.clauses)).for_each(|cl| visit(&cl.values));
    if commands {
        return;
    }
    // Read by a key of lrx's, directly or through declared keys derived from each other.
    let mut read: BTreeSet<&str> = BTreeSet::new();
    loop {
        let before = read.len();
        for b in bindings() {
            let target = b.target.key;
            if target.section() != schema::Section::Params || read.contains(target.name()) {
                read.extend(
                    eval::references(&b.value)
                        .into_iter()
                        .filter(|(t, _)| t.key.section() == schema::Section::Params)
                        .map(|(t, _)| t.key.name()),
                );
            }
        }
        if read.len() == before {
            break;
        }
    }
    for clause in study.phases.iter().flat_map(|p| p.sweeps.iter().flat_map(|s| &s.clauses)) {
        let key = clause.target.key;
        if key.section() == schema::Section::Params && !read.contains(key.name()) {
            c.error(
                Diagnostic::warning(format!(
                    "the built-in trainer never reads `{}`, and no key is derived from it: varying it trains the same model again",
                    key.name()
                ))
                .at(clause.key_span, "")
                .help("declared keys are for `trainer = command(...)`; the built-in trainer sees them through derived keys (`matrix_lr = my_lr`)"),
            );
        }
    }
}

fn cycles(c: &mut Checker, deps: &Deps, reported: &mut BTreeSet<Vec<Key>>, in_block: bool) {
    for &start in deps.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut path = vec![start];
        let mut iters: Vec<usize> = vec![0];
        let mut visited = BTreeSet::new();
        while let (Some(&node), Some(next)) = (path.last(), iters.last_mut()) {
            let reads = deps.get(&node).map_or(&[][..], |(r, _)| r.as_slice());
            if let Some(&dep) = reads.get(*next) {
                *next += 1;
                if dep == start {
                    let mut key = path.clone();
                    key.sort();
                    if reported.insert(key) {
                        let mut names: Vec<String> = path.iter().map(|k| format!("`{}`", k.qualified())).collect();
                        names.push(format!("`{}`", start.qualified()));
                        let span = deps.get(&start).map(|(_, s)| *s).unwrap_or_default();
                        let mut d = Diagnostic::error(format!("derived keys form a cycle: {}", names.join(" -> ")))
                            .at(span, "");
                        if in_block && path.len() == 1 {
                            d = d.help(format!(
                                "to start from the incoming value, write `{} = base ...`",
                                start.qualified()
                            ));
                        }
                        c.error(d);
                    }
                } else if deps.contains_key(&dep) && visited.insert(dep) {
                    path.push(dep);
                    iters.push(0);
                }
            } else {
                path.pop();
                iters.pop();
            }
        }
    }
}

impl Checker {
    pub(super) fn final_run(
        &mut self,
        finals: &[&Final],
        index: &HashMap<String, usize>,
        names: &[&str],
    ) -> Option<FinalDef> {
        let f = finals.first()?;
        for extra in &finals[1..] {
            self.error(Diagnostic::error("the study has two final runs").at(extra.span, "").also(f.span, "first here"));
        }
        let source = match &f.from {
            FinalFrom::Combine(list) => FinalSource::Combine(
                self.phase_refs(list, index, names, |m| format!("the final run combines `{m}`, which is not defined")),
            ),
            FinalFrom::After(list) => {
                if list.len() != 1 {
                    let at = list.get(1).map_or(f.span, |i| i.span);
                    self.error(
                        Diagnostic::error("`final after` takes one phase")
                            .at(at, "")
                            .help("to merge several winners, write `final combine(a, b)`"),
                    );
                }
                let refs = self.phase_refs(&list[..list.len().min(1)], index, names, |m| {
                    format!("the final run comes after `{m}`, which is not defined")
                });
                FinalSource::After(*refs.first()?)
            }
        };
        let mut def =
            FinalDef { source, overrides: Vec::new(), options: Options::default(), objective: None, span: f.span };
        let mut seen = Seen::default();
        for stmt in f.body.iter().flat_map(|b| &b.stmts) {
            match stmt {
                Stmt::Assign(a) => self.assign(a, Ctx::Final, &mut seen, &mut def.overrides, &mut def.options),
                Stmt::Objective(o) => def.objective = Some(objective_def(o)),
                other => self.misplaced(other, "a final block"),
            }
        }
        if let Some(b) = &def.options.baseline {
            self.error(Diagnostic::error("a final run has no baseline to turn off").at(b.span, ""));
        }
        Some(def)
    }

    pub(super) fn check_objectives(&mut self, study: &mut Study) {
        let custom_trainer = study.root.iter().any(|b| {
            b.target.key.name() == "trainer" && !matches!(&b.value.kind, ExprKind::Name(p) if p.is("builtin"))
        });
        if custom_trainer {
            return;
        }
        let mut all: Vec<ObjectiveDef> = vec![study.objective.clone()];
        all.extend(study.phases.iter().filter_map(|p| p.objective.clone()));
        all.extend(study.final_run.iter().filter_map(|f| f.objective.clone()));
        for o in all {
            if !METRICS.contains(&o.metric.as_str()) {
                let mut d = Diagnostic::error(format!("unknown metric `{}`", o.metric));
                let span = o.span.unwrap_or_default();
                d = match schema::suggest(&o.metric, METRICS.iter().copied()) {
                    Some(s) => d.at(span, format!("did you mean `{s}`?")),
                    None => d.at(span, "").help(format!(
                        "the built-in trainer reports {}",
                        METRICS.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                    )),
                };
                self.error(d);
            }
        }
    }
}
