//! [`RetrievalRequest`]: the per-request options of a retrieval (seeds, guidance, steering,
//! negative conditions, randomness, re-ranking).

use super::RetrievalError;
use crate::fast::{HostSteering, RerankOrder, ScoreWeighting};

/// Options of one retrieval call, built fluently from [`RetrievalRequest::new`]'s defaults:
///
/// | option | default | meaning |
/// |---|---|---|
/// | [`seeds_per_query`](Self::seeds_per_query) | 32 | seeds K sampled per query |
/// | [`guidance`](Self::guidance) | 4 | strength w of classifier-free (or negative) guidance |
/// | [`negative`](Self::negative) | none | negative conditions in the query space |
/// | [`steer`](Self::steer) | none | steering embeddings in the target space, with a scale γ |
/// | [`seed`](Self::seed) | 0 | seed of the sampling noise |
/// | [`rerank`](Self::rerank) | none | re-rank the fused list with the prior's implicit classifier |
///
/// The defaults are those chosen on MusicCaps (README: w = 4 is within noise of the best strength
/// on caption Recall@10 and aspect nDCG@10; 32 seeds beat 1 and 8).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalRequest {
    pub(crate) seeds_per_query: usize,
    pub(crate) guidance: f64,
    pub(crate) negative: Option<Vec<f32>>,
    pub(crate) steering: Vec<HostSteering>,
    pub(crate) seed: u64,
    pub(crate) rerank: Option<Rerank>,
}

impl Default for RetrievalRequest {
    fn default() -> Self {
        Self {
            seeds_per_query: 32,
            guidance: 4.0,
            negative: None,
            steering: Vec::new(),
            seed: 0,
            rerank: None,
        }
    }
}

impl RetrievalRequest {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Seeds sampled per query (K ≥ 1; a regression source gives one distinct seed whatever K).
    pub fn seeds_per_query(mut self, k: usize) -> Self {
        self.seeds_per_query = k;
        self
    }

    /// Guidance strength w ≥ 0: D̃ = (1 + w)·D(q) − w·D(∅), or against the negative condition
    /// when one is set (Ho & Salimans 2022, Eq. 6).
    pub fn guidance(mut self, w: f64) -> Self {
        self.guidance = w;
        self
    }

    /// Negative conditions in the query space, row-major: one row for every query or one per
    /// query; guidance then pushes away from them instead of from ∅.
    pub fn negative(mut self, rows: Vec<f32>) -> Self {
        self.negative = Some(rows);
        self
    }

    /// Adds steering toward (γ > 0) or away from (γ < 0) target-space embeddings in catalogue
    /// units (one row for every query, or one per query), by the cosine gradient scaled by σ²
    /// (METHOD.md, text steering). Useful γ are small (10⁻³ … 10⁻¹) because σ_max² is large.
    pub fn steer(mut self, rows: Vec<f32>, scale: f64) -> Self {
        self.steering.push(HostSteering {
            embedding: rows,
            weight: scale,
        });
        self
    }

    /// Seed of the sampling noise: the same seed gives the same seeds and hits, whatever the
    /// batch and the thread count.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Re-ranks each fused list with the prior's implicit classifier ([`Rerank`]).
    pub fn rerank(mut self, rerank: Rerank) -> Self {
        self.rerank = Some(rerank);
        self
    }

    /// K.
    pub fn k_seeds(&self) -> usize {
        self.seeds_per_query
    }

    /// w.
    pub fn guidance_strength(&self) -> f64 {
        self.guidance
    }

    /// The noise seed.
    pub fn noise_seed(&self) -> u64 {
        self.seed
    }

    /// The re-ranking step, if any.
    pub fn reranking(&self) -> Option<&Rerank> {
        self.rerank.as_ref()
    }
}

/// Re-ranking after fusion by the prior's implicit classifier (Li et al. 2023, arXiv
/// 2303.16203; [`ImplicitClassifier`](crate::fast::ImplicitClassifier)): the fused top `top`
/// candidates are scored by s(x, q), the EDM-weighted gap between the prior's denoising errors
/// under ∅ and under the query, and re-ordered by `order`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rerank {
    /// Candidates re-ranked per query (N); every seed searches at least this deep.
    pub top: usize,
    /// Noise draws per candidate (shared by all candidates of a query: common random numbers).
    pub draws: usize,
    /// σ range of the draws, in the prior's own units.
    pub sigma_range: (f64, f64),
    /// Weighting of the draws.
    pub weighting: ScoreWeighting,
    /// How the score and the fused order combine.
    pub order: RerankOrder,
    /// Seed of the draws.
    pub seed: u64,
}

impl Rerank {
    /// The CLI's `implicit:N:D`: σ log-uniform over 0.2–20, EDM weighting, reciprocal-rank blend
    /// with the fused order (c = 30), seed 0.
    pub fn implicit(top: usize, draws: usize) -> Self {
        Self {
            top,
            draws,
            sigma_range: (0.2, 20.0),
            weighting: ScoreWeighting::Edm,
            order: RerankOrder::Blend { c: 30.0 },
            seed: 0,
        }
    }

    /// The same with another seed for the draws.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl RetrievalRequest {
    /// Checks the request against `queries` and a source's widths; returns the number of
    /// queries.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] for K = 0, a negative or non-finite guidance, no
    /// queries, rows of the wrong width, NaN/±Inf, negative or steering rows that are neither
    /// one nor one per query, a non-finite steering scale.
    pub fn check(
        &self,
        queries: &[f32],
        query_dim: usize,
        target_dim: usize,
    ) -> Result<usize, RetrievalError> {
        if self.seeds_per_query == 0 {
            return Err(RetrievalError::invalid(
                "seeds_per_query",
                "must be at least 1",
            ));
        }
        if !(self.guidance.is_finite() && self.guidance >= 0.0) {
            return Err(RetrievalError::invalid(
                "guidance",
                format!("must be finite and ≥ 0, got {}", self.guidance),
            ));
        }
        let n = rows_of(queries, query_dim, "queries", None)?;
        if let Some(negative) = &self.negative {
            rows_of(negative, query_dim, "negative", Some(n))?;
        }
        for steering in &self.steering {
            rows_of(&steering.embedding, target_dim, "steer", Some(n))?;
            if !steering.weight.is_finite() {
                return Err(RetrievalError::invalid(
                    "steer",
                    format!("the scale must be finite, got {}", steering.weight),
                ));
            }
        }
        Ok(n)
    }
}

/// Rows of `width` in `values`: at least one, finite; with `queries = Some(n)`, one row or n.
fn rows_of(
    values: &[f32],
    width: usize,
    field: &'static str,
    queries: Option<usize>,
) -> Result<usize, RetrievalError> {
    if values.is_empty() {
        return Err(RetrievalError::invalid(field, "no rows"));
    }
    if !values.len().is_multiple_of(width) {
        return Err(RetrievalError::invalid(
            field,
            format!(
                "{} values are not a whole number of {width}-dim rows",
                values.len()
            ),
        ));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(RetrievalError::invalid(field, "holds NaN or ±Inf"));
    }
    let rows = values.len() / width;
    if let Some(n) = queries {
        if rows != 1 && rows != n {
            return Err(RetrievalError::invalid(
                field,
                format!("{rows} rows for {n} queries (give one per query, or one for all)"),
            ));
        }
    }
    Ok(rows)
}
