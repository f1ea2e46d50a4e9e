//! The error type of `diff4steer-models`.

use diff4steer_core::CoreError;

/// Everything that can go wrong in samplers, likelihood and inversion.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// An error of the diffusion vocabulary (shapes, schedules, non-finite values).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A sampler name that [`crate::SamplerKind`] does not know.
    #[error("unknown sampler `{name}`: expected one of euler, heun, edm, sde, dpmpp2m")]
    UnknownSampler {
        /// The name that was given.
        name: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
