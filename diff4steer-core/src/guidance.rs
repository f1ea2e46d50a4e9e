//! Guidance as a denoiser transform: classifier-free guidance, negative (contrastive) conditions and
//! weighted compositions of several conditions, all one affine combination of denoised estimates.

use burn::tensor::{backend::Backend, Tensor};

use crate::denoiser::check_denoiser_inputs;
use crate::{Conditioning, CoreError, Denoiser, Result};

/// Which condition a guidance term evaluates the inner denoiser under.
#[derive(Debug, Clone)]
pub enum GuidanceCondition<B: Backend> {
    /// The condition the sampler passes in (the user's query, row by row).
    Given,
    /// The null condition ∅ (unconditional).
    Null,
    /// A fixed condition held by the wrapper, e.g. a negative prompt or a second query. It has one
    /// row per sample, or a number of rows that divides the batch (one per query, repeated
    /// query-major; a single row serves every sample).
    Fixed(Conditioning<B>),
}

/// One term a_j·D(x, σ, c_j) of a [`LinearGuidance`].
#[derive(Debug, Clone)]
pub struct GuidanceTerm<B: Backend> {
    /// The condition c_j.
    pub condition: GuidanceCondition<B>,
    /// The coefficient a_j.
    pub weight: f64,
}

/// Guidance as an affine combination of denoised estimates (Ho & Salimans 2022, Eq. 6, written for
/// denoisers as in k-diffusion and swirl-dynamics):
///
/// D̃(x, σ, c) = Σ_j a_j·D(x, σ, c_j), with Σ_j a_j = 1.
///
/// The coefficients sum to one so that D̃ stays an estimate of x₀ (a constant offset in D would
/// otherwise survive σ → 0). Special cases, each with its own constructor:
/// - classifier-free guidance, [`LinearGuidance::classifier_free`]:
///   D̃ = (1 + w)·D(x, σ, c) − w·D(x, σ, ∅);
/// - a negative / contrastive condition, [`LinearGuidance::contrastive`]:
///   D̃ = (1 + w)·D(x, σ, c) − w·D(x, σ, c_neg);
/// - several weighted conditions, [`LinearGuidance::composed`]:
///   D̃ = D(x, σ, ∅) + Σ_j w_j·(D(x, σ, c_j) − D(x, σ, ∅)) (negative w_j push away).
///
/// All terms are evaluated in **one** batched call of the inner denoiser (rows stacked
/// term-major), which is what makes guidance cheap on wide hardware.
#[derive(Debug, Clone)]
pub struct LinearGuidance<B: Backend, D> {
    inner: D,
    terms: Vec<GuidanceTerm<B>>,
}

impl<B: Backend, D: Denoiser<B>> LinearGuidance<B, D> {
    /// A guided denoiser from explicit terms.
    ///
    /// # Errors
    /// [`CoreError::Empty`] for no terms; [`CoreError::InvalidParameter`] when a weight is not
    /// finite or the weights do not sum to 1 (within 1e-9); [`CoreError::DimMismatch`] when a fixed
    /// condition's width differs from the inner denoiser's `cond_dim`.
    pub fn new(inner: D, terms: Vec<GuidanceTerm<B>>) -> Result<Self> {
        if terms.is_empty() {
            return Err(CoreError::Empty {
                what: "guidance terms",
            });
        }
        for term in &terms {
            if !term.weight.is_finite() {
                return Err(CoreError::InvalidParameter {
                    name: "guidance weight",
                    value: term.weight,
                    reason: "must be finite",
                });
            }
            if let GuidanceCondition::Fixed(c) = &term.condition {
                if c.cond_dim() != inner.cond_dim() {
                    return Err(CoreError::DimMismatch {
                        what: "guidance condition embedding",
                        expected: inner.cond_dim(),
                        got: c.cond_dim(),
                    });
                }
            }
        }
        let total: f64 = terms.iter().map(|t| t.weight).sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(CoreError::InvalidParameter {
                name: "sum of guidance weights",
                value: total,
                reason: "must be 1 so that the guided estimate stays an estimate of x₀",
            });
        }
        Ok(Self { inner, terms })
    }

    /// Classifier-free guidance with strength `w` ≥ 0: D̃ = (1 + w)·D(x, σ, c) − w·D(x, σ, ∅).
    /// `w = 0` is plain conditional sampling; larger `w` trades diversity for fidelity to `c`.
    ///
    /// # Errors
    /// [`CoreError::InvalidParameter`] for a negative or non-finite `w`.
    pub fn classifier_free(inner: D, guidance_strength: f64) -> Result<Self> {
        check_strength(guidance_strength)?;
        Self::new(
            inner,
            vec![
                term(GuidanceCondition::Given, 1.0 + guidance_strength),
                term(GuidanceCondition::Null, -guidance_strength),
            ],
        )
    }

    /// A negative condition with strength `w` ≥ 0: D̃ = (1 + w)·D(x, σ, c) − w·D(x, σ, c_neg).
    ///
    /// # Errors
    /// As [`LinearGuidance::new`], and [`CoreError::InvalidParameter`] for a negative `w`.
    pub fn contrastive(
        inner: D,
        negative: Conditioning<B>,
        guidance_strength: f64,
    ) -> Result<Self> {
        check_strength(guidance_strength)?;
        Self::new(
            inner,
            vec![
                term(GuidanceCondition::Given, 1.0 + guidance_strength),
                term(GuidanceCondition::Fixed(negative), -guidance_strength),
            ],
        )
    }

    /// Several weighted conditions around the unconditional estimate:
    /// D̃ = D(x, σ, ∅) + Σ_j w_j·(D(x, σ, c_j) − D(x, σ, ∅)). Use [`GuidanceCondition::Given`]
    /// for the sampler's own condition, [`GuidanceCondition::Fixed`] for others (an image query,
    /// a text query, a negative with w_j < 0).
    ///
    /// # Errors
    /// As [`LinearGuidance::new`].
    pub fn composed(inner: D, conditions: Vec<(GuidanceCondition<B>, f64)>) -> Result<Self> {
        let null_weight = 1.0 - conditions.iter().map(|(_, w)| w).sum::<f64>();
        let mut terms: Vec<GuidanceTerm<B>> = conditions
            .into_iter()
            .map(|(condition, weight)| term(condition, weight))
            .collect();
        if null_weight != 0.0 {
            terms.push(term(GuidanceCondition::Null, null_weight));
        }
        Self::new(inner, terms)
    }

    /// The wrapped denoiser.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The terms (conditions and coefficients).
    pub fn terms(&self) -> &[GuidanceTerm<B>] {
        &self.terms
    }
}

fn term<B: Backend>(condition: GuidanceCondition<B>, weight: f64) -> GuidanceTerm<B> {
    GuidanceTerm { condition, weight }
}

fn check_strength(w: f64) -> Result<()> {
    if w.is_finite() && w >= 0.0 {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter {
            name: "guidance_strength",
            value: w,
            reason: "must be finite and non-negative",
        })
    }
}

impl<B: Backend, D: Denoiser<B>> Denoiser<B> for LinearGuidance<B, D> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn cond_dim(&self) -> usize {
        self.inner.cond_dim()
    }

    fn target_scaling(&self) -> Option<&crate::TargetScaling> {
        self.inner.target_scaling()
    }

    fn denoise(
        &self,
        x: Tensor<B, 2>,
        sigma: Tensor<B, 1>,
        cond: &Conditioning<B>,
    ) -> Result<Tensor<B, 2>> {
        check_denoiser_inputs(self, &x, &sigma, cond)?;
        let batch = x.dims()[0];
        let n_terms = self.terms.len();
        if n_terms == 1 && matches!(self.terms[0].condition, GuidanceCondition::Given) {
            return self.inner.denoise(x, sigma, cond);
        }
        let conditions = self
            .terms
            .iter()
            .map(|t| match &t.condition {
                GuidanceCondition::Given => Ok(cond.clone()),
                GuidanceCondition::Null => Ok(cond.to_null()),
                GuidanceCondition::Fixed(c) => c.fit_batch(batch),
            })
            .collect::<Result<Vec<_>>>()?;
        let stacked_cond = Conditioning::cat(&conditions.iter().collect::<Vec<_>>())?;
        let stacked_x = Tensor::cat(vec![x; n_terms], 0);
        let stacked_sigma = Tensor::cat(vec![sigma; n_terms], 0);
        let denoised = self
            .inner
            .denoise(stacked_x, stacked_sigma, &stacked_cond)?;
        let parts = denoised.chunk(n_terms, 0);
        Ok(parts
            .into_iter()
            .zip(&self.terms)
            .map(|(part, t)| part.mul_scalar(t.weight))
            .reduce(|a, b| a + b)
            .expect("at least one guidance term (checked in LinearGuidance::new)"))
    }
}
