//! The map between a model's own target space and the catalogue's units.
//!
//! A prior trained on standardised targets u = (z − μ)/s (per dimension, statistics of the
//! training targets) denoises in u-space, where EDM's preconditioning assumes unit-scale data
//! (Karras et al. 2022, §5 and Appendix B.6: σ_data). Its samples are mapped back with
//! z = μ + s ⊙ u, so the seeds a user receives are in catalogue units, and steering embeddings
//! given in catalogue units are mapped into u-space before they steer.

use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::{CoreError, Result};

/// Smallest standard deviation [`TargetScaling::standardising`] divides by: a constant column
/// keeps scale 1 instead of dividing by zero.
pub const MIN_SCALE: f32 = 1e-6;

/// Per-dimension affine map, catalogue = shift + scale ⊙ model (and model = (catalogue −
/// shift) / scale), with every scale finite and positive.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetScaling {
    shift: Vec<f32>,
    scale: Vec<f32>,
}

impl TargetScaling {
    /// The map with these per-dimension shifts and scales.
    ///
    /// # Errors
    /// [`CoreError::Empty`] for no dimension, [`CoreError::DimMismatch`] when the lengths differ,
    /// [`CoreError::NonFinite`] for NaN/±Inf, [`CoreError::InvalidParameter`] for a scale ≤ 0.
    pub fn new(shift: Vec<f32>, scale: Vec<f32>) -> Result<Self> {
        if shift.is_empty() {
            return Err(CoreError::Empty {
                what: "target scaling",
            });
        }
        if shift.len() != scale.len() {
            return Err(CoreError::DimMismatch {
                what: "target scaling (scale beside shift)",
                expected: shift.len(),
                got: scale.len(),
            });
        }
        if shift.iter().chain(&scale).any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite {
                what: "target scaling",
            });
        }
        if let Some(&bad) = scale.iter().find(|&&s| s <= 0.0) {
            return Err(CoreError::InvalidParameter {
                name: "target scale",
                value: f64::from(bad),
                reason: "every scale must be positive",
            });
        }
        Ok(Self { shift, scale })
    }

    /// The standardising map of `rows` (row-major, `dim` wide): shift = column mean, scale =
    /// column standard deviation (population; [`MIN_SCALE`] at least, 1 for a constant column),
    /// both accumulated in f64.
    ///
    /// # Errors
    /// [`CoreError::Empty`] for no rows or `dim` = 0, [`CoreError::DimMismatch`] when `rows` is not
    /// a whole number of rows, [`CoreError::NonFinite`] for NaN/±Inf.
    pub fn standardising(rows: &[f32], dim: usize) -> Result<Self> {
        if dim == 0 || rows.is_empty() {
            return Err(CoreError::Empty {
                what: "targets to standardise",
            });
        }
        if !rows.len().is_multiple_of(dim) {
            return Err(CoreError::DimMismatch {
                what: "targets to standardise (whole rows)",
                expected: dim,
                got: rows.len() % dim,
            });
        }
        if rows.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite {
                what: "targets to standardise",
            });
        }
        let n = (rows.len() / dim) as f64;
        let mut mean = vec![0.0f64; dim];
        for row in rows.chunks_exact(dim) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, &v)| *m += f64::from(v));
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; dim];
        for row in rows.chunks_exact(dim) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (f64::from(v) - m).powi(2);
            }
        }
        let scale = var
            .iter()
            .map(|s| {
                let sd = (s / n).sqrt() as f32;
                if sd > MIN_SCALE {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Self::new(mean.into_iter().map(|m| m as f32).collect(), scale)
    }

    /// Width of the target space.
    pub fn dim(&self) -> usize {
        self.shift.len()
    }

    /// The per-dimension shift μ.
    pub fn shift(&self) -> &[f32] {
        &self.shift
    }

    /// The per-dimension scale s.
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }

    /// Σ log s: the log-determinant of the catalogue-from-model Jacobian, so that
    /// log p_catalogue(z) = log p_model(u) − Σ log s.
    pub fn log_det(&self) -> f64 {
        self.scale.iter().map(|&s| f64::from(s).ln()).sum()
    }

    fn check_rows(&self, len: usize) -> Result<()> {
        if len.is_multiple_of(self.dim()) {
            Ok(())
        } else {
            Err(CoreError::DimMismatch {
                what: "rows to rescale",
                expected: self.dim(),
                got: len % self.dim(),
            })
        }
    }

    /// Maps row-major catalogue rows into model units in place: u = (z − μ)/s.
    ///
    /// # Errors
    /// [`CoreError::DimMismatch`] when `rows` is not a whole number of rows.
    pub fn to_model_host(&self, rows: &mut [f32]) -> Result<()> {
        self.check_rows(rows.len())?;
        for row in rows.chunks_exact_mut(self.dim()) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.shift).zip(&self.scale) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }

    /// Maps row-major model rows into catalogue units in place: z = μ + s ⊙ u.
    ///
    /// # Errors
    /// [`CoreError::DimMismatch`] when `rows` is not a whole number of rows.
    pub fn to_catalogue_host(&self, rows: &mut [f32]) -> Result<()> {
        self.check_rows(rows.len())?;
        for row in rows.chunks_exact_mut(self.dim()) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.shift).zip(&self.scale) {
                *v = m + s * *v;
            }
        }
        Ok(())
    }

    fn row_tensors<B: Backend>(&self, device: &B::Device) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let row = |v: &[f32]| {
            Tensor::<B, 2>::from_data(TensorData::new(v.to_vec(), [1, self.dim()]), device)
        };
        (row(&self.shift), row(&self.scale))
    }

    fn check_tensor<B: Backend>(&self, x: &Tensor<B, 2>) -> Result<()> {
        let got = x.dims()[1];
        if got == self.dim() {
            Ok(())
        } else {
            Err(CoreError::DimMismatch {
                what: "rows to rescale",
                expected: self.dim(),
                got,
            })
        }
    }

    /// u = (z − μ)/s for a `[rows, dim]` tensor in catalogue units.
    ///
    /// # Errors
    /// [`CoreError::DimMismatch`] for another width.
    pub fn to_model<B: Backend>(&self, z: Tensor<B, 2>) -> Result<Tensor<B, 2>> {
        self.check_tensor(&z)?;
        let (shift, scale) = self.row_tensors::<B>(&z.device());
        Ok((z - shift) / scale)
    }

    /// z = μ + s ⊙ u for a `[rows, dim]` tensor in model units.
    ///
    /// # Errors
    /// [`CoreError::DimMismatch`] for another width.
    pub fn to_catalogue<B: Backend>(&self, u: Tensor<B, 2>) -> Result<Tensor<B, 2>> {
        self.check_tensor(&u)?;
        let (shift, scale) = self.row_tensors::<B>(&u.device());
        Ok(u * scale + shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardising_gives_zero_mean_unit_std_and_round_trips() {
        // Columns: mean 2 / std 1 (values 1, 3), mean −10 / std 5 (values −15, −5), constant 7.
        let rows = [1.0f32, -15.0, 7.0, 3.0, -5.0, 7.0];
        let map = TargetScaling::standardising(&rows, 3).unwrap();
        assert_eq!(map.shift(), &[2.0, -10.0, 7.0]);
        assert_eq!(map.scale(), &[1.0, 5.0, 1.0]);
        let mut u = rows;
        map.to_model_host(&mut u).unwrap();
        assert_eq!(u, [-1.0, -1.0, 0.0, 1.0, 1.0, 0.0]);
        map.to_catalogue_host(&mut u).unwrap();
        assert_eq!(u, rows);
        assert!((map.log_det() - 5f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn bad_maps_and_rows_are_typed_errors() {
        assert!(matches!(
            TargetScaling::new(vec![], vec![]),
            Err(CoreError::Empty { .. })
        ));
        assert!(matches!(
            TargetScaling::new(vec![0.0], vec![1.0, 2.0]),
            Err(CoreError::DimMismatch { .. })
        ));
        assert!(matches!(
            TargetScaling::new(vec![0.0], vec![0.0]),
            Err(CoreError::InvalidParameter { .. })
        ));
        assert!(matches!(
            TargetScaling::new(vec![f32::NAN], vec![1.0]),
            Err(CoreError::NonFinite { .. })
        ));
        assert!(matches!(
            TargetScaling::standardising(&[1.0, 2.0, 3.0], 2),
            Err(CoreError::DimMismatch { .. })
        ));
        let map = TargetScaling::new(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
        assert!(map.to_model_host(&mut [1.0, 2.0, 3.0]).is_err());
    }
}
