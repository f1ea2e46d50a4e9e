//! Per-row conditioning of a denoiser: a query embedding, or "null" (unconditional).

use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::tensor_util::{ensure_finite, repeat_rows_to, to_host_f32};
use crate::{CoreError, Result};

/// The condition of each row of a batch: a query embedding `[batch, cond_dim]` and, per row, whether
/// the row is *null* (unconditional, ∅). A model replaces null rows with its learned null
/// embedding; an analytic denoiser uses its unconditional distribution.
///
/// Because conditional and null rows can be mixed in one batch, classifier-free guidance evaluates
/// D(x, σ, c) and D(x, σ, ∅) in a single batched call (see [`crate::LinearGuidance`]).
#[derive(Debug, Clone)]
pub struct Conditioning<B: Backend> {
    embeddings: Tensor<B, 2>,
    null_rows: Vec<bool>,
}

impl<B: Backend> Conditioning<B> {
    /// Every row conditioned on its query embedding (`[batch, cond_dim]`).
    ///
    /// # Errors
    /// [`CoreError::Empty`] for zero rows or zero columns, [`CoreError::NonFinite`] for NaN/±Inf.
    pub fn new(embeddings: Tensor<B, 2>) -> Result<Self> {
        let batch = embeddings.dims()[0];
        Self::with_null_rows(embeddings, vec![false; batch])
    }

    /// Query embeddings with an explicit null flag per row; the values of null rows are ignored.
    ///
    /// # Errors
    /// As [`Conditioning::new`], plus [`CoreError::BatchMismatch`] when `null_rows` has another length.
    pub fn with_null_rows(embeddings: Tensor<B, 2>, null_rows: Vec<bool>) -> Result<Self> {
        let checked = Self::from_validated(embeddings, null_rows)?;
        ensure_finite(&checked.embeddings, "conditioning embeddings")?;
        Ok(checked)
    }

    /// Like [`Conditioning::with_null_rows`] without the (device-reading) finiteness check, for
    /// embeddings already validated on the host, e.g. training batches drawn from checked data.
    ///
    /// # Errors
    /// [`CoreError::Empty`] and [`CoreError::BatchMismatch`] as in [`Conditioning::with_null_rows`].
    pub fn from_validated(embeddings: Tensor<B, 2>, null_rows: Vec<bool>) -> Result<Self> {
        let [batch, cond_dim] = embeddings.dims();
        if batch == 0 || cond_dim == 0 {
            return Err(CoreError::Empty {
                what: "conditioning (rows and embedding dimension)",
            });
        }
        if null_rows.len() != batch {
            return Err(CoreError::BatchMismatch {
                what: "null-row flags",
                expected: batch,
                got: null_rows.len(),
            });
        }
        Ok(Self {
            embeddings,
            null_rows,
        })
    }

    /// `batch` unconditional (null) rows of width `cond_dim`.
    ///
    /// # Errors
    /// [`CoreError::Empty`] for zero rows or zero columns.
    pub fn unconditional(batch: usize, cond_dim: usize, device: &B::Device) -> Result<Self> {
        if batch == 0 || cond_dim == 0 {
            return Err(CoreError::Empty {
                what: "unconditional conditioning (batch and cond_dim)",
            });
        }
        Ok(Self {
            embeddings: Tensor::zeros([batch, cond_dim], device),
            null_rows: vec![true; batch],
        })
    }

    /// Number of rows.
    pub fn batch(&self) -> usize {
        self.null_rows.len()
    }

    /// Width of a query embedding.
    pub fn cond_dim(&self) -> usize {
        self.embeddings.dims()[1]
    }

    /// The query embeddings `[batch, cond_dim]` (values of null rows are meaningless).
    pub fn embeddings(&self) -> &Tensor<B, 2> {
        &self.embeddings
    }

    /// Which rows are null (unconditional).
    pub fn null_rows(&self) -> &[bool] {
        &self.null_rows
    }

    /// The null flags as a float `[batch, 1]` tensor (1 = null), for blending on the device:
    /// `effective = embeddings·(1 − mask) + null_embedding·mask`.
    pub fn null_mask(&self) -> Tensor<B, 2> {
        let values: Vec<f32> = self
            .null_rows
            .iter()
            .map(|&n| if n { 1.0 } else { 0.0 })
            .collect();
        Tensor::from_data(
            TensorData::new(values, [self.batch(), 1]),
            &self.embeddings.device(),
        )
    }

    /// The same rows, all null: the ∅ counterpart used by classifier-free guidance.
    pub fn to_null(&self) -> Self {
        Self {
            embeddings: self.embeddings.clone(),
            null_rows: vec![true; self.batch()],
        }
    }

    /// Stacks conditionings row-wise (for one batched denoiser call over several conditions).
    ///
    /// # Errors
    /// [`CoreError::Empty`] for an empty list, [`CoreError::DimMismatch`] when widths differ.
    pub fn cat(parts: &[&Self]) -> Result<Self> {
        let first = parts.first().ok_or(CoreError::Empty {
            what: "list of conditionings to concatenate",
        })?;
        for part in parts {
            if part.cond_dim() != first.cond_dim() {
                return Err(CoreError::DimMismatch {
                    what: "conditioning embedding",
                    expected: first.cond_dim(),
                    got: part.cond_dim(),
                });
            }
        }
        Ok(Self {
            embeddings: Tensor::cat(parts.iter().map(|p| p.embeddings.clone()).collect(), 0),
            null_rows: parts.iter().flat_map(|p| p.null_rows.clone()).collect(),
        })
    }

    /// This conditioning fitted to `batch` rows: unchanged when it already has `batch` rows, each
    /// row repeated `batch / self.batch()` times in place when `batch` is a multiple (so one
    /// condition per query becomes one per seed, query-major), otherwise an error.
    ///
    /// # Errors
    /// [`CoreError::BatchMismatch`] when `batch` is not a multiple of the number of rows.
    pub fn fit_batch(&self, batch: usize) -> Result<Self> {
        let rows = self.batch();
        let embeddings = repeat_rows_to(
            self.embeddings.clone(),
            batch,
            "conditioning (rows must equal the batch or divide it)",
        )?;
        let repeats = batch / rows;
        let null_rows = self
            .null_rows
            .iter()
            .flat_map(|&n| std::iter::repeat_n(n, repeats))
            .collect();
        Ok(Self {
            embeddings,
            null_rows,
        })
    }

    /// The query embeddings on the host, with `None` for null rows.
    ///
    /// # Errors
    /// [`CoreError::TensorData`] when the tensor cannot be read.
    pub fn to_host_rows(&self) -> Result<Vec<Option<Vec<f32>>>> {
        let values = to_host_f32(self.embeddings.clone())?;
        Ok(values
            .chunks(self.cond_dim())
            .zip(&self.null_rows)
            .map(|(row, &null)| (!null).then(|| row.to_vec()))
            .collect())
    }
}
