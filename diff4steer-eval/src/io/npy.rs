//! .npy files (NumPy format 1.0/2.0, through `ndarray-npy`): f32 matrices and 0/1 label matrices.
//!
//! Readers check the header against the file before anything is allocated: a header that claims
//! more data than the file holds (a truncated file, or a corrupt shape such as 10⁹ × 10⁹) is an
//! error naming the file, never an allocation of what the header claims.

use std::path::Path;

use ndarray::Array2;
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use super::write_file;
use crate::error::io_error;
use crate::{EvalError, Result};

fn npy_error(path: &Path, reason: impl std::fmt::Display) -> EvalError {
    EvalError::Npy {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// An element type the readers accept: NumPy's names for it and its size in bytes.
struct Dtype {
    names: &'static [&'static str],
    bytes: usize,
    what: &'static str,
}

const FLOAT32: Dtype = Dtype {
    names: &["<f4", ">f4", "=f4", "|f4", "float32"],
    bytes: 4,
    what: "float32",
};
const LABELS: Dtype = Dtype {
    names: &["|u1", "<u1", ">u1", "=u1", "uint8", "|b1", "bool"],
    bytes: 1,
    what: "uint8 or bool",
};

/// Checks an .npy file's header against its length and the expected element types: a 2-D
/// array of `dtype` whose data is exactly the rest of the file.
fn check_header(path: &Path, bytes: &[u8], dtype: &Dtype) -> Result<()> {
    let what = dtype.what;
    if bytes.is_empty() {
        return Err(npy_error(path, "empty file, not an .npy array"));
    }
    let mut reader = bytes;
    let header = Header::from_reader(&mut reader).map_err(|e| {
        npy_error(
            path,
            format!("not an .npy file (bad or truncated header: {e})"),
        )
    })?;
    let found = header.type_descriptor.to_string();
    let found = found.trim_matches(|c| c == '\'' || c == '"');
    if !dtype.names.contains(&found) {
        return Err(npy_error(
            path,
            format!("dtype {found} is not {what} (convert it with .astype(...) first)"),
        ));
    }
    let &[rows, cols] = header.shape.as_slice() else {
        return Err(npy_error(
            path,
            format!(
                "{}-D array of shape {:?}, expected a 2-D matrix",
                header.shape.len(),
                header.shape
            ),
        ));
    };
    let expected = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(dtype.bytes));
    if expected != Some(reader.len()) {
        return Err(npy_error(
            path,
            format!(
                "truncated or padded: the header says {rows} × {cols} {what} ({} bytes), the file holds {} data bytes",
                expected.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                reader.len()
            ),
        ));
    }
    Ok(())
}

/// Parses the bytes of an .npy file holding a 2-D `float32` array (C or Fortran order); `path`
/// names it in errors. Every value must be finite. (Also the fuzzing entry point.)
///
/// # Errors
/// [`EvalError::Npy`] for an empty file, a bad or truncated header, another dtype (f64, i32, …),
/// another rank, data shorter or longer than the header says, or a NaN/Inf value (with its row).
pub fn parse_f32_matrix(path: &Path, bytes: &[u8]) -> Result<Array2<f32>> {
    check_header(path, bytes, &FLOAT32)?;
    let matrix = Array2::<f32>::read_npy(bytes)
        .map_err(|e| npy_error(path, format!("not a 2-D float32 .npy array: {e}")))?;
    // Over the values, not the rows: a header of 10⁹ rows × 0 columns is valid and empty.
    if let Some(i) = matrix.iter().position(|v| !v.is_finite()) {
        let row = i / matrix.ncols();
        return Err(npy_error(path, format!("row {row} holds NaN or ±Inf")));
    }
    Ok(matrix)
}

/// Reads a 2-D `float32` array (C or Fortran order). Every value must be finite.
///
/// # Errors
/// [`EvalError::Io`] when the file cannot be opened; otherwise as [`parse_f32_matrix`].
pub fn read_f32_matrix(path: &Path) -> Result<Array2<f32>> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    parse_f32_matrix(path, &bytes)
}

/// Reads a 2-D `float32` array that must hold at least one row and one column.
///
/// # Errors
/// As [`read_f32_matrix`], and [`EvalError::Npy`] for a matrix with no rows or no columns.
pub fn read_nonempty_f32_matrix(path: &Path) -> Result<Array2<f32>> {
    let matrix = read_f32_matrix(path)?;
    if matrix.is_empty() {
        return Err(npy_error(
            path,
            format!("empty matrix ({} × {})", matrix.nrows(), matrix.ncols()),
        ));
    }
    Ok(matrix)
}

/// Writes a 2-D `float32` array (temporary file, then rename).
///
/// # Errors
/// [`EvalError::Io`] naming the file.
pub fn write_f32_matrix(path: &Path, matrix: &Array2<f32>) -> Result<()> {
    let mut bytes = Vec::new();
    matrix
        .write_npy(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    write_file(path, &bytes)
}

/// Reads a 2-D label matrix of dtype `uint8` or `bool`; values must be 0 or 1.
///
/// # Errors
/// [`EvalError::Io`] when the file cannot be opened; otherwise as [`parse_labels`].
pub fn read_labels(path: &Path) -> Result<Array2<u8>> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    parse_labels(path, &bytes)
}

/// Parses the bytes of an .npy file holding a 2-D `uint8` or `bool` label matrix; `path` names
/// it in errors.
///
/// # Errors
/// [`EvalError::Npy`] for another dtype or rank, a malformed or truncated file, or a value
/// other than 0/1.
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Array2<u8>> {
    check_header(path, bytes, &LABELS)?;
    let labels = match Array2::<u8>::read_npy(bytes) {
        Ok(labels) => labels,
        Err(u8_error) => Array2::<bool>::read_npy(bytes)
            .map(|b| b.mapv(u8::from))
            .map_err(|_| {
                npy_error(
                    path,
                    format!("not a 2-D uint8 or bool .npy array: {u8_error}"),
                )
            })?,
    };
    if let Some(v) = labels.iter().find(|&&v| v > 1) {
        return Err(npy_error(path, format!("label {v} is not 0 or 1")));
    }
    Ok(labels)
}

/// Writes a 2-D `uint8` label matrix (temporary file, then rename).
///
/// # Errors
/// [`EvalError::Io`] naming the file.
pub fn write_labels(path: &Path, labels: &Array2<u8>) -> Result<()> {
    let mut bytes = Vec::new();
    labels
        .write_npy(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    write_file(path, &bytes)
}
