//! Approximate search with HNSW graphs (Malkov & Yashunin 2018, "Efficient and robust approximate
//! nearest neighbor search using Hierarchical Navigable Small World graphs", arXiv:1603.09320),
//! implemented here: deterministic parallel construction, parallel queries, filtered search, and
//! a saved graph that loads without rebuilding.

mod build;
mod file;
mod graph;
mod space;
mod visited;

use rayon::prelude::*;

use crate::top_k::TopK;
use crate::vector_index::check_search;
use crate::{FlatIndex, Hit, IndexError, Result, Similarity, VectorIndex};
use graph::{Graph, Node, Scored};
use space::{Query, Space};
use visited::{with_visited, Visited};

/// HNSW parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswConfig {
    /// Maximum links per node on the upper layers (M); layer 0 allows 2·M. 2 ≤ M ≤ 256.
    pub m: usize,
    /// Candidate list size while inserting.
    pub ef_construction: usize,
    /// Candidate list size while searching (raised to k when smaller).
    pub ef_search: usize,
    /// Seed of the layer draws.
    pub seed: u64,
}

impl Default for HnswConfig {
    /// M = 32, ef_construction = 200, ef_search = 128, seed 0: recall@10 ≥ 0.95 on 100k
    /// uniform-on-sphere 128-d vectors needs ef_search ≈ 256 (see BENCHMARKS.md); clustered
    /// data needs less.
    fn default() -> Self {
        Self {
            m: 32,
            ef_construction: 200,
            ef_search: 128,
            seed: 0,
        }
    }
}

impl HnswConfig {
    fn check(&self) -> Result<()> {
        if !(2..=256).contains(&self.m) || self.ef_construction == 0 || self.ef_search == 0 {
            return Err(IndexError::InvalidParameter {
                name: "hnsw config",
                reason: format!("need 2 ≤ M ≤ 256 and positive ef values, got {self:?}"),
            });
        }
        Ok(())
    }
}

/// A filter with fewer accepted items than this share of the index (or than 4·ef) is served by
/// exact scoring of the accepted items: walking the graph for them would visit most of it anyway.
const EXACT_FILTER_SHARE: usize = 16;

/// Approximate nearest-neighbour search over an HNSW graph. Vectors are kept in a [`FlatIndex`]
/// (node = position there) and scored with the same formulas, so every returned score is the
/// exact score of its id; only the set of ids found is approximate. Cosine and negative L2 are
/// supported (inner product is not a metric; normalise and use cosine, or use [`FlatIndex`]).
/// The graph depends only on the vectors, their order and [`HnswConfig`], not on thread count.
#[derive(Debug, Clone, PartialEq)]
pub struct HnswIndex {
    config: HnswConfig,
    store: FlatIndex,
    graph: Graph,
}

impl HnswIndex {
    /// An empty index.
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] for inner-product similarity, M outside 2…256 or zero ef
    /// values; [`IndexError::Shape`] for `dim = 0`.
    pub fn new(dim: usize, similarity: Similarity, config: HnswConfig) -> Result<Self> {
        if similarity == Similarity::InnerProduct {
            return Err(IndexError::InvalidParameter {
                name: "similarity",
                reason: "HNSW supports cosine and l2; use the flat index for inner product".into(),
            });
        }
        config.check()?;
        Ok(Self {
            config,
            store: FlatIndex::new(dim, similarity)?,
            graph: Graph::new(config.m),
        })
    }

    /// An index holding `vectors` with ids 0, 1, 2, … (row numbers).
    ///
    /// # Errors
    /// As [`HnswIndex::new`] and [`VectorIndex::add`].
    pub fn from_rows(
        dim: usize,
        similarity: Similarity,
        config: HnswConfig,
        vectors: &[f32],
    ) -> Result<Self> {
        let mut index = Self::new(dim, similarity, config)?;
        let n = vectors.len() / dim.max(1);
        let ids: Vec<u64> = (0..n as u64).collect();
        index.add(&ids, vectors)?;
        Ok(index)
    }

    /// The parameters.
    pub fn config(&self) -> HnswConfig {
        self.config
    }

    /// Sets ef_search (the recall/speed trade-off at query time; at least 1).
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.config.ef_search = ef_search.max(1);
    }

    /// Exact best `k` among the accepted positions.
    fn exact_among(
        &self,
        space: &Space<'_>,
        query: &Query<'_>,
        accept: &[bool],
        k: usize,
    ) -> Vec<Hit> {
        let mut top = TopK::new(k);
        for (position, _) in accept.iter().enumerate().filter(|(_, &a)| a) {
            let score = space.score(query, position as Node);
            top.push(Hit::new(self.store.ids()[position], score));
        }
        top.into_sorted()
    }

    /// Graph search of one query: greedy descent to layer 0, then `search_layer` with ef.
    fn graph_search(
        &self,
        space: &Space<'_>,
        query: &Query<'_>,
        k: usize,
        visited: &mut Visited,
        accept: Option<&[bool]>,
    ) -> Vec<Hit> {
        let Some(entry) = self.graph.entry() else {
            return Vec::new();
        };
        let mut nearest = Scored {
            score: space.score(query, entry),
            node: entry,
        };
        for layer in (1..=self.graph.level(entry)).rev() {
            nearest = self.graph.greedy_closest(space, query, nearest, layer);
        }
        let ef = self.config.ef_search.max(k);
        let found = self
            .graph
            .search_layer(space, query, &[nearest], ef, 0, visited, accept);
        let mut hits: Vec<Hit> = found
            .iter()
            .map(|s| Hit::new(self.store.ids()[s.node as usize], s.score))
            .collect();
        hits.sort_by(Hit::ranking);
        hits.truncate(k);
        hits
    }
}

impl VectorIndex for HnswIndex {
    fn dim(&self) -> usize {
        self.store.dim()
    }

    fn len(&self) -> usize {
        self.store.len()
    }

    fn similarity(&self) -> Similarity {
        self.store.similarity()
    }

    fn add(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        if self.store.len().saturating_add(ids.len()) > Node::MAX as usize {
            return Err(IndexError::InvalidParameter {
                name: "vectors",
                reason: format!("HNSW holds at most {} vectors", Node::MAX),
            });
        }
        let prepared = self.store.prepared(vectors);
        let first = self.store.len() as u64;
        self.store.add_stored(ids, &prepared)?;
        let levels: Vec<usize> = (first..self.store.len() as u64)
            .map(|p| build::draw_level(self.config.seed, p, self.config.m))
            .collect();
        let space = Space::of(&self.store);
        self.graph
            .insert(&space, &levels, self.config.ef_construction);
        Ok(())
    }

    fn search_filtered(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Vec<Hit>>> {
        let dim = self.dim();
        let (nq, k) = check_search(queries, dim, k, self.len())?;
        if self.is_empty() {
            return Ok(vec![Vec::new(); nq]);
        }
        let prepared = self.store.prepared(queries);
        let space = Space::of(&self.store);
        let accept: Option<Vec<bool>> =
            filter.map(|f| self.store.ids().iter().map(|&id| f(id)).collect());
        let accepted = accept.as_ref().map(|a| a.iter().filter(|&&x| x).count());
        let exact = accepted.is_some_and(|count| {
            count * EXACT_FILTER_SHARE <= self.len() || count <= 4 * self.config.ef_search.max(k)
        });
        Ok(prepared
            .par_chunks(dim)
            .map(|values| {
                let query = Query::new(values);
                match &accept {
                    Some(a) if exact => self.exact_among(&space, &query, a, k),
                    _ => with_visited(|visited| {
                        self.graph_search(&space, &query, k, visited, accept.as_deref())
                    }),
                }
            })
            .collect())
    }

    fn vector(&self, id: u64) -> Option<&[f32]> {
        self.store.vector(id)
    }
}
