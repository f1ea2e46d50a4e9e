//! The exact index: brute force as a matrix product, multi-threaded, with bounded top-k.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::dense::{matmul, RightLayout, Threads};
use crate::pages::PageVec;
use crate::top_k::TopK;
use crate::vector_index::{check_rows, check_search};
use crate::{Hit, IndexError, Result, Similarity, VectorIndex};

/// Catalogue rows scored per GEMM block (and per rayon task).
const BLOCK_ROWS: usize = 4096;

/// Queries per GEMM call are a multiple of this (the last tile padded with zeros): a query never
/// goes through the one-row (GEMV) path, whose sums are ordered differently, so its scores are
/// the same alone and in any batch.
const QUERY_TILE: usize = 16;

/// At most this many queries per GEMM call: up to here the GEMM reads the dimension-major block
/// in place (no packing); more queries go in several tiles.
const MAX_TILE: usize = 96;

/// Exact nearest-neighbour search: scores every stored vector with one GEMM per block of
/// 4,096 items ([`matmul`], the `gemm` crate's AVX-512/AVX2 sgemm), blocks in parallel
/// with rayon, and keeps each query's best `k` in a bounded heap fed straight from the block's
/// scores (the score matrix of the whole catalogue never exists). Under cosine similarity vectors
/// and queries are L2-normalised; under negative L2 the score is 2⟨q, x⟩ − ‖q‖² − ‖x‖². It is the
/// correctness oracle for every approximate index.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatIndex {
    dim: usize,
    similarity: Similarity,
    ids: Vec<u64>,
    /// The vectors, row-major, on huge pages once large (HNSW reads them at random).
    vectors: PageVec<f32>,
    squared_norms: Vec<f32>,
    positions: HashMap<u64, usize>,
    /// Each block of [`BLOCK_ROWS`] stored rows again, dimension-major (`[dim, block rows]`):
    /// the layout the GEMM reads without repacking it on every search (2× the vector memory).
    blocks_by_dimension: Vec<Vec<f32>>,
}

/// Normalises each row to unit L2 norm (zero rows stay zero).
pub(crate) fn normalise_rows(values: &mut [f32], dim: usize) {
    for row in values.chunks_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
}

impl FlatIndex {
    /// An empty index of `dim`-dimensional vectors.
    ///
    /// # Errors
    /// [`IndexError::Shape`] for `dim = 0`.
    pub fn new(dim: usize, similarity: Similarity) -> Result<Self> {
        if dim == 0 {
            return Err(IndexError::Shape {
                what: "index",
                reason: "dimension 0".into(),
            });
        }
        Ok(Self {
            dim,
            similarity,
            ids: Vec::new(),
            vectors: PageVec::new(),
            squared_norms: Vec::new(),
            positions: HashMap::new(),
            blocks_by_dimension: Vec::new(),
        })
    }

    /// An index holding `vectors` with ids 0, 1, 2, … (row numbers).
    ///
    /// # Errors
    /// As [`FlatIndex::new`] and [`VectorIndex::add`].
    pub fn from_rows(dim: usize, similarity: Similarity, vectors: &[f32]) -> Result<Self> {
        let mut index = Self::new(dim, similarity)?;
        let n = check_rows(vectors, dim, "vectors")?;
        let ids: Vec<u64> = (0..n as u64).collect();
        index.add(&ids, vectors)?;
        Ok(index)
    }

    /// The stored ids, in insertion order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// The stored vectors, row-major in insertion order.
    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    /// ‖x‖² of every stored vector, in insertion order.
    #[cfg(feature = "hnsw")]
    pub(crate) fn squared_norms(&self) -> &[f32] {
        &self.squared_norms
    }

    /// `values` as this index stores and compares them (L2-normalised rows under cosine).
    pub(crate) fn prepared(&self, values: &[f32]) -> Vec<f32> {
        let mut v = values.to_vec();
        if self.similarity == Similarity::Cosine {
            normalise_rows(&mut v, self.dim);
        }
        v
    }

    /// Adds vectors exactly as given (already normalised under cosine similarity), after the
    /// checks of [`VectorIndex::add`]: used by `add` and by loading a saved index.
    pub(crate) fn add_stored(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        self.check_new(ids, vectors)?;
        for (i, (&id, row)) in ids.iter().zip(vectors.chunks(self.dim)).enumerate() {
            self.positions.insert(id, self.ids.len() + i);
            self.squared_norms.push(row.iter().map(|v| v * v).sum());
        }
        let first_changed_block = self.ids.len() / BLOCK_ROWS;
        self.ids.extend_from_slice(ids);
        self.vectors.extend_from_slice(vectors);
        self.blocks_by_dimension.truncate(first_changed_block);
        for start in (first_changed_block * BLOCK_ROWS..self.ids.len()).step_by(BLOCK_ROWS) {
            let rows = BLOCK_ROWS.min(self.ids.len() - start);
            let mut block = vec![0.0f32; rows * self.dim];
            for (i, row) in self.vectors[start * self.dim..(start + rows) * self.dim]
                .chunks_exact(self.dim)
                .enumerate()
            {
                for (p, &v) in row.iter().enumerate() {
                    block[p * rows + i] = v;
                }
            }
            self.blocks_by_dimension.push(block);
        }
        Ok(())
    }

    /// The checks of [`VectorIndex::add`] without adding: whole finite rows, one id per row, no
    /// id already stored or repeated.
    pub(crate) fn check_new(&self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        let n = check_rows(vectors, self.dim, "vectors")?;
        if n != ids.len() {
            return Err(IndexError::Shape {
                what: "ids",
                reason: format!("{} ids for {n} vectors", ids.len()),
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        for &id in ids {
            if self.positions.contains_key(&id) || !seen.insert(id) {
                return Err(IndexError::DuplicateId { id });
            }
        }
        Ok(())
    }

    /// Scores one block of catalogue rows against all queries and offers them to `tops`.
    ///
    /// Queries go through the GEMM in tiles of a multiple of [`QUERY_TILE`] rows (zero-padded),
    /// `tile · blockᵀ`, so a query's scores are bit-identical alone and in any batch (the
    /// concurrency tests check it); each query's scores come out contiguous for the top-k scan.
    fn score_block(
        &self,
        queries: &[f32],
        query_norms: &[f32],
        start: usize,
        tops: &mut [TopK],
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) {
        let end = (start + BLOCK_ROWS).min(self.ids.len());
        let rows = end - start;
        let block = &self.blocks_by_dimension[start / BLOCK_ROWS];
        let tile_rows = tops.len().div_ceil(QUERY_TILE).max(1) * QUERY_TILE;
        let tile_rows = tile_rows.min(MAX_TILE);
        let mut tile = vec![0.0f32; tile_rows * self.dim];
        let mut scores = vec![0.0f32; tile_rows * rows];
        for (tile_index, tile_tops) in tops.chunks_mut(tile_rows).enumerate() {
            let first = tile_index * tile_rows;
            let used = tile_tops.len();
            tile[..used * self.dim]
                .copy_from_slice(&queries[first * self.dim..(first + used) * self.dim]);
            tile[used * self.dim..].fill(0.0);
            matmul(
                &mut scores,
                &tile,
                block,
                (tile_rows, self.dim, rows),
                RightLayout::RowMajor,
                false,
                Threads::Single,
            )
            .expect("block and query tile shapes match their buffers");
            for (t, (top, row)) in tile_tops
                .iter_mut()
                .zip(scores.chunks_exact(rows))
                .enumerate()
            {
                let query_norm = query_norms[first + t];
                let mut threshold = top.threshold();
                for (j, &dot) in row.iter().enumerate() {
                    let item = start + j;
                    let score = match self.similarity {
                        Similarity::NegativeL2 => 2.0 * dot - query_norm - self.squared_norms[item],
                        _ => dot,
                    };
                    if score < threshold {
                        continue;
                    }
                    let id = self.ids[item];
                    if filter.is_some_and(|f| !f(id)) {
                        continue;
                    }
                    top.push(Hit::new(id, score));
                    threshold = top.threshold();
                }
            }
        }
    }
}

impl VectorIndex for FlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn similarity(&self) -> Similarity {
        self.similarity
    }

    fn add(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        let prepared = self.prepared(vectors);
        self.add_stored(ids, &prepared)
    }

    fn search_filtered(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Vec<Hit>>> {
        let (nq, k) = check_search(queries, self.dim, k, self.len())?;
        if nq == 0 || self.ids.is_empty() {
            return Ok(vec![Vec::new(); nq]);
        }
        let prepared = self.prepared(queries);
        let query_norms: Vec<f32> = prepared
            .chunks(self.dim)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect();
        let blocks: Vec<usize> = (0..self.ids.len()).step_by(BLOCK_ROWS).collect();
        let tops = blocks
            .par_iter()
            .map(|&start| {
                let mut tops = vec![TopK::new(k); nq];
                self.score_block(&prepared, &query_norms, start, &mut tops, filter);
                tops
            })
            .reduce(
                || vec![TopK::new(k); nq],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        x.merge(y);
                    }
                    a
                },
            );
        Ok(tops.into_iter().map(TopK::into_sorted).collect())
    }

    fn vector(&self, id: u64) -> Option<&[f32]> {
        self.positions
            .get(&id)
            .map(|&p| &self.vectors[p * self.dim..(p + 1) * self.dim])
    }
}
