//! File output that never leaves a half-written file: a temporary file beside the target, then a
//! rename (atomic on POSIX file systems).

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::{ModelError, Result};

fn io_error(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Writes `bytes` to `path` through `path` + `.tmp`, an fsync and a rename; creates the parent
/// folder. On failure the temporary file is removed and `path` is untouched.
///
/// # Errors
/// [`ModelError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(tmp);
        io_error(path, e)
    })
}

/// Reads a whole file.
///
/// # Errors
/// [`ModelError::Io`] naming the file.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| io_error(path, e))
}
