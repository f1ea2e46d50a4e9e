//! Covariance spectra for the synthetic catalogue.

use crate::{EvalError, Result};

/// The shape of the catalogue's covariance eigenvalues (descending), whatever the dimension.
#[derive(Debug, Clone, PartialEq)]
pub enum Spectrum {
    /// All directions equal (isotropic).
    Flat,
    /// λ_i ∝ i^(−alpha), i = 1…dim.
    PowerLaw {
        /// Decay exponent (≥ 0).
        alpha: f64,
    },
    /// Fitted to the MuQ-MuLan music space of `../shared/data/muq-mulan-prior` (20,000 Music4All
    /// audio embeddings, 512-d): λ_i ∝ (i + 0.653)^(−0.409) · exp(−i / 16.16). At 512-d, 7, 19,
    /// 28, 38 and 61 components hold 50, 80, 90, 95 and 99 % of the variance (the data: 7, 19, 28,
    /// 37, 57) and the participation ratio is 19.3 (data 19.2).
    MuqMulan,
    /// Given eigenvalues (their count must equal the dimension).
    Explicit(Vec<f64>),
}

impl Spectrum {
    /// The eigenvalues for `dim` dimensions, descending, summing to 1.
    ///
    /// # Errors
    /// [`EvalError::InvalidParameter`] for a negative or non-finite exponent, or explicit values
    /// of another count, negative, non-finite or all zero.
    pub fn eigenvalues(&self, dim: usize) -> Result<Vec<f64>> {
        let invalid = |reason: String| EvalError::InvalidParameter {
            name: "spectrum",
            reason,
        };
        let raw: Vec<f64> = match self {
            Spectrum::Flat => vec![1.0; dim],
            Spectrum::PowerLaw { alpha } => {
                if !(alpha.is_finite() && *alpha >= 0.0) {
                    return Err(invalid(format!("exponent {alpha} must be finite and ≥ 0")));
                }
                (1..=dim).map(|i| (i as f64).powf(-alpha)).collect()
            }
            Spectrum::MuqMulan => (1..=dim)
                .map(|i| (i as f64 + 0.653).powf(-0.409) * (-(i as f64) / 16.16).exp())
                .collect(),
            Spectrum::Explicit(values) => {
                if values.len() != dim {
                    return Err(invalid(format!(
                        "{} values for dimension {dim}",
                        values.len()
                    )));
                }
                if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
                    return Err(invalid("values must be finite and ≥ 0".into()));
                }
                let mut sorted = values.clone();
                sorted.sort_by(|a, b| b.total_cmp(a));
                sorted
            }
        };
        let total: f64 = raw.iter().sum();
        if total <= 0.0 {
            return Err(invalid("all eigenvalues are zero".into()));
        }
        Ok(raw.iter().map(|v| v / total).collect())
    }
}
