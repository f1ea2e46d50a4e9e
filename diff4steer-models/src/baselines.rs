//! Two closed-form anchors a learned prior has to beat, both on host rows and both behind
//! [`SeedGenerator`]:
//!
//! - [`RidgeRegression`]: the linear map query → standardised target fitted by ridge regression
//!   (Hoerl & Kennard 1970): Â = (QᵀWQ + λI)⁻¹ QᵀWU with U the standardised targets and W the
//!   optional row weights; one seed per query, the best linear point estimate.
//! - [`NearestQuerySeeds`]: the targets of the k training pairs whose queries are nearest to the
//!   query by cosine (a k-nearest-neighbour "prior": it samples only what it has seen, with no
//!   generalisation beyond the training targets).

use burn::tensor::{backend::Backend, Tensor, TensorData};
use diff4steer_core::tensor_util::{ensure_dim, ensure_finite, to_host_f32};
use diff4steer_core::{CoreError, TargetScaling};
use nalgebra::DMatrix;

use crate::training::PairData;
use crate::{ModelError, Result, SeedGenerator};

fn check_host_queries(queries: &[f32], query_dim: usize, k: usize) -> Result<usize> {
    if k == 0 {
        return Err(CoreError::InvalidParameter {
            name: "seeds per query (k)",
            value: 0.0,
            reason: "must be at least 1",
        }
        .into());
    }
    if queries.is_empty() {
        return Err(CoreError::Empty { what: "queries" }.into());
    }
    if !queries.len().is_multiple_of(query_dim) {
        return Err(CoreError::DimMismatch {
            what: "query embedding",
            expected: query_dim,
            got: queries.len() % query_dim,
        }
        .into());
    }
    if queries.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            what: "query embeddings",
        }
        .into());
    }
    Ok(queries.len() / query_dim)
}

/// The linear query → target map of ridge regression, fitted on standardised targets and
/// predicting in catalogue units.
#[derive(Debug, Clone, PartialEq)]
pub struct RidgeRegression {
    /// `[query_dim, target_dim]` row-major.
    weights: Vec<f32>,
    scaling: TargetScaling,
    query_dim: usize,
    target_dim: usize,
}

impl RidgeRegression {
    /// Fits the map on the pairs of `data` (target-only rows are skipped; sampling weights, where
    /// set, weight the rows) with penalty `lambda`; targets are standardised with their own
    /// (weighted) statistics first. The normal equations are solved in f64 by Cholesky.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for a negative or non-finite λ, or a system that is not
    /// positive definite (λ = 0 with fewer independent queries than dimensions).
    pub fn fit(data: &PairData, lambda: f64) -> Result<Self> {
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(ModelError::InvalidConfig {
                field: "ridge lambda",
                reason: format!("must be finite and non-negative, got {lambda}"),
            });
        }
        let (dq, dt) = (data.query_dim(), data.target_dim());
        let rows: Vec<usize> = (0..data.conditional_rows()).collect();
        let (queries, mut targets) = data.gather(&rows);
        // Weights rescaled to mean 1 over the rows used, so λ keeps its meaning (a penalty
        // against n unit-weight rows) whatever scale the sampling weights have.
        let weights: Vec<f64> = match data.row_weights() {
            None => vec![1.0; rows.len()],
            Some(w) => {
                let used = &w[..rows.len()];
                let mean = used.iter().sum::<f64>() / used.len() as f64;
                if mean <= 0.0 {
                    return Err(ModelError::Data {
                        source_name: "ridge pairs".into(),
                        reason: "every pair with a query has weight 0".into(),
                    });
                }
                used.iter().map(|v| v / mean).collect()
            }
        };
        let scaling = weighted_standardising(&targets, dt, &weights)?;
        scaling.to_model_host(&mut targets)?;
        let mut gram = DMatrix::<f64>::zeros(dq, dq);
        let mut cross = DMatrix::<f64>::zeros(dq, dt);
        for (i, (q, t)) in queries
            .chunks_exact(dq)
            .zip(targets.chunks_exact(dt))
            .enumerate()
        {
            let w = weights[i];
            if w == 0.0 {
                continue;
            }
            for a in 0..dq {
                let qa = w * f64::from(q[a]);
                for b in a..dq {
                    gram[(a, b)] += qa * f64::from(q[b]);
                }
                for (c, &tc) in t.iter().enumerate() {
                    cross[(a, c)] += qa * f64::from(tc);
                }
            }
        }
        for a in 0..dq {
            for b in 0..a {
                gram[(a, b)] = gram[(b, a)];
            }
            gram[(a, a)] += lambda;
        }
        let cholesky = gram.cholesky().ok_or_else(|| ModelError::InvalidConfig {
            field: "ridge lambda",
            reason: "QᵀQ + λI is not positive definite; use λ > 0".into(),
        })?;
        let solution = cholesky.solve(&cross);
        let weights = (0..dq)
            .flat_map(|a| (0..dt).map(move |c| (a, c)))
            .map(|(a, c)| solution[(a, c)] as f32)
            .collect();
        Ok(Self {
            weights,
            scaling,
            query_dim: dq,
            target_dim: dt,
        })
    }

    /// One prediction per query (`[n, query_dim]` row-major) in catalogue units: `[n,
    /// target_dim]`.
    ///
    /// # Errors
    /// [`CoreError::Empty`], [`CoreError::DimMismatch`] or [`CoreError::NonFinite`] for bad
    /// queries.
    pub fn predict_host(&self, queries: &[f32]) -> Result<Vec<f32>> {
        let n = check_host_queries(queries, self.query_dim, 1)?;
        let mut out = vec![0.0f32; n * self.target_dim];
        for (q, o) in queries
            .chunks_exact(self.query_dim)
            .zip(out.chunks_exact_mut(self.target_dim))
        {
            for (a, &qa) in q.iter().enumerate() {
                let row = &self.weights[a * self.target_dim..(a + 1) * self.target_dim];
                o.iter_mut().zip(row).for_each(|(v, &w)| *v += qa * w);
            }
        }
        self.scaling.to_catalogue_host(&mut out)?;
        Ok(out)
    }
}

impl<B: Backend> SeedGenerator<B> for RidgeRegression {
    fn query_dim(&self) -> usize {
        self.query_dim
    }

    fn target_dim(&self) -> usize {
        self.target_dim
    }

    /// K copies of the one prediction (`seed` is unused).
    fn seeds(&self, queries: Tensor<B, 2>, k: usize, _seed: u64) -> Result<Tensor<B, 2>> {
        ensure_dim(&queries, self.query_dim, "query embedding")?;
        ensure_finite(&queries, "query embeddings")?;
        let device = queries.device();
        let n = queries.dims()[0];
        let predicted = self.predict_host(&to_host_f32(queries)?)?;
        check_host_queries(&[0.0], 1, k)?;
        let rows: Vec<f32> = predicted
            .chunks_exact(self.target_dim)
            .flat_map(|p| std::iter::repeat_n(p, k).flatten().copied())
            .collect();
        Ok(Tensor::from_data(
            TensorData::new(rows, [n * k, self.target_dim]),
            &device,
        ))
    }
}

/// Per-column mean and standard deviation of `rows` under row weights (mean 1), as a
/// [`TargetScaling`]; a constant column keeps scale 1.
fn weighted_standardising(rows: &[f32], dim: usize, weights: &[f64]) -> Result<TargetScaling> {
    let total: f64 = weights.iter().sum();
    let mut mean = vec![0.0f64; dim];
    for (row, &w) in rows.chunks_exact(dim).zip(weights) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &v)| *m += w * f64::from(v));
    }
    mean.iter_mut().for_each(|m| *m /= total);
    let mut var = vec![0.0f64; dim];
    for (row, &w) in rows.chunks_exact(dim).zip(weights) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += w * (f64::from(v) - m).powi(2);
        }
    }
    let scale = var
        .iter()
        .map(|s| {
            let sd = (s / total).sqrt() as f32;
            if sd > diff4steer_core::target_scaling::MIN_SCALE {
                sd
            } else {
                1.0
            }
        })
        .collect();
    Ok(TargetScaling::new(
        mean.into_iter().map(|m| m as f32).collect(),
        scale,
    )?)
}

/// The targets of the training pairs whose queries are nearest (cosine) to a query: the k pairs
/// with the most similar queries, each giving its target (ties by row order).
#[derive(Debug, Clone, PartialEq)]
pub struct NearestQuerySeeds {
    /// Unit-norm training queries, row-major.
    queries: Vec<f32>,
    targets: Vec<f32>,
    query_dim: usize,
    target_dim: usize,
}

impl NearestQuerySeeds {
    /// Remembers the pairs of `data` (target-only rows are skipped).
    ///
    /// # Errors
    /// [`ModelError::Data`] when a query is the zero vector (it has no direction).
    pub fn new(data: &PairData) -> Result<Self> {
        let rows: Vec<usize> = (0..data.conditional_rows()).collect();
        let (mut queries, targets) = data.gather(&rows);
        let dq = data.query_dim();
        for (r, q) in queries.chunks_exact_mut(dq).enumerate() {
            let norm = q.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm == 0.0 {
                return Err(ModelError::Data {
                    source_name: "nearest-query pairs".into(),
                    reason: format!("query {r} is the zero vector"),
                });
            }
            q.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(Self {
            queries,
            targets,
            query_dim: dq,
            target_dim: data.target_dim(),
        })
    }

    /// For each query (`[n, query_dim]`), the targets of its `k` nearest training queries, nearest
    /// first: `[n·k, target_dim]` (fewer training pairs than k repeat cyclically).
    ///
    /// # Errors
    /// As [`RidgeRegression::predict_host`]; k = 0 is [`CoreError::InvalidParameter`].
    pub fn seeds_host(&self, queries: &[f32], k: usize) -> Result<Vec<f32>> {
        check_host_queries(queries, self.query_dim, k)?;
        let pairs = self.queries.len() / self.query_dim;
        let mut out = Vec::with_capacity(queries.len() / self.query_dim * k * self.target_dim);
        for q in queries.chunks_exact(self.query_dim) {
            let mut scored: Vec<(f32, usize)> = self
                .queries
                .chunks_exact(self.query_dim)
                .enumerate()
                .map(|(r, t)| (q.iter().zip(t).map(|(a, b)| a * b).sum::<f32>(), r))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for j in 0..k {
                let r = scored[j % pairs].1;
                out.extend_from_slice(
                    &self.targets[r * self.target_dim..(r + 1) * self.target_dim],
                );
            }
        }
        Ok(out)
    }
}

impl<B: Backend> SeedGenerator<B> for NearestQuerySeeds {
    fn query_dim(&self) -> usize {
        self.query_dim
    }

    fn target_dim(&self) -> usize {
        self.target_dim
    }

    /// The targets of the k nearest training queries (`seed` is unused: it is deterministic).
    fn seeds(&self, queries: Tensor<B, 2>, k: usize, _seed: u64) -> Result<Tensor<B, 2>> {
        ensure_dim(&queries, self.query_dim, "query embedding")?;
        let device = queries.device();
        let n = queries.dims()[0];
        let rows = self.seeds_host(&to_host_f32(queries)?, k)?;
        Ok(Tensor::from_data(
            TensorData::new(rows, [n * k, self.target_dim]),
            &device,
        ))
    }
}
