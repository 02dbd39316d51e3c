//! Every example study checks clean (no errors, no warnings) and is canonically formatted.

use std::path::Path;

use lrx::plan::Plan;

fn pipelines() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lrx"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_pipeline_checks_clean() {
    let files = pipelines();
    assert!(files.len() >= 7, "{files:?}");
    for path in files {
        let plan = Plan::load(&path).unwrap_or_else(|e| match e {
            lrx::plan::LoadError::Invalid(f) => panic!("{}", f.render(false)),
            other @ lrx::plan::LoadError::Io { .. } => panic!("{other}"),
        });
        assert!(
            plan.warnings.is_empty(),
            "{}: {}",
            path.display(),
            lrx::diag::render_all(&plan.warnings, &plan.source, "", false)
        );
    }
}

#[test]
fn every_pipeline_is_formatted() {
    for path in pipelines() {
        let source = std::fs::read_to_string(&path).unwrap();
        assert_eq!(lrx::lang::fmt::format(&source).unwrap(), source, "{} is not formatted", path.display());
    }
}

#[test]
fn quickstart_stays_small() {
    // A tiny model; its token budget is checked on `lrx plan --json` (`tests/cli/plan.rs`).
    let plan = Plan::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.lrx")).unwrap();
    let root = plan.root_config();
    assert_eq!((root.model.d_model, root.model.layers, root.model.experts, root.model.seq_len), (64, 2, 4, 64));
}
