//! The `lrx` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    lrx::cli::main()
}
