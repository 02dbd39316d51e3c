//! The study graph the engine executes, and its drawings for `lrx graph` (text, Graphviz dot,
//! Mermaid).
//!
//! Each block (a phase, or the final run) is two nodes: its runs, resolved once the winners
//! they need are known, and the selection that decides over them by the block's [`Policy`].
//! An edge `Needs` carries a winner (or a block's runs to its selection): a node whose input
//! failed cannot run. An edge `Order` only orders: the final run starts once every phase has
//! settled, whatever became of the phases it does not need.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use petgraph::Direction;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;

use super::{FinalRun, FinalSource, Phase, PhaseKind, Plan, Prune};

/// A block of the study: a phase, or the final run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Block {
    Phase(String),
    Final,
}

impl Block {
    /// The phase's name, or `final`.
    pub fn name(&self) -> &str {
        match self {
            Block::Phase(name) => name,
            Block::Final => "final",
        }
    }
}

/// How a selection node decides once its block's runs are in (`exec::policy` carries it out).
#[derive(Clone, Debug, PartialEq)]
pub enum Policy {
    /// The best candidate wins.
    Sweep,
    /// Successive halving: every candidate trains to `rungs[0]` steps, the best `keep` go on,
    /// each rung measured on a cooldown branch where `cooldown` and the schedule say so.
    Halving { rungs: Vec<u64>, keep: f64, cooldown: crate::spec::CooldownRule },
    /// An LR range test: the winning change is `key`'s value read off the one run's loss curve.
    RangeTest { key: String, from: f64, to: f64, steps: u64, pick: super::Pick, stop: f64 },
    /// The final run of `combine(...)`: done when its run finished well.
    Combine(Vec<String>),
    /// The final run of `after P`: done when its run finished well.
    After(String),
}

impl Policy {
    fn of_phase(p: &Phase) -> Policy {
        match (&p.kind, &p.prune) {
            (PhaseKind::Find { key, from, to, steps, pick, stop }, _) => {
                Policy::RangeTest { key: key.clone(), from: *from, to: *to, steps: *steps, pick: *pick, stop: *stop }
            }
            (PhaseKind::Sweep, Prune::Halving { rungs, keep, cooldown }) => {
                Policy::Halving { rungs: rungs.clone(), keep: *keep, cooldown: *cooldown }
            }
            (PhaseKind::Sweep, _) => Policy::Sweep,
        }
    }
}

/// A node of the study graph.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A block's candidates, one run per candidate and seed (halving trains survivors again,
    /// further). `candidates` is the plan's count, assuming the first candidate of each phase
    /// it needs wins; the engine resolves the real ones.
    Runs { block: Block, candidates: usize, seeds: usize },
    /// Deciding over a block's runs.
    Select { block: Block, policy: Policy },
}

impl Node {
    pub fn block(&self) -> &Block {
        match self {
            Node::Runs { block, .. } | Node::Select { block, .. } => block,
        }
    }
}

/// What an edge means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// The target needs the source's outcome (a winner, or the runs a selection decides over).
    Needs,
    /// The target only comes after the source.
    Order,
}

/// The study graph, its nodes in topological order, and each block's two nodes.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub dag: DiGraph<Node, Edge>,
    /// Every node, in topological order (phases in the plan's order, then the final run).
    pub order: Vec<NodeIndex>,
    /// Each block's runs node and selection node.
    pub blocks: BTreeMap<Block, (NodeIndex, NodeIndex)>,
}

/// Builds the graph of `phases` (in topological order) and the final run.
pub(super) fn build(phases: &[Phase], final_run: Option<&FinalRun>) -> Graph {
    let mut g = Graph::default();
    let seeds = |repeats: u32, seeds: &Option<Vec<u64>>| seeds.as_ref().map_or(repeats as usize, Vec::len).max(1);
    for p in phases {
        let block = Block::Phase(p.name.clone());
        let runs = g.dag.add_node(Node::Runs {
            block: block.clone(),
            candidates: p.candidate_count,
            seeds: seeds(p.repeats, &p.seeds),
        });
        for a in &p.after {
            if let Some(&(_, select)) = g.blocks.get(&Block::Phase(a.clone())) {
                g.dag.add_edge(select, runs, Edge::Needs);
            }
        }
        let select = g.dag.add_node(Node::Select { block: block.clone(), policy: Policy::of_phase(p) });
        g.dag.add_edge(runs, select, Edge::Needs);
        g.blocks.insert(block, (runs, select));
    }
    if let Some(f) = final_run {
        let runs = g.dag.add_node(Node::Runs { block: Block::Final, candidates: 1, seeds: seeds(f.repeats, &f.seeds) });
        let (sources, policy) = match &f.source {
            FinalSource::Combine(list) => (list.clone(), Policy::Combine(list.clone())),
            FinalSource::After(p) => (vec![p.clone()], Policy::After(p.clone())),
        };
        for p in phases {
            let (_, select) = g.blocks[&Block::Phase(p.name.clone())];
            if !sources.contains(&p.name) {
                g.dag.add_edge(select, runs, Edge::Order);
            }
        }
        for s in &sources {
            if let Some(&(_, select)) = g.blocks.get(&Block::Phase(s.clone())) {
                g.dag.add_edge(select, runs, Edge::Needs);
            }
        }
        let select = g.dag.add_node(Node::Select { block: Block::Final, policy });
        g.dag.add_edge(runs, select, Edge::Needs);
        g.blocks.insert(Block::Final, (runs, select));
    }
    // Nodes were added in the plan's order of phases (topological, ties in source order, from
    // lang's checker), each block's runs before its selection: that order is topological, and
    // the one users see phases listed in (petgraph's `toposort` would give another).
    g.order = g.dag.node_indices().collect();
    debug_assert!(!petgraph::algo::is_cyclic_directed(&g.dag));
    g
}

impl Graph {
    /// The blocks whose winners `node` needs (`Needs` edges from other blocks), in the order
    /// they were written.
    pub fn needs(&self, node: NodeIndex) -> Vec<&Block> {
        let mut edges: Vec<(EdgeIndex, NodeIndex)> = self
            .dag
            .edges_directed(node, Direction::Incoming)
            .filter(|e| *e.weight() == Edge::Needs)
            .map(|e| (e.id(), e.source()))
            .collect();
        edges.sort();
        edges.into_iter().map(|(_, n)| self.dag[n].block()).filter(|b| *b != self.dag[node].block()).collect()
    }

    /// The selection policy of `block`.
    pub fn policy(&self, block: &Block) -> Option<&Policy> {
        match &self.dag[self.blocks.get(block)?.1] {
            Node::Select { policy, .. } => Some(policy),
            Node::Runs { .. } => None,
        }
    }
}

/// A line, box or edge per block, in the graph's order.
struct Drawn<'a> {
    block: &'a Block,
    candidates: usize,
    seeds: usize,
    policy: &'a Policy,
    needs: Vec<&'a str>,
}

fn drawn(plan: &Plan) -> Vec<Drawn<'_>> {
    let g = &plan.graph;
    g.order
        .iter()
        .filter_map(|&n| match &g.dag[n] {
            Node::Runs { block, candidates, seeds } => Some(Drawn {
                block,
                candidates: *candidates,
                seeds: *seeds,
                policy: g.policy(block)?,
                needs: g.needs(n).into_iter().map(Block::name).collect(),
            }),
            Node::Select { .. } => None,
        })
        .collect()
}

fn count(n: usize) -> String {
    format!("{n} candidate{}", if n == 1 { "" } else { "s" })
}

fn kind(plan: &Plan, d: &Drawn<'_>) -> String {
    let swept = plan.phase(d.block.name()).map(|p| p.swept_keys.as_slice()).unwrap_or_default();
    match d.policy {
        Policy::RangeTest { key, .. } => format!("range test of `{key}`"),
        Policy::Combine(list) => format!("combine({})", list.join(", ")),
        Policy::After(p) => format!("after {p}"),
        Policy::Sweep | Policy::Halving { .. } if swept.is_empty() => "baseline only".to_owned(),
        Policy::Sweep | Policy::Halving { .. } => {
            format!("varies {}", swept.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
        }
    }
}

/// One line per phase in topological order, then the final run.
pub fn text(plan: &Plan) -> String {
    let blocks = drawn(plan);
    let width = plan.phases.iter().map(|p| p.name.len()).max().unwrap_or(0).max(5);
    let mut out = String::new();
    for d in &blocks {
        let Block::Phase(name) = d.block else {
            let runs = if d.seeds > 1 { format!(", {} repeats", d.seeds) } else { String::new() };
            let _ = writeln!(out, "final {:width$}  {:>14}  {}{runs}", "", count(d.candidates), kind(plan, d));
            continue;
        };
        let after = if d.needs.is_empty() { String::new() } else { format!("  after {}", d.needs.join(", ")) };
        let _ = writeln!(out, "phase {name:width$}  {:>14}  {}{after}", count(d.candidates), kind(plan, d));
    }
    out
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A Graphviz digraph of phases (boxes) and the final run.
pub fn dot(plan: &Plan) -> String {
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n", quote(&plan.name));
    for d in drawn(plan) {
        let name = quote(d.block.name());
        match d.block {
            Block::Phase(_) => {
                let _ = writeln!(out, "  \"{name}\" [label=\"{name}\\n{}\"];", count(d.candidates));
            }
            Block::Final => {
                let _ =
                    writeln!(out, "  \"final\" [label=\"final\\n{}\", shape=doubleoctagon];", quote(&kind(plan, &d)));
            }
        }
        for a in &d.needs {
            let _ = writeln!(out, "  \"{}\" -> \"{name}\";", quote(a));
        }
    }
    out.push_str("}\n");
    out
}

/// A Mermaid flowchart of phases and the final run.
pub fn mermaid(plan: &Plan) -> String {
    let id = |b: &str| if b == "final" { "final".to_owned() } else { format!("p_{b}") };
    let mut out = String::from("flowchart LR\n");
    for d in drawn(plan) {
        let name = d.block.name();
        match d.block {
            Block::Phase(_) => {
                let _ = writeln!(out, "  {}[\"{name}<br/>{}\"]", id(name), count(d.candidates));
            }
            Block::Final => {
                let _ = writeln!(out, "  final[[\"final<br/>{}\"]]", kind(plan, &d));
            }
        }
        for a in &d.needs {
            let _ = writeln!(out, "  {} --> {}", id(a), id(name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn blocks_are_runs_then_selection_with_needs_and_order_edges_forward() {
        let study = "train { matrix_lr = 0.04  steps = 10 }\nphase a { vary matrix_lr in [0.02, 0.08] }\n\
                     phase b after a { vary embedding_lr in [0.3] prune = halving(rungs = [5, 10], keep = 1/2) }\n\
                     phase c { vary matrix_lr in [0.03] }\nfinal after b { repeats = 2 }\n";
        let plan = Plan::compile(study, Path::new("s.lrx")).unwrap_or_else(|f| panic!("{}", f.render(false)));
        let g = &plan.graph;
        let node = |b: &str| g.blocks[&if b == "final" { Block::Final } else { Block::Phase(b.to_owned()) }];
        let edge = |from: NodeIndex, to: NodeIndex| g.dag.find_edge(from, to).map(|e| g.dag[e]);
        assert_eq!(edge(node("a").1, node("b").0), Some(Edge::Needs), "b's runs need a's winner");
        assert_eq!(edge(node("b").1, node("final").0), Some(Edge::Needs));
        assert_eq!(edge(node("a").1, node("final").0), Some(Edge::Order), "the final run comes after every phase");
        assert_eq!(edge(node("c").1, node("final").0), Some(Edge::Order));
        for b in ["a", "b", "c", "final"] {
            assert_eq!(edge(node(b).0, node(b).1), Some(Edge::Needs), "{b}'s selection decides over its runs");
        }
        assert_eq!(
            g.policy(&Block::Phase("b".into())),
            Some(&Policy::Halving { rungs: vec![5, 10], keep: 0.5, cooldown: crate::spec::CooldownRule::Auto })
        );
        assert_eq!(g.policy(&Block::Final), Some(&Policy::After("b".into())));
        assert!(matches!(g.dag[node("final").0], Node::Runs { candidates: 1, seeds: 2, .. }));
        // The engine's order is topological: every edge goes forward in it.
        let rank: BTreeMap<NodeIndex, usize> = g.order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        assert_eq!(rank.len(), g.dag.node_count());
        assert!(g.dag.raw_edges().iter().all(|e| rank[&e.source()] < rank[&e.target()]));
    }
}
