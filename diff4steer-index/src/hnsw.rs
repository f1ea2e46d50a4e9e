//! Approximate search with HNSW graphs (Malkov & Yashunin 2018) through the pure-Rust `hnsw_rs`
//! crate, re-ranked with exact scores.

use std::path::Path;

use hnsw_rs::prelude::{DistL2, Hnsw};
use rayon::prelude::*;

use crate::vector_index::check_search;
use crate::{FlatIndex, Hit, IndexError, Result, Similarity, VectorIndex};

/// HNSW parameters: M (links per node), ef_construction and ef_search (candidate-list sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswConfig {
    /// Maximum links per node and layer (M; 2·M on layer 0). 1 ≤ M ≤ 256.
    pub m: usize,
    /// Candidate list size while inserting.
    pub ef_construction: usize,
    /// Candidate list size while searching (raised to k when smaller).
    pub ef_search: usize,
}

impl Default for HnswConfig {
    /// M = 16, ef_construction = 200, ef_search = 128.
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 128,
        }
    }
}

/// Maximum number of layers of the graph.
const MAX_LAYERS: usize = 16;

/// An HNSW graph over L2 distance (cosine similarity is L2 on normalised vectors). The graph's
/// candidates are re-scored exactly, so scores equal those of [`FlatIndex`]. Insertion is serial
/// and `hnsw_rs` draws levels from a fixed seed, so the same vectors in the same order give the
/// same graph. Inner-product similarity is not supported (it is not a metric; use [`FlatIndex`]
/// or normalise and use cosine). Saving stores the vectors and parameters; loading rebuilds the
/// graph (same graph, by the determinism above).
pub struct HnswIndex {
    config: HnswConfig,
    store: FlatIndex,
    graph: Hnsw<'static, f32, DistL2>,
    /// Graph data id (insertion position) → item id.
    ids: Vec<u64>,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("config", &self.config)
            .field("dim", &self.store.dim())
            .field("len", &self.ids.len())
            .finish()
    }
}

impl HnswIndex {
    /// An empty index; `capacity` is a size hint.
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] for inner-product similarity, M outside 1…256 or zero ef
    /// values; [`IndexError::Shape`] for `dim = 0`.
    pub fn new(
        dim: usize,
        similarity: Similarity,
        config: HnswConfig,
        capacity: usize,
    ) -> Result<Self> {
        if similarity == Similarity::InnerProduct {
            return Err(IndexError::InvalidParameter {
                name: "similarity",
                reason: "HNSW supports cosine and l2; use the flat index for inner product".into(),
            });
        }
        if !(1..=256).contains(&config.m) || config.ef_construction == 0 || config.ef_search == 0 {
            return Err(IndexError::InvalidParameter {
                name: "hnsw config",
                reason: format!("need 1 ≤ M ≤ 256 and positive ef values, got {config:?}"),
            });
        }
        let store = FlatIndex::new(dim, similarity)?;
        let graph = Hnsw::new(
            config.m,
            capacity.max(1),
            MAX_LAYERS,
            config.ef_construction,
            DistL2 {},
        );
        Ok(Self {
            config,
            store,
            graph,
            ids: Vec::new(),
        })
    }

    /// The parameters.
    pub fn config(&self) -> HnswConfig {
        self.config
    }

    /// Sets ef_search (recall/speed trade-off at query time).
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.config.ef_search = ef_search.max(1);
    }

    /// Saves the parameters and vectors (see [`FlatIndex::save`]; the graph is rebuilt on load).
    ///
    /// # Errors
    /// [`IndexError::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.store.save(path)
    }

    /// Loads vectors saved by [`HnswIndex::save`] (or [`FlatIndex::save`]) and builds the graph.
    ///
    /// # Errors
    /// As [`FlatIndex::load`] and [`HnswIndex::new`].
    pub fn load(path: &Path, config: HnswConfig) -> Result<Self> {
        let store = FlatIndex::load(path)?;
        let mut index = Self::new(store.dim(), store.similarity(), config, store.len())?;
        index.insert_stored(store.ids(), store.vectors())?;
        Ok(index)
    }

    fn insert_stored(&mut self, ids: &[u64], stored: &[f32]) -> Result<()> {
        self.store.add_stored(ids, stored)?;
        let dim = self.store.dim();
        for (row, &id) in stored.chunks(dim).zip(ids) {
            self.graph.insert_slice((row, self.ids.len()));
            self.ids.push(id);
        }
        Ok(())
    }
}

impl VectorIndex for HnswIndex {
    fn dim(&self) -> usize {
        self.store.dim()
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn similarity(&self) -> Similarity {
        self.store.similarity()
    }

    fn add(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        let prepared = self.store.prepared(vectors);
        self.insert_stored(ids, &prepared)
    }

    fn search_filtered(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Vec<Hit>>> {
        let dim = self.dim();
        let nq = check_search(queries, dim, k)?;
        if self.ids.is_empty() {
            return Ok(vec![Vec::new(); nq]);
        }
        let prepared = self.store.prepared(queries);
        let ef = self.config.ef_search.max(k);
        let position_filter = filter.map(|f| move |data_id: &usize| f(self.ids[*data_id]));
        Ok(prepared
            .par_chunks(dim)
            .map(|query| {
                let found = match &position_filter {
                    Some(f) => self.graph.search_filter(query, k, ef, Some(f)),
                    None => self.graph.search(query, k, ef),
                };
                let mut hits: Vec<Hit> = found
                    .iter()
                    .map(|n| {
                        let id = self.ids[n.d_id];
                        let item = self.store.vector(id).expect("every graph node is stored");
                        Hit::new(id, self.similarity().score(query, item))
                    })
                    .collect();
                hits.sort_by(Hit::ranking);
                hits.truncate(k);
                hits
            })
            .collect())
    }

    fn vector(&self, id: u64) -> Option<&[f32]> {
        self.store.vector(id)
    }
}
