//! EDM's second-order sampler: Heun's method with optional stochastic churn.

use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::{Denoiser, NoiseSource};

use super::evaluation::BoundDenoiser;
use crate::{ModelError, Result};
use diff4steer_core::CoreError;

/// The stochastic "churn" of Karras et al. 2022, Algorithm 2: at each step with
/// σ_i ∈ [S_tmin, S_tmax] the state is first noised up to σ̂ = σ_i·(1 + γ_i), with
/// γ_i = min(S_churn/N, √2 − 1), adding √(σ̂² − σ_i²)·S_noise·ε.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// S_churn: overall amount of stochasticity (0 = deterministic Heun).
    pub s_churn: f64,
    /// S_tmin: churn only where σ ≥ S_tmin.
    pub s_tmin: f64,
    /// S_tmax: churn only where σ ≤ S_tmax.
    pub s_tmax: f64,
    /// S_noise: inflation of the added noise's standard deviation.
    pub s_noise: f64,
}

impl Default for Churn {
    /// [`Churn::EDM_IMAGENET`].
    fn default() -> Self {
        Self::EDM_IMAGENET
    }
}

impl Churn {
    /// EDM's ImageNet-64 settings (Karras et al. 2022, Table 5): S_churn = 40, S_tmin = 0.05,
    /// S_tmax = 50, S_noise = 1.003.
    pub const EDM_IMAGENET: Churn = Churn {
        s_churn: 40.0,
        s_tmin: 0.05,
        s_tmax: 50.0,
        s_noise: 1.003,
    };

    /// No churn: deterministic Heun (Algorithm 1).
    pub const NONE: Churn = Churn {
        s_churn: 0.0,
        s_tmin: 0.0,
        s_tmax: f64::INFINITY,
        s_noise: 1.0,
    };

    /// Checks that every parameter is in range.
    ///
    /// # Errors
    /// [`ModelError::Core`] with an invalid-parameter error.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value, reason| {
            Err(ModelError::Core(CoreError::InvalidParameter {
                name,
                value,
                reason,
            }))
        };
        if !(self.s_churn.is_finite() && self.s_churn >= 0.0) {
            return bad("s_churn", self.s_churn, "must be finite and non-negative");
        }
        if self.s_tmin.is_nan() || self.s_tmin < 0.0 {
            return bad("s_tmin", self.s_tmin, "must be non-negative");
        }
        if self.s_tmax.is_nan() || self.s_tmax < self.s_tmin {
            return bad("s_tmax", self.s_tmax, "must be at least s_tmin");
        }
        if !(self.s_noise.is_finite() && self.s_noise > 0.0) {
            return bad("s_noise", self.s_noise, "must be finite and positive");
        }
        Ok(())
    }

    /// γ_i for a step at σ in a schedule of `steps` steps.
    fn gamma(&self, sigma: f64, steps: usize) -> f64 {
        if self.s_churn > 0.0 && (self.s_tmin..=self.s_tmax).contains(&sigma) {
            (self.s_churn / steps as f64).min(std::f64::consts::SQRT_2 - 1.0)
        } else {
            0.0
        }
    }
}

/// One step of Karras et al. 2022, Algorithm 2 (stochastic churn, then Heun's method from σ̂ to
/// σ_next; two network evaluations). With [`Churn::NONE`] it is the deterministic Heun sampler.
/// `sigma_next` must be positive: the final step to σ = 0 is the sampler's final denoise.
pub(crate) fn heun_step<B: Backend, D: Denoiser<B>>(
    model: &BoundDenoiser<'_, B, D>,
    x: Tensor<B, 2>,
    sigma: f64,
    sigma_next: f64,
    churn: &Churn,
    steps: usize,
    noise: &mut dyn NoiseSource<B>,
) -> Result<(Tensor<B, 2>, Tensor<B, 2>)> {
    let gamma = churn.gamma(sigma, steps);
    let sigma_hat = sigma * (1.0 + gamma);
    let x_hat = if gamma > 0.0 {
        let eps = noise.normal(x.dims(), &x.device());
        x + eps.mul_scalar((sigma_hat.powi(2) - sigma.powi(2)).sqrt() * churn.s_noise)
    } else {
        x
    };
    let (d, denoised) = model.ode_derivative(x_hat.clone(), sigma_hat)?;
    let dt = sigma_next - sigma_hat;
    let x_euler = x_hat.clone() + d.clone().mul_scalar(dt);
    let (d_next, _) = model.ode_derivative(x_euler, sigma_next)?;
    Ok((x_hat + (d + d_next).mul_scalar(0.5 * dt), denoised))
}
