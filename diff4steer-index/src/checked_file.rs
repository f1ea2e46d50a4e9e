//! The envelope of every index file: a body that starts with an 8-byte magic, followed by the
//! SHA-256 of the body; written atomically, verified on read.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::atomic::write_atomic;
use crate::{IndexError, Result};

const CHECKSUM: usize = 32;

/// Writes `body` followed by its SHA-256 to `path` (temporary file, then rename).
///
/// # Errors
/// [`IndexError::Io`] naming the file.
pub(crate) fn write_checked(path: &Path, body: &[u8]) -> Result<()> {
    let mut bytes = Vec::with_capacity(body.len() + CHECKSUM);
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(&Sha256::digest(body));
    write_atomic(path, &bytes).map_err(|e| IndexError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Reads a file written by [`write_checked`] whose body starts with `magic`; returns the body.
///
/// # Errors
/// [`IndexError::Io`] when the file cannot be read; [`IndexError::Corrupt`] for another magic, a
/// file too short to hold one, or a checksum mismatch (truncated or altered).
pub(crate) fn read_checked(path: &Path, magic: &[u8; 8]) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let mut bytes = std::fs::read(path).map_err(|e| IndexError::Io {
        path: name.clone(),
        reason: e.to_string(),
    })?;
    let corrupt = |reason: &str| IndexError::Corrupt {
        path: name.clone(),
        reason: reason.to_owned(),
    };
    if bytes.len() < magic.len() + CHECKSUM || &bytes[..magic.len()] != magic {
        return Err(corrupt(&format!(
            "not a diff4steer {} file (bad magic or too short)",
            String::from_utf8_lossy(magic)
        )));
    }
    let body_len = bytes.len() - CHECKSUM;
    if Sha256::digest(&bytes[..body_len]).as_slice() != &bytes[body_len..] {
        return Err(corrupt("checksum mismatch: truncated or altered"));
    }
    bytes.truncate(body_len);
    Ok(bytes)
}
