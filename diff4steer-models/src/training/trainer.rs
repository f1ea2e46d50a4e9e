//! The training loop shared by the prior and the regression baseline.

use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::record::Recorder;
use burn::tensor::{backend::AutodiffBackend, backend::Backend, ElementConversion};
use diff4steer_core::TargetScaling;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::checkpoint::{encode_module, parameter_shapes, recorder, CheckpointState};
use super::host::{AdamWRecord, HostPriorTraining, HostTraining};
use super::{
    clip_global_norm, learning_rate, write_loss_csv, write_loss_plot, Batch, Checkpoint,
    ExponentialMovingAverage, HostBatch, LossPoint, ModelSpec, PairData, TrainableModel,
    TrainingConfig,
};
use crate::backend::backend_rng_lock;
use crate::prior::{DiffusionPrior, DiffusionPriorConfig};
use crate::regression::{RegressionConfig, RegressionModel};
use crate::{ModelError, Result};

/// Salt of the validation draws' random stream (fixed, so validation losses are comparable).
const VALIDATION_STREAM_SALT: u64 = 0x005e_ed0f_da7a;

/// What a training run did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingReport {
    /// The step the run started from (0, or the resumed checkpoint's step).
    pub started_at: usize,
    /// Total steps trained (the config's `steps`, or where the run was told to stop).
    pub steps: usize,
    /// Every step's losses, including those before a resume.
    pub history: Vec<LossPoint>,
    /// Optimiser steps per second of this run (data, forward, backward, update, EMA).
    pub steps_per_second: f64,
    /// Trainable scalars of the model.
    pub parameter_count: usize,
    /// The step whose EMA weights the run returns and keeps for sampling when
    /// [`TrainingConfig::keep_best`] chose them by validation loss (`None`: the last step's).
    pub best_step: Option<usize>,
}

impl TrainingReport {
    /// The last evaluated validation loss.
    pub fn final_valid_loss(&self) -> Option<f64> {
        self.history.iter().rev().find_map(|p| p.valid_loss)
    }
}

/// Where a run writes checkpoints, and whether it continues one.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    /// Checkpoint folder.
    pub dir: &'a Path,
    /// Continue from the newest checkpoint in `dir` (it must have the same model and training
    /// configuration, except `steps`, `validate_every`, `checkpoint_every` and `progress`; the
    /// run reproduces an uninterrupted one exactly when `steps` is unchanged too).
    pub resume: bool,
    /// Stop after this many steps in total (writing a checkpoint there), as a time-boxed or
    /// interrupted run would; the learning-rate schedule still spans the config's `steps`.
    pub stop_after: Option<usize>,
}

impl<'a> Output<'a> {
    /// Checkpoints into `dir`, starting afresh.
    pub fn new(dir: &'a Path) -> Self {
        Self {
            dir,
            resume: false,
            stop_after: None,
        }
    }

    /// Checkpoints into `dir`, continuing its newest checkpoint if there is one.
    pub fn resuming(dir: &'a Path) -> Self {
        Self {
            resume: true,
            ..Self::new(dir)
        }
    }

    /// Stops after `steps` steps in total.
    pub fn stopping_after(self, steps: usize) -> Self {
        Self {
            stop_after: Some(steps),
            ..self
        }
    }
}

/// Trains a [`DiffusionPrior`] with the EDM loss on `data`. With
/// [`DiffusionPriorConfig::standardise_targets`] (the default) the targets are first standardised
/// with their own per-dimension statistics, which are stored in the returned configuration and
/// the checkpoints; σ_d is estimated from the (standardised) targets. Returns the EMA model.
///
/// # Errors
/// [`ModelError::InvalidConfig`] / [`ModelError::Data`] for invalid settings or data that does not
/// fit the configuration; [`ModelError::Checkpoint`] / [`ModelError::Io`] for checkpoint problems;
/// [`ModelError::Data`] when the loss becomes non-finite.
pub fn train_prior<AB: AutodiffBackend>(
    config: &DiffusionPriorConfig,
    training: &TrainingConfig,
    data: &PairData,
    valid: Option<&PairData>,
    output: Option<Output<'_>>,
    device: &AB::Device,
) -> Result<(
    DiffusionPrior<AB::InnerBackend>,
    DiffusionPriorConfig,
    TrainingReport,
)> {
    check_dims(config.query_dim, config.target_dim, data, valid)?;
    let scaling = fitted_scaling(config.standardise_targets, config.target_scaling()?, data)?;
    let (data, valid) = in_model_units(scaling.as_ref(), data, valid)?;
    let sigma_data = data.target_std();
    if sigma_data.is_nan() || sigma_data <= 0.0 {
        return Err(ModelError::Data {
            source_name: "targets".into(),
            reason: "all target values are equal (σ_data = 0)".into(),
        });
    }
    let (shift, scale) = scaling_vectors(scaling.as_ref());
    let config = config
        .clone()
        .with_sigma_data(sigma_data)
        .with_target_shift(shift)
        .with_target_scale(scale);
    let spec = ModelSpec::DiffusionPrior(config.clone());
    let cpu = matches!(AB::InnerBackend::name(device).as_str(), "flex" | "ndarray");
    let make_host = |model: &DiffusionPrior<AB>,
                     optimizer: &AdamWRecord<AB>,
                     ema: &ExponentialMovingAverage<DiffusionPrior<AB::InnerBackend>>|
     -> Result<Box<dyn HostTraining<AB, DiffusionPrior<AB>>>> {
        Ok(Box::new(HostPriorTraining::new(
            model, optimizer, ema, training,
        )?))
    };
    let host: Option<&MakeHost<'_, AB, DiffusionPrior<AB>>> =
        (training.host_gradients && cpu).then_some(&make_host);
    let (model, report) = fit::<AB, DiffusionPrior<AB>>(
        &spec,
        || config.init_holding_rng_lock::<AB>(device),
        training,
        &data,
        valid.as_ref(),
        output,
        host,
        device,
    )?;
    Ok((model, config, report))
}

/// The target standardisation a run trains with: the one stored in the configuration (a
/// resumed or user-given one), else, when `standardise`, the statistics of `data`'s targets.
fn fitted_scaling(
    standardise: bool,
    stored: Option<TargetScaling>,
    data: &PairData,
) -> Result<Option<TargetScaling>> {
    if stored.is_some() || !standardise {
        return Ok(stored);
    }
    TargetScaling::standardising(data.targets(), data.target_dim())
        .map(Some)
        .map_err(|e| ModelError::Data {
            source_name: "targets".into(),
            reason: e.to_string(),
        })
}

/// `data` and `valid` with their targets in the model's units (unchanged without a scaling).
fn in_model_units(
    scaling: Option<&TargetScaling>,
    data: &PairData,
    valid: Option<&PairData>,
) -> Result<(PairData, Option<PairData>)> {
    match scaling {
        None => Ok((data.clone(), valid.cloned())),
        Some(map) => Ok((
            data.to_model_units(map)?,
            valid.map(|v| v.to_model_units(map)).transpose()?,
        )),
    }
}

/// The (shift, scale) vectors a configuration stores for `scaling` (empty for none).
fn scaling_vectors(scaling: Option<&TargetScaling>) -> (Vec<f32>, Vec<f32>) {
    scaling.map_or((Vec::new(), Vec::new()), |m| {
        (m.shift().to_vec(), m.scale().to_vec())
    })
}

/// Trains a [`RegressionModel`] on `data`'s pairs (target-only rows are skipped), on
/// standardised targets when [`RegressionConfig::standardise_targets`] (the default), like
/// [`train_prior`]. Returns the EMA model.
///
/// # Errors
/// As [`train_prior`].
pub fn train_regression<AB: AutodiffBackend>(
    config: &RegressionConfig,
    training: &TrainingConfig,
    data: &PairData,
    valid: Option<&PairData>,
    output: Option<Output<'_>>,
    device: &AB::Device,
) -> Result<(RegressionModel<AB::InnerBackend>, TrainingReport)> {
    check_dims(config.query_dim, config.target_dim, data, valid)?;
    if data.conditional_rows() == 0 {
        return Err(ModelError::Data {
            source_name: "training data".into(),
            reason: "has no pair with a query (a regression cannot learn from target-only rows)"
                .into(),
        });
    }
    let scaling = fitted_scaling(config.standardise_targets, config.target_scaling()?, data)?;
    let (data, valid) = in_model_units(scaling.as_ref(), data, valid)?;
    let (shift, scale) = scaling_vectors(scaling.as_ref());
    let config = config
        .clone()
        .with_target_shift(shift)
        .with_target_scale(scale);
    let spec = ModelSpec::Regression(config.clone());
    fit::<AB, RegressionModel<AB>>(
        &spec,
        || config.init_holding_rng_lock::<AB>(device),
        training,
        &data,
        valid.as_ref(),
        output,
        None,
        device,
    )
}

fn check_dims(
    query_dim: usize,
    target_dim: usize,
    data: &PairData,
    valid: Option<&PairData>,
) -> Result<()> {
    for (name, d) in
        std::iter::once(("training data", data)).chain(valid.map(|v| ("validation data", v)))
    {
        if d.query_dim() != query_dim || d.target_dim() != target_dim {
            return Err(ModelError::Data {
                source_name: name.into(),
                reason: format!(
                    "has query/target dimensions {}/{}, the model expects {query_dim}/{target_dim}",
                    d.query_dim(),
                    d.target_dim()
                ),
            });
        }
    }
    Ok(())
}

/// The training settings that must agree for a resume (everything but the run length and
/// reporting cadence).
fn resumable(c: &TrainingConfig) -> TrainingConfig {
    c.clone()
        .with_steps(0)
        .with_validate_every(0)
        .with_checkpoint_every(0)
        .with_progress(false)
}

fn seed_for_step(seed: u64, step: usize) -> u64 {
    seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Makes the host training state of a run (the prior's CPU path) from the model, the optimiser's
/// record and the EMA as they stand before the next step.
type MakeHost<'a, AB, M> = dyn Fn(
        &M,
        &AdamWRecord<AB>,
        &ExponentialMovingAverage<<M as AutodiffModule<AB>>::InnerModule>,
    ) -> Result<Box<dyn HostTraining<AB, M>>>
    + 'a;

/// Salt of the host path's dropout-mask stream (apart from the batch draws).
const DROPOUT_STREAM_SALT: u64 = 0xd709_0c7a_5eed;

#[allow(clippy::too_many_arguments)]
fn fit<AB, M>(
    spec: &ModelSpec,
    init: impl FnOnce() -> Result<M>,
    training: &TrainingConfig,
    data: &PairData,
    valid: Option<&PairData>,
    output: Option<Output<'_>>,
    host: Option<&MakeHost<'_, AB, M>>,
    device: &AB::Device,
) -> Result<(M::InnerModule, TrainingReport)>
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB> + TrainableModel<AB> + Clone,
    M::InnerModule: TrainableModel<AB::InnerBackend> + Clone,
{
    training.validate()?;
    let _rng_guard = backend_rng_lock();
    AB::seed(device, training.seed);
    let mut model = init()?;
    let parameter_count = model.num_params();
    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(training.weight_decay as f32)
        .init::<AB, M>();
    let mut ema = ExponentialMovingAverage::new(model.valid(), training.ema_decay);
    let mut history: Vec<LossPoint> = Vec::new();
    let mut start = 0;

    if let Some(out) = output.filter(|o| o.resume && o.dir.join("latest").exists()) {
        let checkpoint = Checkpoint::open(out.dir)?;
        if checkpoint.model() != spec || resumable(checkpoint.training()) != resumable(training) {
            return Err(ModelError::Checkpoint {
                path: out.dir.display().to_string(),
                reason: "was trained with another model or training configuration; cannot resume"
                    .into(),
            });
        }
        model = checkpoint.load_into(model, "train.mpk", device)?;
        let bytes = checkpoint.read_verified("optimizer.mpk")?;
        let record = Recorder::<AB>::load(&recorder(), bytes, device).map_err(|e| {
            ModelError::Checkpoint {
                path: checkpoint
                    .folder()
                    .join("optimizer.mpk")
                    .display()
                    .to_string(),
                reason: format!("cannot decode optimizer state: {e}"),
            }
        })?;
        optimizer = optimizer.load_record(record);
        let average = checkpoint.load_into(model.valid(), "model.mpk", device)?;
        ema =
            ExponentialMovingAverage::resume(average, training.ema_decay, checkpoint.ema_updates());
        history = checkpoint.history().to_vec();
        start = checkpoint.step();
    }

    // The lowest validation loss so far and its step (a resumed run's history included), and,
    // with keep_best, the EMA weights then.
    let mut lowest: Option<(f64, usize)> = history
        .iter()
        .filter_map(|p| p.valid_loss.map(|v| (v, p.step)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let mut since_best = history
        .iter()
        .filter(|p| p.valid_loss.is_some() && lowest.is_some_and(|(_, s)| p.step > s))
        .count();
    let mut best: Option<(usize, M::InnerModule)> = None;
    if let (true, Some((_, step)), Some(out)) = (training.keep_best, lowest, output) {
        if out.resume && out.dir.join("latest").exists() {
            let checkpoint = Checkpoint::open(out.dir)?;
            if checkpoint.has_best() {
                best = Some((
                    step,
                    checkpoint.load_into(model.valid(), "best.mpk", device)?,
                ));
            }
        }
    }
    let end = output
        .and_then(|o| o.stop_after)
        .map_or(training.steps, |stop| stop.min(training.steps));
    let progress = progress_bar(training, start);
    let mut last = start;
    let mut host_state = match host {
        Some(make) => Some(make(&model, &optimizer.to_record(), &ema)?),
        None => None,
    };
    let began = Instant::now();
    for step in start..end {
        AB::seed(device, seed_for_step(training.seed, step));
        let mut rng = Batch::<AB>::step_rng(training.seed, step);
        let batch = HostBatch::draw(
            data,
            None,
            training.batch_size,
            !model.learns_from_target_only_rows(),
            training,
            &mut rng,
        );
        let lr = learning_rate(training, step);
        let loss_value = match host_state.as_mut() {
            // The host path: loss, gradients, clipping, AdamW and EMA on host buffers.
            Some(state) => state.step(
                &batch,
                seed_for_step(training.seed ^ DROPOUT_STREAM_SALT, step),
                lr,
            )?,
            None => {
                let loss = model.loss(&Batch::<AB>::from_host(batch, device))?;
                let value: f64 = loss.clone().into_scalar().elem();
                if value.is_finite() {
                    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
                    clip_global_norm(&model, &mut grads, training.grad_clip_norm);
                    model = optimizer.step(lr, model, grads);
                    ema.update::<AB::InnerBackend>(&model.valid());
                }
                value
            }
        };
        if !loss_value.is_finite() {
            return Err(ModelError::Data {
                source_name: "training".into(),
                reason: format!(
                    "the loss became {loss_value} at step {}; lower the learning rate",
                    step + 1
                ),
            });
        }

        let done = step + 1;
        let validate = valid.is_some()
            && (done == training.steps
                || (training.validate_every > 0 && done % training.validate_every == 0));
        let checkpoint_due = output.is_some()
            && (done == training.steps
                || (training.checkpoint_every > 0 && done % training.checkpoint_every == 0));
        if let (Some(state), true) = (&host_state, validate || checkpoint_due) {
            // The burn modules from the host buffers, for validation and checkpoints.
            model = state.write_model(model);
            ema = state.write_ema(ema);
            optimizer = optimizer.load_record(state.optimizer_record(&model));
        }
        let valid_loss = match valid {
            Some(v) if validate => Some(validation_loss(ema.average(), v, training, device)?),
            _ => None,
        };
        history.push(LossPoint {
            step: done,
            train_loss: loss_value,
            learning_rate: lr,
            valid_loss,
        });
        last = done;
        let mut stop_early = false;
        if let Some(v) = valid_loss {
            if lowest.is_none_or(|(b, _)| v < b) {
                lowest = Some((v, done));
                if training.keep_best {
                    best = Some((done, ema.average().clone()));
                }
                since_best = 0;
            } else {
                since_best += 1;
                stop_early = training.patience > 0 && since_best >= training.patience;
            }
        }
        progress.set_position(done as u64);
        progress.set_message(match valid_loss {
            Some(v) => format!("loss {loss_value:.4} valid {v:.4}"),
            None => format!("loss {loss_value:.4}"),
        });
        if let Some(out) = output {
            let due = done == training.steps
                || stop_early
                || (training.checkpoint_every > 0 && done % training.checkpoint_every == 0);
            if due {
                let best_weights = best.as_ref().map(|(_, w)| w);
                save(
                    out.dir,
                    spec,
                    training,
                    done,
                    &model,
                    &optimizer,
                    &ema,
                    best_weights,
                    &history,
                )?;
            }
        }
        if stop_early {
            break;
        }
    }
    if let Some(state) = &host_state {
        ema = state.write_ema(ema);
    }
    progress.finish_and_clear();
    let elapsed = began.elapsed().as_secs_f64();
    let report = TrainingReport {
        started_at: start,
        steps: last.max(start),
        history,
        steps_per_second: last.saturating_sub(start) as f64 / elapsed.max(1e-9),
        parameter_count,
        best_step: best.as_ref().map(|(step, _)| *step),
    };
    match best {
        Some((_, weights)) => Ok((weights, report)),
        None => Ok((ema.into_average(), report)),
    }
}

#[allow(clippy::too_many_arguments)]
fn save<AB, M, O>(
    dir: &Path,
    spec: &ModelSpec,
    training: &TrainingConfig,
    step: usize,
    model: &M,
    optimizer: &O,
    ema: &ExponentialMovingAverage<M::InnerModule>,
    best: Option<&M::InnerModule>,
    history: &[LossPoint],
) -> Result<()>
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB> + Clone,
    M::InnerModule: Clone,
    O: Optimizer<M, AB>,
{
    let optimizer_bytes =
        Recorder::<AB>::record(&recorder(), optimizer.to_record(), ()).map_err(|e| {
            ModelError::Checkpoint {
                path: dir.display().to_string(),
                reason: format!("cannot encode optimizer state: {e}"),
            }
        })?;
    let mut files = vec![
        (
            "model.mpk",
            encode_module::<AB::InnerBackend, _>(ema.average(), dir)?,
        ),
        ("train.mpk", encode_module::<AB, _>(model, dir)?),
        ("optimizer.mpk", optimizer_bytes),
    ];
    if let Some(best) = best {
        files.push(("best.mpk", encode_module::<AB::InnerBackend, _>(best, dir)?));
    }
    let state = CheckpointState {
        model: spec,
        training,
        step,
        ema_updates: ema.updates(),
        parameter_shapes: parameter_shapes::<AB, M>(model),
        history,
    };
    Checkpoint::save(dir, state, &files)?;
    write_loss_csv(&dir.join("loss.csv"), history)?;
    write_loss_plot(&dir.join("loss.svg"), history)
}

/// Mean loss of the EMA model over the whole validation set, with fixed draws.
fn validation_loss<B: Backend, M: TrainableModel<B>>(
    model: &M,
    data: &PairData,
    training: &TrainingConfig,
    device: &B::Device,
) -> Result<f64> {
    let all_rows = model.learns_from_target_only_rows();
    let rows: Vec<usize> = (0..data.rows())
        .filter(|&r| all_rows || data.is_conditional(r))
        .collect();
    let mut total = 0.0;
    for (chunk_index, chunk) in rows.chunks(training.batch_size).enumerate() {
        let mut rng = Batch::<B>::step_rng(training.seed ^ VALIDATION_STREAM_SALT, chunk_index);
        let batch = Batch::<B>::draw(
            data,
            Some(chunk),
            chunk.len(),
            false,
            training,
            &mut rng,
            device,
        );
        let loss: f64 = model.loss(&batch)?.into_scalar().elem();
        total += loss * chunk.len() as f64;
    }
    Ok(total / rows.len().max(1) as f64)
}

fn progress_bar(training: &TrainingConfig, start: usize) -> ProgressBar {
    let target = if training.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(training.steps as u64), target);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} {wide_bar} {pos}/{len} {per_sec} {msg}")
    {
        bar.set_style(style);
    }
    bar.set_position(start as u64);
    bar
}
