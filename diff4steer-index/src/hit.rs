//! A search result and the ordering every index and fusion uses.

use std::cmp::Ordering;

/// One retrieved item: its id and a score where **higher is more similar**, always.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The item's id.
    pub id: u64,
    /// The similarity score (inner product, cosine, or negative squared L2 distance).
    pub score: f32,
}

impl Hit {
    /// A hit.
    pub fn new(id: u64, score: f32) -> Self {
        Self { id, score }
    }

    /// Ranking order: higher score first, then smaller id (a deterministic tie break).
    pub fn ranking(a: &Hit, b: &Hit) -> Ordering {
        b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
    }
}
