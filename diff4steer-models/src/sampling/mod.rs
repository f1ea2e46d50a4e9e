//! Samplers: turn noise into samples by walking a σ grid with any [`Denoiser`] (guided or not:
//! samplers never know about guidance).

mod dpm_solver;
mod euler;
mod euler_maruyama;
mod evaluation;
mod heun;
mod scheme_ode;

use std::fmt;
use std::str::FromStr;

use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::tensor_util::ensure_finite;
use diff4steer_core::{Conditioning, CoreError, Denoiser, NoiseSource, Sigmas};

pub use heun::Churn;
pub use scheme_ode::{sample_scheme_ode, SchemeOdeMethod};

use dpm_solver::DpmSolverPlusPlus2M;
pub(crate) use evaluation::BoundDenoiser;

use crate::{ModelError, Result};

/// Which sampling rule to apply at each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerKind {
    /// Euler on the probability-flow ODE (1 evaluation per step). Name `euler`.
    Euler,
    /// Heun's method, EDM Algorithm 1 in σ time (2 evaluations per step). Name `heun`.
    Heun,
    /// EDM's stochastic sampler, Algorithm 2, with [`Churn`] (2 evaluations per step). Name `edm`.
    EdmStochastic(Churn),
    /// Euler–Maruyama on the reverse-time SDE (1 evaluation per step). Name `sde`.
    EulerMaruyama,
    /// DPM-Solver++(2M), multistep second order (1 evaluation per step). Name `dpmpp2m`.
    DpmSolverPlusPlus2M,
}

impl SamplerKind {
    /// Every sampler, stochastic ones with default settings.
    pub const ALL: [SamplerKind; 5] = [
        SamplerKind::Euler,
        SamplerKind::Heun,
        SamplerKind::EdmStochastic(Churn::EDM_IMAGENET),
        SamplerKind::EulerMaruyama,
        SamplerKind::DpmSolverPlusPlus2M,
    ];

    /// The short name used on command lines (`euler`, `heun`, `edm`, `sde`, `dpmpp2m`).
    pub fn name(&self) -> &'static str {
        match self {
            SamplerKind::Euler => "euler",
            SamplerKind::Heun => "heun",
            SamplerKind::EdmStochastic(_) => "edm",
            SamplerKind::EulerMaruyama => "sde",
            SamplerKind::DpmSolverPlusPlus2M => "dpmpp2m",
        }
    }

    /// Network evaluations for a schedule of `steps` steps, final denoise included.
    pub fn evaluations(&self, steps: usize) -> usize {
        match self {
            SamplerKind::Heun | SamplerKind::EdmStochastic(_) => 2 * steps - 1,
            _ => steps,
        }
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SamplerKind {
    type Err = ModelError;

    /// Parses `euler`, `heun`, `edm` (default [`Churn`]), `sde` and `dpmpp2m`.
    fn from_str(s: &str) -> Result<Self> {
        SamplerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ModelError::UnknownSampler { name: s.to_owned() })
    }
}

/// What a per-step callback sees: the step just taken.
#[derive(Debug)]
pub struct StepInfo<'a, B: Backend> {
    /// Step index, 0-based; the final denoise is step `sigmas.steps() − 1`.
    pub index: usize,
    /// σ at the start of the step.
    pub sigma: f64,
    /// σ at the end of the step (0 for the final denoise).
    pub sigma_next: f64,
    /// The state after the step, `[batch, dim]`.
    pub x: &'a Tensor<B, 2>,
    /// The denoised estimate D(x, σ) evaluated during the step, `[batch, dim]`.
    pub denoised: &'a Tensor<B, 2>,
}

/// A sampler: a [`SamplerKind`] over a σ grid.
///
/// Every sampler steps σ_0 → σ_1 → … → σ_{N−1} by its own rule. The last transition σ_{N−1} → 0
/// is the *final denoise*, x = D(x, σ_{N−1}) (what an Euler step to σ = 0 computes, and what
/// Algorithm 2 and DPM-Solver++ reduce to there); with `final_denoise = false` the sampler stops
/// at σ_{N−1} and returns the still slightly noisy state.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampler {
    kind: SamplerKind,
    sigmas: Sigmas,
    final_denoise: bool,
}

impl Sampler {
    /// A sampler with the final denoise on.
    ///
    /// # Errors
    /// [`ModelError::Core`] when the kind's parameters (churn) are invalid.
    pub fn new(kind: SamplerKind, sigmas: Sigmas) -> Result<Self> {
        if let SamplerKind::EdmStochastic(churn) = &kind {
            churn.validate()?;
        }
        Ok(Self {
            kind,
            sigmas,
            final_denoise: true,
        })
    }

    /// Turns the final denoise at σ_min on or off.
    pub fn with_final_denoise(mut self, final_denoise: bool) -> Self {
        self.final_denoise = final_denoise;
        self
    }

    /// The sampling rule.
    pub fn kind(&self) -> SamplerKind {
        self.kind
    }

    /// The σ grid.
    pub fn sigmas(&self) -> &Sigmas {
        &self.sigmas
    }

    /// Whether the last step is the final denoise at σ_min.
    pub fn final_denoise(&self) -> bool {
        self.final_denoise
    }

    /// Draws one sample per row of `cond`: x_0 ~ N(0, σ_max² I), then [`Sampler::run`]. The
    /// samples are in catalogue units: for a denoiser that works in a rescaled space
    /// ([`Denoiser::target_scaling`], a prior trained on standardised targets) the final state is
    /// mapped back (the trajectory itself, and the states a callback sees, stay in the
    /// denoiser's space).
    ///
    /// # Errors
    /// As [`Sampler::run`].
    pub fn sample<B: Backend, D: Denoiser<B>>(
        &self,
        denoiser: &D,
        cond: &Conditioning<B>,
        noise: &mut dyn NoiseSource<B>,
    ) -> Result<Tensor<B, 2>> {
        self.sample_with_callback(denoiser, cond, noise, |_| {})
    }

    /// [`Sampler::sample`] with a callback after every step (progress bars, trajectory plots).
    ///
    /// # Errors
    /// As [`Sampler::run`].
    pub fn sample_with_callback<B: Backend, D: Denoiser<B>>(
        &self,
        denoiser: &D,
        cond: &Conditioning<B>,
        noise: &mut dyn NoiseSource<B>,
        callback: impl FnMut(StepInfo<'_, B>),
    ) -> Result<Tensor<B, 2>> {
        let device = cond.embeddings().device();
        let x = noise
            .normal([cond.batch(), denoiser.dim()], &device)
            .mul_scalar(self.sigmas.sigma_max());
        let samples = self.run(denoiser, x, cond, noise, callback)?;
        match denoiser.target_scaling() {
            None => Ok(samples),
            Some(map) => Ok(map.to_catalogue(samples)?),
        }
    }

    /// Runs the sampler from a given state `x` at σ_max (`[batch, dim]`), e.g. the output of
    /// inversion. Start and result are in the denoiser's own space (map them with its
    /// [`Denoiser::target_scaling`] where it has one). `cond` has `batch` rows, or a number of rows dividing `batch` (one per query,
    /// repeated query-major).
    ///
    /// # Errors
    /// [`CoreError::Empty`] for zero rows, [`CoreError::DimMismatch`] / [`CoreError::BatchMismatch`]
    /// for shapes that do not fit the denoiser, [`CoreError::NonFinite`] for NaN/±Inf in `x`.
    pub fn run<B: Backend, D: Denoiser<B>>(
        &self,
        denoiser: &D,
        x: Tensor<B, 2>,
        cond: &Conditioning<B>,
        noise: &mut dyn NoiseSource<B>,
        mut callback: impl FnMut(StepInfo<'_, B>),
    ) -> Result<Tensor<B, 2>> {
        let cond = validate_start(denoiser, &x, cond)?;
        let model = BoundDenoiser {
            denoiser,
            cond: &cond,
        };
        let pairs: Vec<(f64, f64)> = self.sigmas.pairs().collect();
        let (body, last) = pairs.split_at(pairs.len() - 1);
        let steps = self.sigmas.steps();
        let mut dpm = DpmSolverPlusPlus2M::default();
        let mut x = x;
        for (index, &(sigma, sigma_next)) in body.iter().enumerate() {
            let (x_next, denoised) = match &self.kind {
                SamplerKind::Euler => euler::euler_step(&model, x, sigma, sigma_next)?,
                SamplerKind::Heun => {
                    heun::heun_step(&model, x, sigma, sigma_next, &Churn::NONE, steps, noise)?
                }
                SamplerKind::EdmStochastic(churn) => {
                    heun::heun_step(&model, x, sigma, sigma_next, churn, steps, noise)?
                }
                SamplerKind::EulerMaruyama => {
                    euler_maruyama::euler_maruyama_step(&model, x, sigma, sigma_next, noise)?
                }
                SamplerKind::DpmSolverPlusPlus2M => dpm.step(&model, x, sigma, sigma_next)?,
            };
            callback(StepInfo {
                index,
                sigma,
                sigma_next,
                x: &x_next,
                denoised: &denoised,
            });
            x = x_next;
        }
        if self.final_denoise {
            let (sigma, _) = last[0];
            let denoised = model.denoise(x, sigma)?;
            callback(StepInfo {
                index: steps - 1,
                sigma,
                sigma_next: 0.0,
                x: &denoised,
                denoised: &denoised,
            });
            x = denoised;
        }
        Ok(x)
    }
}

/// Checks a starting state against the denoiser and fits `cond` to its rows.
pub(crate) fn validate_start<B: Backend, D: Denoiser<B>>(
    denoiser: &D,
    x: &Tensor<B, 2>,
    cond: &Conditioning<B>,
) -> Result<Conditioning<B>> {
    let [batch, dim] = x.dims();
    if batch == 0 {
        return Err(CoreError::Empty { what: "samples" }.into());
    }
    if dim != denoiser.dim() {
        return Err(CoreError::DimMismatch {
            what: "sampler state",
            expected: denoiser.dim(),
            got: dim,
        }
        .into());
    }
    if cond.cond_dim() != denoiser.cond_dim() {
        return Err(CoreError::DimMismatch {
            what: "conditioning embedding",
            expected: denoiser.cond_dim(),
            got: cond.cond_dim(),
        }
        .into());
    }
    ensure_finite(x, "sampler state")?;
    Ok(cond.fit_batch(batch)?)
}
