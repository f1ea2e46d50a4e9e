//! Inversion: the probability-flow ODE run from data up to noise.

use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::{Conditioning, Denoiser, Sigmas};

use crate::sampling::{validate_start, BoundDenoiser};
use crate::Result;

/// Integrates the probability-flow ODE dx/dσ = (x − D(x, σ, c))/σ (Karras et al. 2022, Eq. 4)
/// *upwards* with Heun's method over the positive values of `sigmas` in increasing order, from
/// `x` (`[batch, dim]`, taken as the state at σ_min) to σ_max. Deterministic: the result is the
/// noise that the same ODE maps back to `x`, so running a Heun [`crate::Sampler`] on the same grid
/// from it regenerates `x` (up to discretisation error), or, under an edited condition, an edited
/// version of `x` (our design, beyond the paper; DDIM inversion in EDM form).
///
/// `x` is in catalogue units (mapped into the denoiser's space first where it has a
/// [`Denoiser::target_scaling`]); the result is a state at σ_max in the denoiser's space, what
/// [`crate::Sampler::run`] starts from.
///
/// # Errors
/// Shape and finiteness errors as in [`crate::Sampler::run`].
pub fn invert<B: Backend, D: Denoiser<B>>(
    denoiser: &D,
    x: Tensor<B, 2>,
    cond: &Conditioning<B>,
    sigmas: &Sigmas,
) -> Result<Tensor<B, 2>> {
    let cond = validate_start(denoiser, &x, cond)?;
    let x = match denoiser.target_scaling() {
        None => x,
        Some(map) => map.to_model(x)?,
    };
    let model = BoundDenoiser {
        denoiser,
        cond: &cond,
    };
    let up = sigmas.ascending_positive();
    let mut x = x;
    for pair in up.windows(2) {
        let (sigma, sigma_next) = (pair[0], pair[1]);
        let dt = sigma_next - sigma;
        let (d, _) = model.ode_derivative(x.clone(), sigma)?;
        let x_euler = x.clone() + d.clone().mul_scalar(dt);
        let (d_next, _) = model.ode_derivative(x_euler, sigma_next)?;
        x = x + (d + d_next).mul_scalar(0.5 * dt);
    }
    Ok(x)
}
