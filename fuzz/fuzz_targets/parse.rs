//! Fuzzes the language front end and the checker: any text must check (or fail to) without
//! panicking, every diagnostic must point inside the text, and whatever parses must format to
//! text that parses to the same tree, idempotently.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// Every diagnostic has a main span, and every span lies inside the text.
fn located(diagnostics: &[lrx::diag::Diagnostic], text: &str) {
    for d in diagnostics {
        assert!(d.primary_span().is_some(), "`{}` has no location", d.message);
        for l in &d.labels {
            let s = l.span;
            assert!(s.start <= s.end && s.end <= text.len(), "`{}` points at {}..{}, outside {} bytes", d.message, s.start, s.end, text.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match lrx::plan::Plan::compile(text, Path::new("fuzz.lrx")) {
        Ok(plan) => located(&plan.warnings, text),
        Err(failure) => {
            assert!(failure.errors() > 0, "refused without an error");
            located(&failure.diagnostics, text);
        }
    }
    let _ = lrx::lang::eval_standalone(text);
    let _ = lrx::lang::parse_assignment(text);
    if let Ok(tree) = lrx::lang::parse(text) {
        let once = lrx::lang::fmt::format(text).expect("what parses formats");
        let again = lrx::lang::parse(&once).expect("formatted text parses");
        assert_eq!(tree, again, "formatting changed the tree:\n{once}");
        assert_eq!(lrx::lang::fmt::format(&once).expect("formats"), once, "formatting is not idempotent");
    }
});
