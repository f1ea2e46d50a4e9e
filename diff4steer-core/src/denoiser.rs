//! The denoiser abstraction D(x; σ, cond) ≈ E[x₀ | x_σ = x] that every sampler and guidance
//! wrapper is written against.

use burn::tensor::{backend::Backend, Tensor};

use crate::{Conditioning, CoreError, Result, TargetScaling};

/// A denoiser D(x; σ, cond) ≈ E[x₀ | x_σ = x, cond] for the variance-exploding corruption
/// x_σ = x₀ + σ·ε, ε ~ N(0, I) (Karras et al. 2022, Eq. 2–3).
///
/// Shapes: `x` is `[batch, dim]`, `sigma` is `[batch]` (one noise level per row), `cond` has `batch`
/// rows. The output is `[batch, dim]`. Guidance and steering wrap a denoiser and are denoisers
/// themselves, so samplers never need to know about them.
///
/// A denoiser works in its own space; [`Denoiser::target_scaling`] says how that space maps to
/// catalogue units when they differ (a prior trained on standardised targets). Wrappers report
/// their inner denoiser's map, and seed generators apply it to what they return.
pub trait Denoiser<B: Backend> {
    /// Width of the data (target embedding) space.
    fn dim(&self) -> usize;

    /// Width of a query embedding in the conditioning.
    fn cond_dim(&self) -> usize;

    /// Estimates the clean data for each row.
    ///
    /// # Errors
    /// [`CoreError::DimMismatch`] / [`CoreError::BatchMismatch`] when the shapes of `x`, `sigma`
    /// and `cond` do not fit this denoiser or each other (see [`check_denoiser_inputs`]).
    fn denoise(
        &self,
        x: Tensor<B, 2>,
        sigma: Tensor<B, 1>,
        cond: &Conditioning<B>,
    ) -> Result<Tensor<B, 2>>;

    /// The map from this denoiser's space to catalogue units (catalogue = shift + scale ⊙ own),
    /// or `None` when it works in catalogue units (the default).
    fn target_scaling(&self) -> Option<&TargetScaling> {
        None
    }
}

impl<B: Backend, D: Denoiser<B> + ?Sized> Denoiser<B> for &D {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn cond_dim(&self) -> usize {
        (**self).cond_dim()
    }
    fn denoise(
        &self,
        x: Tensor<B, 2>,
        sigma: Tensor<B, 1>,
        cond: &Conditioning<B>,
    ) -> Result<Tensor<B, 2>> {
        (**self).denoise(x, sigma, cond)
    }
    fn target_scaling(&self) -> Option<&TargetScaling> {
        (**self).target_scaling()
    }
}

impl<B: Backend, D: Denoiser<B> + ?Sized> Denoiser<B> for Box<D> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn cond_dim(&self) -> usize {
        (**self).cond_dim()
    }
    fn denoise(
        &self,
        x: Tensor<B, 2>,
        sigma: Tensor<B, 1>,
        cond: &Conditioning<B>,
    ) -> Result<Tensor<B, 2>> {
        (**self).denoise(x, sigma, cond)
    }
    fn target_scaling(&self) -> Option<&TargetScaling> {
        (**self).target_scaling()
    }
}

/// Checks the shapes of a denoiser call: `x` is `[batch, dim]`, `sigma` is `[batch]`, `cond` has
/// `batch` rows of width `cond_dim`. Implementations call this first.
///
/// # Errors
/// [`CoreError::DimMismatch`] or [`CoreError::BatchMismatch`] naming the offending argument.
pub fn check_denoiser_inputs<B: Backend, D: Denoiser<B> + ?Sized>(
    denoiser: &D,
    x: &Tensor<B, 2>,
    sigma: &Tensor<B, 1>,
    cond: &Conditioning<B>,
) -> Result<()> {
    let [batch, dim] = x.dims();
    if dim != denoiser.dim() {
        return Err(CoreError::DimMismatch {
            what: "denoiser input x",
            expected: denoiser.dim(),
            got: dim,
        });
    }
    if sigma.dims()[0] != batch {
        return Err(CoreError::BatchMismatch {
            what: "sigma (one per row of x)",
            expected: batch,
            got: sigma.dims()[0],
        });
    }
    if cond.batch() != batch {
        return Err(CoreError::BatchMismatch {
            what: "conditioning (one row per row of x)",
            expected: batch,
            got: cond.batch(),
        });
    }
    if cond.cond_dim() != denoiser.cond_dim() {
        return Err(CoreError::DimMismatch {
            what: "conditioning embedding",
            expected: denoiser.cond_dim(),
            got: cond.cond_dim(),
        });
    }
    Ok(())
}
