//! An adapter that puts any faiss index (Johnson, Douze & Jégou 2019, "Billion-scale similarity
//! search with GPUs"; faiss ≥ 1.12 through the `faiss` crate) behind [`VectorIndex`]: Flat, HNSW,
//! IVF, PQ … chosen by an index-factory string such as `"Flat"`, `"HNSW32"` or `"IVF256,Flat"`.

use std::path::Path;
use std::sync::Mutex;

use faiss::index::autotune::ParameterSpace;
use faiss::index::IndexImpl;
use faiss::{index_factory, Index, MetricType};

use crate::checked_file::{read_checked, write_checked};
use crate::vector_index::{check_rows, check_search};
use crate::{FlatIndex, Hit, IndexError, Result, Similarity, VectorIndex};

const MAGIC: &[u8; 8] = b"D4SFAISS";

/// A filter accepting fewer items than this share of the index is served exactly from the stored
/// vectors; otherwise faiss is asked for more and more candidates until `k` pass.
const EXACT_FILTER_SHARE: usize = 16;

fn faiss_error(operation: &'static str, error: faiss::error::Error) -> IndexError {
    IndexError::Backend {
        operation,
        reason: error.to_string(),
    }
}

/// A faiss index behind [`VectorIndex`]. Cosine similarity is faiss' inner product on
/// L2-normalised vectors (normalised here), negative L2 is faiss' L2 with the sign turned. The
/// vectors are also kept in a [`FlatIndex`] (faiss labels are positions there), which maps labels
/// to ids, serves [`VectorIndex::vector`], checks ids, re-scores faiss' candidates exactly (so
/// scores are exact even for compressed codes such as PQ) and answers very selective filters.
/// An index that needs training (IVF, PQ) is trained on the first vectors added, unless
/// [`FaissIndex::train`] was called before.
#[derive(Debug)]
pub struct FaissIndex {
    description: String,
    store: FlatIndex,
    inner: Mutex<IndexImpl>,
}

impl FaissIndex {
    /// An empty faiss index made by `faiss::index_factory(dim, description, metric)`.
    ///
    /// # Errors
    /// [`IndexError::Shape`] for `dim = 0`; [`IndexError::InvalidParameter`] when faiss rejects
    /// the description.
    pub fn new(dim: usize, similarity: Similarity, description: &str) -> Result<Self> {
        let store = FlatIndex::new(dim, similarity)?;
        let metric = match similarity {
            Similarity::NegativeL2 => MetricType::L2,
            Similarity::InnerProduct | Similarity::Cosine => MetricType::InnerProduct,
        };
        let width = u32::try_from(dim).map_err(|_| IndexError::Shape {
            what: "index",
            reason: format!("dimension {dim} is too large for faiss"),
        })?;
        let inner = index_factory(width, description, metric).map_err(|e| {
            IndexError::InvalidParameter {
                name: "faiss index description",
                reason: format!("`{description}`: {e}"),
            }
        })?;
        Ok(Self {
            description: description.to_owned(),
            store,
            inner: Mutex::new(inner),
        })
    }

    /// The index-factory description.
    pub fn description(&self) -> &str {
        &self.description
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IndexImpl> {
        // A panic inside faiss cannot leave the C++ object half-updated from Rust's view.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the index is ready for vectors (always for Flat and HNSW).
    pub fn is_trained(&self) -> bool {
        self.lock().is_trained()
    }

    /// Trains the index (IVF centroids, PQ codebooks) on `vectors`, which are not added.
    ///
    /// # Errors
    /// Shape / non-finite errors as for [`VectorIndex::add`]; [`IndexError::Backend`] when faiss
    /// refuses (for example fewer training vectors than IVF lists).
    pub fn train(&mut self, vectors: &[f32]) -> Result<()> {
        check_rows(vectors, self.dim(), "training vectors")?;
        let prepared = self.store.prepared(vectors);
        self.lock()
            .train(&prepared)
            .map_err(|e| faiss_error("train", e))
    }

    /// Sets a search-time parameter by its faiss name: `efSearch` (HNSW), `nprobe` (IVF), ….
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] when this index has no such parameter.
    pub fn set_parameter(&mut self, name: &str, value: f64) -> Result<()> {
        let space = ParameterSpace::new().map_err(|e| faiss_error("parameter space", e))?;
        space
            .set_index_parameter(&*self.lock(), name, value)
            .map_err(|e| IndexError::InvalidParameter {
                name: "faiss parameter",
                reason: format!("`{name}` = {value}: {e}"),
            })
    }

    /// faiss' best `count` positions for each prepared query, re-scored exactly and mapped to
    /// ids; `None` entries (fewer results than asked) are dropped.
    fn candidates(&self, prepared: &[f32], count: usize) -> Result<Vec<Vec<Hit>>> {
        let found = self
            .lock()
            .search(prepared, count)
            .map_err(|e| faiss_error("search", e))?;
        let dim = self.dim();
        Ok(prepared
            .chunks(dim)
            .zip(found.labels.chunks(count))
            .map(|(query, labels)| {
                let mut hits: Vec<Hit> = labels
                    .iter()
                    .filter_map(|label| label.get())
                    .filter_map(|position| {
                        let position = usize::try_from(position).ok()?;
                        let id = *self.store.ids().get(position)?;
                        // The label is the position: slice the row directly, no id lookup.
                        let item = self
                            .store
                            .vectors()
                            .get(position * dim..(position + 1) * dim)?;
                        Some(Hit::new(id, self.similarity().score(query, item)))
                    })
                    .collect();
                hits.sort_by(Hit::ranking);
                hits
            })
            .collect())
    }

    /// Saves the description, the vectors and faiss' own serialisation (temporary file, then
    /// rename).
    ///
    /// # Errors
    /// [`IndexError::Io`] naming the file; [`IndexError::Backend`] when faiss cannot write.
    pub fn save(&self, path: &Path) -> Result<()> {
        let scratch = tempfile::NamedTempFile::new().map_err(|e| IndexError::Io {
            path: "temporary file".into(),
            reason: e.to_string(),
        })?;
        let scratch_name = scratch.path().to_string_lossy().into_owned();
        faiss::write_index(&*self.lock(), &scratch_name).map_err(|e| faiss_error("write", e))?;
        let native = std::fs::read(scratch.path()).map_err(|e| IndexError::Io {
            path: scratch_name,
            reason: e.to_string(),
        })?;
        let store = self.store.to_bytes();
        let mut body = Vec::with_capacity(64 + store.len() + native.len());
        body.extend_from_slice(MAGIC);
        for part in [self.description.as_bytes(), &store, &native] {
            body.extend_from_slice(&(part.len() as u64).to_le_bytes());
            body.extend_from_slice(part);
        }
        write_checked(path, &body)
    }

    /// Loads an index written by [`FaissIndex::save`].
    ///
    /// # Errors
    /// [`IndexError::Io`] when the file cannot be read; [`IndexError::Corrupt`] for another format,
    /// a truncated or altered file, or faiss data that does not match the vectors.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let corrupt = |reason: String| IndexError::Corrupt {
            path: name.clone(),
            reason,
        };
        let body = read_checked(path, MAGIC)?;
        let mut parts = Vec::with_capacity(3);
        let mut at = MAGIC.len();
        for _ in 0..3 {
            let len = body
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
                .ok_or_else(|| corrupt("truncated".into()))?;
            let part = at
                .checked_add(8 + len)
                .and_then(|end| body.get(at + 8..end))
                .ok_or_else(|| corrupt("truncated".into()))?;
            parts.push(part);
            at += 8 + len;
        }
        if at != body.len() {
            return Err(corrupt("trailing bytes".into()));
        }
        let description = std::str::from_utf8(parts[0])
            .map_err(|_| corrupt("description is not UTF-8".into()))?
            .to_owned();
        let store = FlatIndex::from_bytes(parts[1]).map_err(corrupt)?;
        let scratch = tempfile::NamedTempFile::new().map_err(|e| IndexError::Io {
            path: "temporary file".into(),
            reason: e.to_string(),
        })?;
        std::fs::write(scratch.path(), parts[2]).map_err(|e| IndexError::Io {
            path: scratch.path().display().to_string(),
            reason: e.to_string(),
        })?;
        let inner = faiss::read_index(scratch.path().to_string_lossy())
            .map_err(|e| corrupt(format!("faiss data: {e}")))?;
        if inner.d() as usize != store.dim() || inner.ntotal() as usize != store.len() {
            return Err(corrupt(format!(
                "faiss index of {} × {} over {} × {} vectors",
                inner.ntotal(),
                inner.d(),
                store.len(),
                store.dim()
            )));
        }
        Ok(Self {
            description,
            store,
            inner: Mutex::new(inner),
        })
    }
}

impl VectorIndex for FaissIndex {
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
        let prepared = self.store.prepared(vectors);
        // Validate (shape, finiteness, duplicates) before touching faiss.
        self.store.check_new(ids, &prepared)?;
        if ids.is_empty() {
            return Ok(());
        }
        {
            let mut inner = self.lock();
            if !inner.is_trained() {
                inner
                    .train(&prepared)
                    .map_err(|e| faiss_error("train", e))?;
            }
            inner.add(&prepared).map_err(|e| faiss_error("add", e))?;
        }
        self.store.add_stored(ids, &prepared)
    }

    fn search_filtered(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Vec<Hit>>> {
        let (nq, k) = check_search(queries, self.dim(), k, self.len())?;
        if self.is_empty() || nq == 0 {
            return Ok(vec![Vec::new(); nq]);
        }
        let Some(filter) = filter else {
            let prepared = self.store.prepared(queries);
            let mut hits = self.candidates(&prepared, k.min(self.len()))?;
            hits.iter_mut().for_each(|h| h.truncate(k));
            return Ok(hits);
        };
        let accepted = self.store.ids().iter().filter(|&&id| filter(id)).count();
        if accepted * EXACT_FILTER_SHARE <= self.len() {
            return self.store.search_filtered(queries, k, Some(filter));
        }
        // Ask for about k / share candidates, doubling until every query has k that pass (or
        // everything was asked for).
        let prepared = self.store.prepared(queries);
        let mut count = (k * self.len())
            .div_ceil(accepted)
            .saturating_mul(2)
            .min(self.len());
        loop {
            let mut hits = self.candidates(&prepared, count)?;
            for list in &mut hits {
                list.retain(|h| filter(h.id));
                list.truncate(k);
            }
            let enough = hits.iter().all(|list| list.len() >= k.min(accepted));
            if enough || count == self.len() {
                return Ok(hits);
            }
            count = (count * 2).min(self.len());
        }
    }

    fn vector(&self, id: u64) -> Option<&[f32]> {
        self.store.vector(id)
    }
}
