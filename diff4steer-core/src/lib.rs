//! # diff4steer-core
//!
//! The vocabulary of diff4steer (generative retrieval with a steerable diffusion prior, Bao et al.
//! 2024, arXiv 2412.04746, in the EDM formulation of Karras et al. 2022, arXiv 2206.00364):
//!
//! - [`Denoiser`]: D(x; σ, cond) ≈ E[x₀ | x_σ], batched, with per-row [`Conditioning`] that can
//!   mix query rows and null (unconditional) rows in one call;
//! - noise schedules: validated σ grids ([`Sigmas`], [`karras`], [`exponential`]) and the VP/VE
//!   schemes with scale s(t) ([`DiffusionScheme`]);
//! - [`NoiseSource`] / [`SeededNoise`]: seeded noise with one stream per sample, so results do not
//!   depend on the batch size;
//! - guidance and steering as denoiser wrappers: [`LinearGuidance`] (classifier-free, negative,
//!   composed conditions), [`Steered`] (text steering toward target-space embeddings) and
//!   [`SphereProjection`];
//! - [`TargetScaling`]: the per-dimension map between a denoiser's own (standardised) space and
//!   catalogue units;
//! - [`GaussianMixture`]: an analytic denoiser with a closed-form posterior mean, the independent
//!   truth for tests.
//!
//! Samplers live in `diff4steer-models` and are generic over any [`Denoiser`].
//!
//! ## Quick start
//! ```
//! use burn::backend::Flex;
//! use burn::tensor::Tensor;
//! use diff4steer_core::{karras, Conditioning, Denoiser, GaussianMixture, LinearGuidance};
//!
//! type B = Flex<f32>;
//! let device = Default::default();
//! // Two well-separated modes in 2-D; the condition is the vector of component weights.
//! let mixture = GaussianMixture::isotropic(vec![vec![-2.0, 0.0], vec![2.0, 0.0]], 0.1, vec![0.5, 0.5])?;
//! let guided = LinearGuidance::classifier_free(mixture, 2.0)?;
//! let cond = Conditioning::<B>::new(Tensor::from_floats([[0.8, 0.2]], &device))?;
//! let sigmas = karras(16, 0.002, 80.0, 7.0)?;
//! let x = Tensor::<B, 2>::from_floats([[1.5, 0.3]], &device);
//! let denoised = guided.denoise(x, Tensor::from_floats([sigmas.as_slice()[10] as f32], &device), &cond)?;
//! assert_eq!(denoised.dims(), [1, 2]);
//! # Ok::<(), diff4steer_core::CoreError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod analytic;
pub mod conditioning;
pub mod denoiser;
pub mod error;
pub mod guidance;
pub mod noise;
pub mod scheme;
pub mod sigmas;
pub mod sphere;
pub mod steering;
pub mod target_scaling;
pub mod tensor_util;

pub use analytic::GaussianMixture;
pub use conditioning::Conditioning;
pub use denoiser::{check_denoiser_inputs, Denoiser};
pub use error::{CoreError, Result};
pub use guidance::{GuidanceCondition, GuidanceTerm, LinearGuidance};
pub use noise::{NoiseSource, SeededNoise};
pub use scheme::DiffusionScheme;
pub use sigmas::{exponential, karras, Sigmas};
pub use sphere::SphereProjection;
pub use steering::{similarity_gradient, Similarity, Steered, SteeringTarget};
pub use target_scaling::TargetScaling;
