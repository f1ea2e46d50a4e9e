//! [`SeedSource`]: where a retriever's seeds come from — a trained prior on the host fast path, a
//! prior on a burn backend (GPU), the regression baseline, or any [`SeedGenerator`].

use burn::tensor::backend::Backend;
use diff4steer_core::tensor_util::{matrix_from_host, to_host_f32};
use diff4steer_core::{
    Conditioning, Denoiser, LinearGuidance, Similarity, Steered, SteeringTarget,
};

use super::{RetrievalError, RetrievalRequest};
use crate::fast::{FastPrior, FastSampler, FastScratch, HostGuidance};
use crate::{DiffusionPrior, PriorSeeds, RegressionModel, Sampler, SeedGenerator};

type Result<T> = std::result::Result<T, RetrievalError>;

/// K seeds per query for a [`GenerativeRetriever`](super::GenerativeRetriever). Queries and
/// seeds are host rows (row-major `f32`); the retriever has already checked the request's
/// shapes against [`query_dim`](Self::query_dim) and [`target_dim`](Self::target_dim).
pub trait SeedSource: Send + Sync {
    /// Width of a query embedding.
    fn query_dim(&self) -> usize;

    /// Width of a seed (target embedding).
    fn target_dim(&self) -> usize;

    /// `request.seeds_per_query` seeds for each of the `queries` (`[n, query_dim]`), drawn with
    /// `sampler`: `[n·K, target_dim]` in catalogue units, query-major. The same request gives
    /// the same seeds.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] for options the source cannot honour (steering a
    /// regression), errors of the model.
    fn seeds(
        &self,
        queries: &[f32],
        request: &RetrievalRequest,
        sampler: &Sampler,
    ) -> Result<Vec<f32>>;

    /// Whether every seed of a query is the same point (the regression baseline): retrieval then
    /// searches one seed per query.
    fn deterministic(&self) -> bool {
        false
    }

    /// The trained prior on the host, when the source has one (the re-ranker scores with it).
    fn host_prior(&self) -> Option<&FastPrior> {
        None
    }

    /// A short description for logs and reports, e.g. `diffusion prior (host path)`.
    fn describe(&self) -> String;
}

/// A trained prior sampled on the host fast path ([`FastSampler`]: Euler, Heun, DPM-Solver++ with
/// guidance and steering on host buffers, batch-invariant and 3–4× faster than burn's CPU
/// backends, BENCHMARKS.md). The stochastic kinds (`edm`, `sde`) run burn's [`Sampler`] over the
/// host denoiser on the CPU backend.
#[derive(Debug, Clone)]
pub struct HostPrior {
    prior: FastPrior,
}

impl HostPrior {
    /// Samples `prior`.
    pub fn new(prior: FastPrior) -> Self {
        Self { prior }
    }

    /// Copies a trained prior's weights to the host.
    ///
    /// # Errors
    /// [`RetrievalError::Model`] when a tensor cannot be read back.
    pub fn from_prior<B: Backend>(prior: &DiffusionPrior<B>) -> Result<Self> {
        Ok(Self::new(FastPrior::from_prior(prior)?))
    }

    /// The host prior.
    pub fn prior(&self) -> &FastPrior {
        &self.prior
    }
}

/// The guidance and steering of `request` on host buffers.
fn host_guidance(request: &RetrievalRequest) -> Result<HostGuidance> {
    let guidance = match &request.negative {
        Some(rows) => HostGuidance::contrastive(rows.clone(), request.guidance)?,
        None => HostGuidance::classifier_free(request.guidance)?,
    };
    Ok(guidance.with_steering(request.steering.clone(), Similarity::Cosine)?)
}

impl SeedSource for HostPrior {
    fn query_dim(&self) -> usize {
        self.prior.query_dim()
    }

    fn target_dim(&self) -> usize {
        self.prior.target_dim()
    }

    fn seeds(
        &self,
        queries: &[f32],
        request: &RetrievalRequest,
        sampler: &Sampler,
    ) -> Result<Vec<f32>> {
        let Ok(host) = FastSampler::new(sampler.kind(), sampler.sigmas().clone(), 0.0) else {
            return stochastic_on_cpu(&self.prior, queries, request, sampler);
        };
        Ok(host
            .with_final_denoise(sampler.final_denoise())
            .sample_guided(
                &self.prior,
                queries,
                request.seeds_per_query,
                request.seed,
                &host_guidance(request)?,
                &mut FastScratch::default(),
            )?)
    }

    fn host_prior(&self) -> Option<&FastPrior> {
        Some(&self.prior)
    }

    fn describe(&self) -> String {
        "diffusion prior (host path)".into()
    }
}

/// The stochastic samplers: burn's [`Sampler`] over the host denoiser on the CPU backend.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn stochastic_on_cpu(
    prior: &FastPrior,
    queries: &[f32],
    request: &RetrievalRequest,
    sampler: &Sampler,
) -> Result<Vec<f32>> {
    burn_seeds::<crate::backend::CpuBackend, _>(
        prior.clone(),
        queries,
        request,
        sampler,
        &Default::default(),
    )
}

#[cfg(not(any(feature = "flex", feature = "ndarray")))]
fn stochastic_on_cpu(
    _prior: &FastPrior,
    _queries: &[f32],
    _request: &RetrievalRequest,
    sampler: &Sampler,
) -> Result<Vec<f32>> {
    Err(RetrievalError::invalid(
        "sampler",
        format!(
            "`{}` on the host path needs a CPU backend (features flex or ndarray)",
            sampler.kind()
        ),
    ))
}

/// Seeds through burn: `denoiser` with classifier-free or negative guidance and steering as the
/// request says, sampled by `sampler` on `device` ([`PriorSeeds`]).
fn burn_seeds<B: Backend, D: Denoiser<B>>(
    denoiser: D,
    queries: &[f32],
    request: &RetrievalRequest,
    sampler: &Sampler,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let (qd, td) = (denoiser.cond_dim(), denoiser.dim());
    let matrix = |rows: &[f32], width: usize| {
        matrix_from_host::<B>(rows.to_vec(), rows.len() / width, width, device)
    };
    let q = matrix(queries, qd)?;
    let guided = match &request.negative {
        Some(rows) => LinearGuidance::contrastive(
            denoiser,
            Conditioning::new(matrix(rows, qd)?)?,
            request.guidance,
        )?,
        None => LinearGuidance::classifier_free(denoiser, request.guidance)?,
    };
    let (k, seed) = (request.seeds_per_query, request.seed);
    let seeds = if request.steering.is_empty() {
        PriorSeeds::new(guided, sampler.clone()).seeds(q, k, seed)?
    } else {
        let targets = request
            .steering
            .iter()
            .map(|s| SteeringTarget::new(matrix(&s.embedding, td)?, s.weight))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let steered = Steered::new(guided, targets, Similarity::Cosine)?;
        PriorSeeds::new(steered, sampler.clone()).seeds(q, k, seed)?
    };
    Ok(to_host_f32(seeds)?)
}

/// A trained prior sampled through burn on its own backend and device (a GPU backend, where the
/// host path does not apply).
#[derive(Debug)]
pub struct BurnPrior<B: Backend> {
    prior: DiffusionPrior<B>,
    device: B::Device,
}

impl<B: Backend> BurnPrior<B> {
    /// Samples `prior` on `device`.
    pub fn new(prior: DiffusionPrior<B>, device: B::Device) -> Self {
        Self { prior, device }
    }
}

impl<B: Backend> SeedSource for BurnPrior<B>
where
    DiffusionPrior<B>: Send + Sync,
{
    fn query_dim(&self) -> usize {
        self.prior.query_dim
    }

    fn target_dim(&self) -> usize {
        self.prior.target_dim
    }

    fn seeds(
        &self,
        queries: &[f32],
        request: &RetrievalRequest,
        sampler: &Sampler,
    ) -> Result<Vec<f32>> {
        burn_seeds(&self.prior, queries, request, sampler, &self.device)
    }

    fn describe(&self) -> String {
        format!("diffusion prior (burn, {})", B::name(&self.device))
    }
}

/// The regression baseline R(q): one point per query (K copies of it when asked for seeds).
#[derive(Debug)]
pub struct Regression<B: Backend> {
    model: RegressionModel<B>,
    device: B::Device,
}

impl<B: Backend> Regression<B> {
    /// Predicts with `model` on `device`.
    pub fn new(model: RegressionModel<B>, device: B::Device) -> Self {
        Self { model, device }
    }
}

/// Seeds of a tensor-side generator for host queries (`request`'s K and seed).
fn generator_seeds<B: Backend, G: SeedGenerator<B> + ?Sized>(
    generator: &G,
    queries: &[f32],
    request: &RetrievalRequest,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let qd = generator.query_dim();
    let q = matrix_from_host::<B>(queries.to_vec(), queries.len() / qd, qd, device)?;
    Ok(to_host_f32(generator.seeds(
        q,
        request.seeds_per_query,
        request.seed,
    )?)?)
}

/// Refuses the options that need a diffusion prior.
fn prior_only_options(request: &RetrievalRequest, what: &str) -> Result<()> {
    if request.negative.is_some() || !request.steering.is_empty() {
        return Err(RetrievalError::invalid(
            "request",
            format!("negative conditions and steering need a diffusion prior, not {what}"),
        ));
    }
    Ok(())
}

impl<B: Backend> SeedSource for Regression<B>
where
    RegressionModel<B>: Send + Sync,
{
    fn query_dim(&self) -> usize {
        self.model.query_dim()
    }

    fn target_dim(&self) -> usize {
        self.model.target_dim()
    }

    fn seeds(
        &self,
        queries: &[f32],
        request: &RetrievalRequest,
        _sampler: &Sampler,
    ) -> Result<Vec<f32>> {
        prior_only_options(request, "a regression model")?;
        generator_seeds(&self.model, queries, request, &self.device)
    }

    fn deterministic(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "regression".into()
    }
}

/// Any [`SeedGenerator`] (a burn-side generator of one's own, a [`crate::RidgeRegression`], …):
/// it samples with its own settings, so requests may not ask for negative conditions or
/// steering; guidance strength and sampler are the generator's.
pub struct Generator<B: Backend, G> {
    generator: G,
    device: B::Device,
    deterministic: bool,
}

impl<B: Backend, G: SeedGenerator<B>> Generator<B, G> {
    /// Seeds from `generator` on `device`; `deterministic` says whether its K seeds of a query
    /// are all the same point.
    pub fn new(generator: G, device: B::Device, deterministic: bool) -> Self {
        Self {
            generator,
            device,
            deterministic,
        }
    }
}

impl<B: Backend, G: SeedGenerator<B> + Send + Sync> SeedSource for Generator<B, G> {
    fn query_dim(&self) -> usize {
        self.generator.query_dim()
    }

    fn target_dim(&self) -> usize {
        self.generator.target_dim()
    }

    fn seeds(
        &self,
        queries: &[f32],
        request: &RetrievalRequest,
        _sampler: &Sampler,
    ) -> Result<Vec<f32>> {
        prior_only_options(request, "a custom seed generator")?;
        generator_seeds(&self.generator, queries, request, &self.device)
    }

    fn deterministic(&self) -> bool {
        self.deterministic
    }

    fn describe(&self) -> String {
        "seed generator".into()
    }
}

/// The seed source stored in a checkpoint folder (written by `train` or `train-regression`): a
/// prior on the host fast path, or the regression on the CPU backend.
///
/// # Errors
/// [`RetrievalError::Model`] for a missing, corrupt or unknown checkpoint.
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub fn load_source(dir: &std::path::Path) -> Result<Box<dyn SeedSource>> {
    use crate::backend::CpuBackend;
    use crate::training::{load_prior, load_regression, Checkpoint, ModelSpec};
    let device = Default::default();
    Ok(match Checkpoint::open(dir)?.model() {
        ModelSpec::DiffusionPrior(_) => {
            let (prior, _) = load_prior::<CpuBackend>(dir, &device)?;
            Box::new(HostPrior::from_prior(&prior)?)
        }
        ModelSpec::Regression(_) => {
            let (model, _) = load_regression::<CpuBackend>(dir, &device)?;
            Box::new(Regression::new(model, device))
        }
    })
}
