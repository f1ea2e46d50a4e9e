//! The host (CPU) paths of a trained prior, without burn in the loop: [`FastPrior`] (the network
//! on host buffers, tiles of up to 64 rows through every layer, each product one kernel on
//! weights packed once, the conditioning path once per distinct condition), [`FastSampler`] (deterministic samplers with [`HostGuidance`]:
//! classifier-free or negative guidance and steering), [`FastSeeds`] (both behind
//! [`SeedGenerator`](crate::SeedGenerator)), [`ImplicitClassifier`] (the prior as a relevance
//! scorer, for re-ranking), and [`PriorGradients`] (the training loss and its hand-written
//! gradient, the CPU training path).
//!
//! Which sampler runs where, in one place: [`crate::Sampler`] is the sampler API over any
//! [`Denoiser`](diff4steer_core::Denoiser) (tensors, any backend, every kind including the
//! stochastic ones); [`FastSampler`] is the same step rules (Euler, Heun = EDM Algorithm 1,
//! DPM-Solver++(2M)) on host buffers for a [`FastPrior`], given the same `Sigmas` and drawing the
//! same noise streams, so its seeds equal `Sampler`'s to rounding (tests/fast_prior.rs). The
//! front door ([`crate::retrieval::GenerativeRetriever`]) takes a `Sampler` and runs it on the
//! host path when its kind allows, through burn over the host denoiser otherwise.
//!
//! Build it from a trained [`DiffusionPrior`](crate::DiffusionPrior) with
//! [`FastPrior::from_prior`]; it agrees with the burn model to 1e-5 and serves a query (32 seeds,
//! Heun 16 steps, CFG) several times faster than burn's CPU backends (BENCHMARKS.md).
//!
//! ```
//! use diff4steer_core::karras;
//! use diff4steer_models::backend::CpuBackend as B;
//! use diff4steer_models::fast::{FastPrior, FastSampler, FastSeeds};
//! use diff4steer_models::{DiffusionPriorConfig, ResMlpConfig, SamplerKind};
//!
//! let config = DiffusionPriorConfig::new(8, 6)
//!     .with_network(ResMlpConfig::new().with_width(32).with_depth(2).with_embedding_dim(16));
//! let prior = config.init::<B>(&Default::default())?;
//! let sampler = FastSampler::new(SamplerKind::Heun, karras(8, 0.002, 80.0, 7.0)?, 2.0)?;
//! let seeds = FastSeeds::new(FastPrior::from_prior(&prior)?, sampler);
//! let query = [0.1f32, -0.2, 0.3, 0.0, 0.5, -0.1];
//! let rows = seeds.seeds_host(&query, 4, 7)?; // 4 seeds of one query
//! assert_eq!(rows.len(), 4 * 8);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod denoiser;
mod gradients;
mod guidance;
mod kernels;
mod layers;
mod prior;
mod sampler;
mod scorer;
mod seeds;

pub use diff4steer_index::dense::Threads;
pub use gradients::{HostGradients, PriorGradients};
pub use guidance::{HostGuidance, HostSteering, HostTerm, HostTermCondition};
pub use prior::{ConditionTable, FastPrior, FastScratch, HostCondition, NamedTensor};
pub use sampler::FastSampler;
pub use scorer::{rerank, ImplicitClassifier, RerankOrder, ScoreWeighting};
pub use seeds::FastSeeds;
