//! `train` and `train-regression`: fit a model on (query, target) pairs from .npy files and write
//! checkpoints to a folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use diff4steer_models::backend::CpuAutodiff;
use diff4steer_models::training::{
    train_prior, train_regression, Output, PairData, TrainingConfig, TrainingReport,
};
use diff4steer_models::{DiffusionPriorConfig, RegressionConfig, ResMlpConfig};

/// Options shared by both trainers.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Query embeddings, [n, query_dim] float32.
    #[arg(long)]
    query: PathBuf,
    /// Target embeddings, [n, target_dim] float32 (row i pairs with query row i).
    #[arg(long)]
    target: PathBuf,
    /// Checkpoint folder (created; an existing checkpoint there is replaced by newer steps).
    #[arg(long)]
    out: PathBuf,
    /// Optimiser steps (the length of the learning-rate schedule; validation may stop it
    /// earlier, see --patience).
    #[arg(long, default_value_t = 6_000)]
    steps: usize,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Width of the residual MLP. 256 (with 3 blocks) by default: on MusicCaps (2,663 pairs)
    /// the paper's 512×4 is no better and overfits sooner (caption Recall@10 on valid with these
    /// defaults: prior 0.284 vs regression 0.266 at 256×3; 0.262 vs 0.274 at 512×4).
    #[arg(long, default_value_t = 256)]
    width: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// Seed of initialisation, batches and noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a checkpoint every this many steps (and at the end); 0 = only at the end.
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Continue the newest checkpoint in --out (same data and options; a killed run picks up
    /// where its last checkpoint left off) instead of starting afresh.
    #[arg(long)]
    resume: bool,
    /// Validation queries (with --valid-target): validation loss in the loss curve, and the
    /// weights kept for sampling are those of the lowest validation loss.
    #[arg(long, requires = "valid_target")]
    valid_query: Option<PathBuf>,
    /// Validation targets (with --valid-query).
    #[arg(long, requires = "valid_query")]
    valid_target: Option<PathBuf>,
    /// Without --valid-query: hold out this share of the pairs (drawn with --seed) as validation
    /// data; 0 = train on every pair with no validation. The prior overfits small pair sets
    /// (MusicCaps, 2,663 pairs: caption Recall@10 0.297 at the validation minimum near 2,000
    /// steps, 0.246 after 20,000), so by default the lowest-validation-loss weights are kept.
    #[arg(long, default_value_t = 0.1)]
    valid_fraction: f64,
    /// Validate every this many steps.
    #[arg(long, default_value_t = 250)]
    validate_every: usize,
    /// Stop after this many validations in a row without a new lowest validation loss (0 =
    /// train all --steps).
    #[arg(long, default_value_t = 8)]
    patience: usize,
    /// Keep the last step's weights for sampling instead of the lowest-validation-loss ones.
    #[arg(long)]
    keep_last: bool,
    /// Train in the targets' own units instead of standardising them (per-dimension mean and
    /// standard deviation of the targets, stored in the checkpoint; outputs always come out in
    /// the targets' units).
    #[arg(long)]
    raw_targets: bool,
}

/// `train` options.
#[derive(clap::Args, Debug)]
pub struct PriorArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Probability of replacing the query by the null condition (enables classifier-free
    /// guidance at sampling time).
    #[arg(long, default_value_t = 0.1)]
    cond_dropout: f64,
    /// Mean of ln σ of the training noise levels (EDM P_mean; the library default, 1.0, won on
    /// MusicCaps; EDM's image value is −1.2).
    #[arg(long, allow_negative_numbers = true)]
    p_mean: Option<f64>,
    /// Standard deviation of ln σ of the training noise levels (EDM P_std; default 1.0).
    #[arg(long)]
    p_std: Option<f64>,
}

/// `train-regression` options.
#[derive(clap::Args, Debug)]
pub struct RegressionArgs {
    #[command(flatten)]
    common: CommonArgs,
}

fn pairs(query: &Path, target: &Path) -> Result<PairData> {
    PairData::from_npy(query, target)
        .with_context(|| format!("{} + {}", query.display(), target.display()))
}

/// Training data, optional validation data, training settings and the network.
fn prepare(
    args: &CommonArgs,
) -> Result<(PairData, Option<PairData>, TrainingConfig, ResMlpConfig)> {
    let data = pairs(&args.query, &args.target)?;
    if !(0.0..0.5).contains(&args.valid_fraction) {
        bail!(
            "--valid-fraction must be in [0, 0.5), got {}",
            args.valid_fraction
        );
    }
    let (data, valid) = match (&args.valid_query, &args.valid_target) {
        (Some(q), Some(t)) => (data, Some(pairs(q, t)?)),
        // Too few pairs to hold any out (a held-out side of at least 2 rows).
        _ if args.valid_fraction == 0.0 || (data.rows() as f64 * args.valid_fraction) < 2.0 => {
            (data, None)
        }
        _ => {
            let (train, valid) = data
                .split(args.valid_fraction, args.seed)
                .with_context(|| format!("holding out --valid-fraction {}", args.valid_fraction))?;
            (train, Some(valid))
        }
    };
    let mut training = TrainingConfig::new()
        .with_steps(args.steps)
        .with_batch_size(args.batch)
        .with_seed(args.seed)
        .with_validate_every(args.validate_every)
        .with_patience(args.patience)
        .with_keep_best(!args.keep_last);
    if let Some(every) = args.checkpoint_every {
        training = training.with_checkpoint_every(every);
    }
    let network = ResMlpConfig::new()
        .with_width(args.width)
        .with_depth(args.depth);
    Ok((data, valid, training, network))
}

/// Where a run writes its checkpoints, continuing the newest one with --resume.
fn output(args: &CommonArgs) -> Output<'_> {
    if args.resume {
        Output::resuming(&args.out)
    } else {
        Output::new(&args.out)
    }
}

/// One line about a finished run.
fn summary(kind: &str, data: &PairData, report: &TrainingReport, out: &Path) -> String {
    let last = report.history.last();
    let lowest = report
        .history
        .iter()
        .filter_map(|p| p.valid_loss.map(|v| (v, p.step)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    format!(
        "trained {kind} ({} → {} dims) for {} steps: loss {:.5}{}{}; checkpoint in {}",
        data.query_dim(),
        data.target_dim(),
        report.steps,
        last.map_or(f64::NAN, |p| p.train_loss),
        lowest.map_or(String::new(), |(v, step)| format!(
            ", lowest validation {v:.5} at step {step}"
        )),
        report.best_step.map_or(String::new(), |step| format!(
            " (weights of step {step} kept)"
        )),
        out.display()
    )
}

/// Runs `train`.
pub fn train_prior_command(args: &PriorArgs) -> Result<()> {
    let (data, valid, training, network) = prepare(&args.common)?;
    let mut training = training.with_cond_dropout(args.cond_dropout);
    if let Some(p_mean) = args.p_mean {
        training = training.with_p_mean(p_mean);
    }
    if let Some(p_std) = args.p_std {
        training = training.with_p_std(p_std);
    }
    let config = DiffusionPriorConfig::new(data.target_dim(), data.query_dim())
        .with_network(network)
        .with_standardise_targets(!args.common.raw_targets);
    let out = &args.common.out;
    let (_, _, report) = train_prior::<CpuAutodiff>(
        &config,
        &training,
        &data,
        valid.as_ref(),
        Some(output(&args.common)),
        &Default::default(),
    )
    .with_context(|| format!("training into {}", out.display()))?;
    println!("{}", summary("a diffusion prior", &data, &report, out));
    Ok(())
}

/// Runs `train-regression`.
pub fn train_regression_command(args: &RegressionArgs) -> Result<()> {
    let (data, valid, training, network) = prepare(&args.common)?;
    let config = RegressionConfig::new(data.target_dim(), data.query_dim())
        .with_network(network)
        .with_standardise_targets(!args.common.raw_targets);
    let out = &args.common.out;
    let (_, report) = train_regression::<CpuAutodiff>(
        &config,
        &training,
        &data,
        valid.as_ref(),
        Some(output(&args.common)),
        &Default::default(),
    )
    .with_context(|| format!("training into {}", out.display()))?;
    println!("{}", summary("a regression model", &data, &report, out));
    Ok(())
}
