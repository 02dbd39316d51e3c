//! Golden tests: every example study's whole chain resolved with made-up winners (each phase's
//! last candidate wins). What `lrx plan` shows of them is snapshotted from the real command
//! (`tests/cli/plan.rs`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use lrx::plan::{Changes, PhaseKind, Plan};
use lrx::spec::value::Value;

fn load(name: &str) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines").join(format!("{name}.lrx"));
    let source = std::fs::read_to_string(&path).unwrap();
    Plan::compile(&source, Path::new(&format!("pipelines/{name}.lrx")))
        .unwrap_or_else(|f| panic!("{}", f.render(false)))
}

/// Resolves every phase in order, letting each phase's last candidate win.
fn chain(plan: &Plan) -> String {
    let mut winners: BTreeMap<String, Changes> = BTreeMap::new();
    let mut out = String::new();
    for phase in &plan.phases {
        let cands = plan.resolve_phase(&phase.name, &winners).unwrap();
        let _ = writeln!(out, "phase {}", phase.name);
        let mut last = Vec::new();
        for c in cands {
            let c = c.unwrap();
            let t = &c.config.train;
            let _ = writeln!(
                out,
                "  {:<40} matrix_lr={} embedding_lr={} schedule={:?} budget={:?} seeds={:?}",
                c.variant, t.matrix_lr, t.embedding_lr, t.schedule, t.budget, c.seeds
            );
            last = c.changes;
        }
        // A range test's winner is what the engine picks from its history, not its changes.
        if let PhaseKind::Find { key, from, to, pick, .. } = &phase.kind {
            let divisor = match pick {
                lrx::plan::Pick::Min { divisor } => *divisor,
                lrx::plan::Pick::Steepest => 1.0,
            };
            last = vec![(key.clone(), Value::Float((from * to).sqrt() / divisor))];
        }
        winners.insert(phase.name.clone(), last);
    }
    if plan.final_run.is_some() {
        let f = plan.resolve_final(&winners).unwrap();
        let t = &f.config.train;
        let _ = writeln!(
            out,
            "final {} {:?}\n  matrix_lr={} embedding_lr={} schedule={:?} budget={:?} seeds={:?}",
            f.variant, f.changes, t.matrix_lr, t.embedding_lr, t.schedule, t.budget, f.seeds
        );
    }
    out
}

fn golden(name: &str) {
    let plan = load(name);
    insta::assert_snapshot!(format!("{name}_chain"), chain(&plan));
}

#[test]
fn quickstart() {
    golden("quickstart");
}

#[test]
fn lr_sweep() {
    golden("lr_sweep");
}

#[test]
fn zoom() {
    golden("zoom");
}

#[test]
fn muon_adamw() {
    golden("muon_adamw");
}

#[test]
fn cosine() {
    golden("cosine");
}

#[test]
fn lr_finder() {
    golden("lr_finder");
}

#[test]
fn interaction() {
    golden("interaction");
}
