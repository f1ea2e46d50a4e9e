//! Training objectives: the EDM denoising loss of the prior and the regression losses, and the
//! random draws of one training batch.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use diff4steer_core::tensor_util::row_norm;
use diff4steer_core::Conditioning;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::{PairData, TrainingConfig};
use crate::prior::DiffusionPrior;
use crate::regression::{RegressionLoss, RegressionModel};
use crate::Result;

/// One training batch with all its randomness drawn: pairs, noise levels σ, noise ε and the
/// condition-dropout flags.
#[derive(Debug, Clone)]
pub struct Batch<B: Backend> {
    /// Queries `[batch, query_dim]`.
    pub queries: Tensor<B, 2>,
    /// Clean targets `[batch, target_dim]`.
    pub targets: Tensor<B, 2>,
    /// Rows whose query is dropped (null condition).
    pub null_rows: Vec<bool>,
    /// σ per row, `[batch]`, with ln σ ~ N(P_mean, P_std²).
    pub sigma: Tensor<B, 1>,
    /// ε ~ N(0, I), `[batch, target_dim]`.
    pub noise: Tensor<B, 2>,
}

/// [`Batch`]'s draws on the host (row-major values), before they become tensors: what the
/// host training path ([`crate::fast::PriorGradients`]) consumes.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Queries `[batch, query_dim]`.
    pub queries: Vec<f32>,
    /// Clean targets `[batch, target_dim]`.
    pub targets: Vec<f32>,
    /// Rows whose query is dropped (null condition).
    pub null_rows: Vec<bool>,
    /// σ per row.
    pub sigma: Vec<f32>,
    /// ε ~ N(0, I), `[batch, target_dim]`.
    pub noise: Vec<f32>,
    /// Width of a query.
    pub query_dim: usize,
    /// Width of a target.
    pub target_dim: usize,
}

impl HostBatch {
    /// Draws a batch from `rng`: `batch` rows with replacement ([`PairData::draw_row`]: by the
    /// data's sampling weights, else uniformly; with `conditional_only`, only rows with a query),
    /// or `rows` when given, then σ, ε and the dropout flags, in that order. Target-only rows are
    /// always null rows.
    pub fn draw(
        data: &PairData,
        rows: Option<&[usize]>,
        batch: usize,
        conditional_only: bool,
        config: &TrainingConfig,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let picked: Vec<usize> = match rows {
            Some(r) => r.to_vec(),
            None => (0..batch)
                .map(|_| data.draw_row(rng, conditional_only))
                .collect(),
        };
        let n = picked.len();
        let (queries, targets) = data.gather(&picked);
        let sigma: Vec<f32> = (0..n)
            .map(|_| {
                (config.p_mean + config.p_std * rng.sample::<f64, _>(StandardNormal)).exp() as f32
            })
            .collect();
        let noise: Vec<f32> = (0..n * data.target_dim())
            .map(|_| rng.sample::<f64, _>(StandardNormal) as f32)
            .collect();
        let null_rows = picked
            .iter()
            .map(|&r| {
                let dropped = rng.random::<f64>() < config.cond_dropout;
                dropped || !data.is_conditional(r)
            })
            .collect();
        Self {
            queries,
            targets,
            null_rows,
            sigma,
            noise,
            query_dim: data.query_dim(),
            target_dim: data.target_dim(),
        }
    }

    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.sigma.len()
    }

    /// A copy of rows `rows` of the batch (a shard of it).
    pub(crate) fn rows_slice(&self, rows: std::ops::Range<usize>) -> Self {
        let (q, t) = (self.query_dim, self.target_dim);
        Self {
            queries: self.queries[rows.start * q..rows.end * q].to_vec(),
            targets: self.targets[rows.start * t..rows.end * t].to_vec(),
            null_rows: self.null_rows[rows.clone()].to_vec(),
            sigma: self.sigma[rows.clone()].to_vec(),
            noise: self.noise[rows.start * t..rows.end * t].to_vec(),
            query_dim: q,
            target_dim: t,
        }
    }
}

impl<B: Backend> Batch<B> {
    /// [`HostBatch::draw`], as tensors on `device`.
    pub fn draw(
        data: &PairData,
        rows: Option<&[usize]>,
        batch: usize,
        conditional_only: bool,
        config: &TrainingConfig,
        rng: &mut ChaCha8Rng,
        device: &B::Device,
    ) -> Self {
        Self::from_host(
            HostBatch::draw(data, rows, batch, conditional_only, config, rng),
            device,
        )
    }

    /// A host batch as tensors on `device`.
    pub fn from_host(host: HostBatch, device: &B::Device) -> Self {
        let n = host.rows();
        Self {
            queries: Tensor::from_data(TensorData::new(host.queries, [n, host.query_dim]), device),
            targets: Tensor::from_data(TensorData::new(host.targets, [n, host.target_dim]), device),
            null_rows: host.null_rows,
            sigma: Tensor::from_data(TensorData::new(host.sigma, [n]), device),
            noise: Tensor::from_data(TensorData::new(host.noise, [n, host.target_dim]), device),
        }
    }

    /// The random stream of training step `step` under `seed`: every step's draws depend only on
    /// (seed, step), so a resumed run draws exactly what an uninterrupted one would.
    pub fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(step as u64);
        rng
    }
}

/// A model with a scalar training loss on a [`Batch`].
pub trait TrainableModel<B: Backend>: Module<B> {
    /// The mean loss over the batch, `[1]`.
    ///
    /// # Errors
    /// Shape errors of the model call.
    fn loss(&self, batch: &Batch<B>) -> Result<Tensor<B, 1>>;

    /// Whether the model learns from target-only rows (the prior's null condition does; a
    /// regression, which needs a query, does not).
    fn learns_from_target_only_rows(&self) -> bool {
        true
    }
}

impl<B: Backend> TrainableModel<B> for DiffusionPrior<B> {
    /// The EDM loss (Karras et al. 2022, Eq. 8; METHOD.md): with z̃ = z + σ·ε,
    /// L = mean[ λ(σ)·(D_θ(z̃, σ, q) − z)² ], λ(σ) = (σ² + σ_d²)/(σ·σ_d)², and the query replaced by
    /// ∅ on the dropped rows.
    fn loss(&self, batch: &Batch<B>) -> Result<Tensor<B, 1>> {
        let rows = batch.sigma.dims()[0];
        let noisy =
            batch.targets.clone() + batch.noise.clone() * batch.sigma.clone().reshape([rows, 1]);
        let cond = Conditioning::from_validated(batch.queries.clone(), batch.null_rows.clone())?;
        let denoised = diff4steer_core::Denoiser::denoise(self, noisy, batch.sigma.clone(), &cond)?;
        let weight = self.preconditioning().loss_weight(batch.sigma.clone());
        Ok(((denoised - batch.targets.clone()).square() * weight).mean())
    }
}

impl<B: Backend> TrainableModel<B> for RegressionModel<B> {
    /// MSE: mean (R(q) − z)²; cosine: mean (1 − cos(R(q), z)), in the model's own units. The
    /// noise draws are unused.
    fn loss(&self, batch: &Batch<B>) -> Result<Tensor<B, 1>> {
        let predicted = self.predict_model_units(batch.queries.clone());
        Ok(match self.loss_kind() {
            RegressionLoss::Mse => (predicted - batch.targets.clone()).square().mean(),
            RegressionLoss::Cosine => {
                let t = batch.targets.clone();
                let cos = (predicted.clone() * t.clone()).sum_dim(1)
                    / (row_norm(predicted) * row_norm(t));
                cos.neg().add_scalar(1.0).mean()
            }
        })
    }

    fn learns_from_target_only_rows(&self) -> bool {
        false
    }
}
