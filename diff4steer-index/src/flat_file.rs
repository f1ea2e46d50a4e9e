//! Saving and loading a [`FlatIndex`]: one binary file with a checksum, written atomically.
//!
//! Layout (little-endian): magic `D4SFLAT1` · similarity (u8) · dim (u64) · n (u64) · n ids (u64)
//! · n·dim values (f32) · SHA-256 of everything before it.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::atomic::write_atomic;
use crate::{FlatIndex, IndexError, Result, Similarity, VectorIndex};

const MAGIC: &[u8; 8] = b"D4SFLAT1";
const HEADER: usize = 8 + 1 + 8 + 8;
const CHECKSUM: usize = 32;

impl FlatIndex {
    /// Writes the index to `path` (temporary file, then rename).
    ///
    /// # Errors
    /// [`IndexError::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = Vec::with_capacity(HEADER + self.len() * (8 + 4 * self.dim()) + CHECKSUM);
        bytes.extend_from_slice(MAGIC);
        bytes.push(self.similarity().code());
        bytes.extend_from_slice(&(self.dim() as u64).to_le_bytes());
        bytes.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for id in self.ids() {
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        for v in self.vectors() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        write_atomic(path, &bytes).map_err(|e| IndexError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads an index written by [`FlatIndex::save`].
    ///
    /// # Errors
    /// [`IndexError::Io`] when the file cannot be read; [`IndexError::Corrupt`] for another format,
    /// a truncated or altered file (checksum), or inconsistent contents.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let corrupt = |reason: &str| IndexError::Corrupt {
            path: name.clone(),
            reason: reason.to_owned(),
        };
        let bytes = std::fs::read(path).map_err(|e| IndexError::Io {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        if bytes.len() < HEADER + CHECKSUM || &bytes[..8] != MAGIC {
            return Err(corrupt(
                "not a diff4steer flat index (bad magic or too short)",
            ));
        }
        let (body, digest) = bytes.split_at(bytes.len() - CHECKSUM);
        if Sha256::digest(body).as_slice() != digest {
            return Err(corrupt("checksum mismatch: truncated or altered"));
        }
        let similarity =
            Similarity::from_code(body[8]).ok_or_else(|| corrupt("unknown similarity code"))?;
        let read_u64 =
            |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let (dim, n) = (read_u64(9) as usize, read_u64(17) as usize);
        let expected = n
            .checked_mul(8 + 4 * dim)
            .and_then(|payload| payload.checked_add(HEADER))
            .ok_or_else(|| corrupt("sizes overflow"))?;
        if body.len() != expected || dim == 0 {
            return Err(corrupt("sizes in the header do not match the file"));
        }
        let ids: Vec<u64> = body[HEADER..HEADER + 8 * n]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let vectors: Vec<f32> = body[HEADER + 8 * n..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let mut index = FlatIndex::new(dim, similarity)?;
        index
            .add_stored(&ids, &vectors)
            .map_err(|e| corrupt(&format!("invalid contents: {e}")))?;
        Ok(index)
    }
}
