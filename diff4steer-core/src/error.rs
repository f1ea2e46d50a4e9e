//! The error type of `diff4steer-core`.

/// Everything that can go wrong in the diffusion vocabulary: invalid schedules, shapes that do not
/// fit, non-finite values and out-of-range parameters. Every public entry point that takes user data
/// returns this instead of panicking.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A noise schedule (σ grid) violates its invariants.
    #[error("invalid noise schedule: {reason}")]
    InvalidSigmas {
        /// What is wrong, e.g. "σ\[3\] = 2 is not smaller than σ\[2\] = 1".
        reason: String,
    },
    /// A scalar parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name as it appears in the API (`sigma_min`, `rho`, ...).
        name: &'static str,
        /// The offending value.
        value: f64,
        /// The valid range or rule.
        reason: &'static str,
    },
    /// A dimension (embedding width) does not match what was expected.
    #[error("dimension mismatch for {what}: expected {expected}, got {got}")]
    DimMismatch {
        /// Which tensor or argument.
        what: &'static str,
        /// The dimension the receiver expects.
        expected: usize,
        /// The dimension that was given.
        got: usize,
    },
    /// A batch (number of rows) does not match what was expected.
    #[error("batch size mismatch for {what}: expected {expected} rows, got {got}")]
    BatchMismatch {
        /// Which tensor or argument.
        what: &'static str,
        /// The number of rows expected.
        expected: usize,
        /// The number of rows given.
        got: usize,
    },
    /// A tensor or value holds NaN or ±Inf.
    #[error("{what} contains a non-finite value (NaN or ±Inf)")]
    NonFinite {
        /// Which tensor or argument.
        what: &'static str,
    },
    /// Something that must not be empty is empty (zero samples, zero dimensions, no terms).
    #[error("{what} must not be empty")]
    Empty {
        /// Which tensor or argument.
        what: &'static str,
    },
    /// A tensor could not be read back from the device as `f32`.
    #[error("could not read a tensor back from the device: {reason}")]
    TensorData {
        /// The backend's message.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
