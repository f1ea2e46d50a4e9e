//! A Gaussian-mixture data distribution whose exact denoiser, noisy density and (for one component)
//! probability-flow trajectory are closed-form: the independent truth that samplers, guidance,
//! likelihood and inversion are tested against.

use burn::tensor::{activation::softmax, backend::Backend, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::denoiser::check_denoiser_inputs;
use crate::{Conditioning, CoreError, Denoiser, Result};

/// p(x₀ | c) = Σ_k π_k(c)·N(x₀; μ_k, diag(v_k)), a mixture of diagonal Gaussians in `dim`
/// dimensions whose component weights π(c) are set by the condition.
///
/// As a [`Denoiser`], its conditioning has `cond_dim` = number of components and each conditional
/// row *is* the weight vector π(c) (non-negative, normalised internally); null rows use the
/// unconditional weights. Under x_σ = x₀ + σ·ε every component stays Gaussian with variance
/// v_k + σ², so the exact denoiser is the posterior mean
///
/// D(x, σ, c) = Σ_k r_k(x)·(μ_k + v_k/(v_k + σ²)·(x − μ_k)),
/// r_k(x) ∝ π_k(c)·N(x; μ_k, diag(v_k + σ²))
///
/// (e.g. Karras et al. 2022, Appendix B.3, for the single-Gaussian case; the mixture follows by
/// Bayes' rule over the component).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    means: Vec<Vec<f64>>,
    variances: Vec<Vec<f64>>,
    weights: Vec<f64>,
}

impl GaussianMixture {
    /// A mixture from component means, per-dimension variances and unconditional weights.
    ///
    /// # Errors
    /// [`CoreError::Empty`] for no components or zero dimensions; [`CoreError::DimMismatch`] when
    /// lengths disagree; [`CoreError::NonFinite`] / [`CoreError::InvalidParameter`] for non-finite
    /// values, variances ≤ 0, negative weights or weights summing to 0.
    pub fn new(means: Vec<Vec<f64>>, variances: Vec<Vec<f64>>, weights: Vec<f64>) -> Result<Self> {
        let k = means.len();
        if k == 0 {
            return Err(CoreError::Empty {
                what: "mixture components",
            });
        }
        let dim = means[0].len();
        if dim == 0 {
            return Err(CoreError::Empty {
                what: "mixture dimension",
            });
        }
        for (what, got) in [
            ("variances (one row per component)", variances.len()),
            ("weights", weights.len()),
        ] {
            if got != k {
                return Err(CoreError::DimMismatch {
                    what,
                    expected: k,
                    got,
                });
            }
        }
        for row in means.iter().chain(&variances) {
            if row.len() != dim {
                return Err(CoreError::DimMismatch {
                    what: "mixture mean or variance row",
                    expected: dim,
                    got: row.len(),
                });
            }
        }
        if means
            .iter()
            .chain(&variances)
            .flatten()
            .chain(&weights)
            .any(|v| !v.is_finite())
        {
            return Err(CoreError::NonFinite {
                what: "mixture parameters",
            });
        }
        if let Some(&v) = variances.iter().flatten().find(|&&v| v <= 0.0) {
            return Err(CoreError::InvalidParameter {
                name: "variance",
                value: v,
                reason: "must be positive",
            });
        }
        let weights = normalise_weights(&weights)?;
        Ok(Self {
            means,
            variances,
            weights,
        })
    }

    /// A mixture whose components all have variance `variance` in every dimension.
    ///
    /// # Errors
    /// As [`GaussianMixture::new`].
    pub fn isotropic(means: Vec<Vec<f64>>, variance: f64, weights: Vec<f64>) -> Result<Self> {
        let variances = means.iter().map(|m| vec![variance; m.len()]).collect();
        Self::new(means, variances, weights)
    }

    /// Data dimension.
    pub fn dim(&self) -> usize {
        self.means[0].len()
    }

    /// Number of components (= `cond_dim` of the denoiser).
    pub fn components(&self) -> usize {
        self.means.len()
    }

    /// Component means μ_k.
    pub fn means(&self) -> &[Vec<f64>] {
        &self.means
    }

    /// Component variances v_k (diagonal).
    pub fn variances(&self) -> &[Vec<f64>] {
        &self.variances
    }

    /// Unconditional weights π (normalised).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// log N(x; μ_k, diag(v_k + σ²)) for every component.
    fn component_log_densities(&self, x: &[f64], sigma: f64) -> Vec<f64> {
        let ln_2pi = (2.0 * std::f64::consts::PI).ln();
        self.means
            .iter()
            .zip(&self.variances)
            .map(|(mu, var)| {
                mu.iter()
                    .zip(var)
                    .zip(x)
                    .map(|((m, v), xi)| {
                        let v = v + sigma * sigma;
                        -0.5 * ((xi - m).powi(2) / v + v.ln() + ln_2pi)
                    })
                    .sum()
            })
            .collect()
    }

    /// Posterior component probabilities r_k(x) at noise level σ under weights `weights`
    /// (`None` = the unconditional weights).
    ///
    /// # Errors
    /// [`CoreError::DimMismatch`] for a wrong `x` or `weights` length; weight errors as in
    /// [`GaussianMixture::new`].
    pub fn responsibilities(
        &self,
        x: &[f64],
        sigma: f64,
        weights: Option<&[f64]>,
    ) -> Result<Vec<f64>> {
        let (log_joint, total) = self.log_joint(x, sigma, weights)?;
        Ok(log_joint.iter().map(|l| (l - total).exp()).collect())
    }

    /// log p_σ(x) = log Σ_k π_k·N(x; μ_k, diag(v_k + σ²)), the exact density of the noisy data
    /// (σ = 0: the data density itself).
    ///
    /// # Errors
    /// As [`GaussianMixture::responsibilities`].
    pub fn log_density(&self, x: &[f64], sigma: f64, weights: Option<&[f64]>) -> Result<f64> {
        Ok(self.log_joint(x, sigma, weights)?.1)
    }

    fn log_joint(&self, x: &[f64], sigma: f64, weights: Option<&[f64]>) -> Result<(Vec<f64>, f64)> {
        if x.len() != self.dim() {
            return Err(CoreError::DimMismatch {
                what: "mixture point",
                expected: self.dim(),
                got: x.len(),
            });
        }
        let weights = self.weights_or_default(weights)?;
        let log_joint: Vec<f64> = self
            .component_log_densities(x, sigma)
            .iter()
            .zip(&weights)
            .map(|(l, w)| l + w.ln())
            .collect();
        let max = log_joint.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let total = max + log_joint.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
        Ok((log_joint, total))
    }

    fn weights_or_default(&self, weights: Option<&[f64]>) -> Result<Vec<f64>> {
        match weights {
            None => Ok(self.weights.clone()),
            Some(w) if w.len() != self.components() => Err(CoreError::DimMismatch {
                what: "mixture weights",
                expected: self.components(),
                got: w.len(),
            }),
            Some(w) => normalise_weights(w),
        }
    }

    /// The component most likely to have produced the clean point `x` (argmax of r_k at σ = 0).
    ///
    /// # Errors
    /// As [`GaussianMixture::responsibilities`].
    pub fn component_of(&self, x: &[f64]) -> Result<usize> {
        let r = self.responsibilities(x, 0.0, None)?;
        Ok((0..r.len()).fold(0, |best, k| if r[k] > r[best] { k } else { best }))
    }

    /// Draws `n` exact samples (host, seeded) under `weights` (`None` = unconditional).
    ///
    /// # Errors
    /// Weight errors as in [`GaussianMixture::new`].
    pub fn sample(&self, n: usize, seed: u64, weights: Option<&[f64]>) -> Result<Vec<Vec<f64>>> {
        let weights = self.weights_or_default(weights)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok((0..n)
            .map(|_| {
                let u: f64 = rng.random();
                let mut acc = 0.0;
                let k = weights
                    .iter()
                    .position(|w| {
                        acc += w;
                        u < acc
                    })
                    .unwrap_or(weights.len() - 1);
                self.means[k]
                    .iter()
                    .zip(&self.variances[k])
                    .map(|(m, v)| m + v.sqrt() * rng.sample::<f64, _>(StandardNormal))
                    .collect()
            })
            .collect())
    }

    /// The exact probability-flow ODE trajectory of a **single** Gaussian, from σ_from to σ_to:
    /// x(σ_to) = μ + (x(σ_from) − μ)·√((v + σ_to²)/(v + σ_from²)) per dimension (the ODE
    /// dx/dσ = (x − D(x, σ))/σ is linear here).
    ///
    /// # Errors
    /// [`CoreError::InvalidParameter`] when the mixture has more than one component;
    /// [`CoreError::DimMismatch`] for a wrong `x` length.
    pub fn single_gaussian_flow(
        &self,
        x: &[f64],
        sigma_from: f64,
        sigma_to: f64,
    ) -> Result<Vec<f64>> {
        if self.components() != 1 {
            return Err(CoreError::InvalidParameter {
                name: "components",
                value: self.components() as f64,
                reason: "the closed-form flow exists for a single Gaussian only",
            });
        }
        if x.len() != self.dim() {
            return Err(CoreError::DimMismatch {
                what: "flow start point",
                expected: self.dim(),
                got: x.len(),
            });
        }
        Ok(x.iter()
            .zip(&self.means[0])
            .zip(&self.variances[0])
            .map(|((xi, m), v)| {
                m + (xi - m) * ((v + sigma_to.powi(2)) / (v + sigma_from.powi(2))).sqrt()
            })
            .collect())
    }
}

fn normalise_weights(weights: &[f64]) -> Result<Vec<f64>> {
    if let Some(&w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        return Err(CoreError::InvalidParameter {
            name: "mixture weight",
            value: w,
            reason: "must be finite and non-negative",
        });
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return Err(CoreError::InvalidParameter {
            name: "sum of mixture weights",
            value: total,
            reason: "must be positive",
        });
    }
    Ok(weights.iter().map(|w| w / total).collect())
}

fn row_tensor<B: Backend>(values: &[f64], device: &B::Device) -> Tensor<B, 2> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [1, values.len()]), device)
}

impl<B: Backend> Denoiser<B> for GaussianMixture {
    fn dim(&self) -> usize {
        GaussianMixture::dim(self)
    }

    fn cond_dim(&self) -> usize {
        self.components()
    }

    fn denoise(
        &self,
        x: Tensor<B, 2>,
        sigma: Tensor<B, 1>,
        cond: &Conditioning<B>,
    ) -> Result<Tensor<B, 2>> {
        check_denoiser_inputs(self, &x, &sigma, cond)?;
        let device = x.device();
        let batch = x.dims()[0];
        // Effective weights per row: the condition's weight vector, or π for null rows.
        let mask = cond.null_mask();
        let given = cond.embeddings().clone().clamp_min(0.0);
        let given = given.clone() / given.sum_dim(1).clamp_min(1e-30);
        let weights =
            given * (mask.clone().neg() + 1.0) + row_tensor::<B>(&self.weights, &device) * mask;
        let log_weights = weights.clamp_min(1e-30).log();
        let sigma_sq = sigma.square().reshape([batch, 1]);

        let mut logits = Vec::with_capacity(self.components());
        let mut posterior_means = Vec::with_capacity(self.components());
        for (k, (mu, var)) in self.means.iter().zip(&self.variances).enumerate() {
            let mu = row_tensor::<B>(mu, &device);
            let var = row_tensor::<B>(var, &device);
            let noisy_var = var.clone() + sigma_sq.clone();
            let diff = x.clone() - mu.clone();
            let log_density = (diff.clone().square() / noisy_var.clone() + noisy_var.clone().log())
                .sum_dim(1)
                .mul_scalar(-0.5);
            logits.push(log_density + log_weights.clone().narrow(1, k, 1));
            posterior_means.push(mu + var / noisy_var * diff);
        }
        let responsibilities = softmax(Tensor::cat(logits, 1), 1);
        Ok(posterior_means
            .into_iter()
            .enumerate()
            .map(|(k, m)| m * responsibilities.clone().narrow(1, k, 1))
            .reduce(|a, b| a + b)
            .expect("a mixture has at least one component (checked in GaussianMixture::new)"))
    }
}
