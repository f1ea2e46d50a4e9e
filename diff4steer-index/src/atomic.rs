//! File output that never leaves a half-written file: a temporary file beside the target, an
//! fsync, then a rename (atomic on POSIX file systems). Shared by every crate that writes files.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through `path` + `.tmp` and a rename; creates the parent folder. On
/// failure the temporary file is removed and `path` is untouched.
///
/// # Errors
/// The underlying I/O error (callers add the path to their own error type).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let result = (|| {
        let mut file = fs::File::create(tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}
