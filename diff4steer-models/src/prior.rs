//! The diffusion prior: a preconditioned residual MLP that denoises target embeddings under a
//! query embedding, usable as a [`Denoiser`] by every sampler, guidance and steering wrapper.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{activation::silu, backend::Backend, Distribution, Tensor};
use diff4steer_core::{check_denoiser_inputs, Conditioning, Denoiser, TargetScaling};

use crate::backend::{backend_rng_lock, materialise};
use crate::network::{fourier_features, ResMlp, ResMlpConfig};
use crate::precond::EdmPreconditioning;
use crate::{ModelError, Result};

/// Sizes and data statistics of a [`DiffusionPrior`].
#[derive(Config, Debug, PartialEq)]
pub struct DiffusionPriorConfig {
    /// Dimension of the target (music) embeddings.
    pub target_dim: usize,
    /// Dimension of the query (text, image) embeddings.
    pub query_dim: usize,
    /// σ_d, the standard deviation of the training targets (set by training from the data;
    /// EDM's default 0.5 until then).
    #[config(default = 0.5)]
    pub sigma_data: f64,
    /// The residual MLP.
    #[config(default = "ResMlpConfig::new()")]
    pub network: ResMlpConfig,
    /// Also add a linear projection of the query to the backbone's first hidden layer (beside its
    /// FiLM path). Our design: through FiLM alone, which modulates normalised features by a
    /// vector that also carries the noise level, a caption's small differences from other
    /// captions barely reach the output (a 256×3 prior trained on MusicCaps ignored its caption
    /// at every noise level); the input path gives the query the direct access a regression has.
    #[config(default = true)]
    pub query_to_input: bool,
    /// Train on standardised targets: training fits the per-dimension mean and standard
    /// deviation of its targets, stores them here, and the prior denoises in those units; seeds
    /// come out in catalogue units ([`TargetScaling`]). On by default: EDM's preconditioning
    /// assumes one scale σ_d for every dimension, which raw embeddings (VGGish: per-dimension
    /// spreads of 0.5–1.0 around a shared offset of norm ≈ 9) do not have.
    #[config(default = true)]
    pub standardise_targets: bool,
    /// Per-dimension shift μ of the target standardisation (catalogue = μ + s ⊙ model units);
    /// empty = the prior works in catalogue units. Set by training.
    #[config(default = "Vec::new()")]
    pub target_shift: Vec<f32>,
    /// Per-dimension scale s of the target standardisation; empty with `target_shift`.
    #[config(default = "Vec::new()")]
    pub target_scale: Vec<f32>,
}

impl DiffusionPriorConfig {
    /// Checks dimensions, σ_d and the network sizes.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.target_dim == 0 || self.query_dim == 0 {
            return Err(ModelError::InvalidConfig {
                field: "target_dim/query_dim",
                reason: "dimensions must be at least 1".into(),
            });
        }
        if !(self.sigma_data.is_finite() && self.sigma_data > 0.0) {
            return Err(ModelError::InvalidConfig {
                field: "sigma_data",
                reason: format!("must be finite and positive, got {}", self.sigma_data),
            });
        }
        self.target_scaling()?;
        self.network.validate()
    }

    /// The stored target standardisation, `None` when there is none.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] when `target_shift`/`target_scale` are not both empty or
    /// both `target_dim` finite values with positive scales.
    pub fn target_scaling(&self) -> Result<Option<TargetScaling>> {
        target_scaling_of(self.target_dim, &self.target_shift, &self.target_scale)
    }

    /// A lower bound on the prior's parameter count (its weight matrices), saturating.
    pub fn minimum_parameters(&self) -> u128 {
        let net = &self.network;
        let e = net.embedding_dim as u128;
        let noise = (2 * net.fourier_features as u128)
            .saturating_add(e)
            .saturating_mul(e);
        let query_input = if self.query_to_input {
            (self.query_dim as u128).saturating_mul(net.width as u128)
        } else {
            0
        };
        net.minimum_parameters(self.target_dim, self.target_dim)
            .saturating_add(noise)
            .saturating_add((self.query_dim as u128).saturating_mul(e))
            .saturating_add(query_input)
    }

    /// A freshly initialised prior. Weights come from the backend's process-wide RNG (call
    /// `B::seed` first for a reproducible initialisation; training does); the crate's RNG lock is
    /// held meanwhile.
    ///
    /// # Errors
    /// As [`DiffusionPriorConfig::validate`].
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<DiffusionPrior<B>> {
        let _rng_guard = backend_rng_lock();
        self.init_holding_rng_lock(device)
    }

    /// [`Self::init`] for callers that already hold the backend-RNG lock (training runs).
    pub(crate) fn init_holding_rng_lock<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<DiffusionPrior<B>> {
        self.validate()?;
        let net = &self.network;
        Ok(materialise(DiffusionPrior {
            backbone: net.init(self.target_dim, self.target_dim, device),
            noise_in: LinearConfig::new(2 * net.fourier_features, net.embedding_dim).init(device),
            noise_out: LinearConfig::new(net.embedding_dim, net.embedding_dim).init(device),
            query_projection: LinearConfig::new(self.query_dim, net.embedding_dim).init(device),
            query_input: self.query_to_input.then(|| {
                LinearConfig::new(self.query_dim, net.width)
                    .with_bias(false)
                    .init(device)
            }),
            null_query: Param::from_tensor(Tensor::random(
                [1, self.query_dim],
                Distribution::Normal(0.0, 1.0),
                device,
            )),
            sigma_data: self.sigma_data,
            target_scaling: self.target_scaling()?,
            fourier_features: net.fourier_features,
            target_dim: self.target_dim,
            query_dim: self.query_dim,
        }))
    }
}

/// The Diff4Steer prior D_θ(z̃, σ, q) = c_skip·z̃ + c_out·F_θ(c_in·z̃, c_noise, q) (METHOD.md, EDM
/// preconditioning), with F_θ a [`ResMlp`] whose FiLM conditioning vector is
/// MLP(Fourier(c_noise)) + W·q. Null rows of the conditioning use a learned null query embedding
/// ∅ in place of q (classifier-free guidance, Ho & Salimans 2022). With a stored target
/// standardisation it denoises standardised targets (see [`Denoiser::target_scaling`]).
#[derive(Module, Debug)]
pub struct DiffusionPrior<B: Backend> {
    pub(crate) backbone: ResMlp<B>,
    pub(crate) noise_in: Linear<B>,
    pub(crate) noise_out: Linear<B>,
    pub(crate) query_projection: Linear<B>,
    pub(crate) query_input: Option<Linear<B>>,
    pub(crate) null_query: Param<Tensor<B, 2>>,
    pub(crate) sigma_data: f64,
    #[module(skip)]
    pub(crate) target_scaling: Option<TargetScaling>,
    pub(crate) fourier_features: usize,
    pub(crate) target_dim: usize,
    pub(crate) query_dim: usize,
}

impl<B: Backend> DiffusionPrior<B> {
    /// The preconditioning with this prior's σ_d.
    pub fn preconditioning(&self) -> EdmPreconditioning {
        EdmPreconditioning {
            sigma_data: self.sigma_data,
        }
    }

    /// The effective query per row: q, or the learned null query ∅ on null rows.
    fn effective_query(&self, cond: &Conditioning<B>) -> Tensor<B, 2> {
        let mask = cond.null_mask();
        let null = self.null_query.val().expand([cond.batch(), self.query_dim]);
        cond.embeddings().clone() * (mask.clone().neg().add_scalar(1.0)) + null * mask
    }

    /// The FiLM conditioning vector MLP(Fourier(c_noise)) + W·q_eff, `[batch, embedding_dim]`.
    fn conditioning_vector(&self, c_noise: Tensor<B, 2>, query: Tensor<B, 2>) -> Tensor<B, 2> {
        let noise = self.noise_out.forward(silu(
            self.noise_in
                .forward(fourier_features(c_noise, self.fourier_features)),
        ));
        noise + self.query_projection.forward(query)
    }

    /// The raw network F_θ(c_in·x, c_noise, q), before the output scaling: the backbone with
    /// FiLM vector MLP(Fourier(c_noise)) + W·q_eff and, with `query_to_input`, V·q_eff added to
    /// its first hidden layer.
    pub fn network_output(
        &self,
        x_in: Tensor<B, 2>,
        c_noise: Tensor<B, 2>,
        cond: &Conditioning<B>,
    ) -> Tensor<B, 2> {
        let query = self.effective_query(cond);
        let offset = self.query_input.as_ref().map(|l| l.forward(query.clone()));
        let vector = self.conditioning_vector(c_noise, query);
        self.backbone.forward_with_offset(x_in, offset, vector)
    }

    /// The map from the prior's own (standardised) space to catalogue units, if it has one.
    pub fn scaling(&self) -> Option<&TargetScaling> {
        self.target_scaling.as_ref()
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }
}

impl<B: Backend> Denoiser<B> for DiffusionPrior<B> {
    fn dim(&self) -> usize {
        self.target_dim
    }

    fn cond_dim(&self) -> usize {
        self.query_dim
    }

    fn denoise(
        &self,
        x: Tensor<B, 2>,
        sigma: Tensor<B, 1>,
        cond: &Conditioning<B>,
    ) -> diff4steer_core::Result<Tensor<B, 2>> {
        check_denoiser_inputs(self, &x, &sigma, cond)?;
        let s = self.preconditioning().scalings(sigma);
        let f = self.network_output(x.clone() * s.c_in, s.c_noise, cond);
        Ok(x * s.c_skip + f * s.c_out)
    }

    fn target_scaling(&self) -> Option<&TargetScaling> {
        self.target_scaling.as_ref()
    }
}

/// The target standardisation stored as `shift`/`scale` in a model configuration (both empty =
/// none).
pub(crate) fn target_scaling_of(
    target_dim: usize,
    shift: &[f32],
    scale: &[f32],
) -> Result<Option<TargetScaling>> {
    if shift.is_empty() && scale.is_empty() {
        return Ok(None);
    }
    if shift.len() != target_dim || scale.len() != target_dim {
        return Err(ModelError::InvalidConfig {
            field: "target_shift/target_scale",
            reason: format!(
                "{} shifts and {} scales for {target_dim} target dimensions",
                shift.len(),
                scale.len()
            ),
        });
    }
    TargetScaling::new(shift.to_vec(), scale.to_vec())
        .map(Some)
        .map_err(|e| ModelError::InvalidConfig {
            field: "target_shift/target_scale",
            reason: e.to_string(),
        })
}
