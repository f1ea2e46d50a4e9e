//! [`SeedSampler`]: the first stage of retrieval — a [`SeedSource`] and the [`Sampler`] it draws
//! with, turning queries and a [`RetrievalRequest`] into seeds.

use diff4steer_core::karras;

use super::{RetrievalError, RetrievalRequest, SeedSource};
use crate::{Sampler, SamplerKind};

type Result<T> = std::result::Result<T, RetrievalError>;

/// K seeds per query from a seed source with a sampler (Heun, 16 Karras steps from σ 80 to
/// 0.002 by default: 31 network evaluations, which match 32 Euler steps on MusicCaps at half the
/// cost). What `diff4steer sample` runs; [`GenerativeRetriever`](super::GenerativeRetriever)
/// holds one.
pub struct SeedSampler {
    source: Box<dyn SeedSource>,
    sampler: Sampler,
}

impl std::fmt::Debug for SeedSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedSampler")
            .field("source", &self.source.describe())
            .field("sampler", &self.sampler)
            .finish()
    }
}

/// Heun over 16 Karras steps, σ 80 → 0.002, ρ = 7 (EDM's grid).
pub(crate) fn default_sampler() -> Result<Sampler> {
    Ok(Sampler::new(
        SamplerKind::Heun,
        karras(16, 0.002, 80.0, 7.0)?,
    )?)
}

impl SeedSampler {
    /// `source` with the default sampler.
    ///
    /// # Errors
    /// Never in practice (the default grid is valid); typed for uniformity.
    pub fn new(source: Box<dyn SeedSource>) -> Result<Self> {
        Ok(Self {
            source,
            sampler: default_sampler()?,
        })
    }

    /// The seed source of a checkpoint folder ([`super::load_source`]) with the default sampler.
    ///
    /// # Errors
    /// [`RetrievalError::Model`] for a missing, corrupt or unknown checkpoint.
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    pub fn open(model_dir: &std::path::Path) -> Result<Self> {
        Self::new(super::load_source(model_dir)?)
    }

    /// Draws with `sampler` instead.
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// The seed source.
    pub fn source(&self) -> &dyn SeedSource {
        self.source.as_ref()
    }

    /// The sampler.
    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    /// `request.seeds_per_query` seeds for each row of `queries` (`[n, query_dim]` row-major):
    /// `[n·K, target_dim]` in catalogue units, query-major (rows q·K … q·K + K − 1 are query
    /// q's). Seed j of query q draws noise stream q·K + j of the request's seed, so a query's
    /// seeds are the same bits alone, in any batch and with any number of threads.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] for K = 0, a negative or non-finite guidance, no
    /// queries, rows of the wrong width, NaN/±Inf, negative or steering rows that are neither
    /// one nor one per query, or options the source cannot honour; errors of the model.
    pub fn seeds(&self, queries: &[f32], request: &RetrievalRequest) -> Result<Vec<f32>> {
        request.check(queries, self.source.query_dim(), self.source.target_dim())?;
        self.source.seeds(queries, request, &self.sampler)
    }
}
