//! Small tensor helpers shared by the crate: reading tensors back to the host, checking them there,
//! and fitting per-query rows to per-sample batches.
//!
//! Validation of user data (finite values) happens once at API boundaries, never inside sampling
//! loops, so the cost of a device read stays out of the hot path.

use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::{CoreError, Result};

/// Reads a tensor back to the host as row-major `f32` values.
///
/// # Errors
/// [`CoreError::TensorData`] when the backend cannot provide the data as `f32`.
pub fn to_host_f32<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| CoreError::TensorData {
            reason: format!("{e:?}"),
        })
}

/// Builds a `[rows, cols]` tensor from row-major `f32` values.
///
/// # Errors
/// [`CoreError::BatchMismatch`] when `values.len() != rows * cols`.
pub fn matrix_from_host<B: Backend>(
    values: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Result<Tensor<B, 2>> {
    if values.len() != rows * cols {
        return Err(CoreError::BatchMismatch {
            what: "matrix values (rows × cols)",
            expected: rows * cols,
            got: values.len(),
        });
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [rows, cols]),
        device,
    ))
}

/// Returns [`CoreError::NonFinite`] naming `what` when the tensor holds NaN or ±Inf.
///
/// # Errors
/// [`CoreError::NonFinite`], or [`CoreError::TensorData`] when the tensor cannot be read.
pub fn ensure_finite<B: Backend, const D: usize>(
    tensor: &Tensor<B, D>,
    what: &'static str,
) -> Result<()> {
    if to_host_f32(tensor.clone())?.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(CoreError::NonFinite { what })
    }
}

/// Checks that a `[batch, dim]` tensor has the expected width.
///
/// # Errors
/// [`CoreError::DimMismatch`] naming `what`.
pub fn ensure_dim<B: Backend>(
    tensor: &Tensor<B, 2>,
    expected: usize,
    what: &'static str,
) -> Result<()> {
    let got = tensor.dims()[1];
    if got == expected {
        Ok(())
    } else {
        Err(CoreError::DimMismatch {
            what,
            expected,
            got,
        })
    }
}

/// A `[batch]` tensor filled with one σ value, as the samplers pass it to a denoiser.
pub fn sigma_column<B: Backend>(sigma: f64, batch: usize, device: &B::Device) -> Tensor<B, 1> {
    Tensor::full([batch], sigma, device)
}

/// Fits a `[rows, dim]` tensor to `batch` rows: unchanged when `rows == batch`; each row repeated
/// `batch / rows` times in place when `rows` divides `batch` (one row per query becomes one row per
/// seed, query-major, so a single row serves every sample).
///
/// # Errors
/// [`CoreError::BatchMismatch`] naming `what` when `rows` does not divide `batch`.
pub fn repeat_rows_to<B: Backend>(
    tensor: Tensor<B, 2>,
    batch: usize,
    what: &'static str,
) -> Result<Tensor<B, 2>> {
    let [rows, dim] = tensor.dims();
    if rows == batch {
        return Ok(tensor);
    }
    if rows == 0 || batch == 0 || !batch.is_multiple_of(rows) {
        return Err(CoreError::BatchMismatch {
            what,
            expected: batch,
            got: rows,
        });
    }
    let repeats = batch / rows;
    Ok(tensor
        .reshape([rows, 1, dim])
        .repeat_dim(1, repeats)
        .reshape([batch, dim]))
}

/// ‖row‖ as a `[batch, 1]` tensor, floored at a tiny positive value.
pub fn row_norm<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    x.square().sum_dim(1).sqrt().clamp_min(1e-12)
}
