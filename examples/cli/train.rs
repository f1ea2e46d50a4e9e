//! `train` and `train-regression`: fit a model on (query, target) pairs from .npy files and write
//! checkpoints to a folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
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
    /// Optimiser steps.
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Width of the residual MLP.
    #[arg(long, default_value_t = 512)]
    width: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 4)]
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
    /// Validation queries (with --valid-target): validation loss in the loss curve.
    #[arg(long, requires = "valid_target")]
    valid_query: Option<PathBuf>,
    /// Validation targets (with --valid-query).
    #[arg(long, requires = "valid_query")]
    valid_target: Option<PathBuf>,
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
    let valid = match (&args.valid_query, &args.valid_target) {
        (Some(q), Some(t)) => Some(pairs(q, t)?),
        _ => None,
    };
    let mut training = TrainingConfig::new()
        .with_steps(args.steps)
        .with_batch_size(args.batch)
        .with_seed(args.seed);
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
    format!(
        "trained {kind} ({} → {} dims) for {} steps: loss {:.5}{}; checkpoint in {}",
        data.query_dim(),
        data.target_dim(),
        report.steps,
        last.map_or(f64::NAN, |p| p.train_loss),
        report
            .final_valid_loss()
            .map_or(String::new(), |v| format!(", validation {v:.5}")),
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
