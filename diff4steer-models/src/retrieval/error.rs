//! [`RetrievalError`]: everything that can go wrong on the path a query takes.

use diff4steer_eval::EvalError;
use diff4steer_index::IndexError;

use crate::ModelError;

/// An error of [`GenerativeRetriever`](super::GenerativeRetriever): bad input is always one of
/// these, never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RetrievalError {
    /// The seed source failed: a checkpoint, a sampler setting, queries of the wrong shape.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The index, the preprocessing or the fusion failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A catalogue or query file could not be read.
    #[error(transparent)]
    Data(#[from] EvalError),
    /// A request option or builder setting is out of range or does not fit the retriever.
    #[error("invalid {field}: {reason}")]
    InvalidRequest {
        /// The option, e.g. `seeds_per_query` or `negative`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl RetrievalError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field,
            reason: reason.into(),
        }
    }
}

impl From<diff4steer_core::CoreError> for RetrievalError {
    fn from(e: diff4steer_core::CoreError) -> Self {
        Self::Model(e.into())
    }
}
