//! The backends this crate is built for, named once so that programs pick them at their edge.
//!
//! `CpuBackend` is burn-flex (SIMD + rayon) when the `flex` feature is on (the default, chosen by
//! measurement: see BENCHMARKS.md), burn-ndarray when only `ndarray` is. GPU backends are behind
//! the `wgpu` and `cuda` features.

/// The default CPU backend (f32).
#[cfg(feature = "flex")]
pub type CpuBackend = burn::backend::Flex<f32>;
/// The default CPU backend (f32).
#[cfg(all(feature = "ndarray", not(feature = "flex")))]
pub type CpuBackend = burn::backend::NdArray<f32>;

/// [`CpuBackend`] with automatic differentiation (training, likelihoods).
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub type CpuAutodiff = burn::backend::Autodiff<CpuBackend>;

/// The wgpu backend (Vulkan, Metal, DX12; f32).
#[cfg(feature = "wgpu")]
pub type WgpuBackend = burn::backend::Wgpu<f32>;

/// The CUDA backend (f32).
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda<f32>;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Bool, Int, Tensor};
use std::sync::{Mutex, MutexGuard};

/// burn's backends keep one process-wide random state, which weight initialisation and dropout
/// draw from. Everything in this crate that seeds or draws from it (training runs, checkpoint
/// loading) holds this lock meanwhile, so concurrent work in one process stays reproducible. Code
/// outside the crate that draws from the same backend's RNG concurrently is not covered.
static BACKEND_RNG: Mutex<()> = Mutex::new(());

/// Takes the backend-RNG lock (see the static above); a poisoned lock is taken over, since it
/// guards no data.
pub(crate) fn backend_rng_lock() -> MutexGuard<'static, ()> {
    BACKEND_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Draws every lazily initialised parameter of `module` now, in the module's field order.
///
/// burn's `Param`s made by `LinearConfig::init` and the like are lazy: their random weights are
/// drawn from the backend's process-wide RNG on first use, not when the module is built. A module
/// built under [`backend_rng_lock`] must therefore be materialised before the lock is released,
/// or its draws happen later, unguarded, and interleave with (and shift) another thread's seeded
/// stream — a training run elsewhere in the process would then start from other weights.
pub(crate) fn materialise<B: Backend, M: Module<B>>(module: M) -> M {
    struct Draw;
    impl<B: Backend> ModuleVisitor<B> for Draw {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let _ = param.val();
        }
        fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
            let _ = param.val();
        }
        fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Draw);
    module
}
