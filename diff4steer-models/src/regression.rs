//! The regression baseline: one deterministic seed per query, the "point" the paper argues against.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{backend::Backend, Tensor};
use diff4steer_core::tensor_util::row_norm;
use diff4steer_core::TargetScaling;
use serde::{Deserialize, Serialize};

use crate::backend::{backend_rng_lock, materialise};
use crate::network::{ResMlp, ResMlpConfig};
use crate::prior::target_scaling_of;
use crate::{ModelError, Result};

/// The training loss of the regression baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RegressionLoss {
    /// Mean squared error ‖R(q) − z‖²: R(q) → E[z | q], the conditional mean.
    #[default]
    Mse,
    /// 1 − cos(R(q), z), for L2-normalised target spaces; predictions are normalised to unit norm.
    Cosine,
}

/// Sizes and loss of a [`RegressionModel`].
#[derive(Config, Debug, PartialEq)]
pub struct RegressionConfig {
    /// Dimension of the target embeddings.
    pub target_dim: usize,
    /// Dimension of the query embeddings.
    pub query_dim: usize,
    /// The loss it is trained with.
    #[config(default = "RegressionLoss::Mse")]
    pub loss: RegressionLoss,
    /// The residual MLP (the same backbone as the prior, without the noise input).
    #[config(default = "ResMlpConfig::new()")]
    pub network: ResMlpConfig,
    /// Train on standardised targets (as [`crate::DiffusionPriorConfig::standardise_targets`]);
    /// predictions come out in catalogue units.
    #[config(default = true)]
    pub standardise_targets: bool,
    /// Per-dimension shift of the target standardisation; empty = none. Set by training.
    #[config(default = "Vec::new()")]
    pub target_shift: Vec<f32>,
    /// Per-dimension scale of the target standardisation; empty with `target_shift`.
    #[config(default = "Vec::new()")]
    pub target_scale: Vec<f32>,
}

impl RegressionConfig {
    /// Checks dimensions and network sizes.
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
        self.target_scaling()?;
        self.network.validate()
    }

    /// The stored target standardisation, `None` when there is none.
    ///
    /// # Errors
    /// As [`crate::DiffusionPriorConfig::target_scaling`].
    pub fn target_scaling(&self) -> Result<Option<TargetScaling>> {
        target_scaling_of(self.target_dim, &self.target_shift, &self.target_scale)
    }

    /// A lower bound on the model's parameter count (its weight matrices), saturating.
    pub fn minimum_parameters(&self) -> u128 {
        self.network
            .minimum_parameters(self.query_dim, self.target_dim)
            .saturating_add(
                (self.query_dim as u128).saturating_mul(self.network.embedding_dim as u128),
            )
    }

    /// A freshly initialised model (as [`crate::DiffusionPriorConfig::init`]: backend RNG, under the
    /// crate's RNG lock).
    ///
    /// # Errors
    /// As [`RegressionConfig::validate`].
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<RegressionModel<B>> {
        let _rng_guard = backend_rng_lock();
        self.init_holding_rng_lock(device)
    }

    /// [`Self::init`] for callers that already hold the backend-RNG lock (training runs).
    pub(crate) fn init_holding_rng_lock<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<RegressionModel<B>> {
        self.validate()?;
        Ok(materialise(RegressionModel {
            backbone: self.network.init(self.query_dim, self.target_dim, device),
            query_projection: LinearConfig::new(self.query_dim, self.network.embedding_dim)
                .init(device),
            cosine_loss: self.loss == RegressionLoss::Cosine,
            target_scaling: self.target_scaling()?,
            target_dim: self.target_dim,
            query_dim: self.query_dim,
        }))
    }
}

/// R_φ(q): the residual MLP applied to the query, conditioned (FiLM) on a projection of the query
/// itself. Trained with MSE it estimates the conditional mean E[z | q], which for a multi-modal
/// p(z | q) lies between the modes (METHOD.md, "Retrieval").
#[derive(Module, Debug)]
pub struct RegressionModel<B: Backend> {
    backbone: ResMlp<B>,
    query_projection: Linear<B>,
    cosine_loss: bool,
    #[module(skip)]
    target_scaling: Option<TargetScaling>,
    target_dim: usize,
    query_dim: usize,
}

impl<B: Backend> RegressionModel<B> {
    /// One prediction per query row in catalogue units: `[batch, query_dim] → [batch,
    /// target_dim]`. With the cosine loss the prediction has unit norm in the model's units (√dim
    /// there when the targets were standardised: the root-mean-square norm of standardised
    /// training targets, so the point lies among them), then mapped to catalogue units.
    pub fn predict(&self, queries: Tensor<B, 2>) -> Tensor<B, 2> {
        let out = self.predict_model_units(queries);
        match &self.target_scaling {
            None => out,
            Some(map) => {
                let out = if self.cosine_loss {
                    out.mul_scalar((self.target_dim as f64).sqrt())
                } else {
                    out
                };
                map.to_catalogue(out)
                    .expect("the scaling has the model's target width (checked at init)")
            }
        }
    }

    /// The prediction in the model's own (standardised) units, what training compares with the
    /// standardised targets (unit norm with the cosine loss).
    pub fn predict_model_units(&self, queries: Tensor<B, 2>) -> Tensor<B, 2> {
        let out = self
            .backbone
            .forward(queries.clone(), self.query_projection.forward(queries));
        if self.cosine_loss {
            out.clone() / row_norm(out)
        } else {
            out
        }
    }

    /// The map from the model's own units to catalogue units, if it was trained standardised.
    pub fn scaling(&self) -> Option<&TargetScaling> {
        self.target_scaling.as_ref()
    }

    /// The loss this model is trained with.
    pub fn loss_kind(&self) -> RegressionLoss {
        if self.cosine_loss {
            RegressionLoss::Cosine
        } else {
            RegressionLoss::Mse
        }
    }

    /// Width of a prediction.
    pub fn target_dim(&self) -> usize {
        self.target_dim
    }

    /// Width of a query.
    pub fn query_dim(&self) -> usize {
        self.query_dim
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }
}
