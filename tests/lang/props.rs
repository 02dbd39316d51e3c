//! Properties of formatting over generated studies: `fmt` is idempotent, and a formatted
//! file parses to the same tree (spans aside) with the same comments.

use proptest::prelude::*;

use lrx::lang::{fmt, parse};

fn ws() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", " ", "  ", "\t", "    "])
}

fn nonempty_ws() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", "  ", "\t", "     "])
}

fn comment() -> impl Strategy<Value = String> {
    prop::option::of("[a-z =#\"\\[]{0,12}").prop_map(|c| c.map_or(String::new(), |c| format!("  # {c}")))
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "matrix_lr",
        "steps",
        "schedule.warmup",
        "d_model",
        "data.tokens",
        "lr",
        "x_1",
        "adam_betas",
    ])
    .prop_map(str::to_owned)
}

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..100_000).prop_map(|n| n.to_string()),
        (1u32..999, 1u32..4).prop_map(|(a, b)| format!("{a}_{b:0>3}")),
        (0u32..1000).prop_map(|n| format!("0.{n}")),
        (1u32..9, 1u32..12).prop_map(|(a, e)| format!("{a}e-{e}")),
        prop::sample::select(vec!["true", "false", "base", "lr", "muon_adamw", "schedule.warmup", "none"])
            .prop_map(str::to_owned),
        (1u32..90, prop::sample::select(vec!["s", "m", "h"])).prop_map(|(n, u)| format!("{n}{u}")),
        "[a-z \\\\\"#]{0,6}".prop_map(|s| {
            let escaped: String = s
                .chars()
                .map(|c| match c {
                    '"' => "\\\"".to_owned(),
                    '\\' => "\\\\".to_owned(),
                    c => c.to_string(),
                })
                .collect();
            format!("\"{escaped}\"")
        }),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(vec!["+", "-", "*", "/"]), inner.clone(), ws(), ws())
                .prop_map(|(a, op, b, s1, s2)| format!("{a}{s1}{op}{s2}{b}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (inner.clone(), ws()).prop_map(|(a, s)| format!("({s}{a}{s})")),
            (inner.clone(), inner.clone(), ws()).prop_map(|(a, b, s)| format!("({a},{s}{b})")),
            (prop::collection::vec(inner.clone(), 0..4), ws(), any::<bool>()).prop_map(|(items, s, trailing)| {
                let mut t = items.join(&format!(",{s}"));
                if trailing && !items.is_empty() {
                    t.push(',');
                }
                format!("[{t}]")
            }),
            (prop::collection::vec((inner.clone(), comment()), 1..4), any::<bool>()).prop_map(|(items, trailing)| {
                let n = items.len();
                let body: Vec<String> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, (e, c))| {
                        let comma = if i + 1 < n || trailing { "," } else { "" };
                        format!("\n      {e}{comma}{c}")
                    })
                    .collect();
                format!("[{}\n    ]", body.concat())
            }),
            (
                prop::sample::select(vec!["cosine", "log", "lin", "bpe"]),
                prop::collection::vec((prop::option::of("[a-z]{1,4}"), inner), 0..3)
            )
                .prop_map(|(f, args)| {
                    let a: Vec<String> = args
                        .into_iter()
                        .map(|(n, v)| match n {
                            Some(n) => format!("{n} = {v}"),
                            None => v,
                        })
                        .collect();
                    format!("{f}({})", a.join(", "))
                }),
        ]
    })
}

fn stmt() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (key(), ws(), ws(), expr()).prop_map(|(k, a, b, v)| format!("{k}{a}={b}{v}")),
        2 => (key(), nonempty_ws(), expr()).prop_map(|(k, s, v)| format!("vary{s}{k} in {v}")),
        1 => (prop::sample::select(vec!["grid", "zip"]), prop::collection::vec((key(), expr(), comment()), 0..3)).prop_map(|(g, cs)| {
            let body = cs.into_iter().fold(String::new(), |acc, (k, v, c)| acc + &format!("\n    {k} in {v}{c}"));
            format!("{g} {{{body}\n  }}")
        }),
        1 => prop::sample::select(vec!["objective minimize val_loss", "objective maximize val_accuracy"]).prop_map(str::to_owned),
        1 => (expr(), expr()).prop_map(|(a, b)| format!("find lr from {a} to {b} (steps = 10, pick = min / 10)")),
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (prop::collection::vec(stmt(), 1..3), comment()).prop_map(|(s, c)| format!("  {}{c}", s.join("   "))),
        1 => Just(String::new()),
        1 => "[a-z ]{0,10}".prop_map(|c| format!("  # {c}")),
    ]
}

fn item() -> impl Strategy<Value = String> {
    let head = prop_oneof![
        prop::sample::select(vec!["model", "data", "train"]).prop_map(str::to_owned),
        (prop::sample::select(vec!["a", "b", "warmup"]), prop::option::of(prop::sample::select(vec!["a", "b, c"])))
            .prop_map(|(n, a)| match a {
                Some(a) => format!("phase {n} after {a}"),
                None => format!("phase {n}"),
            }),
        prop::sample::select(vec!["final combine(a, b)", "final after a"]).prop_map(str::to_owned),
    ];
    prop_oneof![
        5 => (head, comment(), prop::collection::vec(line(), 0..5)).prop_map(|(h, c, lines)| {
            if lines.is_empty() { format!("{h} {{}}") } else { format!("{h} {{{c}\n{}\n}}", lines.join("\n")) }
        }),
        1 => Just("objective minimize val_loss".to_owned()),
        1 => Just("final after a".to_owned()),
        1 => "[a-z ]{0,10}".prop_map(|c| format!("# {c}")),
    ]
}

fn file() -> impl Strategy<Value = String> {
    prop::collection::vec((item(), prop::sample::select(vec!["\n", "\n\n", "\n\n\n"])), 0..5)
        .prop_map(|items| items.into_iter().fold(String::new(), |acc, (i, sep)| acc + &i + sep))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400), ..ProptestConfig::default() })]

    #[test]
    fn formatting_is_idempotent_and_keeps_the_meaning(src in file()) {
        let Ok(before) = parse(&src) else { return Ok(()) };
        let once = fmt::format(&src).unwrap();
        let after = parse(&once).unwrap_or_else(|d| panic!("formatted text does not parse: {}\n---\n{once}", d.message));
        prop_assert_eq!(&before, &after, "formatted:\n{}", once);
        let twice = fmt::format(&once).unwrap();
        prop_assert_eq!(&once, &twice);
    }
}

#[test]
fn generated_studies_mostly_parse() {
    // Guards the generator: a property over inputs that never parse proves nothing.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let parsed = (0..200).filter(|_| parse(&file().new_tree(&mut runner).unwrap().current()).is_ok()).count();
    assert!(parsed > 100, "only {parsed} of 200 generated files parse");
}

/// Pieces of the language, to splice into real studies.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "\n",
    " ",
    "#",
    "\"",
    ".",
    "-",
    "*",
    "/",
    "+",
    "base",
    "vary",
    "grid",
    "zip",
    "find",
    "in",
    "from",
    "to",
    "after",
    "phase",
    "final",
    "combine",
    "objective",
    "lr",
    "schedule.warmup",
    "1e-6",
    "0",
    "1/0",
    "999999999999999999999",
    "log(",
    "lin(",
    "n = ",
    "step = ",
    "min / 10",
    "halving(rungs = [",
    "repeats = 0",
    "base * -1",
    "é",
    "\u{feff}",
    "\r\n",
];

/// A real study with a few random edits.
fn mutated() -> impl Strategy<Value = String> {
    let studies: Vec<&'static str> = vec![
        include_str!("../../pipelines/muon_adamw.lrx"),
        include_str!("../../pipelines/zoom.lrx"),
        include_str!("../../pipelines/lr_finder.lrx"),
        include_str!("../../pipelines/cosine.lrx"),
    ];
    (
        prop::sample::select(studies),
        prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, prop::sample::select(TOKENS.to_vec())), 1..6),
    )
        .prop_map(|(s, edits)| {
            let mut text = s.to_owned();
            for (at, cut, token) in edits {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                let mut j = (i + cut).min(text.len());
                while !text.is_char_boundary(j) {
                    j += 1;
                }
                text.replace_range(i..j, token);
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300), ..ProptestConfig::default() })]

    /// No input makes the front end panic; what parses still formats faithfully.
    #[test]
    fn nothing_panics_on_edited_studies(src in mutated()) {
        let _ = lrx::plan::Plan::compile(&src, std::path::Path::new("m.lrx"));
        if let Ok(tree) = parse(&src) {
            let once = fmt::format(&src).unwrap();
            prop_assert_eq!(parse(&once).ok(), Some(tree), "formatted:\n{}", once);
        }
    }

    #[test]
    fn nothing_panics_on_any_text(src in "\\PC{0,200}") {
        let _ = lrx::plan::Plan::compile(&src, std::path::Path::new("a.lrx"));
        let _ = lrx::lang::eval_standalone(&src);
        let _ = lrx::lang::parse_assignment(&src);
    }
}
