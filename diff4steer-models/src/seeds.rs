//! "Give me K seeds for each query": the one interface downstream retrieval needs, served alike
//! by the diffusion prior (K samples) and the regression baseline (K copies of its one point).

use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::tensor_util::{ensure_dim, ensure_finite, repeat_rows_to};
use diff4steer_core::{Conditioning, CoreError, Denoiser, SeededNoise};

use crate::regression::RegressionModel;
use crate::{Result, Sampler};

/// Turns query embeddings into seed embeddings in the target space.
pub trait SeedGenerator<B: Backend> {
    /// Width of a query embedding.
    fn query_dim(&self) -> usize;

    /// Width of a seed (target embedding).
    fn target_dim(&self) -> usize;

    /// `queries` is `[n, query_dim]`; returns `[n·k, target_dim]`, query-major (rows q·k … q·k + k − 1
    /// belong to query q). The same `seed` gives the same seeds.
    ///
    /// # Errors
    /// [`CoreError::InvalidParameter`] for k = 0, [`CoreError::DimMismatch`] for a query of another
    /// width, [`CoreError::Empty`] for no queries, [`CoreError::NonFinite`] for NaN/±Inf.
    fn seeds(&self, queries: Tensor<B, 2>, k: usize, seed: u64) -> Result<Tensor<B, 2>>;
}

fn check_queries<B: Backend>(queries: &Tensor<B, 2>, query_dim: usize, k: usize) -> Result<()> {
    if k == 0 {
        return Err(CoreError::InvalidParameter {
            name: "seeds per query (k)",
            value: 0.0,
            reason: "must be at least 1",
        }
        .into());
    }
    if queries.dims()[0] == 0 {
        return Err(CoreError::Empty { what: "queries" }.into());
    }
    ensure_dim(queries, query_dim, "query embedding")?;
    ensure_finite(queries, "query embeddings")?;
    Ok(())
}

/// K samples per query from a (possibly guided or steered) diffusion prior with a [`Sampler`].
/// Sample j of query q uses noise stream q·k + j of `seed`, so a query's seeds do not depend on
/// the other queries in the batch. Seeds are in catalogue units (as [`Sampler::sample`]).
#[derive(Debug, Clone)]
pub struct PriorSeeds<D> {
    denoiser: D,
    sampler: Sampler,
}

impl<D> PriorSeeds<D> {
    /// Seeds from `denoiser` (e.g. `LinearGuidance::classifier_free(prior, w)`) with `sampler`.
    pub fn new(denoiser: D, sampler: Sampler) -> Self {
        Self { denoiser, sampler }
    }
}

impl<B: Backend, D: Denoiser<B>> SeedGenerator<B> for PriorSeeds<D> {
    fn query_dim(&self) -> usize {
        self.denoiser.cond_dim()
    }

    fn target_dim(&self) -> usize {
        self.denoiser.dim()
    }

    fn seeds(&self, queries: Tensor<B, 2>, k: usize, seed: u64) -> Result<Tensor<B, 2>> {
        check_queries(&queries, self.denoiser.cond_dim(), k)?;
        let n = queries.dims()[0];
        let cond = Conditioning::from_validated(queries, vec![false; n])?.fit_batch(n * k)?;
        // In catalogue units: `Sampler::sample` maps a rescaled denoiser's samples back.
        self.sampler
            .sample(&self.denoiser, &cond, &mut SeededNoise::new(seed))
    }
}

impl<B: Backend> SeedGenerator<B> for RegressionModel<B> {
    fn query_dim(&self) -> usize {
        RegressionModel::query_dim(self)
    }

    fn target_dim(&self) -> usize {
        RegressionModel::target_dim(self)
    }

    /// K identical copies of the single prediction R(q) (`seed` is unused: it is deterministic).
    fn seeds(&self, queries: Tensor<B, 2>, k: usize, _seed: u64) -> Result<Tensor<B, 2>> {
        check_queries(&queries, RegressionModel::query_dim(self), k)?;
        let n = queries.dims()[0];
        Ok(repeat_rows_to(
            self.predict(queries),
            n * k,
            "regression seeds",
        )?)
    }
}
