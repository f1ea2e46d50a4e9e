//! [`SeedSearch`]: the second stage of retrieval — the catalogue's [`Preprocessor`], a
//! [`VectorIndex`] and a [`Fusion`], turning each query's seeds into one ranked list, and the
//! optional re-ranking of that list by the prior.

use diff4steer_eval::io::npy::read_nonempty_f32_matrix;
use diff4steer_index::{
    fuse, FlatIndex, Fusion, Hit, HnswConfig, HnswIndex, Preprocessing, Preprocessor, Similarity,
    VectorIndex,
};

use super::{Rerank, RetrievalError};
use crate::fast::{FastPrior, ImplicitClassifier};

type Result<T> = std::result::Result<T, RetrievalError>;

/// Which index a [`SeedSearch`] makes of its catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexChoice {
    /// Exact search ([`FlatIndex`]).
    #[default]
    Flat,
    /// Approximate search over an HNSW graph ([`HnswIndex`]).
    Hnsw(HnswConfig),
}

/// How a catalogue is searched, with these defaults:
///
/// | setting | default | why |
/// |---|---|---|
/// | `index` | exact flat index | the truth; HNSW for large catalogues |
/// | `similarity` | cosine | |
/// | `preprocessing` | standardise (fitted on the catalogue) | raw embeddings share an offset that cosine would mostly measure (MusicCaps/VGGish: caption Recall@10 0.277 raw vs 0.283 standardised for the prior, 0.243 vs 0.257 for regression) |
/// | `fusion` | reciprocal-rank fusion, c = 60 (Cormack et al. 2009) | |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchSettings {
    /// The index made of the catalogue.
    pub index: IndexChoice,
    /// The similarity the index ranks by.
    pub similarity: Similarity,
    /// The catalogue preprocessing, fitted on the catalogue and applied to items and seeds.
    pub preprocessing: Preprocessing,
    /// How each query's per-seed lists are fused.
    pub fusion: Fusion,
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            index: IndexChoice::Flat,
            similarity: Similarity::Cosine,
            preprocessing: Preprocessing::Standardise,
            fusion: Fusion::rrf(),
        }
    }
}

/// A searchable catalogue: seeds in, one fused list per query out (what `diff4steer retrieve`
/// runs on seeds from a file; [`GenerativeRetriever`](super::GenerativeRetriever) holds one).
pub struct SeedSearch {
    preprocessor: Preprocessor,
    index: Box<dyn VectorIndex>,
    fusion: Fusion,
    /// The catalogue in its own units, id = row (what the re-ranker scores); `None` for a
    /// prebuilt index.
    items: Option<Vec<f32>>,
}

impl std::fmt::Debug for SeedSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedSearch")
            .field("preprocessing", &self.preprocessor.kind())
            .field("items", &self.index.len())
            .field("dim", &self.index.dim())
            .field("fusion", &self.fusion)
            .finish()
    }
}

impl SeedSearch {
    /// Fits the preprocessing on `items` (`[n, dim]` row-major, catalogue units, id = row) and
    /// builds the index.
    ///
    /// # Errors
    /// [`RetrievalError::Index`] for an empty catalogue, rows that are not `dim` wide or hold
    /// NaN/±Inf.
    pub fn new(items: Vec<f32>, dim: usize, settings: SearchSettings) -> Result<Self> {
        let preprocessor = Preprocessor::fit(settings.preprocessing, &items, dim)?;
        let prepared = preprocessor.apply(&items)?;
        let index: Box<dyn VectorIndex> = match settings.index {
            IndexChoice::Flat => {
                Box::new(FlatIndex::from_rows(dim, settings.similarity, &prepared)?)
            }
            IndexChoice::Hnsw(config) => Box::new(HnswIndex::from_rows(
                dim,
                settings.similarity,
                config,
                &prepared,
            )?),
        };
        Ok(Self {
            preprocessor,
            index,
            fusion: settings.fusion,
            items: Some(items),
        })
    }

    /// [`SeedSearch::new`] over a `[items, dim]` float32 .npy file.
    ///
    /// # Errors
    /// [`RetrievalError::Data`] naming the file when it cannot be read or is empty; as
    /// [`SeedSearch::new`].
    pub fn from_npy(path: &std::path::Path, settings: SearchSettings) -> Result<Self> {
        let matrix = read_nonempty_f32_matrix(path)?;
        let dim = matrix.ncols();
        let items = matrix.as_standard_layout().iter().copied().collect();
        Self::new(items, dim, settings)
    }

    /// An index built by the caller (faiss, a distributed engine, …) that already holds the
    /// catalogue after `preprocessor` (which is applied to seeds alike); ids are whatever the
    /// index was given. Without the catalogue's own vectors it cannot re-rank.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] for an empty index or a preprocessor of another width.
    pub fn prebuilt(
        index: Box<dyn VectorIndex>,
        preprocessor: Preprocessor,
        fusion: Fusion,
    ) -> Result<Self> {
        if index.is_empty() {
            return Err(RetrievalError::invalid("index", "the index is empty"));
        }
        if preprocessor.dim() != index.dim() {
            return Err(RetrievalError::invalid(
                "index",
                format!(
                    "the preprocessor is {}-d, the index {}-d",
                    preprocessor.dim(),
                    index.dim()
                ),
            ));
        }
        Ok(Self {
            preprocessor,
            index,
            fusion,
            items: None,
        })
    }

    /// Gives a prebuilt search the catalogue's own vectors (`[n, dim]`, catalogue units, id =
    /// row), so that it can re-rank.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] when `items` is not a whole number of rows or holds
    /// fewer rows than the index.
    pub fn with_catalogue_vectors(mut self, items: Vec<f32>) -> Result<Self> {
        let dim = self.dim();
        if !items.len().is_multiple_of(dim) || items.len() / dim < self.len() {
            return Err(RetrievalError::invalid(
                "catalogue",
                format!(
                    "{} values are not the index's {} rows of {dim}",
                    items.len(),
                    self.len()
                ),
            ));
        }
        self.items = Some(items);
        Ok(self)
    }

    /// Width of an item.
    pub fn dim(&self) -> usize {
        self.index.dim()
    }

    /// Items in the catalogue.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the catalogue is empty (never, for a built search).
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The fusion.
    pub fn fusion(&self) -> Fusion {
        self.fusion
    }

    /// The index.
    pub fn index(&self) -> &dyn VectorIndex {
        self.index.as_ref()
    }

    /// Every seed (`[n·seeds_per_query, dim]`, catalogue units, query-major) searches `depth`
    /// deep in one batched call; each query's lists are fused into its best `depth` hits.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] for zero seeds per query or depth, or seeds that are
    /// not a whole number of queries; errors of the preprocessing, index and fusion (NaN).
    pub fn search(
        &self,
        seeds: &[f32],
        seeds_per_query: usize,
        depth: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        let dim = self.dim();
        if seeds_per_query == 0
            || seeds.is_empty()
            || !seeds.len().is_multiple_of(seeds_per_query * dim)
        {
            return Err(RetrievalError::invalid(
                "seeds",
                format!(
                    "{} values are not a whole number of queries of {seeds_per_query} seeds of {dim} dims",
                    seeds.len()
                ),
            ));
        }
        let counts = vec![seeds_per_query; seeds.len() / (seeds_per_query * dim)];
        self.search_grouped(seeds, &counts, depth, self.fusion)
    }

    /// As [`search`](Self::search) for queries with different numbers of seeds (`counts[q]`
    /// rows for query q, in order) and an explicit `fusion` — what an experiment comparing
    /// systems and fusions over one catalogue needs.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] for a zero count or depth, or counts that do not add
    /// up to the seed rows; errors of the preprocessing, index and fusion.
    pub fn search_grouped(
        &self,
        seeds: &[f32],
        counts: &[usize],
        depth: usize,
        fusion: Fusion,
    ) -> Result<Vec<Vec<Hit>>> {
        let dim = self.dim();
        if depth == 0 || counts.contains(&0) {
            return Err(RetrievalError::invalid(
                "search",
                "seeds per query and depth must be at least 1",
            ));
        }
        let rows: usize = counts.iter().sum();
        if seeds.len() != rows * dim {
            return Err(RetrievalError::invalid(
                "seeds",
                format!(
                    "{} values are not the {rows} seed rows of {dim} dims the counts add up to",
                    seeds.len()
                ),
            ));
        }
        let depth = depth.min(self.index.len());
        let lists = self.index.search(&self.preprocessor.apply(seeds)?, depth)?;
        let index = self.index.as_ref();
        let mut fused = Vec::with_capacity(counts.len());
        let mut at = 0;
        for &count in counts {
            fused.push(fuse(&lists[at..at + count], depth, fusion, &|id| {
                index.vector(id)
            })?);
            at += count;
        }
        Ok(fused)
    }

    /// Re-orders the first `rerank.top` hits of each fused list by `prior`'s implicit
    /// classifier under the list's query (`queries` row-major, one row per list) and keeps `k`;
    /// scores become 1/rank. Queries run in parallel, each on one thread: the result does not
    /// depend on the thread count.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] for N = 0 or without the catalogue's vectors (a
    /// prebuilt index), errors of the classifier (draws, σ range, query width, NaN).
    pub fn rerank(
        &self,
        prior: &FastPrior,
        queries: &[f32],
        fused: &[Vec<Hit>],
        rerank: &Rerank,
        k: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        let items = self.items.as_deref().ok_or_else(|| {
            RetrievalError::invalid(
                "rerank",
                "re-ranking needs the catalogue's vectors (a prebuilt index has none)",
            )
        })?;
        if rerank.top == 0 {
            return Err(RetrievalError::invalid("rerank", "N must be at least 1"));
        }
        if prior.target_dim() != self.dim() {
            return Err(RetrievalError::invalid(
                "rerank",
                format!(
                    "the prior's targets are {}-d, the catalogue is {}-d",
                    prior.target_dim(),
                    self.dim()
                ),
            ));
        }
        let (lo, hi) = rerank.sigma_range;
        let classifier =
            ImplicitClassifier::new(rerank.draws, lo, hi, rerank.weighting, rerank.seed)?;
        let ids: Vec<Vec<u64>> = fused
            .iter()
            .map(|hits| hits.iter().map(|h| h.id).collect())
            .collect();
        let lists =
            classifier.rerank_lists(prior, queries, &ids, items, rerank.top, rerank.order)?;
        Ok(lists
            .into_iter()
            .map(|ids| {
                ids.into_iter()
                    .take(k)
                    .enumerate()
                    .map(|(rank, id)| Hit::new(id, 1.0 / (rank + 1) as f32))
                    .collect()
            })
            .collect())
    }
}
