//! One denoiser evaluation at a scalar σ, shared by every sampler.

use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::{tensor_util::sigma_column, Conditioning, Denoiser};

use crate::Result;

/// A denoiser bound to a fixed conditioning: what a sampler needs at each step.
pub(crate) struct BoundDenoiser<'a, B: Backend, D> {
    pub denoiser: &'a D,
    pub cond: &'a Conditioning<B>,
}

impl<B: Backend, D: Denoiser<B>> BoundDenoiser<'_, B, D> {
    /// D(x, σ, cond) with one σ for every row.
    pub fn denoise(&self, x: Tensor<B, 2>, sigma: f64) -> Result<Tensor<B, 2>> {
        let [batch, _] = x.dims();
        let sigma = sigma_column::<B>(sigma, batch, &x.device());
        Ok(self.denoiser.denoise(x, sigma, self.cond)?)
    }

    /// The probability-flow ODE derivative dx/dσ = (x − D(x, σ))/σ (Karras et al. 2022, Eq. 4 with
    /// s = 1, σ(t) = t), and the denoised estimate it came from.
    pub fn ode_derivative(
        &self,
        x: Tensor<B, 2>,
        sigma: f64,
    ) -> Result<(Tensor<B, 2>, Tensor<B, 2>)> {
        let denoised = self.denoise(x.clone(), sigma)?;
        let derivative = (x - denoised.clone()).div_scalar(sigma);
        Ok((derivative, denoised))
    }
}
