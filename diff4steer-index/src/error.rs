//! The error type of `diff4steer-index`.

/// Everything that can go wrong when building, searching, saving or loading an index, or fusing
/// hit lists. Bad input is always an error, never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A vector or query has another width than the index.
    #[error("dimension mismatch for {what}: expected {expected}, got {got}")]
    DimMismatch {
        /// Which input.
        what: &'static str,
        /// The index's dimension.
        expected: usize,
        /// The given width.
        got: usize,
    },
    /// A buffer's length is not a whole number of rows, or ids and rows disagree.
    #[error("shape error for {what}: {reason}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// NaN or ±Inf in a vector or query.
    #[error("{what} contains a non-finite value (NaN or ±Inf)")]
    NonFinite {
        /// Which input.
        what: &'static str,
    },
    /// An id that is already in the index.
    #[error("id {id} is already in the index")]
    DuplicateId {
        /// The id.
        id: u64,
    },
    /// A parameter out of range (k = 0, a fusion constant, …).
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A saved index that cannot be read: missing, truncated, corrupt, another format.
    #[error("index file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The underlying library (faiss) refused an operation.
    #[error("{operation} failed: {reason}")]
    Backend {
        /// What was attempted.
        operation: &'static str,
        /// The library's message.
        reason: String,
    },
    /// A remote index's server could not be reached (connection refused, reset, or lost).
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The server's URL.
        url: String,
        /// The transport's message.
        reason: String,
    },
    /// A remote index's server did not answer within the configured time.
    #[error("{operation} on {url} did not finish within {seconds} s")]
    Timeout {
        /// What was attempted.
        operation: &'static str,
        /// The server's URL.
        url: String,
        /// The limit.
        seconds: f64,
    },
    /// The server refused an operation; its message.
    #[error("{operation} failed on the server: {reason}")]
    Remote {
        /// What was attempted.
        operation: &'static str,
        /// The server's message.
        reason: String,
    },
    /// A collection to create exists already.
    #[error("collection `{collection}` exists already")]
    CollectionExists {
        /// Its name.
        collection: String,
    },
    /// A collection to open does not exist (or was dropped).
    #[error("collection `{collection}` does not exist")]
    CollectionMissing {
        /// Its name.
        collection: String,
    },
    /// A collection to open does not have the shape this index needs.
    #[error("collection `{collection}` cannot be used: {reason}")]
    CollectionMismatch {
        /// Its name.
        collection: String,
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
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
