//! Fuzz target `metric_name`: see `diff4steer_fuzz::metric_name` (fuzz/harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| diff4steer_fuzz::metric_name(data));
