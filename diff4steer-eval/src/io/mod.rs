//! Reading and writing the formats users already have: .npy matrices, TSV tables with a header,
//! TREC run and qrels files. Every writer goes through a temporary file and a rename; every reader
//! names the file (and line) in its errors.

pub mod npy;
pub mod trec;
pub mod tsv;

use std::path::Path;

use crate::error::io_error;
use crate::Result;

/// Writes `bytes` to `path` atomically (temporary file, then rename).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    diff4steer_index::atomic::write_atomic(path, bytes).map_err(|e| io_error(path, e))
}

/// Reads a text file line by line: `(1-based line number, line)`; a line that is not UTF-8 is an
/// [`crate::EvalError::Parse`] error naming it.
pub(crate) fn read_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    lines_of(path, &bytes)
}

/// The non-blank lines of a text file's bytes: `(1-based line number, line)`; `path` names the
/// file in errors. A line that is not UTF-8 is an [`crate::EvalError::Parse`] error naming it.
pub(crate) fn lines_of(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, String)>> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            String::from_utf8(line.to_vec())
                .map(|s| (i + 1, s))
                .map_err(|_| crate::EvalError::Parse {
                    path: path.display().to_string(),
                    line: i + 1,
                    reason: "not valid UTF-8".into(),
                })
        })
        .filter(|r| r.as_ref().map_or(true, |(_, l)| !l.trim().is_empty()))
        .collect()
}
