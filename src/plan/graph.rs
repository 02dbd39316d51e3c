//! The run DAG (candidates → winner selection → the candidates and final run that need the
//! winner) and its drawings for `lrx graph`: text, Graphviz dot, and Mermaid.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use petgraph::graph::{DiGraph, NodeIndex};

use super::{FinalRun, FinalSource, Node, Phase, PhaseKind, Plan};

/// Builds the DAG: one node per candidate (all its seeds), one per phase's winner selection,
/// one for the final run; an edge means "is needed by".
pub(super) fn build(
    phases: &[Phase],
    final_run: Option<&FinalRun>,
) -> (DiGraph<Node, ()>, BTreeMap<String, NodeIndex>) {
    let mut g = DiGraph::new();
    let mut winners: BTreeMap<String, NodeIndex> = BTreeMap::new();
    for p in phases {
        let w = g.add_node(Node::Winner { phase: p.name.clone() });
        for index in 0..p.candidate_count {
            let c = g.add_node(Node::Candidate { phase: p.name.clone(), index });
            g.add_edge(c, w, ());
            for a in &p.after {
                if let Some(&aw) = winners.get(a) {
                    g.add_edge(aw, c, ());
                }
            }
        }
        winners.insert(p.name.clone(), w);
    }
    if let Some(f) = final_run {
        let node = g.add_node(Node::Final);
        let direct: Vec<&String> = match &f.source {
            FinalSource::Combine(list) => list.iter().collect(),
            FinalSource::After(p) => vec![p],
        };
        for name in direct {
            if let Some(&w) = winners.get(name) {
                g.add_edge(w, node, ());
            }
        }
    }
    (g, winners)
}

fn count(n: usize) -> String {
    format!("{n} candidate{}", if n == 1 { "" } else { "s" })
}

fn kind(p: &Phase) -> String {
    match &p.kind {
        PhaseKind::Find { key, .. } => format!("range test of `{key}`"),
        PhaseKind::Sweep if p.swept_keys.is_empty() => "baseline only".to_owned(),
        PhaseKind::Sweep => {
            format!("varies {}", p.swept_keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
        }
    }
}

fn final_label(f: &FinalRun) -> String {
    match &f.source {
        FinalSource::Combine(list) => format!("combine({})", list.join(", ")),
        FinalSource::After(p) => format!("after {p}"),
    }
}

/// One line per phase in topological order, then the final run.
pub fn text(plan: &Plan) -> String {
    let width = plan.phases.iter().map(|p| p.name.len()).max().unwrap_or(0).max(5);
    let mut out = String::new();
    for p in &plan.phases {
        let after = if p.after.is_empty() { String::new() } else { format!("  after {}", p.after.join(", ")) };
        let _ = writeln!(out, "phase {:width$}  {:>14}  {}{after}", p.name, count(p.candidate_count), kind(p));
    }
    if let Some(f) = &plan.final_run {
        let runs = if f.repeats > 1 { format!(", {} repeats", f.repeats) } else { String::new() };
        let _ = writeln!(out, "final {:width$}  {:>14}  {}{runs}", "", count(1), final_label(f));
    }
    out
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A Graphviz digraph of phases (boxes) and the final run.
pub fn dot(plan: &Plan) -> String {
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n", quote(&plan.name));
    for p in &plan.phases {
        let _ =
            writeln!(out, "  \"{}\" [label=\"{}\\n{}\"];", quote(&p.name), quote(&p.name), count(p.candidate_count));
        for a in &p.after {
            let _ = writeln!(out, "  \"{}\" -> \"{}\";", quote(a), quote(&p.name));
        }
    }
    if let Some(f) = &plan.final_run {
        let _ = writeln!(out, "  \"final\" [label=\"final\\n{}\", shape=doubleoctagon];", quote(&final_label(f)));
        let from: Vec<&String> = match &f.source {
            FinalSource::Combine(list) => list.iter().collect(),
            FinalSource::After(p) => vec![p],
        };
        for a in from {
            let _ = writeln!(out, "  \"{}\" -> \"final\";", quote(a));
        }
    }
    out.push_str("}\n");
    out
}

/// A Mermaid flowchart of phases and the final run.
pub fn mermaid(plan: &Plan) -> String {
    let id = |name: &str| format!("p_{name}");
    let mut out = String::from("flowchart LR\n");
    for p in &plan.phases {
        let _ = writeln!(out, "  {}[\"{}<br/>{}\"]", id(&p.name), p.name, count(p.candidate_count));
        for a in &p.after {
            let _ = writeln!(out, "  {} --> {}", id(a), id(&p.name));
        }
    }
    if let Some(f) = &plan.final_run {
        let _ = writeln!(out, "  final[[\"final<br/>{}\"]]", final_label(f));
        let from: Vec<&String> = match &f.source {
            FinalSource::Combine(list) => list.iter().collect(),
            FinalSource::After(p) => vec![p],
        };
        for a in from {
            let _ = writeln!(out, "  {} --> final", id(a));
        }
    }
    out
}
