//! # diff4steer-index
//!
//! Vector indexes and seed fusion for diff4steer (burn-free): many seeds per query become one
//! ranked, diverse list.
//!
//! - [`VectorIndex`]: `dim`, `len`, `add` with ids, batched `search` / `search_filtered` returning
//!   [`Hit`]s whose score is always "higher is more similar" under a [`Similarity`];
//! - [`FlatIndex`]: exact search as blocked GEMM + bounded top-k, multi-threaded; save/load with a
//!   checksum, written atomically; the oracle for approximate indexes;
//! - [`HnswIndex`] (feature `hnsw`, default): approximate search over an HNSW graph (implemented here: deterministic
//!   parallel construction, parallel queries, filters, the graph saved with the vectors);
//! - `FaissIndex` (feature `faiss`): any faiss index (Flat, HNSW, IVF, …) by index-factory
//!   string, behind the same trait;
//! - `MilvusIndex` (feature `milvus`): a collection of a Milvus server (standalone or cluster)
//!   behind the same trait, for catalogues past one machine;
//! - [`Preprocessor`]: centring, standardisation or PCA whitening fitted on the catalogue and
//!   applied to items and seeds alike;
//! - [`fuse`]: per-seed lists → one list by max score, mean score, reciprocal-rank fusion,
//!   round-robin or MMR ([`Fusion`]).
//!
//! ## Quick start
//! ```
//! use diff4steer_index::{fuse, FlatIndex, Fusion, Similarity, VectorIndex};
//!
//! // Four items in 2-D; two seeds of one query.
//! let items = [1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9];
//! let index = FlatIndex::from_rows(2, Similarity::Cosine, &items)?;
//! let seeds = [1.0, 0.05, 0.05, 1.0];
//! let per_seed = index.search(&seeds, 2)?;
//! let fused = fuse(&per_seed, 3, Fusion::rrf(), &|id| index.vector(id))?;
//! assert_eq!(fused.len(), 3);
//! # Ok::<(), diff4steer_index::IndexError>(())
//! ```

#![deny(missing_docs)]

pub mod atomic;
mod checked_file;
pub mod column_panels;
pub mod dense;
pub mod error;
#[cfg(feature = "faiss")]
pub mod faiss_index;
pub mod flat;
mod flat_file;
pub mod fusion;
pub mod hit;
#[cfg(feature = "hnsw")]
pub mod hnsw;
#[cfg(feature = "milvus")]
pub mod milvus;
mod pages;
pub mod pairwise_sum;
pub mod preprocess;
pub mod similarity;
pub mod top_k;
pub mod vector_index;

pub use error::{IndexError, Result};
#[cfg(feature = "faiss")]
pub use faiss_index::FaissIndex;
pub use flat::FlatIndex;
pub use fusion::{fuse, Fusion};
pub use hit::Hit;
#[cfg(feature = "hnsw")]
pub use hnsw::{HnswConfig, HnswIndex};
#[cfg(feature = "milvus")]
pub use milvus::{MilvusConfig, MilvusIndex, MilvusIndexKind, MilvusReads};
pub use preprocess::{Preprocessing, Preprocessor};
pub use similarity::Similarity;
pub use vector_index::VectorIndex;
