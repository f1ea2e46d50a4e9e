//! Training pairs (query, target): in memory or from .npy files.

use std::path::Path;

use diff4steer_eval::EvalError;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{ModelError, Result};

/// N pairs of a query embedding (`[N, query_dim]`) and a target embedding (`[N, target_dim]`),
/// row-major `f32`. The same query may appear in many rows with different targets: that is how a
/// distribution per query is learned. Validated on construction: same row count, at least one
/// row and column, every value finite.
///
/// Two optional additions shape what training sees:
/// - target-only rows ([`PairData::with_unconditional_targets`]): targets without a query, which
///   always train the null condition ∅ of the prior (the unconditional model classifier-free
///   guidance relies on) and which the regression baseline skips;
/// - sampling weights ([`PairData::with_weights`]): a row is drawn with probability ∝ its weight
///   instead of uniformly (to balance kinds of pairs, e.g. captions against aspect labels).
#[derive(Debug, Clone, PartialEq)]
pub struct PairData {
    queries: Vec<f32>,
    targets: Vec<f32>,
    rows: usize,
    /// Rows `conditional..rows` are target-only (their query cells are zeros).
    conditional: usize,
    /// Cumulative sampling weights (one per row, the last is the total), if any.
    cumulative_weights: Option<Vec<f64>>,
    query_dim: usize,
    target_dim: usize,
}

fn data_error(source: &str, reason: impl Into<String>) -> ModelError {
    ModelError::Data {
        source_name: source.to_owned(),
        reason: reason.into(),
    }
}

impl PairData {
    /// Pairs from row-major buffers.
    ///
    /// # Errors
    /// [`ModelError::Data`] for empty or ragged buffers, differing row counts or NaN/±Inf.
    pub fn from_vecs(
        queries: Vec<f32>,
        query_dim: usize,
        targets: Vec<f32>,
        target_dim: usize,
    ) -> Result<Self> {
        if query_dim == 0 || target_dim == 0 {
            return Err(data_error(
                "pairs",
                "embedding dimensions must be at least 1",
            ));
        }
        if !queries.len().is_multiple_of(query_dim) || !targets.len().is_multiple_of(target_dim) {
            return Err(data_error(
                "pairs",
                "buffer length is not a multiple of the dimension",
            ));
        }
        let rows = queries.len() / query_dim;
        if rows != targets.len() / target_dim {
            return Err(data_error(
                "pairs",
                format!(
                    "{rows} query rows but {} target rows",
                    targets.len() / target_dim
                ),
            ));
        }
        if rows == 0 {
            return Err(data_error("pairs", "no rows"));
        }
        if let Some(i) = queries.iter().position(|v| !v.is_finite()) {
            return Err(data_error(
                "queries",
                format!("non-finite value at row {}", i / query_dim),
            ));
        }
        if let Some(i) = targets.iter().position(|v| !v.is_finite()) {
            return Err(data_error(
                "targets",
                format!("non-finite value at row {}", i / target_dim),
            ));
        }
        Ok(Self {
            queries,
            targets,
            rows,
            conditional: rows,
            cumulative_weights: None,
            query_dim,
            target_dim,
        })
    }

    /// Appends target-only rows (`targets` row-major, `target_dim` wide): they always train the
    /// null condition. Weights set before are dropped (set them after).
    ///
    /// # Errors
    /// [`ModelError::Data`] for a ragged buffer or NaN/±Inf.
    pub fn with_unconditional_targets(mut self, targets: Vec<f32>) -> Result<Self> {
        if !targets.len().is_multiple_of(self.target_dim) {
            return Err(data_error(
                "target-only rows",
                format!(
                    "{} values are not whole rows of {}",
                    targets.len(),
                    self.target_dim
                ),
            ));
        }
        if let Some(i) = targets.iter().position(|v| !v.is_finite()) {
            return Err(data_error(
                "target-only rows",
                format!("non-finite value at row {}", i / self.target_dim),
            ));
        }
        let added = targets.len() / self.target_dim;
        self.queries
            .resize(self.queries.len() + added * self.query_dim, 0.0);
        self.targets.extend(targets);
        self.rows += added;
        self.cumulative_weights = None;
        Ok(self)
    }

    /// Draws row r with probability weights\[r\] / Σ weights (one weight per row, target-only rows
    /// included, in row order).
    ///
    /// # Errors
    /// [`ModelError::Data`] for another number of weights, a negative or non-finite weight, or
    /// weights that sum to 0.
    pub fn with_weights(mut self, weights: &[f64]) -> Result<Self> {
        if weights.len() != self.rows {
            return Err(data_error(
                "sampling weights",
                format!("{} weights for {} rows", weights.len(), self.rows),
            ));
        }
        if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return Err(data_error(
                "sampling weights",
                format!("every weight must be finite and ≥ 0, got {w}"),
            ));
        }
        let mut total = 0.0;
        let cumulative: Vec<f64> = weights
            .iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        if total <= 0.0 {
            return Err(data_error("sampling weights", "they sum to 0"));
        }
        self.cumulative_weights = Some(cumulative);
        Ok(self)
    }

    /// The sampling weight of every row, if weights were set.
    pub fn row_weights(&self) -> Option<Vec<f64>> {
        self.cumulative_weights.as_ref().map(|c| {
            c.iter()
                .scan(0.0, |previous, &total| {
                    let w = total - *previous;
                    *previous = total;
                    Some(w)
                })
                .collect()
        })
    }

    /// Rows with a query (the first ones); the rest are target-only.
    pub fn conditional_rows(&self) -> usize {
        self.conditional
    }

    /// Whether row `row` has a query.
    pub fn is_conditional(&self, row: usize) -> bool {
        row < self.conditional
    }

    /// Draws one row index: by the sampling weights when set, else uniformly; with
    /// `conditional_only`, among the rows with a query (target-only rows are redrawn, or, without
    /// weights, never drawn).
    pub fn draw_row(&self, rng: &mut ChaCha8Rng, conditional_only: bool) -> usize {
        use rand::RngExt;
        let end = if conditional_only {
            self.conditional
        } else {
            self.rows
        };
        match &self.cumulative_weights {
            None => rng.random_range(0..end),
            Some(cumulative) => {
                // Inverse-CDF draw: the first row whose cumulative weight exceeds u.
                let u = rng.random::<f64>() * cumulative[end - 1];
                cumulative[..end].partition_point(|&c| c <= u).min(end - 1)
            }
        }
    }

    /// The same pairs with every target mapped into a model's units by `map` (u = (z − μ)/s).
    ///
    /// # Errors
    /// [`ModelError::Data`] when `map` is for another target width.
    pub fn to_model_units(&self, map: &diff4steer_core::TargetScaling) -> Result<Self> {
        let mut out = self.clone();
        map.to_model_host(&mut out.targets)
            .map_err(|e| data_error("targets", e.to_string()))?;
        Ok(out)
    }

    /// Pairs from two .npy files of `float32` matrices with the same number of rows.
    ///
    /// # Errors
    /// [`ModelError::Data`] naming the file for a missing or malformed file, another dtype or
    /// rank, and for every check of [`PairData::from_vecs`].
    pub fn from_npy(query_path: &Path, target_path: &Path) -> Result<Self> {
        let (queries, query_dim) = read_matrix(query_path)?;
        let (targets, target_dim) = read_matrix(target_path)?;
        let names = format!("{} / {}", query_path.display(), target_path.display());
        Self::from_vecs(queries, query_dim, targets, target_dim).map_err(|e| match e {
            ModelError::Data { reason, .. } => data_error(&names, reason),
            other => other,
        })
    }

    /// Number of pairs.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Width of a query.
    pub fn query_dim(&self) -> usize {
        self.query_dim
    }

    /// Width of a target.
    pub fn target_dim(&self) -> usize {
        self.target_dim
    }

    /// Row-major queries.
    pub fn queries(&self) -> &[f32] {
        &self.queries
    }

    /// Row-major targets.
    pub fn targets(&self) -> &[f32] {
        &self.targets
    }

    /// Standard deviation of all target entries (σ_d of EDM preconditioning), in f64, over
    /// every row (target-only rows included).
    pub fn target_std(&self) -> f64 {
        let n = self.targets.len() as f64;
        let mean = self.targets.iter().map(|&v| v as f64).sum::<f64>() / n;
        (self
            .targets
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt()
    }

    /// The queries and targets of the given rows, row-major.
    pub fn gather(&self, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let mut q = Vec::with_capacity(rows.len() * self.query_dim);
        let mut t = Vec::with_capacity(rows.len() * self.target_dim);
        for &r in rows {
            q.extend_from_slice(&self.queries[r * self.query_dim..(r + 1) * self.query_dim]);
            t.extend_from_slice(&self.targets[r * self.target_dim..(r + 1) * self.target_dim]);
        }
        (q, t)
    }

    /// Splits off a seeded random `fraction` of the rows as validation data: (train, valid), both
    /// plain pairs.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] when either side would be empty, or when the data already
    /// has target-only rows or sampling weights (split first, then add them).
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Self, Self)> {
        if self.conditional < self.rows || self.cumulative_weights.is_some() {
            return Err(ModelError::InvalidConfig {
                field: "validation split",
                reason: "split the pairs before adding target-only rows or sampling weights".into(),
            });
        }
        let n_valid = (self.rows as f64 * fraction).round() as usize;
        if !(0.0..1.0).contains(&fraction) || n_valid == 0 || n_valid >= self.rows {
            return Err(ModelError::InvalidConfig {
                field: "validation fraction",
                reason: format!("{fraction} of {} rows leaves one side empty", self.rows),
            });
        }
        let mut order: Vec<usize> = (0..self.rows).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let part = |rows: &[usize]| {
            let (q, t) = self.gather(rows);
            Self::from_vecs(q, self.query_dim, t, self.target_dim)
        };
        Ok((part(&order[n_valid..])?, part(&order[..n_valid])?))
    }
}

/// Reads a 2-D `float32` .npy file with at least one row and column (checked as
/// [`diff4steer_eval::io::npy::read_nonempty_f32_matrix`] checks it): (values, columns).
///
/// # Errors
/// [`ModelError::Data`] naming the file.
pub fn read_matrix(path: &Path) -> Result<(Vec<f32>, usize)> {
    let array = diff4steer_eval::io::npy::read_nonempty_f32_matrix(path).map_err(|e| match e {
        EvalError::Npy { path, reason } | EvalError::Io { path, reason } => {
            data_error(&path, reason)
        }
        other => data_error(&path.display().to_string(), other.to_string()),
    })?;
    let cols = array.ncols();
    let values = array.as_standard_layout().iter().copied().collect();
    Ok((values, cols))
}
