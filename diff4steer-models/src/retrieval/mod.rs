//! The front door: [`GenerativeRetriever`], the whole path a query takes in one type.
//!
//! ```text
//! queries ──► SeedSource ──► K seeds per query (guidance, negative conditions, steering)
//!                               │  catalogue units
//!                               ▼
//!             Preprocessor (fitted on the catalogue) ──► VectorIndex::search (depth per seed)
//!                               │  K hit lists per query
//!                               ▼
//!             fuse (RRF, max, mean, round-robin, MMR) ──► [re-rank by the prior] ──► top k
//! ```
//!
//! Diff4Steer (Bao et al. 2024, arXiv 2412.04746, §3): a conditional diffusion prior samples many
//! seeds in the target space for one query; each seed retrieves its neighbours and the lists are
//! fused into one relevant, diverse list. [`retrieve_with`](GenerativeRetriever::retrieve_with)
//! in this file is the path a query takes, step by step; its stages are [`SeedSampler`]
//! (`seed_sampler.rs`, over the [`SeedSource`]s of `source.rs`) and [`SeedSearch`]
//! (`search.rs`); the per-request options are in `request.rs`, the construction in
//! `builder.rs`.
//!
//! Which sampler implementation runs: a trained prior on the CPU goes through the host fast path
//! ([`crate::fast`]: Euler, Heun and DPM-Solver++ on host buffers, batch-invariant) wherever the
//! sampler kind allows it, and through burn's [`Sampler`](crate::Sampler) over the host denoiser for the
//! stochastic kinds; a prior on a GPU backend ([`BurnPrior`]) samples through burn. The σ grid
//! and the step rule are the same [`Sampler`](crate::Sampler) value in every case.
//!
//! ```no_run
//! use diff4steer_models::retrieval::GenerativeRetriever;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let queries = vec![0.0f32; 384];
//! let retriever = GenerativeRetriever::open("prior/".as_ref(), "catalogue.npy".as_ref())?;
//! let hits = retriever.retrieve(&queries, 10)?; // one list of 10 hits per query row
//! # Ok(()) }
//! ```

mod builder;
mod error;
mod request;
mod search;
mod seed_sampler;
mod source;

pub use builder::RetrieverBuilder;
pub use diff4steer_index::Hit;
pub use error::RetrievalError;
pub use request::{Rerank, RetrievalRequest};
pub use search::{IndexChoice, SearchSettings, SeedSearch};
pub use seed_sampler::SeedSampler;
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub use source::load_source;
pub use source::{BurnPrior, Generator, HostPrior, Regression, SeedSource};

type Result<T> = std::result::Result<T, RetrievalError>;

/// Generative retrieval behind one type: a [`SeedSampler`] (a [`SeedSource`] and its sampler)
/// and a [`SeedSearch`] (the catalogue's preprocessing, a vector index, a fusion); see the
/// module docs for the path a query takes. Build it with [`GenerativeRetriever::open`] (a
/// checkpoint folder and a catalogue `.npy`) or [`GenerativeRetriever::builder`].
///
/// It is `Send + Sync`: one retriever serves many threads at once
/// (`examples/retrieval_service.rs`). Every call is deterministic: the same queries and request
/// give the same hits, alone or in a batch, with any number of threads.
#[derive(Debug)]
pub struct GenerativeRetriever {
    seeds: SeedSampler,
    search: SeedSearch,
    defaults: RetrievalRequest,
}

impl GenerativeRetriever {
    /// A retriever over the model in `model_dir` (a prior or a regression checkpoint, see
    /// [`load_source`]) and the catalogue in `catalogue` (`[items, dim]` float32 .npy, id = row),
    /// with the defaults of [`RetrieverBuilder`].
    ///
    /// # Errors
    /// [`RetrievalError::Model`] for a missing or corrupt checkpoint, [`RetrievalError::Data`]
    /// for an unreadable catalogue, [`RetrievalError::InvalidRequest`] when their widths differ.
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    pub fn open(model_dir: &std::path::Path, catalogue: &std::path::Path) -> Result<Self> {
        Self::builder(load_source(model_dir)?)
            .catalogue_npy(catalogue)?
            .build()
    }

    /// A builder around `source` (see [`RetrieverBuilder`] for the settings and defaults).
    pub fn builder(source: Box<dyn SeedSource>) -> RetrieverBuilder {
        RetrieverBuilder::new(source)
    }

    /// Width of a query embedding.
    pub fn query_dim(&self) -> usize {
        self.seeds.source().query_dim()
    }

    /// Width of a catalogue item (and of a seed).
    pub fn target_dim(&self) -> usize {
        self.seeds.source().target_dim()
    }

    /// The request [`retrieve`](Self::retrieve) uses.
    pub fn defaults(&self) -> &RetrievalRequest {
        &self.defaults
    }

    /// The first stage: seed source and sampler.
    pub fn seed_sampler(&self) -> &SeedSampler {
        &self.seeds
    }

    /// The second stage: preprocessing, index and fusion.
    pub fn seed_search(&self) -> &SeedSearch {
        &self.search
    }

    /// The `k` best items for each row of `queries` (`[n, query_dim]` row-major), best first,
    /// with the default request.
    ///
    /// # Errors
    /// As [`retrieve_with`](Self::retrieve_with).
    pub fn retrieve(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.retrieve_with(queries, k, &self.defaults)
    }

    /// The `k` best items for each row of `queries` under `request`. Scores are the fusion's
    /// (1/rank after a re-ranking); ids are catalogue rows.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] for k = 0, no queries, a query of another width,
    /// NaN/±Inf, request rows of the wrong shape, re-ranking without a prior; errors of the
    /// source, index or fusion.
    pub fn retrieve_with(
        &self,
        queries: &[f32],
        k: usize,
        request: &RetrievalRequest,
    ) -> Result<Vec<Vec<Hit>>> {
        if k == 0 {
            return Err(RetrievalError::invalid("k", "must be at least 1"));
        }
        // 1. Seeds: K per query from the prior (guidance, negative conditions, steering).
        let mut seeds = self.seeds.seeds(queries, request)?;
        let mut per_query = request.seeds_per_query;
        if self.seeds.source().deterministic() && per_query > 1 {
            // A regression's K seeds are one point: search it once.
            let td = self.target_dim();
            seeds = seeds
                .chunks(per_query * td)
                .flat_map(|query_seeds| query_seeds[..td].to_vec())
                .collect();
            per_query = 1;
        }
        // 2. Search and fusion: every seed searches as deep as the list that is kept (or
        //    re-ranked), each query's lists are fused into one.
        let depth = k.max(request.rerank.map_or(0, |r| r.top));
        let fused = self.search.search(&seeds, per_query, depth)?;
        // 3. Optionally, the prior re-orders the head of each list by its implicit classifier.
        let Some(rerank) = &request.rerank else {
            return Ok(fused
                .into_iter()
                .map(|mut hits| {
                    hits.truncate(k);
                    hits
                })
                .collect());
        };
        let prior = self.seeds.source().host_prior().ok_or_else(|| {
            RetrievalError::invalid(
                "rerank",
                format!(
                    "re-ranking needs a diffusion prior on the host, not {}",
                    self.seeds.source().describe()
                ),
            )
        })?;
        self.search.rerank(prior, queries, &fused, rerank, k)
    }

    /// K seeds per query under `request`: the first step of
    /// [`retrieve_with`](Self::retrieve_with) (see [`SeedSampler::seeds`]).
    ///
    /// # Errors
    /// As [`SeedSampler::seeds`].
    pub fn seeds(&self, queries: &[f32], request: &RetrievalRequest) -> Result<Vec<f32>> {
        self.seeds.seeds(queries, request)
    }
}
