//! Log-likelihood of given embeddings under a diffusion prior, by the probability-flow ODE.

use burn::tensor::{backend::AutodiffBackend, Tensor};
use diff4steer_core::tensor_util::{matrix_from_host, sigma_column, to_host_f32};
use diff4steer_core::{Conditioning, CoreError, Denoiser, SeededNoise, Sigmas};

use crate::sampling::validate_start;
use crate::Result;

/// How the divergence ∇·f = tr(∂f/∂x) is computed at each ODE evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceEstimator {
    /// The exact trace, one backward pass per dimension: for small dimensions.
    Exact,
    /// Hutchinson's unbiased estimator tr(J) ≈ mean_p v_pᵀ J v_p with Rademacher probes v_p
    /// (Hutchinson 1989; FFJORD, Grathwohl et al. 2019): `probes` backward passes per evaluation.
    /// The probes are drawn once per sample from `seed` (one stream per sample, so the estimate
    /// does not depend on the batch) and kept for the whole integration.
    Hutchinson {
        /// Number of probe vectors (≥ 1).
        probes: usize,
        /// Seed of the probes.
        seed: u64,
    },
}

/// log p(x | c) for each row of `x` (`[batch, dim]`), by the instantaneous change of variables
/// along the probability-flow ODE (Chen et al. 2018; Song et al. 2021, Eq. 39; our METHOD.md):
///
/// log p_0(x) = log N(x(σ_max); 0, σ_max² I) + ∫_{σ_min}^{σ_max} ∇·f(x(σ), σ) dσ,
/// f(x, σ) = (x − D(x, σ, c))/σ, so ∇·f = (dim − tr ∂D/∂x)/σ,
///
/// integrated with Heun's method over the positive values of `sigmas` in increasing order, `x`
/// being taken as the state at σ_min (so the result is log p_{σ_min}(x), indistinguishable from
/// log p_0(x) for small σ_min). The Jacobian trace needs gradients, hence the autodiff backend;
/// the denoiser must treat rows independently (as every denoiser here does). `x` is in
/// catalogue units: for a denoiser with a [`Denoiser::target_scaling`] it is mapped into the
/// denoiser's space and the map's log-determinant is accounted for.
///
/// # Errors
/// Shape and finiteness errors as in [`crate::Sampler::run`]; [`CoreError::InvalidParameter`] for
/// zero Hutchinson probes.
pub fn log_likelihood<B: AutodiffBackend, D: Denoiser<B>>(
    denoiser: &D,
    x: Tensor<B, 2>,
    cond: &Conditioning<B>,
    sigmas: &Sigmas,
    trace: TraceEstimator,
) -> Result<Vec<f64>> {
    let x = x.detach();
    let cond = validate_start(denoiser, &x, cond)?;
    // A density in catalogue units: map x into the denoiser's space and subtract the log
    // Jacobian of that map's inverse (log p_z(z) = log p_u(u) − Σ log s).
    let (x, log_det) = match denoiser.target_scaling() {
        None => (x, 0.0),
        Some(map) => (map.to_model(x)?, map.log_det()),
    };
    let [batch, dim] = x.dims();
    let probes = match trace {
        TraceEstimator::Exact => Vec::new(),
        TraceEstimator::Hutchinson { probes: 0, .. } => {
            return Err(CoreError::InvalidParameter {
                name: "probes",
                value: 0.0,
                reason: "Hutchinson's estimator needs at least one probe",
            }
            .into())
        }
        TraceEstimator::Hutchinson { probes, seed } => {
            let mut noise = SeededNoise::new(seed);
            (0..probes)
                .map(|_| {
                    let signs = noise
                        .normal_host(batch, dim)
                        .into_iter()
                        .map(|v| if v >= 0.0 { 1.0 } else { -1.0 })
                        .collect();
                    matrix_from_host::<B>(signs, batch, dim, &x.device())
                })
                .collect::<std::result::Result<Vec<_>, _>>()?
        }
    };
    let field = DivergenceField {
        denoiser,
        cond: &cond,
        probes,
    };

    let up = sigmas.ascending_positive();
    let mut x = x;
    let mut integral = vec![0.0f64; batch];
    for pair in up.windows(2) {
        let (sigma, sigma_next) = (pair[0], pair[1]);
        let dt = sigma_next - sigma;
        let (f, div) = field.evaluate(x.clone(), sigma)?;
        let x_euler = x.clone() + f.clone().mul_scalar(dt);
        let (f_next, div_next) = field.evaluate(x_euler, sigma_next)?;
        x = x + (f + f_next).mul_scalar(0.5 * dt);
        for (acc, (a, b)) in integral.iter_mut().zip(div.iter().zip(&div_next)) {
            *acc += 0.5 * dt * (a + b);
        }
    }
    let sigma_max = sigmas.sigma_max();
    let norm_const = -0.5 * dim as f64 * (2.0 * std::f64::consts::PI * sigma_max * sigma_max).ln();
    let end = to_host_f32(x)?;
    Ok(end
        .chunks(dim)
        .zip(integral)
        .map(|(row, div_integral)| {
            let sq: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum();
            norm_const - 0.5 * sq / (sigma_max * sigma_max) + div_integral - log_det
        })
        .collect())
}

/// The ODE field f(x, σ) = (x − D(x, σ))/σ together with its divergence per row.
struct DivergenceField<'a, B: AutodiffBackend, D> {
    denoiser: &'a D,
    cond: &'a Conditioning<B>,
    /// Hutchinson probes `[batch, dim]`; empty for the exact trace.
    probes: Vec<Tensor<B, 2>>,
}

impl<B: AutodiffBackend, D: Denoiser<B>> DivergenceField<'_, B, D> {
    /// D(x, σ) on a fresh graph with `x` requiring gradients.
    fn denoise_tracked(
        &self,
        x: &Tensor<B, 2>,
        sigma: f64,
    ) -> Result<(Tensor<B, 2>, Tensor<B, 2>)> {
        let [batch, _] = x.dims();
        let x_tracked = x.clone().detach().require_grad();
        let denoised = self.denoiser.denoise(
            x_tracked.clone(),
            sigma_column::<B>(sigma, batch, &x.device()),
            self.cond,
        )?;
        Ok((x_tracked, denoised))
    }

    /// Σ_j (∂(Σ_rows ⟨D, v⟩)/∂x)_j · v_j per row: vᵀ J v for each row's own v (rows independent).
    fn vjp_dot(
        &self,
        x_tracked: &Tensor<B, 2>,
        denoised: Tensor<B, 2>,
        v: &Tensor<B, 2>,
    ) -> Result<Vec<f64>> {
        let grads = (denoised * v.clone()).sum().backward();
        let Some(grad) = x_tracked.grad(&grads) else {
            return Ok(vec![0.0; x_tracked.dims()[0]]);
        };
        let grad = Tensor::<B, 2>::from_inner(grad);
        let per_row = (grad * v.clone()).sum_dim(1);
        Ok(to_host_f32(per_row)?.into_iter().map(f64::from).collect())
    }

    fn evaluate(&self, x: Tensor<B, 2>, sigma: f64) -> Result<(Tensor<B, 2>, Vec<f64>)> {
        let [batch, dim] = x.dims();
        let mut trace = vec![0.0f64; batch];
        let mut denoised_value = None;
        let mut accumulate = |x_tracked: &Tensor<B, 2>,
                              denoised: Tensor<B, 2>,
                              v: &Tensor<B, 2>,
                              weight: f64|
         -> Result<()> {
            denoised_value.get_or_insert_with(|| denoised.clone().detach());
            for (t, value) in trace.iter_mut().zip(self.vjp_dot(x_tracked, denoised, v)?) {
                *t += weight * value;
            }
            Ok(())
        };
        if self.probes.is_empty() {
            for j in 0..dim {
                let (x_tracked, denoised) = self.denoise_tracked(&x, sigma)?;
                let basis = Tensor::<B, 2>::zeros([batch, dim], &x.device())
                    .slice_fill([0..batch, j..j + 1], 1.0);
                accumulate(&x_tracked, denoised, &basis, 1.0)?;
            }
        } else {
            let weight = 1.0 / self.probes.len() as f64;
            for v in &self.probes {
                let (x_tracked, denoised) = self.denoise_tracked(&x, sigma)?;
                accumulate(&x_tracked, denoised, v, weight)?;
            }
        }
        let denoised = denoised_value.expect("at least one dimension or probe was evaluated");
        let f = (x - denoised).div_scalar(sigma);
        let divergence = trace
            .into_iter()
            .map(|t| (dim as f64 - t) / sigma)
            .collect();
        Ok((f, divergence))
    }
}
