//! DPM-Solver++(2M), the multistep second-order solver in data-prediction form.

use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::Denoiser;

use super::evaluation::BoundDenoiser;
use crate::Result;

/// DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095, Algorithm 2) for the VE parametrisation,
/// with λ = −ln σ and h = λ_next − λ:
///
/// x_next = (σ_next/σ)·x − (e^{−h} − 1)·D̄,  D̄ = (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1},  r = h_prev/h,
///
/// and D̄ = D_i on the first step (first order). One network evaluation per step: the previous
/// denoised estimate is reused.
#[derive(Default)]
pub(crate) struct DpmSolverPlusPlus2M<B: Backend> {
    /// (σ of the previous step, its denoised estimate).
    previous: Option<(f64, Tensor<B, 2>)>,
}

impl<B: Backend> DpmSolverPlusPlus2M<B> {
    /// One step from σ to σ_next > 0.
    pub fn step<D: Denoiser<B>>(
        &mut self,
        model: &BoundDenoiser<'_, B, D>,
        x: Tensor<B, 2>,
        sigma: f64,
        sigma_next: f64,
    ) -> Result<(Tensor<B, 2>, Tensor<B, 2>)> {
        let denoised = model.denoise(x.clone(), sigma)?;
        let h = sigma.ln() - sigma_next.ln();
        let combined = match &self.previous {
            None => denoised.clone(),
            Some((sigma_prev, denoised_prev)) => {
                let h_prev = sigma_prev.ln() - sigma.ln();
                let r = h_prev / h;
                denoised.clone().mul_scalar(1.0 + 1.0 / (2.0 * r))
                    - denoised_prev.clone().mul_scalar(1.0 / (2.0 * r))
            }
        };
        let x_next = x.mul_scalar(sigma_next / sigma) - combined.mul_scalar((-h).exp_m1());
        self.previous = Some((sigma, denoised.clone()));
        Ok((x_next, denoised))
    }
}
