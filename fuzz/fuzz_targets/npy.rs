//! Fuzz target `npy`: see `diff4steer_fuzz::npy` (fuzz/harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| diff4steer_fuzz::npy(data));
