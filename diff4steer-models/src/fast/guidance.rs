//! [`HostGuidance`]: guidance and text steering on host buffers, the host twin of
//! `diff4steer_core`'s [`LinearGuidance`](diff4steer_core::LinearGuidance) and
//! [`Steered`](diff4steer_core::Steered) with the same formulas:
//!
//! - linear guidance (Ho & Salimans 2022, Eq. 6, written for denoisers):
//!   D̃(x, σ, q) = Σ_j a_j·D(x, σ, c_j) with Σ_j a_j = 1, where c_j is the query, the null
//!   condition ∅ or a fixed condition (a negative prompt, a second text);
//! - steering toward target-space embeddings (METHOD.md, text steering; the σ² factor is
//!   Tweedie's formula as in gradient guidance, Chung et al. 2023):
//!   D̃ ← D̃ + σ²·Σ_k γ_k·∇_x̂ s(x̂, e_k), s = cosine or dot.
//!
//! Every term's rows go through the network in one batch per evaluation.

use diff4steer_core::{CoreError, Similarity};

use super::prior::{ConditionTable, FastPrior, FastScratch, HostCondition};
use crate::Result;

/// The condition one guidance term evaluates the prior under.
#[derive(Debug, Clone, PartialEq)]
pub enum HostTermCondition {
    /// The query of the row's own query.
    Given,
    /// The learned null condition ∅.
    Null,
    /// Fixed query-space rows: one for every query, or one per query (row q for query q).
    Fixed(Vec<f32>),
}

/// One term a_j·D(x, σ, c_j) of a [`HostGuidance`].
#[derive(Debug, Clone, PartialEq)]
pub struct HostTerm {
    /// c_j.
    pub condition: HostTermCondition,
    /// a_j.
    pub weight: f64,
}

/// One steering embedding in the target space (catalogue units), one row for every query or one
/// per query, with weight γ (negative pushes away).
#[derive(Debug, Clone, PartialEq)]
pub struct HostSteering {
    /// `[1 or n, target_dim]` row-major.
    pub embedding: Vec<f32>,
    /// γ.
    pub weight: f64,
}

/// Linear guidance plus optional steering for the host samplers (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct HostGuidance {
    terms: Vec<HostTerm>,
    steering: Vec<HostSteering>,
    similarity: Similarity,
}

impl HostGuidance {
    /// Explicit terms, no steering.
    ///
    /// # Errors
    /// [`CoreError::Empty`] for no terms, [`CoreError::InvalidParameter`] for a non-finite weight
    /// or weights that do not sum to 1 (within 1e-9), [`CoreError::NonFinite`] for NaN/±Inf in a
    /// fixed condition.
    pub fn new(terms: Vec<HostTerm>) -> Result<Self> {
        if terms.is_empty() {
            return Err(CoreError::Empty {
                what: "guidance terms",
            }
            .into());
        }
        for term in &terms {
            if !term.weight.is_finite() {
                return Err(invalid("guidance weight", term.weight, "must be finite"));
            }
            if let HostTermCondition::Fixed(rows) = &term.condition {
                if rows.is_empty() {
                    return Err(CoreError::Empty {
                        what: "guidance condition embedding",
                    }
                    .into());
                }
                if rows.iter().any(|v| !v.is_finite()) {
                    return Err(CoreError::NonFinite {
                        what: "guidance condition embedding",
                    }
                    .into());
                }
            }
        }
        let total: f64 = terms.iter().map(|t| t.weight).sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(invalid(
                "sum of guidance weights",
                total,
                "must be 1 so that the guided estimate stays an estimate of x₀",
            ));
        }
        Ok(Self {
            terms,
            steering: Vec::new(),
            similarity: Similarity::Cosine,
        })
    }

    /// Classifier-free guidance with strength w ≥ 0: (1 + w)·D(q) − w·D(∅); w = 0 evaluates the
    /// query alone.
    ///
    /// # Errors
    /// [`CoreError::InvalidParameter`] for a negative or non-finite `w`.
    pub fn classifier_free(w: f64) -> Result<Self> {
        check_strength(w)?;
        if w == 0.0 {
            return Self::new(vec![term(HostTermCondition::Given, 1.0)]);
        }
        Self::new(vec![
            term(HostTermCondition::Given, 1.0 + w),
            term(HostTermCondition::Null, -w),
        ])
    }

    /// A negative condition with strength w ≥ 0: (1 + w)·D(q) − w·D(c_neg); `negative` holds one
    /// query-space row for every query or one per query.
    ///
    /// # Errors
    /// As [`HostGuidance::new`], and [`CoreError::InvalidParameter`] for a negative `w`.
    pub fn contrastive(negative: Vec<f32>, w: f64) -> Result<Self> {
        check_strength(w)?;
        Self::new(vec![
            term(HostTermCondition::Given, 1.0 + w),
            term(HostTermCondition::Fixed(negative), -w),
        ])
    }

    /// Adds steering toward (γ > 0) or away from (γ < 0) target-space embeddings, measured by
    /// `similarity`; γ = 0 targets are ignored.
    ///
    /// # Errors
    /// [`CoreError::Empty`] for an empty embedding, [`CoreError::NonFinite`] for NaN/±Inf in it,
    /// [`CoreError::InvalidParameter`] for a non-finite γ.
    pub fn with_steering(
        mut self,
        steering: Vec<HostSteering>,
        similarity: Similarity,
    ) -> Result<Self> {
        for s in &steering {
            if s.embedding.is_empty() {
                return Err(CoreError::Empty {
                    what: "steering embedding",
                }
                .into());
            }
            if s.embedding.iter().any(|v| !v.is_finite()) {
                return Err(CoreError::NonFinite {
                    what: "steering embedding",
                }
                .into());
            }
            if !s.weight.is_finite() {
                return Err(invalid("steering weight", s.weight, "must be finite"));
            }
        }
        self.steering = steering.into_iter().filter(|s| s.weight != 0.0).collect();
        self.similarity = similarity;
        Ok(self)
    }

    /// The guidance terms.
    pub fn terms(&self) -> &[HostTerm] {
        &self.terms
    }

    /// The steering embeddings (γ ≠ 0).
    pub fn steering(&self) -> &[HostSteering] {
        &self.steering
    }

    /// Network rows per sample and evaluation (one per term).
    pub fn rows_per_sample(&self) -> usize {
        self.terms.len()
    }
}

fn term(condition: HostTermCondition, weight: f64) -> HostTerm {
    HostTerm { condition, weight }
}

fn invalid(name: &'static str, value: f64, reason: &'static str) -> crate::ModelError {
    CoreError::InvalidParameter {
        name,
        value,
        reason,
    }
    .into()
}

fn check_strength(w: f64) -> Result<()> {
    if !(w.is_finite() && w >= 0.0) {
        return Err(invalid(
            "guidance_strength",
            w,
            "must be finite and non-negative",
        ));
    }
    Ok(())
}

/// Checks a per-query matrix: `rows` holds one `width`-wide row, or one per query; returns how
/// many rows it holds.
fn per_query_rows(rows: &[f32], width: usize, queries: usize, what: &'static str) -> Result<usize> {
    if !rows.len().is_multiple_of(width) {
        return Err(CoreError::DimMismatch {
            what,
            expected: width,
            got: rows.len() % width,
        }
        .into());
    }
    let count = rows.len() / width;
    if !(count == 1 || count == queries) {
        return Err(CoreError::BatchMismatch {
            what,
            expected: queries,
            got: count,
        }
        .into());
    }
    Ok(count)
}

/// The most conditions a [`GuidedBatch`] precomputes for a whole σ grid (16 KB each at width
/// 512, depth 4): beyond it (hundreds of queries in one call, whose many rows amortise the
/// conditioning anyway) each evaluation computes its own.
const MAX_TABLE_CONDITIONS: usize = 2048;

/// A [`HostGuidance`] bound to one batch: `n` queries with `k` samples each. It builds the
/// stacked network batch (term-major: every sample under term 0, then under term 1, …) and
/// combines the denoised rows. The conditioning of every (σ of the grid, source) pair is computed
/// once, when the batch is bound ([`ConditionTable`]); each evaluation then only runs the rows.
pub(crate) struct GuidedBatch<'a> {
    prior: &'a FastPrior,
    k: usize,
    /// Per term: its weight, and the condition index of query q's rows under it.
    terms: Vec<(f32, Vec<usize>)>,
    /// The distinct conditions: the queries, then the fixed rows, then ∅ if any term uses it.
    sources: Vec<Option<&'a [f32]>>,
    row_condition: Vec<usize>,
    /// The σ grid the table covers, and the table (σ-major: condition s·sources + j).
    grid: Vec<f64>,
    table: Option<ConditionTable>,
    /// `row_condition` shifted to one σ of the table.
    row_condition_at: Vec<usize>,
    /// Steering in model units: per target, γ and the row of each query.
    steering: Vec<(f32, Vec<f32>, usize)>,
    similarity: Similarity,
    stacked: Vec<f32>,
    denoised: Vec<f32>,
    guided: Vec<f32>,
}

impl<'a> GuidedBatch<'a> {
    /// Binds `guidance` to `queries` (`n` rows) with `k` samples each; the conditioning for every
    /// σ in `grid` is computed now (when it is small enough), every other σ at its evaluation.
    ///
    /// # Errors
    /// [`CoreError::DimMismatch`] when a fixed condition or steering embedding is not a whole
    /// number of rows, [`CoreError::BatchMismatch`] when it has neither one row nor one per query.
    pub fn new(
        prior: &'a FastPrior,
        guidance: &'a HostGuidance,
        queries: &'a [f32],
        (n, k): (usize, usize),
        grid: &[f64],
        scratch: &mut FastScratch,
    ) -> Result<Self> {
        let qd = prior.query_dim();
        let mut sources: Vec<Option<&'a [f32]>> = (0..n)
            .map(|q| Some(&queries[q * qd..(q + 1) * qd]))
            .collect();
        let mut null_index = None;
        let mut terms = Vec::with_capacity(guidance.terms.len());
        for t in &guidance.terms {
            let per_query: Vec<usize> = match &t.condition {
                HostTermCondition::Given => (0..n).collect(),
                HostTermCondition::Null => {
                    let index = *null_index.get_or_insert_with(|| {
                        sources.push(None);
                        sources.len() - 1
                    });
                    vec![index; n]
                }
                HostTermCondition::Fixed(rows) => {
                    let count = per_query_rows(rows, qd, n, "guidance condition embedding")?;
                    let first = sources.len();
                    sources.extend(rows.chunks_exact(qd).map(Some));
                    (0..n)
                        .map(|q| first + if count == 1 { 0 } else { q })
                        .collect()
                }
            };
            terms.push((t.weight as f32, per_query));
        }
        let rows = n * k;
        let row_condition: Vec<usize> = terms
            .iter()
            .flat_map(|(_, per_query)| (0..rows).map(move |r| per_query[r / k]))
            .collect();
        let dim = prior.target_dim();
        let mut steering = Vec::with_capacity(guidance.steering.len());
        for s in &guidance.steering {
            let count = per_query_rows(&s.embedding, dim, n, "steering embedding")?;
            let mut embedding = s.embedding.clone();
            if let Some(map) = prior.scaling() {
                map.to_model_host(&mut embedding)?;
            }
            steering.push((s.weight as f32, embedding, count));
        }
        let copies = terms.len();
        let (grid, table) = if grid.len() * sources.len() <= MAX_TABLE_CONDITIONS {
            let conditions: Vec<HostCondition<'_>> = grid
                .iter()
                .flat_map(|&sigma| {
                    sources.iter().map(move |&query| HostCondition {
                        sigma: sigma as f32,
                        query,
                    })
                })
                .collect();
            (
                grid.to_vec(),
                Some(prior.condition_table(&conditions, scratch)),
            )
        } else {
            (Vec::new(), None)
        };
        Ok(Self {
            prior,
            k,
            terms,
            sources,
            row_condition,
            grid,
            table,
            row_condition_at: Vec::new(),
            steering,
            similarity: guidance.similarity,
            stacked: vec![0.0; copies * rows * dim],
            denoised: vec![0.0; copies * rows * dim],
            guided: vec![0.0; rows * dim],
        })
    }

    /// D̃(x, σ) for the `[n·k, dim]` state `x`.
    pub fn denoise(&mut self, x: &[f32], sigma: f64, scratch: &mut FastScratch) -> &[f32] {
        let sigma_f = sigma as f32;
        let len = x.len();
        for copy in self.stacked.chunks_exact_mut(len) {
            copy.copy_from_slice(x);
        }
        let on_grid = self.grid.iter().position(|&s| s == sigma);
        match (&self.table, on_grid) {
            (Some(table), Some(s)) => {
                let first = s * self.sources.len();
                self.row_condition_at.clear();
                self.row_condition_at
                    .extend(self.row_condition.iter().map(|&c| first + c));
                self.prior.denoise_with_table(
                    &self.stacked,
                    &self.row_condition_at,
                    table,
                    &mut self.denoised,
                    scratch,
                );
            }
            _ => {
                let conditions: Vec<HostCondition<'_>> = self
                    .sources
                    .iter()
                    .map(|&query| HostCondition {
                        sigma: sigma_f,
                        query,
                    })
                    .collect();
                self.prior.denoise_into(
                    &self.stacked,
                    &self.row_condition,
                    &conditions,
                    &mut self.denoised,
                    scratch,
                );
            }
        }
        if let [(weight, _)] = self.terms.as_slice() {
            // One term (weight 1): the estimate itself, bit for bit.
            debug_assert_eq!(*weight, 1.0);
            self.guided.copy_from_slice(&self.denoised);
        } else {
            self.guided.fill(0.0);
            for ((weight, _), denoised) in self.terms.iter().zip(self.denoised.chunks_exact(len)) {
                for (g, &d) in self.guided.iter_mut().zip(denoised) {
                    *g += d * weight;
                }
            }
        }
        if !self.steering.is_empty() {
            self.steer(sigma_f);
        }
        &self.guided
    }

    /// x̂ ← x̂ + σ²·Σ_k γ_k·∇_x̂ s(x̂, e_k) for every sample row.
    fn steer(&mut self, sigma: f32) {
        let dim = self.prior.target_dim();
        let sigma_sq = sigma * sigma;
        let k = self.k;
        let mut pull = vec![0.0f32; dim];
        for (r, x_hat) in self.guided.chunks_exact_mut(dim).enumerate() {
            pull.fill(0.0);
            for (weight, embedding, count) in &self.steering {
                let q = if *count == 1 { 0 } else { r / k };
                let e = &embedding[q * dim..(q + 1) * dim];
                similarity_gradient_add(self.similarity, x_hat, e, *weight, &mut pull);
            }
            for (x, p) in x_hat.iter_mut().zip(&pull) {
                *x += p * sigma_sq;
            }
        }
    }
}

/// pull += γ·∇_x̂ s(x̂, e) for one row (the closed forms of [`Similarity`]; norms clamped at
/// 1e-12 as `diff4steer_core::tensor_util::row_norm` does).
fn similarity_gradient_add(
    similarity: Similarity,
    x_hat: &[f32],
    e: &[f32],
    weight: f32,
    pull: &mut [f32],
) {
    match similarity {
        Similarity::Dot => {
            for (p, &ev) in pull.iter_mut().zip(e) {
                *p += ev * weight;
            }
        }
        Similarity::Cosine => {
            let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
            let (x_norm, e_norm) = (norm(x_hat), norm(e));
            let cos: f32 = x_hat
                .iter()
                .zip(e)
                .map(|(&x, &ev)| (x / x_norm) * (ev / e_norm))
                .sum();
            for ((p, &x), &ev) in pull.iter_mut().zip(x_hat).zip(e) {
                *p += ((ev / e_norm - (x / x_norm) * cos) / x_norm) * weight;
            }
        }
    }
}
