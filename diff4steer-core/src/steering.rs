//! Text steering ("semantic guidance"): pull the denoised estimate toward steering embeddings in
//! the target space, and away from negative ones, by the gradient of a similarity objective.

use burn::tensor::{backend::Backend, Tensor};

use crate::denoiser::check_denoiser_inputs;
use crate::tensor_util::{ensure_finite, repeat_rows_to, row_norm};
use crate::{Conditioning, CoreError, Denoiser, Result};

/// The similarity s(x̂, e) whose gradient steers the denoised estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Similarity {
    /// s = ⟨x̂, e⟩ / (‖x̂‖·‖e‖); ∇_x̂ s = (e/‖e‖ − s·x̂/‖x̂‖) / ‖x̂‖. Scale invariant; the usual
    /// choice for L2-normalised spaces (MuLan, CLAP).
    #[default]
    Cosine,
    /// s = ⟨x̂, e⟩; ∇_x̂ s = e.
    Dot,
}

/// One steering embedding e_k (in the target space) with weight γ_k; γ_k < 0 pushes away.
#[derive(Debug, Clone)]
pub struct SteeringTarget<B: Backend> {
    embedding: Tensor<B, 2>,
    weight: f64,
}

impl<B: Backend> SteeringTarget<B> {
    /// A steering embedding `[rows, dim]` (one row for all samples, one per query, or one per
    /// sample; rows are repeated query-major to fill the batch) with weight γ.
    ///
    /// # Errors
    /// [`CoreError::Empty`] for zero rows or columns, [`CoreError::NonFinite`] for NaN/±Inf in the
    /// embedding, [`CoreError::InvalidParameter`] for a non-finite γ.
    pub fn new(embedding: Tensor<B, 2>, weight: f64) -> Result<Self> {
        let [rows, dim] = embedding.dims();
        if rows == 0 || dim == 0 {
            return Err(CoreError::Empty {
                what: "steering embedding",
            });
        }
        ensure_finite(&embedding, "steering embedding")?;
        if !weight.is_finite() {
            return Err(CoreError::InvalidParameter {
                name: "steering weight",
                value: weight,
                reason: "must be finite",
            });
        }
        Ok(Self { embedding, weight })
    }

    /// The embedding, `[rows, dim]`.
    pub fn embedding(&self) -> &Tensor<B, 2> {
        &self.embedding
    }

    /// γ.
    pub fn weight(&self) -> f64 {
        self.weight
    }
}

/// Gradient guidance toward steering embeddings (our design for the paper's text steering; the
/// σ² factor is Tweedie's formula as in gradient/universal guidance, Chung et al. 2023, Bansal et
/// al. 2023):
///
/// x̂ = D(x, σ, c),  D̃(x, σ, c) = x̂ + σ²·Σ_k γ_k·∇_x̂ s(x̂, e_k)
///
/// with s and its closed-form gradient given by [`Similarity`]. A gradient of a log-likelihood,
/// multiplied by σ², is a change of the denoised estimate, so steering is strong at high noise and
/// fades as σ → 0. Because σ_max² is large (6 400 for σ_max = 80), useful γ are small (≈ 10⁻³ …
/// 10⁻¹ for unit-norm targets). γ = 0 (or no targets) leaves the inner denoiser unchanged.
#[derive(Debug, Clone)]
pub struct Steered<B: Backend, D> {
    inner: D,
    targets: Vec<SteeringTarget<B>>,
    similarity: Similarity,
}

impl<B: Backend, D: Denoiser<B>> Steered<B, D> {
    /// Steers `inner` toward (γ > 0) or away from (γ < 0) each target. Targets are in catalogue
    /// units: where `inner` works in a rescaled space ([`Denoiser::target_scaling`]), they are
    /// mapped into it first, so the similarity is measured where the denoiser works.
    ///
    /// # Errors
    /// [`CoreError::DimMismatch`] when a target's width differs from the data dimension.
    pub fn new(inner: D, targets: Vec<SteeringTarget<B>>, similarity: Similarity) -> Result<Self> {
        for t in &targets {
            let got = t.embedding.dims()[1];
            if got != inner.dim() {
                return Err(CoreError::DimMismatch {
                    what: "steering embedding",
                    expected: inner.dim(),
                    got,
                });
            }
        }
        let targets = match inner.target_scaling() {
            None => targets,
            Some(map) => targets
                .into_iter()
                .map(|t| {
                    Ok(SteeringTarget {
                        embedding: map.to_model(t.embedding)?,
                        weight: t.weight,
                    })
                })
                .collect::<Result<_>>()?,
        };
        Ok(Self {
            inner,
            targets,
            similarity,
        })
    }

    /// The wrapped denoiser.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

/// ∇_x̂ s(x̂, e) for each row, in closed form (see [`Similarity`]). `x_hat` and `e` are
/// `[batch, dim]`.
pub fn similarity_gradient<B: Backend>(
    similarity: Similarity,
    x_hat: Tensor<B, 2>,
    e: Tensor<B, 2>,
) -> Tensor<B, 2> {
    match similarity {
        Similarity::Dot => e,
        Similarity::Cosine => {
            let x_norm = row_norm(x_hat.clone());
            let e_unit = e.clone() / row_norm(e);
            let x_unit = x_hat / x_norm.clone();
            let cos = (x_unit.clone() * e_unit.clone()).sum_dim(1);
            (e_unit - x_unit * cos) / x_norm
        }
    }
}

impl<B: Backend, D: Denoiser<B>> Denoiser<B> for Steered<B, D> {
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
        check_denoiser_inputs(self, &x, &sigma, cond)?;
        let batch = x.dims()[0];
        let x_hat = self.inner.denoise(x, sigma.clone(), cond)?;
        let active: Vec<&SteeringTarget<B>> =
            self.targets.iter().filter(|t| t.weight != 0.0).collect();
        if active.is_empty() {
            return Ok(x_hat);
        }
        let sigma_sq = sigma.square().reshape([batch, 1]);
        let mut pull = Tensor::zeros_like(&x_hat);
        for target in active {
            let e = repeat_rows_to(target.embedding.clone(), batch, "steering embedding rows")?;
            pull = pull
                + similarity_gradient(self.similarity, x_hat.clone(), e).mul_scalar(target.weight);
        }
        Ok(x_hat + pull * sigma_sq)
    }
}
