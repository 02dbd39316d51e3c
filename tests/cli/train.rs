//! End-to-end tests of `lrx train`: the real binary on a small public-domain fixture
//! (`tests/fixtures/genesis.txt`, the opening of the King James Bible's Genesis).

use std::path::Path;
use std::process::Output;

use super::harness::lrx;

const TINY: &[&str] = &[
    "corpus=\"tests/fixtures/genesis.txt\"",
    "d_model=32",
    "layers=1",
    "heads=2",
    "d_ff=64",
    "experts=4",
    "top_k=2",
    "seq_len=32",
    "batch_size=4",
    "steps=12",
    "eval_every=6",
    "log_every=3",
    "val_batches=2",
    "data.tokens=50_000",
    "router_noise=0.01",
    "schedule=cosine(warmup=0.1, min_lr=0.05)",
];

fn train(extra: &[&str], flags: &[&str], cache: &Path) -> Output {
    let mut cmd = lrx(Path::new(env!("CARGO_MANIFEST_DIR")));
    cmd.arg("train").arg("--cache").arg(cache);
    for s in TINY.iter().chain(extra) {
        cmd.arg("--set").arg(s);
    }
    cmd.args(flags).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The parts of the JSON that do not depend on timing.
fn numerics(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    for k in ["seconds", "tokens_per_sec"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v["metrics"].as_object_mut().unwrap().remove("acc_per_min");
    for row in v["history"].as_array_mut().unwrap() {
        let row = row.as_object_mut().unwrap();
        row.remove("elapsed");
        row.remove("tokens_per_sec");
    }
    v
}

#[test]
fn json_output_is_complete_and_identical_across_processes() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let a = train(&[], &["--json", "-q", "--out", out.path().to_str().unwrap()], cache.path());
    assert!(a.status.success(), "{}", stderr(&a));
    let b = train(&[], &["--json"], cache.path());
    assert!(b.status.success(), "{}", stderr(&b));
    let ja: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let jb: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(ja["status"], "ok");
    assert_eq!(ja["steps"], 12);
    assert_eq!(ja["tokens"], 12 * 4 * 32);
    assert!(ja["tokens_per_sec"].as_f64().unwrap() > 0.0);
    assert!(ja["params"]["total"].as_u64().unwrap() > ja["params"]["active"].as_u64().unwrap());
    for k in ["train_loss", "val_loss", "val_accuracy", "val_ppl", "val_bpb", "aux_loss", "acc_per_min"] {
        assert!(ja["metrics"][k].is_number(), "metrics.{k} in {}", ja["metrics"]);
    }
    let steps: Vec<u64> = ja["history"].as_array().unwrap().iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![3, 6, 9, 12]);
    assert!(ja["history"][1]["val_loss"].is_number() && ja["history"][0].get("val_loss").is_none());
    assert_eq!(numerics(&ja), numerics(&jb), "two processes, same numbers");
    assert!(stderr(&a).is_empty(), "-q: {}", stderr(&a));
    assert!(stderr(&b).contains("step 6/12"), "plain progress lines off a terminal: {}", stderr(&b));
    // --out: the same JSON and a CSV of the history.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(saved, ja);
    let csv = std::fs::read_to_string(out.path().join("history.csv")).unwrap();
    assert!(csv.starts_with("step,"), "{csv}");
    assert_eq!(csv.lines().count(), 5);
}

#[test]
fn table_output_and_bad_input_exit_codes() {
    let cache = tempfile::tempdir().unwrap();
    let ok = train(&["steps=2", "eval_every=100"], &[], cache.path());
    assert!(ok.status.success(), "{}", stderr(&ok));
    let table = String::from_utf8_lossy(&ok.stdout);
    assert!(table.starts_with("status "), "{table}");
    assert!(table.contains("val_loss "), "{table}");

    let typo = train(&["matrx_lr=0.1"], &[], cache.path());
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        stderr(&typo).contains("unknown key `matrx_lr`") && stderr(&typo).contains("did you mean `matrix_lr`?"),
        "{}",
        stderr(&typo)
    );

    let missing = train(&["corpus=\"no/such/file.txt\""], &[], cache.path());
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("does not exist"), "{}", stderr(&missing));

    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.txt");
    std::fs::write(&small, "In the beginning.").unwrap();
    let too_small = train(&[&format!("corpus={:?}", small.to_str().unwrap())], &[], cache.path());
    assert_eq!(too_small.status.code(), Some(1));
    assert!(stderr(&too_small).contains("too few for windows of `seq_len + 1`"), "{}", stderr(&too_small));

    if !cfg!(feature = "cuda") {
        let cuda = train(&[], &["--device", "cuda"], cache.path());
        assert_eq!(cuda.status.code(), Some(2));
        assert!(stderr(&cuda).contains("needs a build with the `cuda` feature"), "{}", stderr(&cuda));
    }

    let file = lrx(Path::new(env!("CARGO_MANIFEST_DIR"))).args(["train", "no-such-study.lrx"]).output().unwrap();
    assert_eq!(file.status.code(), Some(2));
    assert!(stderr(&file).contains("cannot read `no-such-study.lrx`"), "{}", stderr(&file));
}

#[test]
fn diverged_runs_are_results_not_crashes() {
    let cache = tempfile::tempdir().unwrap();
    let o = train(
        &[
            "optimizer=sgd",
            "matrix_lr=1e4",
            "embedding_lr=1e4",
            "unembedding_lr=1e4",
            "grad_clip=0",
            "schedule=constant",
        ],
        &["--json"],
        cache.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["status"], "diverged");
    assert!(j["diverged_at"].as_u64().unwrap() >= 1);
}

#[test]
fn set_of_two_budgets_or_of_a_block_option_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    // TINY sets `steps`: a `tokens` budget as well used to replace it silently.
    let both = train(&["tokens=5000"], &[], cache.path());
    assert_eq!(both.status.code(), Some(1), "{}", stderr(&both));
    assert!(stderr(&both).contains("`tokens` and `steps` are both set: a run has one budget"), "{}", stderr(&both));
    // `repeats` is a phase's option: it used to be accepted and ignored.
    let repeats = train(&["repeats=3"], &[], cache.path());
    assert_eq!(repeats.status.code(), Some(1), "{}", stderr(&repeats));
    assert!(stderr(&repeats).contains("`repeats` is an option of a phase, not of a run"), "{}", stderr(&repeats));
    assert!(stderr(&repeats).contains("--set seed=N"), "{}", stderr(&repeats));
}

#[test]
fn a_cached_candidate_is_read_from_the_cache_not_trained_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("corpus.txt"), super::harness::corpus()).unwrap();
    std::fs::write(
        d.join("study.lrx"),
        "model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = \"corpus.txt\"  tokens = 20_000 }
train { batch_size = 4  steps = 6  eval_every = 3  log_every = 3  val_batches = 2 }
objective minimize val_loss
phase lr {
  vary matrix_lr in [0.08]
}
",
    )
    .unwrap();
    let args = ["train", "study.lrx", "--phase", "lr", "--variant", "matrix_lr=0.08", "--json"];
    let fresh = lrx(d).args(args).output().unwrap();
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));
    assert!(!stderr(&fresh).contains("cached run"), "nothing is cached yet: {}", stderr(&fresh));
    let run = lrx(d).args(["run", "study.lrx", "-q"]).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let cached = lrx(d).args(args).output().unwrap();
    assert_eq!(cached.status.code(), Some(0), "{}", stderr(&cached));
    assert!(stderr(&cached).contains("cached run"), "{}", stderr(&cached));
    assert!(!stderr(&cached).contains("step 3/6"), "it did not train: {}", stderr(&cached));
    let a: serde_json::Value = serde_json::from_slice(&fresh.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&cached.stdout).unwrap();
    assert_eq!(a["key"], b["key"]);
    assert_eq!(numerics(&a), numerics(&b), "the cached run is the run `train` would train");
}

#[test]
fn a_failed_download_of_the_default_corpus_is_an_environment_error() {
    // Without a network (a namespace of its own), the default corpus cannot be fetched.
    if !std::process::Command::new("unshare").args(["-n", "true"]).status().is_ok_and(|s| s.success()) {
        return; // no network namespaces here (not root)
    }
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["-n", env!("CARGO_BIN_EXE_lrx"), "train", "--set", "steps=1", "--cache"])
        .arg(cache.path())
        .env_remove("LRX_CACHE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot fetch the default corpus"), "{}", stderr(&out));
}
