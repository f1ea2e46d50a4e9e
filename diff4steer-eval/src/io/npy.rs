//! .npy files (NumPy format 1.0/2.0, through `ndarray-npy`): f32 matrices and 0/1 label matrices.

use std::path::Path;

use ndarray::Array2;
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

/// Reads a 2-D `float32` array (C or Fortran order). Every value must be finite.
///
/// # Errors
/// [`EvalError::Io`] when the file cannot be opened; [`EvalError::Npy`] for another dtype (f64,
/// i32, …), another rank, a truncated or malformed file, or a NaN/Inf value (with its row).
pub fn read_f32_matrix(path: &Path) -> Result<Array2<f32>> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let matrix = Array2::<f32>::read_npy(std::io::BufReader::new(file))
        .map_err(|e| npy_error(path, format!("not a 2-D float32 .npy array: {e}")))?;
    if let Some((row, _)) = matrix
        .rows()
        .into_iter()
        .enumerate()
        .find(|(_, r)| r.iter().any(|v| !v.is_finite()))
    {
        return Err(npy_error(path, format!("row {row} holds NaN or ±Inf")));
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
/// [`EvalError::Io`] when the file cannot be opened; [`EvalError::Npy`] for another dtype or
/// rank, a malformed file, or a value other than 0/1.
pub fn read_labels(path: &Path) -> Result<Array2<u8>> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let labels = match Array2::<u8>::read_npy(bytes.as_slice()) {
        Ok(labels) => labels,
        Err(u8_error) => Array2::<bool>::read_npy(bytes.as_slice())
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
