//! The trait every index implements, and the input checks they share.

use crate::{Hit, IndexError, Result, Similarity};

/// A searchable collection of vectors with `u64` ids. Vectors and queries are row-major `&[f32]`
/// of length `n·dim`. Scores are "higher is more similar" under [`VectorIndex::similarity`].
pub trait VectorIndex: Send + Sync {
    /// Width of every vector.
    fn dim(&self) -> usize;

    /// Number of stored vectors.
    fn len(&self) -> usize;

    /// Whether the index holds no vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The similarity it ranks by.
    fn similarity(&self) -> Similarity;

    /// Adds vectors with their ids (`ids.len()` rows of `dim`).
    ///
    /// # Errors
    /// [`IndexError::Shape`], [`IndexError::DimMismatch`], [`IndexError::NonFinite`],
    /// [`IndexError::DuplicateId`] (against the index and within the batch); on error nothing is
    /// added.
    fn add(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()>;

    /// The `k` best hits of each query among items accepted by `filter`, best first (fewer when
    /// fewer items pass). `filter = None` accepts every item.
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] for k = 0; [`IndexError::Shape`] /
    /// [`IndexError::DimMismatch`] / [`IndexError::NonFinite`] for malformed queries.
    fn search_filtered(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Vec<Hit>>>;

    /// The `k` best hits of each query, best first.
    ///
    /// # Errors
    /// As [`VectorIndex::search_filtered`].
    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.search_filtered(queries, k, None)
    }

    /// The stored vector of `id` (as stored: L2-normalised under cosine similarity).
    fn vector(&self, id: u64) -> Option<&[f32]>;
}

/// Checks a row-major buffer: whole rows of `dim`, finite values. Returns the row count.
pub(crate) fn check_rows(values: &[f32], dim: usize, what: &'static str) -> Result<usize> {
    if dim == 0 {
        return Err(IndexError::Shape {
            what,
            reason: "dimension 0".into(),
        });
    }
    if !values.len().is_multiple_of(dim) {
        return Err(IndexError::DimMismatch {
            what,
            expected: dim,
            got: values.len() % dim,
        });
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(IndexError::NonFinite { what });
    }
    Ok(values.len() / dim)
}

/// The checks every `search_filtered` starts with: k ≥ 1 and well-formed queries. Returns the
/// number of queries and the k to search with: at most the `len` items there are, so that a
/// huge k costs nothing more than k = len.
pub(crate) fn check_search(
    queries: &[f32],
    dim: usize,
    k: usize,
    len: usize,
) -> Result<(usize, usize)> {
    check_k(k)?;
    Ok((check_rows(queries, dim, "queries")?, k.min(len)))
}

/// Checks k ≥ 1.
pub(crate) fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        Err(IndexError::InvalidParameter {
            name: "k",
            reason: "must be at least 1".into(),
        })
    } else {
        Ok(())
    }
}
