//! Projection of denoised estimates onto a sphere, for L2-normalised target spaces.

use burn::tensor::{backend::Backend, Tensor};

use crate::tensor_util::row_norm;
use crate::{Conditioning, CoreError, Denoiser, Result};

/// Projects each denoised estimate onto the sphere of radius `radius` (1 for L2-normalised target
/// spaces such as MuLan or CLAP): D̃ = radius · D / ‖D‖. Our design: the data lie on the sphere, so
/// E[x₀ | x_σ] lies inside it, and projecting keeps the final samples on it.
#[derive(Debug, Clone)]
pub struct SphereProjection<D> {
    inner: D,
    radius: f64,
}

impl<D> SphereProjection<D> {
    /// Projection onto the unit sphere.
    pub fn unit(inner: D) -> Self {
        Self { inner, radius: 1.0 }
    }

    /// Projection onto the sphere of radius `radius`.
    ///
    /// # Errors
    /// [`CoreError::InvalidParameter`] for a radius that is not finite and positive.
    pub fn with_radius(inner: D, radius: f64) -> Result<Self> {
        if !(radius.is_finite() && radius > 0.0) {
            return Err(CoreError::InvalidParameter {
                name: "radius",
                value: radius,
                reason: "must be finite and positive",
            });
        }
        Ok(Self { inner, radius })
    }
}

impl<B: Backend, D: Denoiser<B>> Denoiser<B> for SphereProjection<D> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn cond_dim(&self) -> usize {
        self.inner.cond_dim()
    }

    fn target_scaling(&self) -> Option<&crate::TargetScaling> {
        self.inner.target_scaling()
    }

    fn denoise(
        &self,
        x: Tensor<B, 2>,
        sigma: Tensor<B, 1>,
        cond: &Conditioning<B>,
    ) -> Result<Tensor<B, 2>> {
        let x_hat = self.inner.denoise(x, sigma, cond)?;
        Ok(x_hat.clone() / row_norm(x_hat) * self.radius)
    }
}
