//! Catalogue preprocessing fitted on the catalogue and applied to items and seeds alike: centring,
//! per-dimension standardisation, and PCA whitening (Kessy, Lewin & Strimmer 2018, "Optimal
//! whitening and decorrelation", the PCA variant W = Λ^{-1/2} Uᵀ).
//!
//! Raw embedding spaces are often dominated by a few directions shared by every item (a common
//! offset, a handful of high-variance axes); cosine similarity there mostly measures those. Centring
//! removes the offset, standardising equalises the axes, whitening equalises every direction.

use std::fmt;
use std::str::FromStr;

use nalgebra::{DMatrix, SymmetricEigen};

use crate::vector_index::check_rows;
use crate::{IndexError, Result};

/// Which transform to fit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Preprocessing {
    /// Identity.
    #[default]
    None,
    /// x − μ.
    Centre,
    /// (x − μ) / σ per dimension (dimensions with σ = 0 are only centred).
    Standardise,
    /// Λ^{-1/2} Uᵀ (x − μ), with C = U Λ Uᵀ the catalogue covariance; `epsilon` (relative to the
    /// mean eigenvalue) is added to every eigenvalue so near-empty directions are not blown up.
    Whiten {
        /// Regularisation, as a fraction of the mean eigenvalue (e.g. 0.01).
        epsilon: f32,
    },
}

impl Preprocessing {
    /// Whitening with the default regularisation ε = 0.01.
    pub const WHITEN: Preprocessing = Preprocessing::Whiten { epsilon: 0.01 };

    /// The command-line name: `none`, `centre`, `standardise` or `whiten`.
    pub fn name(&self) -> &'static str {
        match self {
            Preprocessing::None => "none",
            Preprocessing::Centre => "centre",
            Preprocessing::Standardise => "standardise",
            Preprocessing::Whiten { .. } => "whiten",
        }
    }
}

impl fmt::Display for Preprocessing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preprocessing {
    type Err = IndexError;

    /// Parses `none`, `centre` (or `center`), `standardise` (or `standardize`, `scale`) or
    /// `whiten` (ε = 0.01).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Preprocessing::None),
            "centre" | "center" => Ok(Preprocessing::Centre),
            "standardise" | "standardize" | "scale" => Ok(Preprocessing::Standardise),
            "whiten" => Ok(Preprocessing::WHITEN),
            _ => Err(IndexError::InvalidParameter {
                name: "preprocessing",
                reason: format!("unknown `{s}`: expected none, centre, standardise or whiten"),
            }),
        }
    }
}

/// A fitted transform y = W (x − μ), with W diagonal or full.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    kind: Preprocessing,
    dim: usize,
    mean: Vec<f32>,
    /// Row-major `dim × dim` matrix W (full), or its diagonal, or empty (identity).
    weights: Weights,
}

#[derive(Debug, Clone, PartialEq)]
enum Weights {
    Identity,
    Diagonal(Vec<f32>),
    Full(Vec<f32>),
}

impl Preprocessor {
    /// Fits `kind` on the catalogue `rows` (row-major, `dim` wide).
    ///
    /// # Errors
    /// [`IndexError::Shape`] / [`IndexError::DimMismatch`] / [`IndexError::NonFinite`] for
    /// malformed rows, [`IndexError::Shape`] for an empty catalogue, and
    /// [`IndexError::InvalidParameter`] for a negative or non-finite ε.
    pub fn fit(kind: Preprocessing, rows: &[f32], dim: usize) -> Result<Self> {
        let n = check_rows(rows, dim, "catalogue")?;
        if n == 0 {
            return Err(IndexError::Shape {
                what: "catalogue",
                reason: "no rows to fit preprocessing on".into(),
            });
        }
        let mut mean = vec![0.0f64; dim];
        for row in rows.chunks(dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let weights = match kind {
            Preprocessing::None => Weights::Identity,
            Preprocessing::Centre => Weights::Identity,
            Preprocessing::Standardise => {
                let mut var = vec![0.0f64; dim];
                for row in rows.chunks(dim) {
                    for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                        *s += (f64::from(v) - m).powi(2);
                    }
                }
                Weights::Diagonal(
                    var.iter()
                        .map(|s| {
                            let sd = (s / n as f64).sqrt();
                            if sd > 0.0 {
                                (1.0 / sd) as f32
                            } else {
                                1.0
                            }
                        })
                        .collect(),
                )
            }
            Preprocessing::Whiten { epsilon } => {
                if !(epsilon.is_finite() && epsilon >= 0.0) {
                    return Err(IndexError::InvalidParameter {
                        name: "epsilon",
                        reason: format!("must be finite and ≥ 0, got {epsilon}"),
                    });
                }
                Weights::Full(pca_whitening(rows, dim, &mean, f64::from(epsilon)))
            }
        };
        let mean = if kind == Preprocessing::None {
            vec![0.0; dim]
        } else {
            mean.iter().map(|&m| m as f32).collect()
        };
        Ok(Self {
            kind,
            dim,
            mean,
            weights,
        })
    }

    /// What was fitted.
    pub fn kind(&self) -> Preprocessing {
        self.kind
    }

    /// Input (and output) width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The fitted mean μ.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Transforms rows (items or seeds), row-major.
    ///
    /// # Errors
    /// [`IndexError::DimMismatch`] / [`IndexError::NonFinite`] for malformed rows.
    pub fn apply(&self, rows: &[f32]) -> Result<Vec<f32>> {
        check_rows(rows, self.dim, "rows to preprocess")?;
        let mut out = Vec::with_capacity(rows.len());
        let mut centred = vec![0.0f32; self.dim];
        for row in rows.chunks(self.dim) {
            for ((c, &v), m) in centred.iter_mut().zip(row).zip(&self.mean) {
                *c = v - m;
            }
            match &self.weights {
                Weights::Identity => out.extend_from_slice(&centred),
                Weights::Diagonal(scale) => {
                    out.extend(centred.iter().zip(scale).map(|(c, s)| c * s));
                }
                Weights::Full(w) => out.extend(
                    w.chunks(self.dim)
                        .map(|w_row| w_row.iter().zip(&centred).map(|(a, b)| a * b).sum::<f32>()),
                ),
            }
        }
        Ok(out)
    }
}

impl Preprocessor {
    /// The first word of [`Preprocessor::to_text`].
    pub const TEXT_TAG: &'static str = "diff4steer-preprocessor-v1";

    /// The identity on `dim`-wide rows (kind [`Preprocessing::None`]).
    pub fn identity(dim: usize) -> Self {
        Self {
            kind: Preprocessing::None,
            dim,
            mean: vec![0.0; dim],
            weights: Weights::Identity,
        }
    }

    /// The fitted transform as one line of ASCII, for storing beside a remote index (a Milvus
    /// collection's description): `diff4steer-preprocessor-v1 KIND DIM MEAN WEIGHTS`, KIND being
    /// `none`, `centre`, `standardise` or `whiten:ε`, MEAN and WEIGHTS the values' IEEE-754 bits
    /// in hex (8 digits each; WEIGHTS `-` for the identity), so
    /// [`Preprocessor::from_text`] gives back exactly the same transform.
    pub fn to_text(&self) -> String {
        let kind = match self.kind {
            Preprocessing::Whiten { epsilon } => format!("whiten:{epsilon}"),
            other => other.name().to_owned(),
        };
        let hex = |values: &[f32]| -> String {
            values
                .iter()
                .map(|v| format!("{:08x}", v.to_bits()))
                .collect()
        };
        let weights = match &self.weights {
            Weights::Identity => "-".to_owned(),
            Weights::Diagonal(w) | Weights::Full(w) => hex(w),
        };
        format!(
            "{} {kind} {} {} {weights}",
            Self::TEXT_TAG,
            self.dim,
            hex(&self.mean)
        )
    }

    /// Reads what [`Preprocessor::to_text`] wrote.
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] (`preprocessor`) naming what is malformed: another tag,
    /// an unknown kind, a width that does not match the values, non-hex or non-finite values.
    pub fn from_text(text: &str) -> Result<Self> {
        let bad = |reason: String| IndexError::InvalidParameter {
            name: "preprocessor",
            reason,
        };
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        let [tag, kind, dim, mean, weights] = words[..] else {
            return Err(bad(format!(
                "expected `{} KIND DIM MEAN WEIGHTS`, got {} words",
                Self::TEXT_TAG,
                words.len()
            )));
        };
        if tag != Self::TEXT_TAG {
            return Err(bad(format!(
                "expected the tag `{}`, got `{tag}`",
                Self::TEXT_TAG
            )));
        }
        let kind = match kind.split_once(':') {
            Some(("whiten", epsilon)) => Preprocessing::Whiten {
                epsilon: epsilon
                    .parse()
                    .map_err(|_| bad(format!("whitening ε `{epsilon}` is not a number")))?,
            },
            _ => kind.parse()?,
        };
        let dim: usize = dim
            .parse()
            .ok()
            .filter(|&d| d > 0)
            .ok_or_else(|| bad(format!("width `{dim}` is not a whole number ≥ 1")))?;
        let values = |hex: &str, what: &str| -> Result<Vec<f32>> {
            if !hex.is_ascii() || !hex.len().is_multiple_of(8) {
                return Err(bad(format!("{what} is not whole 8-digit hex values")));
            }
            (0..hex.len() / 8)
                .map(|i| {
                    u32::from_str_radix(&hex[8 * i..8 * i + 8], 16)
                        .map(f32::from_bits)
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| bad(format!("{what} value {i} is not finite hex")))
                })
                .collect()
        };
        let mean = values(mean, "the mean")?;
        if mean.len() != dim {
            return Err(bad(format!("{} mean values for width {dim}", mean.len())));
        }
        let weights = match (kind, weights) {
            (Preprocessing::None | Preprocessing::Centre, "-") => Weights::Identity,
            (Preprocessing::Standardise, w) => Weights::Diagonal(values(w, "the scales")?),
            (Preprocessing::Whiten { .. }, w) => Weights::Full(values(w, "the matrix")?),
            (kind, _) => return Err(bad(format!("{kind} takes no weights"))),
        };
        let got = match &weights {
            Weights::Identity => 0,
            Weights::Diagonal(w) | Weights::Full(w) => w.len(),
        };
        let want = match &weights {
            Weights::Identity => 0,
            Weights::Diagonal(_) => dim,
            Weights::Full(_) => dim * dim,
        };
        if got != want {
            return Err(bad(format!(
                "{got} weights for width {dim}, expected {want}"
            )));
        }
        Ok(Self {
            kind,
            dim,
            mean,
            weights,
        })
    }
}

/// W = (Λ + ε·mean(Λ))^{-1/2} Uᵀ from the eigen-decomposition of the covariance (float64),
/// row-major.
fn pca_whitening(rows: &[f32], dim: usize, mean: &[f64], epsilon: f64) -> Vec<f32> {
    let n = rows.len() / dim;
    let centred = DMatrix::from_fn(n, dim, |i, j| f64::from(rows[i * dim + j]) - mean[j]);
    let covariance = (centred.transpose() * &centred) / n as f64;
    let eigen = SymmetricEigen::new(covariance);
    let floor = epsilon * eigen.eigenvalues.mean().max(0.0);
    let mut w = vec![0.0f32; dim * dim];
    for k in 0..dim {
        let lambda = eigen.eigenvalues[k].max(0.0) + floor;
        let scale = if lambda > 0.0 {
            1.0 / lambda.sqrt()
        } else {
            0.0
        };
        for j in 0..dim {
            w[k * dim + j] = (eigen.eigenvectors[(j, k)] * scale) as f32;
        }
    }
    w
}
