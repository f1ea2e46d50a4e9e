//! Euler's method on the probability-flow ODE.

use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::Denoiser;

use super::evaluation::BoundDenoiser;
use crate::Result;

/// One Euler step of the probability-flow ODE dx/dσ = (x − D(x, σ))/σ from σ to σ_next
/// (Karras et al. 2022, Algorithm 1 without the second-order correction; one network evaluation).
/// Returns the new state and the denoised estimate at σ.
pub(crate) fn euler_step<B: Backend, D: Denoiser<B>>(
    model: &BoundDenoiser<'_, B, D>,
    x: Tensor<B, 2>,
    sigma: f64,
    sigma_next: f64,
) -> Result<(Tensor<B, 2>, Tensor<B, 2>)> {
    let (derivative, denoised) = model.ode_derivative(x.clone(), sigma)?;
    Ok((x + derivative.mul_scalar(sigma_next - sigma), denoised))
}
