//! Keys a study declares for its own script (`params {}`): typed by their value, varied,
//! gridded, zipped, derived and zoomed like lrx's own, part of each run's identity, and a typo
//! or an undeclared use is an error with a "did you mean".

use std::path::Path;

use lrx::plan::{Candidate, Plan};
use lrx::spec::value::Value;

fn plan(src: &str) -> Plan {
    match Plan::compile(src, Path::new("study.lrx")) {
        Ok(p) => p,
        Err(f) => panic!("{}", f.render(false)),
    }
}

/// Every error of a study as (message, label or help, line, column).
fn errors(src: &str) -> Vec<(String, usize, usize)> {
    match Plan::compile(src, Path::new("t.lrx")) {
        Ok(_) => Vec::new(),
        Err(f) => f
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                let (l, c) = d.line_col(src).unwrap_or((0, 0));
                (d.render(src, "t.lrx", false), l, c)
            })
            .collect(),
    }
}

fn param(c: &Candidate, name: &str) -> serde_json::Value {
    c.config.params.get(name).cloned().unwrap_or_else(|| panic!("no `{name}` in {:?}", c.config.params))
}

const STUDY: &str = r#"params {
  dropout  = 0.1
  data_dir = "data/my corpus; $(rm -rf x).txt"
  layers2  = 4
  head_lr  = lr * 0.5
  use_ema  = false
}

train {
  trainer = command("python3 train.py --dropout {dropout} --data {data_dir} --head-lr {head_lr} --out {out}")
  lr      = 0.2
}

phase a {
  vary dropout in [0.0, 0.3]
  vary lr in [0.4]
}

phase b after a {
  grid {
    layers2 in [2, 8]
    dropout in [base, base * 2]
  }
}

phase c after a {
  zip {
    data_dir in ["a b", "c"]
    use_ema  in [true, false]
  }
}
"#;

#[test]
#[allow(clippy::many_single_char_names, reason = "phases a, b, c and their plan p, winners w")]
fn declared_keys_vary_grid_zip_derive_and_zoom() {
    let p = plan(STUDY);
    let a: Vec<Candidate> =
        p.resolve_phase("a", &std::collections::BTreeMap::default()).unwrap().into_iter().map(Result::unwrap).collect();
    let names: Vec<&str> = a.iter().map(|c| c.variant.as_str()).collect();
    assert_eq!(names, ["baseline", "dropout=0.0", "dropout=0.3", "lr=0.4"]);
    assert_eq!(param(&a[0], "dropout"), 0.1);
    assert_eq!(param(&a[0], "data_dir"), "data/my corpus; $(rm -rf x).txt");
    assert_eq!(param(&a[0], "layers2"), 4);
    assert_eq!(param(&a[0], "use_ema"), false);
    assert_eq!(param(&a[2], "dropout"), 0.3);
    // Derived from `lr`, evaluated last on each run's config.
    assert_eq!(param(&a[0], "head_lr"), 0.1);
    assert_eq!(param(&a[3], "head_lr"), 0.2);

    // `dropout = 0.3` wins `a`; `b` zooms around it with `base`.
    let mut w = std::collections::BTreeMap::new();
    w.insert("a".to_owned(), a[2].changes.clone());
    let b: Vec<Candidate> = p.resolve_phase("b", &w).unwrap().into_iter().map(Result::unwrap).collect();
    let names: Vec<&str> = b.iter().map(|c| c.variant.as_str()).collect();
    assert_eq!(
        names,
        [
            "baseline",
            "layers2=2,dropout=0.3",
            "layers2=2,dropout=0.6",
            "layers2=8,dropout=0.3",
            "layers2=8,dropout=0.6"
        ]
    );
    assert_eq!(param(&b[4], "layers2"), 8);
    let c: Vec<Candidate> = p.resolve_phase("c", &w).unwrap().into_iter().map(Result::unwrap).collect();
    assert_eq!(c.len(), 3);
    assert_eq!((param(&c[1], "data_dir"), param(&c[1], "use_ema")), ("a b".into(), true.into()));
    assert_eq!(param(&c[1], "dropout"), 0.3, "the winner's changes flow downstream");

    // A run's identity holds its declared keys; a winner applied again keeps them.
    let again = lrx::plan::apply(&c[1].config, &[("layers2".to_owned(), Value::Int(9))]).unwrap();
    assert_eq!(param(&Candidate { config: again, ..c[1].clone() }, "data_dir"), "a b");
    assert_ne!(
        serde_json::to_string(&a[0].config).unwrap(),
        serde_json::to_string(&a[1].config).unwrap(),
        "the serde form the key hashes differs"
    );
}

#[test]
fn a_study_without_declared_keys_keeps_its_serde_form() {
    let p = plan("train {\n  steps = 10\n}\n\nphase a {\n  vary steps in [20]\n}\n");
    let a = p.resolve_phase("a", &std::collections::BTreeMap::default()).unwrap();
    let json = serde_json::to_value(&a[0].as_ref().unwrap().config).unwrap();
    assert!(json.get("params").is_none(), "old cache keys stay valid: {json}");
}

#[test]
fn typos_undeclared_uses_and_wrong_types_are_errors_with_their_place() {
    let e = errors("params {\n  dropout = 0.1\n}\n\nphase a {\n  vary dropuot in [0.2]\n}\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].0.contains("unknown key `dropuot`") && e[0].0.contains("did you mean `dropout`?"), "{}", e[0].0);
    assert_eq!((e[0].1, e[0].2), (6, 8));

    let e = errors("params {\n  dropout = 0.1\n}\n\ntrain {\n  matrix_lr = dropuot * 2\n}\n");
    assert!(e[0].0.contains("unknown key `dropuot`") && e[0].0.contains("did you mean `dropout`?"), "{e:?}");

    // Another study's declared key is not this one's.
    plan("params {\n  warmup_iters = 10\n}\n\nphase a {\n  vary warmup_iters in [20]\n}\n");
    let e = errors("phase a {\n  vary warmup_iters in [20]\n}\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].0.contains("unknown key `warmup_iters`"), "{e:?}");

    // Typed by the declared value.
    let e = errors("params {\n  layers2 = 4\n}\n\nphase a {\n  vary layers2 in [0.5]\n}\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].0.contains("layers2 = 0.5"), "{e:?}");
    assert_eq!((e[0].1, e[0].2), (6, 20));

    // lrx's own names, dotted names, lists and twice-declared names are refused.
    let e = errors("params {\n  matrix_lr = 0.1\n  a.b = 1\n  xs = [1, 2]\n  d = 1\n  d = 2\n  out = 1\n}\n");
    let messages: Vec<&str> = e.iter().map(|(m, _, _)| m.lines().next().unwrap_or_default()).collect();
    assert_eq!(
        messages,
        [
            "error: `matrix_lr` is already a name of lrx",
            "error: a declared key is one name, not `a.b`",
            "error: `xs = [1,2]`: a declared key holds a number, an integer, a string or a boolean",
            "error: `d` is declared twice",
            "error: `out` is already a name of lrx",
        ]
    );

    // A placeholder names a declared key, or a near miss is suggested.
    let e = errors(
        "params {\n  dropout = 0.1\n}\n\ntrain {\n  trainer = command(\"python3 t.py {dropout} {params.dropout} {dropot}\")\n}\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].0.contains("`{dropot}` is not a key of the run") && e[0].0.contains("did you mean `{dropout}`?"),
        "{e:?}"
    );
}

#[test]
fn a_params_block_formats_and_round_trips() {
    let src = "params {\n  dropout = 0.1\n  data_dir = \"data/owt\"\n}\n";
    let formatted = lrx::lang::fmt::format(src).unwrap();
    assert_eq!(formatted, "params {\n  dropout  = 0.1\n  data_dir = \"data/owt\"\n}\n");
    assert_eq!(lrx::lang::fmt::format(&formatted).unwrap(), formatted);
}

#[test]
fn varying_a_declared_key_only_the_built_in_trainer_runs_is_a_warning() {
    let warnings = |src: &str| -> Vec<String> {
        let p = plan(src);
        p.warnings.iter().map(|d| d.message.clone()).collect()
    };
    let study = "params {\n  a = 1.0\n  b = a * 2\n}\n\nphase p {\n  vary a in [2.0]\n}\n";
    assert_eq!(
        warnings(study),
        ["the built-in trainer never reads `a`, and no key is derived from it: varying it trains the same model again"]
    );
    // Read through `b` by a key of lrx's, or run by a script: no warning.
    assert!(warnings(&format!("{study}\ntrain {{\n  matrix_lr = b\n}}\n")).is_empty());
    assert!(warnings(&format!("{study}\ntrain {{\n  trainer = command(\"sh t.sh {{a}}\")\n}}\n")).is_empty());
}
