//! Fuzzes the language front end: any text must check (or fail to) without panicking, and
//! whatever parses must format to text that parses to the same tree, idempotently.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = lrx::plan::Plan::compile(text, Path::new("fuzz.lrx"));
    let _ = lrx::lang::eval_standalone(text);
    let _ = lrx::lang::parse_assignment(text);
    if let Ok(tree) = lrx::lang::parse(text) {
        let once = lrx::lang::fmt::format(text).expect("what parses formats");
        let again = lrx::lang::parse(&once).expect("formatted text parses");
        assert_eq!(tree, again, "formatting changed the tree:\n{once}");
        assert_eq!(lrx::lang::fmt::format(&once).expect("formats"), once, "formatting is not idempotent");
    }
});
