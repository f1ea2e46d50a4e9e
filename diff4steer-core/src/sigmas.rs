//! Noise schedules: validated σ grids that samplers walk from σ_max down to 0.

use crate::{CoreError, Result};

/// A validated noise schedule σ_0 > σ_1 > … > σ_{N−1} > σ_N = 0 (Karras et al. 2022, Eq. 5 and
/// Algorithm 1: the sampler steps from σ_i to σ_{i+1}; the final σ_N = 0 is the clean sample).
///
/// Invariants checked on construction: at least two entries, every entry finite, strictly
/// decreasing, every entry but the last positive, the last exactly 0. Values are `f64`: schedule
/// and sampler arithmetic happen on the host in double precision.
#[derive(Debug, Clone, PartialEq)]
pub struct Sigmas(Vec<f64>);

impl Sigmas {
    /// Validates a σ grid.
    ///
    /// # Errors
    /// [`CoreError::InvalidSigmas`] when any invariant above is violated.
    pub fn new(values: Vec<f64>) -> Result<Self> {
        let invalid = |reason: String| Err(CoreError::InvalidSigmas { reason });
        if values.len() < 2 {
            return invalid(format!(
                "need at least two entries (σ_max and the final 0), got {}",
                values.len()
            ));
        }
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return invalid(format!("σ[{i}] = {v} is not finite"));
        }
        for (i, pair) in values.windows(2).enumerate() {
            if pair[1] >= pair[0] {
                return invalid(format!(
                    "σ[{}] = {} is not smaller than σ[{i}] = {}: a schedule must be strictly decreasing",
                    i + 1,
                    pair[1],
                    pair[0]
                ));
            }
        }
        let last = values[values.len() - 1];
        if last != 0.0 {
            return invalid(format!("the last σ must be exactly 0, got {last}"));
        }
        Ok(Self(values))
    }

    /// Validates the positive grid σ_0 > … > σ_{N−1} and appends the final σ_N = 0.
    ///
    /// # Errors
    /// As [`Sigmas::new`].
    pub fn from_positive(mut positive: Vec<f64>) -> Result<Self> {
        positive.push(0.0);
        Self::new(positive)
    }

    /// The σ values, σ_max first, 0 last.
    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    /// The largest σ, where sampling starts (x ~ N(0, σ_max² I)).
    pub fn sigma_max(&self) -> f64 {
        self.0[0]
    }

    /// The smallest positive σ (the one before the final 0).
    pub fn sigma_min(&self) -> f64 {
        self.0[self.0.len() - 2]
    }

    /// Number of sampler steps (transitions σ_i → σ_{i+1}); one less than the number of entries.
    pub fn steps(&self) -> usize {
        self.0.len() - 1
    }

    /// The transitions (σ_i, σ_{i+1}) in sampling order.
    pub fn pairs(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.0.windows(2).map(|w| (w[0], w[1]))
    }

    /// The positive σ values in increasing order followed by nothing: the grid a probability-flow
    /// ODE walks when it runs backwards (data → noise), as inversion and likelihood do.
    pub fn ascending_positive(&self) -> Vec<f64> {
        let mut up: Vec<f64> = self.0[..self.0.len() - 1].to_vec();
        up.reverse();
        up
    }
}

fn check_range(name: &'static str, sigma_min: f64, sigma_max: f64) -> Result<()> {
    if !(sigma_min.is_finite() && sigma_min > 0.0) {
        return Err(CoreError::InvalidParameter {
            name: "sigma_min",
            value: sigma_min,
            reason: "must be finite and positive",
        });
    }
    if !(sigma_max.is_finite() && sigma_max > sigma_min) {
        return Err(CoreError::InvalidParameter {
            name,
            value: sigma_max,
            reason: "must be finite and larger than sigma_min",
        });
    }
    Ok(())
}

/// i/(n−1) for i = 0…n−1 (just 0 for n = 1): the interpolation fractions of a grid of n values.
pub(crate) fn evenly_spaced(n: usize) -> impl Iterator<Item = f64> {
    (0..n).map(move |i| {
        if n == 1 {
            0.0
        } else {
            i as f64 / (n - 1) as f64
        }
    })
}

fn check_steps(n: usize) -> Result<()> {
    if n < 1 {
        return Err(CoreError::InvalidParameter {
            name: "steps",
            value: n as f64,
            reason: "need at least one step",
        });
    }
    Ok(())
}

/// The Karras/EDM schedule (Karras et al. 2022, Eq. 5):
/// σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ for i = 0…N−1, then σ_N = 0.
/// `n` is the number of positive σ values (= sampler steps). EDM's defaults are σ_min = 0.002,
/// σ_max = 80, ρ = 7. With `n = 1` the grid is [σ_max, 0].
///
/// # Errors
/// [`CoreError::InvalidParameter`] for n = 0, σ_min ≤ 0, σ_max ≤ σ_min, ρ ≤ 0 or non-finite values.
pub fn karras(n: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Result<Sigmas> {
    check_steps(n)?;
    check_range("sigma_max", sigma_min, sigma_max)?;
    if !(rho.is_finite() && rho > 0.0) {
        return Err(CoreError::InvalidParameter {
            name: "rho",
            value: rho,
            reason: "must be finite and positive",
        });
    }
    let (lo, hi) = (sigma_min.powf(1.0 / rho), sigma_max.powf(1.0 / rho));
    let mut values: Vec<f64> = (0..n)
        .map(|i| {
            let frac = if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64
            };
            (hi + frac * (lo - hi)).powf(rho)
        })
        .collect();
    values.push(0.0);
    Sigmas::new(values)
}

/// The exponential (log-linear) schedule: ln σ_i evenly spaced from ln σ_max to ln σ_min over
/// `n` values, then σ_N = 0 (k-diffusion's `get_sigmas_exponential`; the ρ → ∞ limit of Eq. 5).
///
/// # Errors
/// [`CoreError::InvalidParameter`] for n = 0, σ_min ≤ 0, σ_max ≤ σ_min or non-finite values.
pub fn exponential(n: usize, sigma_min: f64, sigma_max: f64) -> Result<Sigmas> {
    check_steps(n)?;
    check_range("sigma_max", sigma_min, sigma_max)?;
    let (lo, hi) = (sigma_min.ln(), sigma_max.ln());
    let mut values: Vec<f64> = (0..n)
        .map(|i| {
            let frac = if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64
            };
            (hi + frac * (lo - hi)).exp()
        })
        .collect();
    values.push(0.0);
    Sigmas::new(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn karras_matches_equation_5_by_hand() {
        // n = 3, σ_min = 1, σ_max = 16, ρ = 2: √σ goes 4, 2.5, 1 → σ = 16, 6.25, 1, then 0.
        let s = karras(3, 1.0, 16.0, 2.0).unwrap();
        let expected = [16.0, 6.25, 1.0, 0.0];
        for (a, b) in s.as_slice().iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert_eq!(s.steps(), 3);
        assert_eq!(s.sigma_max(), 16.0);
        assert_eq!(s.sigma_min(), 1.0);
    }

    #[test]
    fn exponential_is_geometric() {
        let s = exponential(3, 0.01, 1.0).unwrap();
        let v = s.as_slice();
        assert!((v[0] - 1.0).abs() < 1e-12 && (v[1] - 0.1).abs() < 1e-12);
        assert!((v[2] - 0.01).abs() < 1e-12 && v[3] == 0.0);
    }

    #[test]
    fn invalid_grids_are_typed_errors() {
        for bad in [
            vec![],
            vec![0.0],
            vec![1.0, 2.0, 0.0],
            vec![1.0, 1.0, 0.0],
            vec![1.0, 0.5],
            vec![f64::NAN, 0.0],
            vec![f64::INFINITY, 1.0, 0.0],
            vec![1.0, -0.5, 0.0],
        ] {
            assert!(
                matches!(
                    Sigmas::new(bad.clone()),
                    Err(CoreError::InvalidSigmas { .. })
                ),
                "{bad:?} was accepted"
            );
        }
        assert!(karras(0, 0.002, 80.0, 7.0).is_err());
        assert!(karras(10, 0.0, 80.0, 7.0).is_err());
        assert!(karras(10, 1.0, 0.5, 7.0).is_err());
        assert!(karras(10, 0.002, 80.0, f64::NAN).is_err());
        assert!(exponential(10, -1.0, 80.0).is_err());
    }
}
