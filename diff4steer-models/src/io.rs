//! File I/O with this crate's error type: atomic writes and whole-file reads.

use std::fs;
use std::path::Path;

use crate::{ModelError, Result};

fn io_error(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Writes `bytes` to `path` through a temporary file, an fsync and a rename (the shared
/// [`diff4steer_index::atomic::write_atomic`]); creates the parent folder. On failure `path` is
/// untouched.
///
/// # Errors
/// [`ModelError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    diff4steer_index::atomic::write_atomic(path, bytes).map_err(|e| io_error(path, e))
}

/// Reads a whole file.
///
/// # Errors
/// [`ModelError::Io`] naming the file.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| io_error(path, e))
}
