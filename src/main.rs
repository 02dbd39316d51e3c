//! The `lrx` binary: everything lives in the library; this file only tunes the allocator.

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    lrx::cli::main()
}

/// Training allocates and frees the same large tensor buffers every step. By default glibc hands
/// buffers over 128 KiB–32 MiB back to the kernel (munmap, heap trimming) and page-faults them in
/// again: 200,000–480,000 faults in a 60-step run of a 4-expert d128 model, 6–10 % of its time
/// (`perf stat -e page-faults`). Serving them from the heap and never trimming it keeps them
/// mapped; the process stays at its peak memory, which training reaches in its first step.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "mallopt is FFI")]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets malloc's tuning parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20); // glibc's maximum
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
