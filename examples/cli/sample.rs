//! `sample`: K seeds per query from a trained checkpoint (a diffusion prior with guidance,
//! negative conditions and steering, or the regression baseline's K copies), through the
//! library's [`SeedSampler`] — the fast host path for euler, heun and dpmpp2m.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use diff4steer_eval::io::npy::write_f32_matrix;
use diff4steer_models::retrieval::SeedSampler;
use ndarray::Array2;

use crate::options::{read_rows, SamplingArgs};

/// `sample` options.
#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    /// Checkpoint folder written by `train` or `train-regression`.
    #[arg(long)]
    model: PathBuf,
    /// Query embeddings, [n, query_dim] float32.
    #[arg(long)]
    query: PathBuf,
    /// Seeds per query (K).
    #[arg(long)]
    seeds: usize,
    /// Output: [n·K, target_dim] float32, query-major (rows q·K … q·K+K−1 belong to query q).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    sampling: SamplingArgs,
}

/// Runs `sample`.
pub fn sample_command(args: &SampleArgs) -> Result<()> {
    let (queries, query_dim) = read_rows(&args.query, "queries")?;
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let seeds = SeedSampler::open(&args.model)
        .with_context(|| format!("{}", args.model.display()))?
        .with_sampler(args.sampling.sampler()?);
    let (expected, target_dim) = (seeds.source().query_dim(), seeds.source().target_dim());
    if query_dim != expected {
        bail!(
            "{}: queries are {query_dim}-d, the model in {} expects {expected}",
            args.query.display(),
            args.model.display()
        );
    }
    let n = queries.len() / query_dim;
    let request = args
        .sampling
        .request(args.seeds, n, query_dim, target_dim)?;
    let rows = seeds
        .seeds(&queries, &request)
        .with_context(|| format!("sampling {}", args.model.display()))?;
    let matrix = Array2::from_shape_vec((n * args.seeds, target_dim), rows)?;
    write_f32_matrix(&args.out, &matrix).context("writing seeds")?;
    println!(
        "{} seeds ({n} queries × {}) of {target_dim} dims → {}",
        n * args.seeds,
        args.seeds,
        args.out.display()
    );
    Ok(())
}
