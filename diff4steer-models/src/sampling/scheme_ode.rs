//! The general deterministic sampler of EDM (Algorithm 1) for schemes with a scale s(t).

use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::{Conditioning, CoreError, Denoiser, DiffusionScheme, NoiseSource};

use super::{validate_start, BoundDenoiser};
use crate::Result;

/// First- or second-order integration in [`sample_scheme_ode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeOdeMethod {
    /// Euler (one evaluation per step).
    Euler,
    /// Heun with the last step Euler (two evaluations per step).
    Heun,
}

/// Karras et al. 2022, Algorithm 1, for a [`DiffusionScheme`] with σ(t) and scale s(t): from
/// x_0 ~ N(0, σ(t_0)²·s(t_0)² I) integrate the probability-flow ODE in t,
///
/// dx/dt = (σ̇(t)/σ(t) + ṡ(t)/s(t))·x − σ̇(t)·s(t)/σ(t)·D(x/s(t); σ(t)),
///
/// over the scheme's time steps t_0 > … > t_{N−1} > t_N = 0. With the VP scheme this is the
/// DDIM-like VP ODE of Table 1; the σ-parametrised [`super::Sampler`] is the s = 1, σ(t) = t case.
///
/// # Errors
/// [`CoreError::InvalidParameter`] for `steps < 2` or invalid scheme parameters; shape errors as in
/// [`super::Sampler::run`].
pub fn sample_scheme_ode<B: Backend, D: Denoiser<B>>(
    scheme: &DiffusionScheme,
    steps: usize,
    method: SchemeOdeMethod,
    denoiser: &D,
    cond: &Conditioning<B>,
    noise: &mut dyn NoiseSource<B>,
) -> Result<Tensor<B, 2>> {
    let mut times = scheme.time_steps(steps)?;
    times.push(0.0);
    let device = cond.embeddings().device();
    let t0 = times[0];
    let mut x = noise
        .normal([cond.batch(), denoiser.dim()], &device)
        .mul_scalar(scheme.sigma(t0) * scheme.scale(t0));
    let cond = validate_start(denoiser, &x, cond)?;
    let model = BoundDenoiser {
        denoiser,
        cond: &cond,
    };
    let derivative =
        |x: Tensor<B, 2>, t: f64| -> Result<Tensor<B, 2>> {
            let (sigma, s) = (scheme.sigma(t), scheme.scale(t));
            if !(sigma > 0.0 && s > 0.0) {
                return Err(CoreError::InvalidParameter {
                    name: "sigma(t)",
                    value: sigma,
                    reason: "the scheme must have positive σ(t) and s(t) before the last step",
                }
                .into());
            }
            let (sigma_dot, s_dot) = (scheme.sigma_deriv(t), scheme.scale_deriv(t));
            let denoised = model.denoise(x.clone().div_scalar(s), sigma)?;
            Ok(x.mul_scalar(sigma_dot / sigma + s_dot / s)
                - denoised.mul_scalar(sigma_dot * s / sigma))
        };
    for pair in times.windows(2) {
        let (t, t_next) = (pair[0], pair[1]);
        let d = derivative(x.clone(), t)?;
        let x_euler = x.clone() + d.clone().mul_scalar(t_next - t);
        x = if method == SchemeOdeMethod::Heun && t_next > 0.0 {
            let d_next = derivative(x_euler, t_next)?;
            x + (d + d_next).mul_scalar(0.5 * (t_next - t))
        } else {
            x_euler
        };
    }
    Ok(x)
}
