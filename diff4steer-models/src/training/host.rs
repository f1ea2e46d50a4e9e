//! The prior's training loop state on the host: weights, AdamW moments and the EMA as flat
//! buffers updated in place, with the loss and gradients of [`PriorGradients`] — the CPU training
//! path. The burn module, burn's optimiser record and the EMA module are written from these
//! buffers only when the loop needs them (validation, checkpoints, the end), so checkpoints and
//! resume keep burn's formats.
//!
//! The updates are burn's, in f32: AdamW (Loshchilov & Hutter 2019) as `burn_optim`'s
//! (β₁ = 0.9, β₂ = 0.999, ε = 1e-5, bias-corrected moments, decoupled decay θ ← θ·(1 − lr·λ) −
//! lr·m̂/(√v̂ + ε)), global-norm clipping as [`super::clip_global_norm`], and the EMA with
//! warm-up as [`super::ExponentialMovingAverage`].

use std::collections::HashMap;

use burn::module::{AutodiffModule, Module, ModuleMapper, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::Optimizer;
use burn::optim::{AdamW, AdamWState, AdaptiveMomentumState};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

use super::{ExponentialMovingAverage, HostBatch, TrainingConfig};
use crate::fast::PriorGradients;
use crate::prior::DiffusionPrior;
use crate::Result;

/// burn's AdamW defaults, which the trainer uses.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-5;

/// The record burn's AdamW adaptor keeps (what `optimizer.mpk` stores): a map from parameter id
/// to that parameter's state (burn's own map type, whatever the model).
pub(crate) type AdamWRecord<AB> =
    <OptimizerAdaptor<AdamW, DiffusionPrior<AB>, AB> as Optimizer<DiffusionPrior<AB>, AB>>::Record;

/// The whole training state of a prior on the host.
pub(crate) struct HostPriorTraining {
    path: PriorGradients,
    /// AdamW's first and second moments, one buffer per parameter (the path's order).
    moment_1: Vec<Vec<f32>>,
    moment_2: Vec<Vec<f32>>,
    /// AdamW's step count (burn's `time`), 0 before the first update.
    time: usize,
    /// The EMA of the weights.
    average: Vec<Vec<f32>>,
    ema_updates: u64,
    ema_decay: f64,
    weight_decay: f32,
    grad_clip_norm: f64,
}

/// Every parameter of a prior with its id, shape and rank-independent index, in the order of
/// [`PriorGradients::parameters`].
fn parameter_ids<B: Backend>(prior: &DiffusionPrior<B>) -> Vec<ParamId> {
    let mut ids = Vec::new();
    let lin = |l: &burn::nn::Linear<B>, ids: &mut Vec<ParamId>| {
        ids.push(l.weight.id);
        if let Some(b) = &l.bias {
            ids.push(b.id);
        }
    };
    let norm = |n: &burn::nn::LayerNorm<B>, ids: &mut Vec<ParamId>| {
        ids.push(n.gamma.id);
        if let Some(b) = &n.beta {
            ids.push(b.id);
        }
    };
    let backbone = &prior.backbone;
    lin(&backbone.input, &mut ids);
    for block in &backbone.blocks {
        norm(&block.norm_in, &mut ids);
        lin(&block.linear_in, &mut ids);
        norm(&block.norm_out, &mut ids);
        lin(&block.film, &mut ids);
        lin(&block.linear_out, &mut ids);
    }
    norm(&backbone.norm_out, &mut ids);
    lin(&backbone.output, &mut ids);
    lin(&prior.noise_in, &mut ids);
    lin(&prior.noise_out, &mut ids);
    lin(&prior.query_projection, &mut ids);
    if let Some(q) = &prior.query_input {
        lin(q, &mut ids);
    }
    ids.push(prior.null_query.id);
    ids
}

/// Replaces every float parameter whose id is in `values` by those values (same shape).
struct Overwrite<'a> {
    values: HashMap<ParamId, &'a [f32]>,
    require_grad: bool,
}

impl<B: Backend> ModuleMapper<B> for Overwrite<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(values) = self.values.get(&param.id).copied() else {
            return param;
        };
        let require_grad = self.require_grad;
        param.map(|tensor| {
            let shape = tensor.shape();
            let device = tensor.device();
            let fresh = Tensor::<B, D>::from_data(TensorData::new(values.to_vec(), shape), &device);
            if require_grad {
                fresh.require_grad()
            } else {
                fresh
            }
        })
    }
}

/// Values per task in the clipping norm and the AdamW/EMA update: the work is cut into chunks
/// of this many values of a tensor, independent of the thread count.
const UPDATE_CHUNK: usize = 1 << 14;

/// Σv² of `values` in sixteen f32 lanes (so that the loop vectorises), returned in f64.
fn sum_of_squares(values: &[f32]) -> f64 {
    let mut lanes = [0.0f32; 16];
    let mut groups = values.chunks_exact(16);
    for group in &mut groups {
        lanes.iter_mut().zip(group).for_each(|(l, v)| *l += v * v);
    }
    let tail: f32 = groups.remainder().iter().map(|v| v * v).sum();
    lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + f64::from(tail)
}

impl HostPriorTraining {
    /// The state of a run about to take its next step: `model` (raw weights), `optimizer`'s
    /// record (empty before the first step), and `ema`.
    ///
    /// # Errors
    /// [`crate::ModelError::Core`] when a tensor cannot be read back.
    pub(crate) fn new<AB: AutodiffBackend>(
        model: &DiffusionPrior<AB>,
        optimizer: &AdamWRecord<AB>,
        ema: &ExponentialMovingAverage<DiffusionPrior<AB::InnerBackend>>,
        training: &TrainingConfig,
    ) -> Result<Self> {
        let path = PriorGradients::from_prior(model)?;
        let ids = parameter_ids(model);
        let shapes = parameter_shapes(model);
        let sizes: Vec<usize> = path.parameters().iter().map(|p| p.len()).collect();
        if ids.len() != sizes.len() {
            return Err(crate::ModelError::InvalidConfig {
                field: "host_gradients",
                reason: "the prior has a layer without a bias or a norm without β; train with host_gradients off".into(),
            });
        }
        let (mut moment_1, mut moment_2) = (Vec::new(), Vec::new());
        let mut time = 0;
        for ((id, &size), shape) in ids.iter().zip(&sizes).zip(&shapes) {
            match optimizer.get(id) {
                Some(record) => {
                    let (m1, m2, t) = moments::<AB>(record.clone(), shape.len())?;
                    moment_1.push(m1);
                    moment_2.push(m2);
                    time = t;
                }
                None => {
                    moment_1.push(vec![0.0; size]);
                    moment_2.push(vec![0.0; size]);
                }
            }
        }
        let average = PriorGradients::from_prior(ema.average())?
            .parameters()
            .iter()
            .map(|p| p.to_vec())
            .collect();
        Ok(Self {
            path,
            moment_1,
            moment_2,
            time,
            average,
            ema_updates: ema.updates(),
            ema_decay: training.ema_decay,
            weight_decay: training.weight_decay as f32,
            grad_clip_norm: training.grad_clip_norm,
        })
    }

    /// One optimiser step on `batch` at learning rate `lr`: loss and gradients, global-norm
    /// clipping, AdamW, EMA. Returns the loss.
    ///
    /// # Errors
    /// As [`PriorGradients::loss_and_gradients`].
    pub(crate) fn step(&mut self, batch: &HostBatch, dropout_seed: u64, lr: f64) -> Result<f64> {
        use rayon::prelude::*;
        let (loss, mut gradients) = self.path.loss_and_gradients(batch, dropout_seed)?;
        let mut grads = gradients.parameters_mut();
        // Global-norm clipping: Σg² of fixed chunks in f32 lanes, the chunks' sums added in f64
        // in order (the same bits on any number of threads).
        if self.grad_clip_norm > 0.0 {
            let chunks: Vec<&[f32]> = grads.iter().flat_map(|g| g.chunks(UPDATE_CHUNK)).collect();
            let partial: Vec<f64> = chunks.into_par_iter().map(sum_of_squares).collect();
            let norm = partial.iter().sum::<f64>().sqrt();
            if norm > self.grad_clip_norm {
                let scale = (self.grad_clip_norm / norm) as f32;
                grads
                    .iter_mut()
                    .flat_map(|g| g.chunks_mut(UPDATE_CHUNK))
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .for_each(|g| g.iter_mut().for_each(|v| *v *= scale));
            }
        }
        // AdamW, burn's arithmetic.
        self.time += 1;
        let t = self.time as i32;
        let correction_1 = 1.0f32 - BETA_1.powi(t);
        let correction_2 = 1.0f32 - BETA_2.powi(t);
        let decay = (1.0 - lr * f64::from(self.weight_decay)) as f32;
        let lr = lr as f32;
        let first = self.time == 1;
        let ema_decay = {
            let u = self.ema_updates as f64;
            self.ema_decay.min((1.0 + u) / (10.0 + u)) as f32
        };
        // Every tensor cut into fixed chunks, so that the two threads share the work evenly
        // whatever the sizes of the tensors.
        let mut parameters = self.path.parameters_mut();
        let chunks: Vec<_> = parameters
            .iter_mut()
            .zip(grads.iter())
            .zip(self.moment_1.iter_mut())
            .zip(self.moment_2.iter_mut())
            .zip(self.average.iter_mut())
            .flat_map(|((((theta, g), m1), m2), avg)| {
                theta
                    .chunks_mut(UPDATE_CHUNK)
                    .zip(g.chunks(UPDATE_CHUNK))
                    .zip(m1.chunks_mut(UPDATE_CHUNK))
                    .zip(m2.chunks_mut(UPDATE_CHUNK))
                    .zip(avg.chunks_mut(UPDATE_CHUNK))
            })
            .collect();
        chunks
            .into_par_iter()
            .for_each(|((((theta, g), m1), m2), avg)| {
                // Zipped slices (no index checks), so that the loop vectorises.
                let (keep_1, keep_2) = if first { (0.0, 0.0) } else { (BETA_1, BETA_2) };
                for ((((t, &gi), m), v), a) in theta
                    .iter_mut()
                    .zip(g.iter())
                    .zip(m1.iter_mut())
                    .zip(m2.iter_mut())
                    .zip(avg.iter_mut())
                {
                    *m = *m * keep_1 + gi * (1.0 - BETA_1);
                    *v = *v * keep_2 + gi * gi * (1.0 - BETA_2);
                    let delta = (*m / correction_1) / ((*v / correction_2).sqrt() + EPSILON);
                    *t = *t * decay - delta * lr;
                    *a = *a * ema_decay + *t * (1.0 - ema_decay);
                }
            });
        drop(parameters);
        drop(grads);
        self.path.recycle(gradients);
        self.ema_updates += 1;
        Ok(loss)
    }

    /// `model` with the host weights.
    pub(crate) fn write_model<AB: AutodiffBackend>(
        &self,
        model: DiffusionPrior<AB>,
    ) -> DiffusionPrior<AB> {
        let ids = parameter_ids(&model);
        let values = ids.into_iter().zip(self.path.parameters()).collect();
        model.map(&mut Overwrite {
            values,
            require_grad: true,
        })
    }

    /// `ema` with the host average and update count.
    pub(crate) fn write_ema<B: Backend>(
        &self,
        ema: ExponentialMovingAverage<DiffusionPrior<B>>,
    ) -> ExponentialMovingAverage<DiffusionPrior<B>> {
        let decay = ema.decay();
        let average = ema.into_average();
        let ids = parameter_ids(&average);
        let values = ids
            .into_iter()
            .zip(self.average.iter().map(Vec::as_slice))
            .collect();
        let average = average.map(&mut Overwrite {
            values,
            require_grad: false,
        });
        ExponentialMovingAverage::resume(average, decay, self.ema_updates)
    }

    /// burn's AdamW record of the host moments, for `model`'s parameters.
    pub(crate) fn optimizer_record<AB: AutodiffBackend>(
        &self,
        model: &DiffusionPrior<AB>,
    ) -> AdamWRecord<AB> {
        let mut record = AdamWRecord::<AB>::default();
        if self.time == 0 {
            return record;
        }
        let device = model.null_query.val().device();
        let mut put = |id: ParamId, shape: Vec<usize>, m1: &[f32], m2: &[f32]| {
            let r = match shape.len() {
                1 => AdaptorRecord::from_state::<1>(state::<AB::InnerBackend, 1>(
                    m1, m2, &shape, self.time, &device,
                )),
                _ => AdaptorRecord::from_state::<2>(state::<AB::InnerBackend, 2>(
                    m1, m2, &shape, self.time, &device,
                )),
            };
            record.insert(id, r);
        };
        let shapes = parameter_shapes(model);
        for ((id, shape), (m1, m2)) in parameter_ids(model)
            .into_iter()
            .zip(shapes)
            .zip(self.moment_1.iter().zip(&self.moment_2))
        {
            put(id, shape, m1, m2);
        }
        record
    }
}

/// The shapes of [`parameter_ids`]' parameters.
fn parameter_shapes<B: Backend>(prior: &DiffusionPrior<B>) -> Vec<Vec<usize>> {
    struct Shapes(HashMap<ParamId, Vec<usize>>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.insert(param.id, param.val().dims().to_vec());
        }
    }
    let mut shapes = Shapes(HashMap::new());
    prior.visit(&mut shapes);
    parameter_ids(prior)
        .into_iter()
        .map(|id| shapes.0.remove(&id).unwrap_or_default())
        .collect()
}

fn tensor<B: Backend, const D: usize>(
    values: &[f32],
    shape: &[usize],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape.to_vec()), device)
}

/// An AdamW state of rank D from host moments.
fn state<B: Backend, const D: usize>(
    m1: &[f32],
    m2: &[f32],
    shape: &[usize],
    time: usize,
    device: &B::Device,
) -> AdamWState<B, D> {
    AdamWState::new(AdaptiveMomentumState::new(
        time,
        tensor(m1, shape, device),
        tensor(m2, shape, device),
    ))
}

/// Host moments and step count of one parameter's AdamW record of rank `rank` (1 or 2).
fn moments<AB: AutodiffBackend>(
    record: AdaptorRecord<AdamW, AB>,
    rank: usize,
) -> Result<(Vec<f32>, Vec<f32>, usize)> {
    use diff4steer_core::tensor_util::to_host_f32;
    Ok(if rank == 1 {
        let m = record.into_state::<1>().momentum;
        (to_host_f32(m.moment_1)?, to_host_f32(m.moment_2)?, m.time)
    } else {
        let m = record.into_state::<2>().momentum;
        (to_host_f32(m.moment_1)?, to_host_f32(m.moment_2)?, m.time)
    })
}

/// The host training loop state as the trainer drives it, whatever the model.
pub(crate) trait HostTraining<AB: AutodiffBackend, M: AutodiffModule<AB>> {
    /// One optimiser step (loss, gradients, clipping, AdamW, EMA); returns the loss.
    fn step(&mut self, batch: &HostBatch, dropout_seed: u64, lr: f64) -> Result<f64>;
    /// `model` with the host weights.
    fn write_model(&self, model: M) -> M;
    /// `ema` with the host average.
    fn write_ema(
        &self,
        ema: ExponentialMovingAverage<M::InnerModule>,
    ) -> ExponentialMovingAverage<M::InnerModule>;
    /// burn's optimiser record of the host moments.
    fn optimizer_record(&self, model: &M) -> AdamWRecord<AB>;
}

impl<AB: AutodiffBackend> HostTraining<AB, DiffusionPrior<AB>> for HostPriorTraining {
    fn step(&mut self, batch: &HostBatch, dropout_seed: u64, lr: f64) -> Result<f64> {
        HostPriorTraining::step(self, batch, dropout_seed, lr)
    }

    fn write_model(&self, model: DiffusionPrior<AB>) -> DiffusionPrior<AB> {
        HostPriorTraining::write_model(self, model)
    }

    fn write_ema(
        &self,
        ema: ExponentialMovingAverage<DiffusionPrior<AB::InnerBackend>>,
    ) -> ExponentialMovingAverage<DiffusionPrior<AB::InnerBackend>> {
        HostPriorTraining::write_ema(self, ema)
    }

    fn optimizer_record(&self, model: &DiffusionPrior<AB>) -> AdamWRecord<AB> {
        HostPriorTraining::optimizer_record(self, model)
    }
}
