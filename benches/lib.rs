//! Shared pieces of the diff4steer benches: the CPU backend chosen by cargo features, and the
//! reference workloads.

#![forbid(unsafe_code)]

pub mod reference_mlp;
pub mod workload;

/// The CPU backend of this build: burn-ndarray when a `cpu-ndarray…` feature is chosen, burn-flex
/// otherwise (the project's default).
#[cfg(feature = "cpu-ndarray")]
pub type CpuBackend = burn::backend::NdArray<f32>;
/// The CPU backend of this build: burn-ndarray when a `cpu-ndarray…` feature is chosen, burn-flex
/// otherwise (the project's default).
#[cfg(not(feature = "cpu-ndarray"))]
pub type CpuBackend = burn::backend::Flex<f32>;

/// A label naming the CPU backend variant this binary was built with, for bench IDs.
pub fn cpu_backend_label() -> &'static str {
    if cfg!(feature = "cpu-flex") {
        "flex+simd+rayon"
    } else if cfg!(feature = "cpu-flex-single") {
        "flex+simd"
    } else if cfg!(feature = "cpu-ndarray-openblas") {
        "ndarray+simd+threads+openblas"
    } else if cfg!(feature = "cpu-ndarray-simd-threads") {
        "ndarray+simd+threads"
    } else if cfg!(feature = "cpu-ndarray-threads") {
        "ndarray+threads"
    } else if cfg!(feature = "cpu-ndarray-simd") {
        "ndarray+simd"
    } else if cfg!(feature = "cpu-ndarray-plain") {
        "ndarray-plain"
    } else {
        "flex+simd+rayon(default)"
    }
}
