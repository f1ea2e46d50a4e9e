//! Fuzz target `checkpoint`: see `diff4steer_fuzz::checkpoint` (fuzz/harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| diff4steer_fuzz::checkpoint(data));
