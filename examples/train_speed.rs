//! Training throughput of the diffusion prior on random data, on the CPU backend of this build.
//!
//! ```text
//! cargo run --release --example train_speed                                   # burn-flex (default)
//! cargo run --release --example train_speed --no-default-features --features ndarray
//! ```
//!
//! Defaults are the reference configuration: width 512, depth 4, batch 256, 128-d targets,
//! 384-d queries. Prints the parameter count and optimiser steps per second (data draws, forward,
//! backward, clipping, AdamW update and EMA; initialisation excluded).

use anyhow::Result;
use clap::Parser;
use diff4steer_core::SeededNoise;
use diff4steer_models::backend::CpuAutodiff;
use diff4steer_models::training::{train_prior, Output, PairData, TrainingConfig};
use diff4steer_models::{DiffusionPriorConfig, ResMlpConfig};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Measure training steps/s of the diffusion prior")]
struct Args {
    /// Hidden width.
    #[arg(long, default_value_t = 512)]
    width: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Target dimension.
    #[arg(long, default_value_t = 128)]
    target_dim: usize,
    /// Query dimension.
    #[arg(long, default_value_t = 384)]
    query_dim: usize,
    /// Steps to time.
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// Also write checkpoints and the loss curve (loss.csv, loss.svg) into this folder.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut noise = SeededNoise::new(0);
    let rows = 4096;
    let data = PairData::from_vecs(
        noise.normal_host(rows, args.query_dim),
        args.query_dim,
        noise.normal_host(rows, args.target_dim),
        args.target_dim,
    )?;
    let config = DiffusionPriorConfig::new(args.target_dim, args.query_dim).with_network(
        ResMlpConfig::new()
            .with_width(args.width)
            .with_depth(args.depth),
    );
    let training = TrainingConfig::new()
        .with_steps(args.steps)
        .with_batch_size(args.batch)
        .with_progress(false);
    let backend = std::any::type_name::<CpuAutodiff>();
    let output = args.out.as_deref().map(Output::new);
    let (_, _, report) =
        train_prior::<CpuAutodiff>(&config, &training, &data, None, output, &Default::default())?;
    println!(
        "{backend}: width {} depth {} batch {} target {} query {}: {} parameters, {:.2} steps/s",
        args.width,
        args.depth,
        args.batch,
        args.target_dim,
        args.query_dim,
        report.parameter_count,
        report.steps_per_second
    );
    Ok(())
}
