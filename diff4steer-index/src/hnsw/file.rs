//! Saving and loading an [`HnswIndex`] with its graph, so loading does not rebuild it.
//!
//! Layout (little-endian): magic `D4SHNSW1` · M, ef_construction, ef_search, seed (u64 each) ·
//! entry (u64; `u64::MAX` when empty) · n (u64) · n levels (u8) · layer-0 slots (n·(2M+1) u32) ·
//! upper-layer slots (level·(M+1) u32 per node) · length (u64) and body of the vector store
//! (the flat-index format) · SHA-256 of everything before it.

use std::path::Path;

use super::graph::{Graph, Node};
use super::{HnswConfig, HnswIndex};
use crate::checked_file::{read_checked, write_checked};
use crate::{FlatIndex, IndexError, Result, VectorIndex};

const MAGIC: &[u8; 8] = b"D4SHNSW1";

/// Reads little-endian fields from a body, failing on truncation.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| "truncated graph".to_owned())?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn usize(&mut self) -> std::result::Result<usize, String> {
        usize::try_from(self.u64()?).map_err(|_| "size out of range".to_owned())
    }

    fn nodes(&mut self, n: usize) -> std::result::Result<Vec<Node>, String> {
        let bytes = self.take(n.checked_mul(4).ok_or("sizes overflow")?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| Node::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }
}

impl HnswIndex {
    /// Writes the parameters, the graph and the vectors to `path` (temporary file, then rename).
    ///
    /// # Errors
    /// [`IndexError::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let Graph {
            m,
            levels,
            layer0,
            upper,
            entry,
        } = &self.graph;
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC);
        let config = self.config;
        for v in [
            *m as u64,
            config.ef_construction as u64,
            config.ef_search as u64,
            config.seed,
            entry.map_or(u64::MAX, u64::from),
            levels.len() as u64,
        ] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(levels);
        for node in layer0.iter().chain(upper.iter().flatten()) {
            body.extend_from_slice(&node.to_le_bytes());
        }
        let store = self.store.to_bytes();
        body.extend_from_slice(&(store.len() as u64).to_le_bytes());
        body.extend_from_slice(&store);
        write_checked(path, &body)
    }

    /// Reads an index written by [`HnswIndex::save`].
    ///
    /// # Errors
    /// [`IndexError::Io`] when the file cannot be read; [`IndexError::Corrupt`] for another format,
    /// a truncated or altered file, or a graph inconsistent with its vectors.
    pub fn load(path: &Path) -> Result<Self> {
        let body = read_checked(path, MAGIC)?;
        Self::from_bytes(&body).map_err(|reason| IndexError::Corrupt {
            path: path.display().to_string(),
            reason,
        })
    }

    fn from_bytes(body: &[u8]) -> std::result::Result<Self, String> {
        let mut fields = Fields {
            bytes: body,
            at: MAGIC.len(),
        };
        let config = HnswConfig {
            m: fields.usize()?,
            ef_construction: fields.usize()?,
            ef_search: fields.usize()?,
            seed: fields.u64()?,
        };
        config.check().map_err(|e| e.to_string())?;
        let entry = match fields.u64()? {
            u64::MAX => None,
            e => Some(Node::try_from(e).map_err(|_| "entry point out of range")?),
        };
        let n = fields.usize()?;
        let levels = fields.take(n)?.to_vec();
        let layer0 = fields.nodes(n.checked_mul(2 * config.m + 1).ok_or("sizes overflow")?)?;
        let upper = levels
            .iter()
            .map(|&l| fields.nodes(usize::from(l) * (config.m + 1)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let store_len = fields.usize()?;
        let store = FlatIndex::from_bytes(fields.take(store_len)?)?;
        if fields.at != body.len() {
            return Err("trailing bytes after the vectors".into());
        }
        if store.len() != n {
            return Err(format!("graph of {n} nodes over {} vectors", store.len()));
        }
        let graph = Graph::from_parts(config.m, levels, layer0, upper, entry)
            .ok_or_else(|| "inconsistent graph links".to_owned())?;
        let index = Self {
            config,
            store,
            graph,
        };
        if index.similarity() == crate::Similarity::InnerProduct {
            return Err("inner-product similarity in an HNSW file".into());
        }
        Ok(index)
    }
}
