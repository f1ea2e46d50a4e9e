//! Diffusion schemes with a time variable t, a noise level σ(t) and a scale s(t)
//! (Karras et al. 2022, Table 1): x(t) = s(t)·(x₀ + σ(t)·ε).
//!
//! The samplers in `diff4steer-models` work in the σ parametrisation (s = 1, σ(t) = t), which is
//! EDM's recommended choice; these schemes provide the original VP and VE time discretisations and
//! scalings, both as plain σ grids ([`DiffusionScheme::sigmas`]) and as the (t, σ, s) triples that
//! the general scaled ODE solver (EDM Algorithm 1) needs.

use crate::sigmas::evenly_spaced;
use crate::{CoreError, Result, Sigmas};

/// A diffusion scheme of Karras et al. 2022, Table 1: σ(t), s(t) and their time discretisation.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum DiffusionScheme {
    /// Variance preserving (DDPM++ / Song et al. 2021): σ(t) = √(exp(½β_d t² + β_min t) − 1),
    /// s(t) = 1/√(exp(½β_d t² + β_min t)), t_i = 1 + i/(N−1)·(ε_s − 1).
    VariancePreserving {
        /// β_d (Table 1 default 19.9).
        beta_d: f64,
        /// β_min (Table 1 default 0.1).
        beta_min: f64,
        /// ε_s, the last time step (Table 1 default 10⁻³).
        eps_s: f64,
    },
    /// Variance exploding (NCSN++): σ(t) = √t, s(t) = 1,
    /// t_i = σ_max²·(σ_min²/σ_max²)^{i/(N−1)}.
    VarianceExploding {
        /// σ_min (Table 1 default 0.02).
        sigma_min: f64,
        /// σ_max (Table 1 default 100).
        sigma_max: f64,
    },
}

impl DiffusionScheme {
    /// The VP scheme with Table 1's defaults (β_d = 19.9, β_min = 0.1, ε_s = 10⁻³).
    pub fn vp() -> Self {
        Self::VariancePreserving {
            beta_d: 19.9,
            beta_min: 0.1,
            eps_s: 1e-3,
        }
    }

    /// The VE scheme with Table 1's defaults (σ_min = 0.02, σ_max = 100).
    pub fn ve() -> Self {
        Self::VarianceExploding {
            sigma_min: 0.02,
            sigma_max: 100.0,
        }
    }

    fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(CoreError::InvalidParameter {
                    name,
                    value,
                    reason: "must be finite and positive",
                })
            }
        };
        match *self {
            Self::VariancePreserving {
                beta_d,
                beta_min,
                eps_s,
            } => {
                positive("beta_d", beta_d)?;
                positive("beta_min", beta_min)?;
                positive("eps_s", eps_s)?;
                if eps_s >= 1.0 {
                    return Err(CoreError::InvalidParameter {
                        name: "eps_s",
                        value: eps_s,
                        reason: "must be smaller than 1",
                    });
                }
            }
            Self::VarianceExploding {
                sigma_min,
                sigma_max,
            } => {
                positive("sigma_min", sigma_min)?;
                positive("sigma_max", sigma_max)?;
                if sigma_max <= sigma_min {
                    return Err(CoreError::InvalidParameter {
                        name: "sigma_max",
                        value: sigma_max,
                        reason: "must be larger than sigma_min",
                    });
                }
            }
        }
        Ok(())
    }

    /// σ(t).
    pub fn sigma(&self, t: f64) -> f64 {
        match *self {
            Self::VariancePreserving {
                beta_d, beta_min, ..
            } => (0.5 * beta_d * t * t + beta_min * t).exp_m1().sqrt(),
            Self::VarianceExploding { .. } => t.sqrt(),
        }
    }

    /// dσ/dt.
    pub fn sigma_deriv(&self, t: f64) -> f64 {
        match *self {
            Self::VariancePreserving {
                beta_d, beta_min, ..
            } => {
                let e = (0.5 * beta_d * t * t + beta_min * t).exp();
                0.5 * (beta_d * t + beta_min) * e / (e - 1.0).sqrt()
            }
            Self::VarianceExploding { .. } => 0.5 / t.sqrt(),
        }
    }

    /// s(t).
    pub fn scale(&self, t: f64) -> f64 {
        match *self {
            Self::VariancePreserving {
                beta_d, beta_min, ..
            } => (-0.5 * (0.5 * beta_d * t * t + beta_min * t)).exp(),
            Self::VarianceExploding { .. } => 1.0,
        }
    }

    /// ds/dt.
    pub fn scale_deriv(&self, t: f64) -> f64 {
        match *self {
            Self::VariancePreserving {
                beta_d, beta_min, ..
            } => -0.5 * (beta_d * t + beta_min) * self.scale(t),
            Self::VarianceExploding { .. } => 0.0,
        }
    }

    /// The N time steps t_0 > … > t_{N−1} of Table 1 (before the final t_N = 0).
    ///
    /// # Errors
    /// [`CoreError::InvalidParameter`] for `n < 2` or invalid scheme parameters.
    pub fn time_steps(&self, n: usize) -> Result<Vec<f64>> {
        self.validate()?;
        if n < 2 {
            return Err(CoreError::InvalidParameter {
                name: "steps",
                value: n as f64,
                reason: "a scheme's time discretisation needs at least two steps",
            });
        }
        Ok(match *self {
            Self::VariancePreserving { eps_s, .. } => evenly_spaced(n)
                .map(|frac| 1.0 + frac * (eps_s - 1.0))
                .collect(),
            Self::VarianceExploding {
                sigma_min,
                sigma_max,
            } => evenly_spaced(n)
                .map(|frac| sigma_max.powi(2) * (sigma_min.powi(2) / sigma_max.powi(2)).powf(frac))
                .collect(),
        })
    }

    /// The σ grid σ(t_0) > … > σ(t_{N−1}) > 0 of this scheme, for the σ-parametrised samplers.
    ///
    /// # Errors
    /// As [`DiffusionScheme::time_steps`].
    pub fn sigmas(&self, n: usize) -> Result<Sigmas> {
        let mut values: Vec<f64> = self
            .time_steps(n)?
            .into_iter()
            .map(|t| self.sigma(t))
            .collect();
        values.push(0.0);
        Sigmas::new(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp_scale_is_one_over_sqrt_one_plus_sigma_squared() {
        let vp = DiffusionScheme::vp();
        for t in [1e-3, 0.1, 0.5, 1.0] {
            let (s, sigma) = (vp.scale(t), vp.sigma(t));
            assert!((s - 1.0 / (1.0 + sigma * sigma).sqrt()).abs() < 1e-12);
        }
        // Table 1: σ(1) for the VP defaults is about 152.
        assert!((vp.sigma(1.0) - 152.0).abs() < 1.0, "{}", vp.sigma(1.0));
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for scheme in [DiffusionScheme::vp(), DiffusionScheme::ve()] {
            for t in [0.05, 0.3, 0.9] {
                let h = 1e-6;
                let ds = (scheme.sigma(t + h) - scheme.sigma(t - h)) / (2.0 * h);
                let dscale = (scheme.scale(t + h) - scheme.scale(t - h)) / (2.0 * h);
                assert!((ds - scheme.sigma_deriv(t)).abs() < 1e-5 * ds.abs().max(1.0));
                assert!((dscale - scheme.scale_deriv(t)).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn ve_grid_is_geometric_from_sigma_max_to_sigma_min() {
        let s = DiffusionScheme::ve().sigmas(5).unwrap();
        let v = s.as_slice();
        assert!((v[0] - 100.0).abs() < 1e-9 && (v[4] - 0.02).abs() < 1e-12 && v[5] == 0.0);
        assert!((v[1] / v[0] - v[2] / v[1]).abs() < 1e-12);
        assert!(DiffusionScheme::ve().sigmas(1).is_err());
        let bad = DiffusionScheme::VarianceExploding {
            sigma_min: 1.0,
            sigma_max: 0.5,
        };
        assert!(bad.sigmas(10).is_err());
    }
}
