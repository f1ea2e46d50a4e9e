//! EDM preconditioning: the σ-dependent scalings that let one network serve every noise level.

use burn::tensor::{backend::Backend, Tensor};

/// EDM preconditioning (Karras et al. 2022, Table 1 "ours" and Eq. 7), written once and used by the
/// denoiser's forward pass and by the training loss:
///
/// - c_skip(σ) = σ_d² / (σ² + σ_d²)
/// - c_out(σ) = σ·σ_d / √(σ² + σ_d²)
/// - c_in(σ) = 1 / √(σ² + σ_d²)
/// - c_noise(σ) = ¼·ln σ
/// - loss weight λ(σ) = (σ² + σ_d²) / (σ·σ_d)²
///
/// so that D(x, σ) = c_skip·x + c_out·F(c_in·x, c_noise) and λ·c_out² = 1 (unit-variance targets
/// for F at every σ). σ_d is the standard deviation of the training targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdmPreconditioning {
    /// σ_d, the data standard deviation.
    pub sigma_data: f64,
}

/// The four scalings for a batch, each `[batch, 1]` so they broadcast over the embedding.
#[derive(Debug, Clone)]
pub struct Scalings<B: Backend> {
    /// c_skip per row.
    pub c_skip: Tensor<B, 2>,
    /// c_out per row.
    pub c_out: Tensor<B, 2>,
    /// c_in per row.
    pub c_in: Tensor<B, 2>,
    /// c_noise per row.
    pub c_noise: Tensor<B, 2>,
}

impl EdmPreconditioning {
    /// The scalings for σ of shape `[batch]`.
    pub fn scalings<B: Backend>(&self, sigma: Tensor<B, 1>) -> Scalings<B> {
        let batch = sigma.dims()[0];
        let sigma = sigma.reshape([batch, 1]);
        let sd2 = self.sigma_data * self.sigma_data;
        let total = sigma.clone().square().add_scalar(sd2); // σ² + σ_d²
        let root = total.clone().sqrt();
        Scalings {
            c_skip: total.recip().mul_scalar(sd2),
            c_out: (sigma.clone() / root.clone()).mul_scalar(self.sigma_data),
            c_in: root.recip(),
            c_noise: sigma.log().mul_scalar(0.25),
        }
    }

    /// λ(σ) = (σ² + σ_d²)/(σ·σ_d)² for σ of shape `[batch]`, as `[batch, 1]`.
    pub fn loss_weight<B: Backend>(&self, sigma: Tensor<B, 1>) -> Tensor<B, 2> {
        let batch = sigma.dims()[0];
        let sigma = sigma.reshape([batch, 1]);
        let sd2 = self.sigma_data * self.sigma_data;
        sigma.clone().square().add_scalar(sd2) / sigma.square().mul_scalar(sd2)
    }

    /// λ(σ) on the host.
    pub fn loss_weight_f64(&self, sigma: f64) -> f64 {
        let sd2 = self.sigma_data * self.sigma_data;
        (sigma * sigma + sd2) / (sigma * sigma * sd2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend as B;
    use diff4steer_core::tensor_util::to_host_f32;

    #[test]
    fn scalings_match_the_formulas_and_unit_variance_identity() {
        let p = EdmPreconditioning { sigma_data: 0.5 };
        let sigmas = [0.002f64, 0.3, 1.0, 80.0];
        let t = Tensor::<B, 1>::from_floats([0.002f32, 0.3, 1.0, 80.0], &Default::default());
        let s = p.scalings(t.clone());
        let host = |x: Tensor<B, 2>| to_host_f32(x).unwrap();
        let (skip, out, cin, noise) =
            (host(s.c_skip), host(s.c_out), host(s.c_in), host(s.c_noise));
        let weight = host(p.loss_weight(t));
        for (i, &sigma) in sigmas.iter().enumerate() {
            let total: f64 = sigma * sigma + 0.25;
            let close = |a: f32, b: f64| ((a as f64) - b).abs() <= 1e-5 * b.abs().max(1.0);
            assert!(close(skip[i], 0.25 / total));
            assert!(close(out[i], sigma * 0.5 / total.sqrt()));
            assert!(close(cin[i], 1.0 / total.sqrt()));
            assert!(close(noise[i], 0.25 * sigma.ln()));
            assert!(close(weight[i], p.loss_weight_f64(sigma)));
            // λ·c_out² = 1: the network's regression target has unit weight at every σ.
            assert!((weight[i] as f64 * (out[i] as f64).powi(2) - 1.0).abs() < 1e-4);
        }
    }
}
