//! How the graph scores nodes: the store's vectors under cosine (unit vectors, inner product) or
//! negative squared L2, with the inner-product kernel the whole graph spends its time in.

use super::graph::Node;
use crate::{FlatIndex, Similarity, VectorIndex};

/// Lanes of the dot-product kernel: independent partial sums the compiler keeps in SIMD registers.
const LANES: usize = 16;

/// ⟨a, b⟩ with [`LANES`] independent accumulators (vectorised by the compiler; the summation order
/// is fixed, so the result is the same on every run and thread).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (chunks_a, chunks_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A query prepared for scoring: its (normalised, under cosine) values and squared norm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query<'a> {
    values: &'a [f32],
    squared_norm: f32,
}

impl<'a> Query<'a> {
    /// A query as the store prepares it.
    pub(crate) fn new(values: &'a [f32]) -> Self {
        Self {
            values,
            squared_norm: dot(values, values),
        }
    }
}

/// Scores between queries and nodes, and between nodes: ⟨q, x⟩ for cosine (unit vectors) and
/// 2⟨q, x⟩ − ‖q‖² − ‖x‖² = −‖q − x‖² for L2, the same formulas as the flat index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Space<'a> {
    dim: usize,
    vectors: &'a [f32],
    squared_norms: &'a [f32],
    l2: bool,
}

impl<'a> Space<'a> {
    /// The space of the vectors stored in `store` (node = position).
    pub(crate) fn of(store: &'a FlatIndex) -> Self {
        Self {
            dim: store.dim(),
            vectors: store.vectors(),
            squared_norms: store.squared_norms(),
            l2: store.similarity() == Similarity::NegativeL2,
        }
    }

    /// The stored vector of `node`.
    pub(crate) fn row(&self, node: Node) -> &'a [f32] {
        let start = node as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }

    /// The node's vector as a query.
    pub(crate) fn node_query(&self, node: Node) -> Query<'a> {
        Query {
            values: self.row(node),
            squared_norm: self.squared_norms[node as usize],
        }
    }

    /// Similarity of `query` and `node`.
    pub(crate) fn score(&self, query: &Query<'_>, node: Node) -> f32 {
        let d = dot(query.values, self.row(node));
        if self.l2 {
            2.0 * d - query.squared_norm - self.squared_norms[node as usize]
        } else {
            d
        }
    }

    /// Similarity of two nodes.
    pub(crate) fn score_nodes(&self, a: Node, b: Node) -> f32 {
        self.score(&self.node_query(a), b)
    }
}
