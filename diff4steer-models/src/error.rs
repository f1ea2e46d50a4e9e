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
    /// A model or training configuration value is out of range.
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Training or query data that cannot be used (shapes, NaN, empty, unreadable .npy).
    #[error("invalid data {source_name}: {reason}")]
    Data {
        /// The file or argument the data came from.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint that is missing, truncated, corrupt or does not match what the caller expects.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint folder or file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The system's message.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
