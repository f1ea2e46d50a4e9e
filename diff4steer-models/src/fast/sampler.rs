//! [`FastSampler`]: whole sampling trajectories on the host over a [`FastPrior`], with
//! classifier-free guidance, for the real-time query path.

use diff4steer_core::{CoreError, SeededNoise, Sigmas};

use super::guidance::{GuidedBatch, HostGuidance};
use super::prior::{FastPrior, FastScratch};
use crate::{ModelError, Result, SamplerKind};

/// The deterministic samplers of [`crate::Sampler`] (Euler, Heun = EDM Algorithm 1,
/// DPM-Solver++(2M), Lu et al. 2022 Algorithm 2) with classifier-free guidance
/// D̃ = (1 + w)·D(x, σ, q) − w·D(x, σ, ∅) (Ho & Salimans 2022, Eq. 6), run on host buffers.
///
/// It draws the same starting noise as [`crate::PriorSeeds`] (stream q·k + j of `seed` for seed j
/// of query q, scaled by σ_max) and performs the same f32 arithmetic, so its seeds equal those of
/// `PriorSeeds::new(LinearGuidance::classifier_free(prior, w), Sampler::new(kind, sigmas))` up to
/// rounding (tests/fast_prior.rs). Per network evaluation the conditional and null rows of every
/// query go through the network as one batch; the buffers are reused across steps.
#[derive(Debug, Clone, PartialEq)]
pub struct FastSampler {
    kind: SamplerKind,
    sigmas: Sigmas,
    guidance_strength: f64,
    final_denoise: bool,
}

impl FastSampler {
    /// A sampler of `kind` over `sigmas` with guidance strength `w` (0 = no guidance: the null
    /// rows are skipped), final denoise on.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for a stochastic kind (`edm`, `sde`: use [`crate::Sampler`]
    /// over the [`FastPrior`] as a denoiser), [`ModelError::Core`] for a negative or non-finite `w`.
    pub fn new(kind: SamplerKind, sigmas: Sigmas, guidance_strength: f64) -> Result<Self> {
        if !matches!(
            kind,
            SamplerKind::Euler | SamplerKind::Heun | SamplerKind::DpmSolverPlusPlus2M
        ) {
            return Err(ModelError::InvalidConfig {
                field: "sampler",
                reason: format!(
                    "the host sampler runs euler, heun and dpmpp2m, not `{kind}` \
                     (use Sampler over FastPrior for stochastic samplers)"
                ),
            });
        }
        if !(guidance_strength.is_finite() && guidance_strength >= 0.0) {
            return Err(CoreError::InvalidParameter {
                name: "guidance_strength",
                value: guidance_strength,
                reason: "must be finite and non-negative",
            }
            .into());
        }
        Ok(Self {
            kind,
            sigmas,
            guidance_strength,
            final_denoise: true,
        })
    }

    /// Turns the final denoise at σ_min on or off.
    pub fn with_final_denoise(mut self, final_denoise: bool) -> Self {
        self.final_denoise = final_denoise;
        self
    }

    /// Network evaluations per trajectory.
    pub fn evaluations(&self) -> usize {
        let steps = self.sigmas.steps();
        let evaluations = self.kind.evaluations(steps);
        if self.final_denoise {
            evaluations
        } else {
            evaluations - 1
        }
    }

    /// The distinct σ at which a trajectory over `pairs` evaluates the network, in order.
    fn evaluated_sigmas(&self, pairs: &[(f64, f64)]) -> Vec<f64> {
        let (body, last) = pairs.split_at(pairs.len() - 1);
        let mut grid: Vec<f64> = Vec::with_capacity(pairs.len() + 1);
        let mut push = |sigma: f64| {
            if !grid.contains(&sigma) {
                grid.push(sigma);
            }
        };
        for &(sigma, sigma_next) in body {
            push(sigma);
            if self.kind == SamplerKind::Heun {
                push(sigma_next);
            }
        }
        if self.final_denoise {
            push(last[0].0);
        }
        grid
    }

    /// `seeds_per_query` samples for each row of `queries` (`[n, query_dim]` row-major); returns
    /// `[n·seeds_per_query, target_dim]`, query-major. The same `seed` gives the same seeds.
    ///
    /// # Errors
    /// [`CoreError::InvalidParameter`] for zero seeds, [`CoreError::Empty`] for no queries,
    /// [`CoreError::DimMismatch`] when `queries` is not a whole number of `query_dim` rows,
    /// [`CoreError::NonFinite`] for NaN/±Inf in a query.
    pub fn sample(
        &self,
        prior: &FastPrior,
        queries: &[f32],
        seeds_per_query: usize,
        seed: u64,
        scratch: &mut FastScratch,
    ) -> Result<Vec<f32>> {
        let guidance = HostGuidance::classifier_free(self.guidance_strength)?;
        self.sample_guided(prior, queries, seeds_per_query, seed, &guidance, scratch)
    }

    /// As [`FastSampler::sample`] under `guidance` (linear guidance terms such as a negative
    /// condition, and steering) in place of the sampler's own classifier-free strength.
    ///
    /// # Errors
    /// As [`FastSampler::sample`], and those of binding `guidance` to the queries (a fixed
    /// condition or steering embedding with neither one row nor one per query).
    pub fn sample_guided(
        &self,
        prior: &FastPrior,
        queries: &[f32],
        seeds_per_query: usize,
        seed: u64,
        guidance: &HostGuidance,
        scratch: &mut FastScratch,
    ) -> Result<Vec<f32>> {
        let n = check_queries(queries, prior.query_dim(), seeds_per_query)?;
        // Counted as one call for the whole trajectory (see `FastPrior`'s concurrent callers).
        let _call = prior.enter_call();
        let rows = n * seeds_per_query;
        let dim = prior.target_dim();
        let sigma_max = self.sigmas.sigma_max() as f32;
        let mut x = SeededNoise::new(seed).normal_host(rows, dim);
        x.iter_mut().for_each(|v| *v *= sigma_max);

        let pairs: Vec<(f64, f64)> = self.sigmas.pairs().collect();
        let mut model = GuidedBatch::new(
            prior,
            guidance,
            queries,
            (n, seeds_per_query),
            &self.evaluated_sigmas(&pairs),
            scratch,
        )?;
        let (body, last) = pairs.split_at(pairs.len() - 1);
        let mut previous: Option<(f64, Vec<f32>)> = None;
        let mut x_next = vec![0.0f32; rows * dim];
        let mut derivative = vec![0.0f32; rows * dim];
        for &(sigma, sigma_next) in body {
            match self.kind {
                SamplerKind::Euler => {
                    let denoised = model.denoise(&x, sigma, scratch);
                    let dt = (sigma_next - sigma) as f32;
                    let s = sigma as f32;
                    for ((xn, &xv), &d) in x_next.iter_mut().zip(&x).zip(denoised) {
                        *xn = xv + ((xv - d) / s) * dt;
                    }
                }
                SamplerKind::Heun => {
                    let s = sigma as f32;
                    let dt = (sigma_next - sigma) as f32;
                    let denoised = model.denoise(&x, sigma, scratch);
                    for ((dv, &xv), &d) in derivative.iter_mut().zip(&x).zip(denoised) {
                        *dv = (xv - d) / s;
                    }
                    for ((xe, &xv), &d) in x_next.iter_mut().zip(&x).zip(&derivative) {
                        *xe = xv + d * dt;
                    }
                    let s_next = sigma_next as f32;
                    let half_dt = (0.5 * (sigma_next - sigma)) as f32;
                    let denoised = model.denoise(&x_next, sigma_next, scratch);
                    for (((xn, &xv), &d), &den) in
                        x_next.iter_mut().zip(&x).zip(&derivative).zip(denoised)
                    {
                        let d_next = (*xn - den) / s_next;
                        *xn = xv + (d + d_next) * half_dt;
                    }
                }
                SamplerKind::DpmSolverPlusPlus2M => {
                    let denoised = model.denoise(&x, sigma, scratch).to_vec();
                    let h = sigma.ln() - sigma_next.ln();
                    let ratio = (sigma_next / sigma) as f32;
                    let factor = (-h).exp_m1() as f32;
                    let coefficients = previous.as_ref().map(|(sigma_prev, _)| {
                        let r = (sigma_prev.ln() - sigma.ln()) / h;
                        ((1.0 + 1.0 / (2.0 * r)) as f32, (1.0 / (2.0 * r)) as f32)
                    });
                    for (i, (xn, &xv)) in x_next.iter_mut().zip(&x).enumerate() {
                        let combined = match (&previous, coefficients) {
                            (Some((_, prev)), Some((a, b))) => denoised[i] * a - prev[i] * b,
                            _ => denoised[i],
                        };
                        *xn = xv * ratio - combined * factor;
                    }
                    previous = Some((sigma, denoised));
                }
                _ => unreachable!("stochastic kinds are refused by FastSampler::new"),
            }
            std::mem::swap(&mut x, &mut x_next);
        }
        if self.final_denoise {
            let denoised = model.denoise(&x, last[0].0, scratch);
            x.copy_from_slice(denoised);
        }
        if let Some(map) = prior.scaling() {
            map.to_catalogue_host(&mut x)?;
        }
        Ok(x)
    }
}

/// Validates host queries; returns their number.
fn check_queries(queries: &[f32], query_dim: usize, seeds_per_query: usize) -> Result<usize> {
    if seeds_per_query == 0 {
        return Err(CoreError::InvalidParameter {
            name: "seeds per query (k)",
            value: 0.0,
            reason: "must be at least 1",
        }
        .into());
    }
    if queries.is_empty() {
        return Err(CoreError::Empty { what: "queries" }.into());
    }
    if !queries.len().is_multiple_of(query_dim) {
        return Err(CoreError::DimMismatch {
            what: "query embedding (values not a whole number of rows)",
            expected: query_dim,
            got: queries.len() % query_dim,
        }
        .into());
    }
    if queries.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            what: "query embeddings",
        }
        .into());
    }
    Ok(queries.len() / query_dim)
}
