//! The error type of `diff4steer-eval`.

/// Everything that can go wrong reading data, parsing metric names or computing metrics. Bad input
/// is always an error naming the file (and line) or the parameter, never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The system's message.
        reason: String,
    },
    /// A text file (TSV, TREC run or qrels) has a malformed line.
    #[error("{path}, line {line}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An .npy file that is not what was asked for (dtype, rank, truncated, non-finite values).
    #[error("{path}: {reason}")]
    Npy {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Inputs whose sizes do not fit together.
    #[error("shape error for {what}: {reason}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// NaN or ±Inf in an input.
    #[error("{what} contains a non-finite value (NaN or ±Inf)")]
    NonFinite {
        /// Which input.
        what: &'static str,
    },
    /// A parameter out of range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A metric name that does not parse.
    #[error("metric `{name}`: {reason}")]
    UnknownMetric {
        /// The name as given.
        name: String,
        /// What is wrong, with the names that are known.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// An I/O error on `path`.
pub(crate) fn io_error(path: &std::path::Path, error: impl std::fmt::Display) -> EvalError {
    EvalError::Io {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}
