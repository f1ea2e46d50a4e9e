//! The prior as a relevance scorer: the implicit classifier of a conditional diffusion model.
//!
//! A conditional denoiser reconstructs an item x better under a query q it explains than under
//! the null condition. The difference of the two denoising errors, averaged over noise levels
//! and noise draws, estimates log p(x | q) − log p(x), the pointwise mutual information of item
//! and query (the "diffusion classifier" of Li et al. 2023, arXiv 2303.16203, Eq. 5–6, and of
//! Clark & Jaini 2023, arXiv 2303.15233; both differences of the ELBO, Kingma et al. 2021, Eq. 11
//! up to its weighting):
//!
//! s(x, q) = Σ_j w(σ_j)·(‖D(x + σ_j ε_j; σ_j, ∅) − x‖² − ‖D(x + σ_j ε_j; σ_j, q) − x‖²) / M
//!
//! over M draws (σ_j, ε_j), computed in the prior's own (standardised) space. By Bayes, ranking a
//! catalogue by p(x | q)/p(x) is ranking it by p(q | x): the right order when one item is the
//! answer, and it discounts "hub" items that are near everything. The σ_j form a fixed grid
//! uniform in ln σ and the ε_j come from a seeded stream; every candidate of every query sees the
//! **same** draws (common random numbers), so the noise that the draws add is shared and the
//! comparison between candidates keeps only the signal.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::{Conditioning, CoreError, Denoiser, SeededNoise};

use super::prior::{FastPrior, FastScratch, HostCondition};
use crate::{ModelError, Result};

/// How the error difference at each noise level is weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreWeighting {
    /// EDM's loss weight λ(σ) = (σ² + σ_d²)/(σ·σ_d)² (Karras et al. 2022, Eq. 8): every noise level
    /// of the grid counts as the training loss counts it.
    #[default]
    Edm,
    /// 1/σ² per unit of ln σ: the weight of the variational bound of a variance-exploding
    /// diffusion (Kingma et al. 2021, Eq. 11 with SNR = 1/σ²), which emphasises small σ.
    Elbo,
    /// Equal weight for every noise level of the grid.
    Uniform,
}

impl ScoreWeighting {
    fn weight(self, sigma: f64, sigma_data: f64) -> f64 {
        match self {
            ScoreWeighting::Edm => {
                let sd2 = sigma_data * sigma_data;
                (sigma * sigma + sd2) / (sigma * sigma * sd2)
            }
            ScoreWeighting::Elbo => 1.0 / (sigma * sigma),
            ScoreWeighting::Uniform => 1.0,
        }
    }
}

/// The implicit-classifier score of candidates under a query, on the host path of a prior.
#[derive(Debug, Clone, PartialEq)]
pub struct ImplicitClassifier {
    sigmas: Vec<f64>,
    weighting: ScoreWeighting,
    seed: u64,
}

impl ImplicitClassifier {
    /// `draws` noise levels uniform in ln σ over [`sigma_min`, `sigma_max`] (midpoints of equal
    /// steps; one ε per level from stream j of `seed`), weighted by `weighting`. The σ are in the
    /// prior's own units (standardised targets have unit spread).
    ///
    /// # Errors
    /// [`CoreError::InvalidParameter`] for zero draws or a σ range that is not finite, positive
    /// and increasing.
    pub fn new(
        draws: usize,
        sigma_min: f64,
        sigma_max: f64,
        weighting: ScoreWeighting,
        seed: u64,
    ) -> Result<Self> {
        if draws == 0 {
            return Err(CoreError::InvalidParameter {
                name: "draws",
                value: 0.0,
                reason: "the score needs at least one noise draw",
            }
            .into());
        }
        if !(sigma_min.is_finite()
            && sigma_max.is_finite()
            && 0.0 < sigma_min
            && sigma_min < sigma_max)
        {
            return Err(CoreError::InvalidParameter {
                name: "sigma range",
                value: sigma_min,
                reason: "needs 0 < sigma_min < sigma_max, both finite",
            }
            .into());
        }
        let (lo, hi) = (sigma_min.ln(), sigma_max.ln());
        let sigmas = (0..draws)
            .map(|j| (lo + (j as f64 + 0.5) / draws as f64 * (hi - lo)).exp())
            .collect();
        Ok(Self {
            sigmas,
            weighting,
            seed,
        })
    }

    /// The noise levels of the draws.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// s(x, q) for every row of `candidates` (`[n, target_dim]` row-major, catalogue units) under
    /// `query` (`query_dim` values); higher = the query explains the item better. Deterministic:
    /// the same call gives the same scores.
    ///
    /// # Errors
    /// [`CoreError::DimMismatch`] for a query or candidates of another width,
    /// [`CoreError::NonFinite`] for NaN/±Inf in either; no candidate gives an empty result.
    pub fn score(
        &self,
        prior: &FastPrior,
        query: &[f32],
        candidates: &[f32],
        scratch: &mut FastScratch,
    ) -> Result<Vec<f64>> {
        let (t, dq) = (prior.target_dim(), prior.query_dim());
        if query.len() != dq {
            return Err(CoreError::DimMismatch {
                what: "query embedding",
                expected: dq,
                got: query.len(),
            }
            .into());
        }
        if !candidates.len().is_multiple_of(t) {
            return Err(CoreError::DimMismatch {
                what: "candidate rows",
                expected: t,
                got: candidates.len() % t,
            }
            .into());
        }
        if query.iter().chain(candidates).any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite {
                what: "query or candidates",
            }
            .into());
        }
        let n = candidates.len() / t;
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut clean = candidates.to_vec();
        if let Some(map) = prior.scaling() {
            map.to_model_host(&mut clean)?;
        }
        let m = self.sigmas.len();
        let noise = SeededNoise::new(self.seed).normal_host(m, t);
        // Rows: draw j, then candidate i, conditional block first, then the null block.
        let mut x = Vec::with_capacity(2 * m * n * t);
        let mut row_condition = Vec::with_capacity(2 * m * n);
        for offset in [0usize, 1] {
            for (j, &sigma) in self.sigmas.iter().enumerate() {
                let eps = &noise[j * t..(j + 1) * t];
                for c in clean.chunks_exact(t) {
                    x.extend(c.iter().zip(eps).map(|(&v, &e)| v + sigma as f32 * e));
                    row_condition.push(2 * j + offset);
                }
            }
        }
        let conditions: Vec<HostCondition<'_>> = self
            .sigmas
            .iter()
            .flat_map(|&sigma| {
                [
                    HostCondition {
                        sigma: sigma as f32,
                        query: Some(query),
                    },
                    HostCondition {
                        sigma: sigma as f32,
                        query: None,
                    },
                ]
            })
            .collect();
        let mut denoised = vec![0.0f32; x.len()];
        {
            let _call = prior.enter_call();
            prior.denoise_into(&x, &row_condition, &conditions, &mut denoised, scratch);
        }
        let half = m * n * t;
        let error = |d: &[f32], c: &[f32]| -> f64 {
            d.iter()
                .zip(c)
                .map(|(&a, &b)| f64::from(a - b).powi(2))
                .sum()
        };
        let sigma_data = f64::from(prior.sigma_data());
        let mut scores = vec![0.0f64; n];
        for (j, &sigma) in self.sigmas.iter().enumerate() {
            let w = self.weighting.weight(sigma, sigma_data) / m as f64;
            for (i, (s, c)) in scores.iter_mut().zip(clean.chunks_exact(t)).enumerate() {
                let at = (j * n + i) * t;
                let conditional = error(&denoised[at..at + t], c);
                let null = error(&denoised[half + at..half + at + t], c);
                *s += w * (null - conditional);
            }
        }
        Ok(scores)
    }
}

impl ImplicitClassifier {
    /// s(x, q) through any burn [`Denoiser`] — the analytic [`diff4steer_core::GaussianMixture`],
    /// a prior on a GPU backend — with the draws and weights of [`Self::score`] (one conditional
    /// and one null call per noise level over all candidates). `query` is one `[1, cond_dim]`
    /// row; `candidates` are `[n, dim]` row-major in catalogue units (mapped into the denoiser's
    /// units when it has a [`Denoiser::target_scaling`]); `sigma_data` is the σ_d of the EDM
    /// weight. This is the reference the host path is checked against, and the path for
    /// denoisers the host path cannot run.
    ///
    /// # Errors
    /// As [`Self::score`], and the denoiser's own errors.
    pub fn score_denoiser<B: Backend, D: Denoiser<B>>(
        &self,
        denoiser: &D,
        sigma_data: f64,
        query: Tensor<B, 2>,
        candidates: &[f32],
    ) -> Result<Vec<f64>> {
        let t = denoiser.dim();
        if !candidates.len().is_multiple_of(t) {
            return Err(CoreError::DimMismatch {
                what: "candidate rows",
                expected: t,
                got: candidates.len() % t,
            }
            .into());
        }
        if candidates.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite { what: "candidates" }.into());
        }
        let n = candidates.len() / t;
        if n == 0 {
            return Ok(Vec::new());
        }
        let device = query.device();
        let mut clean = candidates.to_vec();
        if let Some(map) = denoiser.target_scaling() {
            map.to_model_host(&mut clean)?;
        }
        let m = self.sigmas.len();
        let noise = SeededNoise::new(self.seed).normal_host(m, t);
        let conditioned = Conditioning::new(query)?.fit_batch(n)?;
        let null = conditioned.to_null();
        let mut scores = vec![0.0f64; n];
        for (j, &sigma) in self.sigmas.iter().enumerate() {
            let eps = &noise[j * t..(j + 1) * t];
            let noisy: Vec<f32> = clean
                .chunks_exact(t)
                .flat_map(|c| c.iter().zip(eps).map(|(&v, &e)| v + sigma as f32 * e))
                .collect();
            let x = Tensor::<B, 2>::from_data(TensorData::new(noisy, [n, t]), &device);
            let s = Tensor::<B, 1>::full([n], sigma, &device);
            let with_query = to_host_f32(denoiser.denoise(x.clone(), s.clone(), &conditioned)?)?;
            let without = to_host_f32(denoiser.denoise(x, s, &null)?)?;
            let w = self.weighting.weight(sigma, sigma_data) / m as f64;
            for (i, (score, c)) in scores.iter_mut().zip(clean.chunks_exact(t)).enumerate() {
                let error = |d: &[f32]| -> f64 {
                    d[i * t..(i + 1) * t]
                        .iter()
                        .zip(c)
                        .map(|(&a, &b)| f64::from(a - b).powi(2))
                        .sum()
                };
                *score += w * (error(&without) - error(&with_query));
            }
        }
        Ok(scores)
    }

    /// Re-ranks every query's fused list: the first `top` ids of `lists[q]` are scored under
    /// query q (`queries` row-major; item vectors looked up in `items`, row-major, catalogue
    /// units, id = row) and re-ordered by [`rerank`] with `order`. Queries run in parallel, each on one thread,
    /// so the result does not depend on the thread count.
    ///
    /// # Errors
    /// As [`Self::score`]; [`ModelError::InvalidConfig`] when the lists and queries differ in
    /// number or an id has no row in `items`.
    pub fn rerank_lists(
        &self,
        prior: &FastPrior,
        queries: &[f32],
        lists: &[Vec<u64>],
        items: &[f32],
        top: usize,
        order: RerankOrder,
    ) -> Result<Vec<Vec<u64>>> {
        use rayon::prelude::*;
        let (t, dq) = (prior.target_dim(), prior.query_dim());
        if queries.len() != lists.len() * dq {
            return Err(ModelError::InvalidConfig {
                field: "rerank queries",
                reason: format!(
                    "{} lists but {} query values ({dq} per query)",
                    lists.len(),
                    queries.len()
                ),
            });
        }
        let rows = items.len() / t.max(1);
        let single = prior.clone().with_threads(super::Threads::Single);
        lists
            .par_iter()
            .zip(queries.par_chunks(dq))
            .map_init(FastScratch::default, |scratch, (list, query)| {
                let head = &list[..top.min(list.len())];
                let mut candidates = Vec::with_capacity(head.len() * t);
                for &id in head {
                    let r = id as usize;
                    if r >= rows {
                        return Err(ModelError::InvalidConfig {
                            field: "rerank ids",
                            reason: format!("id {id} has no item row ({rows} rows)"),
                        });
                    }
                    candidates.extend_from_slice(&items[r * t..(r + 1) * t]);
                }
                let scores = self.score(&single, query, &candidates, scratch)?;
                rerank(list, head.len(), &scores, order)
            })
            .collect()
    }
}

/// How re-ranked candidates are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum RerankOrder {
    /// By the implicit-classifier score alone.
    #[default]
    ByScore,
    /// By 1/(c + fused rank) + 1/(c + score rank) (ranks 1-based; reciprocal-rank fusion of the
    /// two orders, Cormack et al. 2009): the score refines the fused order instead of replacing
    /// it.
    Blend {
        /// The RRF constant (60 in Cormack et al.).
        c: f64,
    },
}

/// Re-orders the first `top` ids of `ranked` by `scores` as `order` says (descending; ties keep
/// the fused order), leaving the rest after them: the re-ranking step after fusion.
///
/// # Errors
/// [`ModelError::InvalidConfig`] when `scores` does not hold one value per re-ranked id, or for
/// a blend constant that is negative or not finite.
pub fn rerank(ranked: &[u64], top: usize, scores: &[f64], order: RerankOrder) -> Result<Vec<u64>> {
    let top = top.min(ranked.len());
    if scores.len() != top {
        return Err(ModelError::InvalidConfig {
            field: "rerank scores",
            reason: format!("{} scores for {top} candidates", scores.len()),
        });
    }
    let mut by_score: Vec<usize> = (0..top).collect();
    by_score.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let chosen = match order {
        RerankOrder::ByScore => by_score,
        RerankOrder::Blend { c } => {
            if !(c.is_finite() && c >= 0.0) {
                return Err(ModelError::InvalidConfig {
                    field: "rerank blend constant",
                    reason: format!("must be finite and ≥ 0, got {c}"),
                });
            }
            let mut value = vec![0.0f64; top];
            for (score_rank, &i) in by_score.iter().enumerate() {
                value[i] = 1.0 / (c + (i + 1) as f64) + 1.0 / (c + (score_rank + 1) as f64);
            }
            let mut blended: Vec<usize> = (0..top).collect();
            blended.sort_by(|&a, &b| value[b].total_cmp(&value[a]).then(a.cmp(&b)));
            blended
        }
    };
    Ok(chosen
        .into_iter()
        .map(|i| ranked[i])
        .chain(ranked[top..].iter().copied())
        .collect())
}
