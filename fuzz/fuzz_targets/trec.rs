//! Fuzz target `trec`: see `diff4steer_fuzz::trec` (fuzz/harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| diff4steer_fuzz::trec(data));
