//! Euler–Maruyama on the reverse-time variance-exploding SDE.

use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::{Denoiser, NoiseSource};

use super::evaluation::BoundDenoiser;
use crate::Result;

/// One Euler–Maruyama step of the reverse SDE dx = −2σ·∇log p_σ(x) dσ + √(2σ) dω̄ with
/// ∇log p_σ(x) = (D(x, σ) − x)/σ² (Song et al. 2021, Eq. 6, VE form; Karras et al. 2022, Eq. 6
/// with β(t) = σ̇/σ), from σ down to σ_next:
///
/// x_next = x + 2·(σ − σ_next)/σ·(D(x, σ) − x) + √(2σ·(σ − σ_next))·ε.
///
/// One network evaluation. Returns the new state and the denoised estimate at σ.
pub(crate) fn euler_maruyama_step<B: Backend, D: Denoiser<B>>(
    model: &BoundDenoiser<'_, B, D>,
    x: Tensor<B, 2>,
    sigma: f64,
    sigma_next: f64,
    noise: &mut dyn NoiseSource<B>,
) -> Result<(Tensor<B, 2>, Tensor<B, 2>)> {
    let denoised = model.denoise(x.clone(), sigma)?;
    let d_sigma = sigma - sigma_next;
    let eps = noise.normal(x.dims(), &x.device());
    let drift = (denoised.clone() - x.clone()).mul_scalar(2.0 * d_sigma / sigma);
    Ok((
        x + drift + eps.mul_scalar((2.0 * sigma * d_sigma).sqrt()),
        denoised,
    ))
}
