//! # diff4steer-models
//!
//! Everything that turns a [`Denoiser`](diff4steer_core::Denoiser) into samples and scores:
//!
//! - [`Sampler`] over a σ grid with [`SamplerKind`]: Euler, Heun (EDM Algorithm 1), EDM's
//!   stochastic sampler with [`Churn`] (Algorithm 2), Euler–Maruyama on the reverse SDE and
//!   DPM-Solver++(2M); an optional final denoise and a per-step callback;
//! - [`sample_scheme_ode`]: EDM Algorithm 1 for schemes with a scale s(t) (VP, VE);
//! - [`log_likelihood`]: log p(x | c) by the probability-flow ODE and the instantaneous change of
//!   variables (exact trace or Hutchinson's estimator);
//! - [`invert`]: the probability-flow ODE run backwards, from data to noise;
//! - [`DiffusionPrior`]: the learned prior (ResNet-block MLP with FiLM, EDM preconditioning,
//!   learned null query) and [`RegressionModel`], the one-point baseline;
//! - [`training`]: EDM training with AdamW, warm-up + cosine decay, global-norm clipping, EMA,
//!   validation, atomic checkpoints and exact resume;
//! - [`baselines`]: the closed-form anchors [`RidgeRegression`] and [`NearestQuerySeeds`];
//! - [`SeedGenerator`]: K seeds per query from either model ([`PriorSeeds`] or the regression's K
//!   copies), the interface retrieval consumes.
//!
//! Samplers are generic over any denoiser, so guidance and steering wrappers from
//! `diff4steer-core` work unchanged.
//!
//! ## Quick start
//! ```
//! use burn::tensor::Tensor;
//! use diff4steer_core::{karras, Conditioning, GaussianMixture, LinearGuidance, SeededNoise};
//! use diff4steer_models::{backend::CpuBackend as B, Sampler, SamplerKind};
//!
//! let device = Default::default();
//! let mixture = GaussianMixture::isotropic(vec![vec![-2.0, 0.0], vec![2.0, 0.0]], 0.05, vec![0.5, 0.5])?;
//! let guided = LinearGuidance::classifier_free(mixture, 1.0)?;
//! // 64 samples of one query that prefers the first mode.
//! let cond = Conditioning::<B>::new(Tensor::from_floats([[0.9, 0.1]], &device))?.fit_batch(64)?;
//! let sampler = Sampler::new(SamplerKind::Heun, karras(16, 0.002, 80.0, 7.0)?)?;
//! let samples = sampler.sample(&guided, &cond, &mut SeededNoise::new(42))?;
//! assert_eq!(samples.dims(), [64, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
pub mod baselines;
pub mod error;
pub mod fast;
pub mod inversion;
pub mod io;
pub mod likelihood;
pub mod network;
pub mod precond;
pub mod prior;
pub mod regression;
pub mod retrieval;
pub mod sampling;
pub mod seeds;
pub mod training;

pub use baselines::{NearestQuerySeeds, RidgeRegression};
pub use error::{ModelError, Result};
pub use inversion::invert;
pub use likelihood::{log_likelihood, TraceEstimator};
pub use network::{ResMlp, ResMlpConfig};
pub use precond::EdmPreconditioning;
pub use prior::{DiffusionPrior, DiffusionPriorConfig};
pub use regression::{RegressionConfig, RegressionLoss, RegressionModel};
pub use retrieval::{GenerativeRetriever, RetrievalError, RetrievalRequest};
pub use sampling::{sample_scheme_ode, Churn, Sampler, SamplerKind, SchemeOdeMethod, StepInfo};
pub use seeds::{PriorSeeds, SeedGenerator};

/// The README's Rust snippets, compiled and run as doctests (`cargo test --doc -p
/// diff4steer-models`), so that what the README shows works.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
