//! Saving and loading a [`FlatIndex`]: one binary file with a checksum, written atomically.
//!
//! Layout (little-endian): magic `D4SFLAT1` · similarity (u8) · dim (u64) · n (u64) · n ids (u64)
//! · n·dim values (f32) · SHA-256 of everything before it.

use std::path::Path;

use crate::checked_file::{read_checked, write_checked};
use crate::{FlatIndex, IndexError, Result, Similarity, VectorIndex};

const MAGIC: &[u8; 8] = b"D4SFLAT1";
const HEADER: usize = 8 + 1 + 8 + 8;

impl FlatIndex {
    /// Writes the index to `path` (temporary file, then rename).
    ///
    /// # Errors
    /// [`IndexError::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_checked(path, &self.to_bytes())
    }

    /// Reads an index written by [`FlatIndex::save`].
    ///
    /// # Errors
    /// [`IndexError::Io`] when the file cannot be read; [`IndexError::Corrupt`] for another format,
    /// a truncated or altered file (checksum), or inconsistent contents.
    pub fn load(path: &Path) -> Result<Self> {
        let body = read_checked(path, MAGIC)?;
        Self::from_bytes(&body).map_err(|reason| IndexError::Corrupt {
            path: path.display().to_string(),
            reason,
        })
    }

    /// The file body (without checksum).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER + self.len() * (8 + 4 * self.dim()));
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
        bytes
    }

    /// Parses a body written by [`FlatIndex::to_bytes`]; the error says what is wrong.
    pub(crate) fn from_bytes(body: &[u8]) -> std::result::Result<Self, String> {
        if body.len() < HEADER || &body[..8] != MAGIC {
            return Err("not a diff4steer flat index (bad magic or too short)".into());
        }
        let similarity =
            Similarity::from_code(body[8]).ok_or_else(|| "unknown similarity code".to_owned())?;
        let read_u64 =
            |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let (dim, n) = (read_u64(9) as usize, read_u64(17) as usize);
        let expected = n
            .checked_mul(8 + 4 * dim)
            .and_then(|payload| payload.checked_add(HEADER))
            .ok_or_else(|| "sizes overflow".to_owned())?;
        if body.len() != expected || dim == 0 {
            return Err("sizes in the header do not match the file".into());
        }
        let ids: Vec<u64> = body[HEADER..HEADER + 8 * n]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let vectors: Vec<f32> = body[HEADER + 8 * n..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let mut index = FlatIndex::new(dim, similarity).map_err(|e| e.to_string())?;
        index
            .add_stored(&ids, &vectors)
            .map_err(|e| format!("invalid contents: {e}"))?;
        Ok(index)
    }
}
