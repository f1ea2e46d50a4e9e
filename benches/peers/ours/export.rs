//! `export`: the reference workload and our outputs, as files another framework can read.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::{Tensor, TensorData};
use diff4steer_benches::workload::{
    clustered_catalogue, reference_prior, unit_rows, CATALOGUE_ITEMS, QUERY_DIM, TARGET_DIM,
};
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::{karras, Conditioning, Denoiser, SeededNoise};
use diff4steer_eval::io::npy::write_f32_matrix;
use diff4steer_index::{FlatIndex, Similarity, VectorIndex};
use diff4steer_models::backend::CpuBackend as B;
use diff4steer_models::fast::{FastPrior, FastSampler, FastScratch};
use diff4steer_models::SamplerKind;
use ndarray::Array2;

/// `export` options.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Output folder.
    #[arg(long)]
    pub dir: PathBuf,
    /// Residual MLP width.
    #[arg(long, default_value_t = 512)]
    pub width: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Seeds per query.
    #[arg(long, default_value_t = 32)]
    pub seeds: usize,
    /// Heun steps (16 steps = 31 network evaluations).
    #[arg(long, default_value_t = 16)]
    pub steps: usize,
    /// Classifier-free guidance strength.
    #[arg(long, default_value_t = 2.0)]
    pub guidance: f64,
    /// Distinct queries.
    #[arg(long, default_value_t = 8)]
    pub queries: usize,
    /// Catalogue items (clustered, unit norm; the default is jamendo-tags' size).
    #[arg(long, default_value_t = CATALOGUE_ITEMS)]
    pub items: usize,
    /// Queries of the HNSW comparison (noisy catalogue items).
    #[arg(long, default_value_t = 1000)]
    pub hnsw_queries: usize,
    /// Seed of everything.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Writes `values` as a `[rows, cols]` float32 .npy.
pub fn write(dir: &Path, name: &str, values: &[f32], cols: usize) -> Result<()> {
    let matrix = Array2::from_shape_vec((values.len() / cols, cols), values.to_vec())?;
    write_f32_matrix(&dir.join(format!("{name}.npy")), &matrix)?;
    Ok(())
}

/// The σ grid of the reference sampler (EDM's Karras schedule, σ ∈ [0.002, 80], ρ = 7).
pub fn reference_sigmas(steps: usize) -> Result<diff4steer_core::Sigmas> {
    Ok(karras(steps, 0.002, 80.0, 7.0)?)
}

/// Writes the workload; see the module docs of main.rs.
pub fn run(args: &ExportArgs) -> Result<()> {
    let dir = &args.dir;
    fs::create_dir_all(dir.join("weights")).with_context(|| format!("creating {dir:?}"))?;
    let prior = reference_prior::<B>(args.width, args.depth, args.seed);
    let fast = FastPrior::from_prior(&prior)?;
    let mut names = Vec::new();
    for t in fast.named_tensors() {
        let cols = *t.shape.last().expect("every tensor has a shape");
        write(&dir.join("weights"), &t.name, t.values, cols)?;
        names.push(serde_json::json!({"name": t.name, "shape": t.shape}));
    }
    let sigmas = reference_sigmas(args.steps)?;
    let (q, k) = (args.queries, args.seeds);
    let queries = unit_rows(q, QUERY_DIM, args.seed + 1);
    write(dir, "queries", &queries, QUERY_DIM)?;
    write(
        dir,
        "noise",
        &SeededNoise::new(args.seed).normal_host(q * k, TARGET_DIM),
        TARGET_DIM,
    )?;

    // One denoiser call on a CFG batch of query 0: k conditional rows, then k null rows, at σ = 2.
    let x_check = unit_rows(2 * k, TARGET_DIM, args.seed + 2)
        .iter()
        .map(|v| v * 20.0)
        .collect::<Vec<_>>();
    let device = Default::default();
    let cond_rows: Vec<f32> = (0..2 * k)
        .flat_map(|_| queries[..QUERY_DIM].to_vec())
        .collect();
    let null_rows: Vec<bool> = (0..2 * k).map(|r| r >= k).collect();
    let cond = Conditioning::<B>::with_null_rows(
        Tensor::from_data(TensorData::new(cond_rows, [2 * k, QUERY_DIM]), &device),
        null_rows,
    )?;
    let x = Tensor::<B, 2>::from_data(
        TensorData::new(x_check.clone(), [2 * k, TARGET_DIM]),
        &device,
    );
    let sigma = Tensor::<B, 1>::from_data(TensorData::new(vec![2.0f32; 2 * k], [2 * k]), &device);
    let denoised = to_host_f32(prior.denoise(x, sigma, &cond)?)?;
    write(dir, "check_x", &x_check, TARGET_DIM)?;
    write(dir, "check_denoised", &denoised, TARGET_DIM)?;

    // Our seeds for every query (the host path; tests/fast_prior.rs ties it to the burn sampler).
    let sampler = FastSampler::new(SamplerKind::Heun, sigmas.clone(), args.guidance)?;
    let seeds = sampler.sample(&fast, &queries, k, args.seed, &mut FastScratch::default())?;
    write(dir, "seeds", &seeds, TARGET_DIM)?;

    // The catalogue, our exact neighbours of every seed, and the HNSW queries.
    let catalogue = clustered_catalogue(args.items, TARGET_DIM, 200, args.seed + 3);
    write(dir, "catalogue", &catalogue, TARGET_DIM)?;
    let flat = FlatIndex::from_rows(TARGET_DIM, Similarity::InnerProduct, &catalogue)?;
    let hits = flat.search(&seeds, 10)?;
    let ids: Vec<f32> = hits
        .iter()
        .flat_map(|h| h.iter().map(|h| h.id as f32))
        .collect();
    write(dir, "flat_ids", &ids, 10)?;
    let hnsw_queries = noisy_items(&catalogue, args.hnsw_queries, args.seed + 4);
    write(dir, "hnsw_queries", &hnsw_queries, TARGET_DIM)?;

    let manifest = serde_json::json!({
        "width": args.width, "depth": args.depth, "target_dim": TARGET_DIM, "query_dim": QUERY_DIM,
        "sigma_data": fast.sigma_data(), "seeds_per_query": k, "queries": q, "guidance": args.guidance,
        "sampler": "heun", "sigmas": sigmas.as_slice(), "check_sigma": 2.0, "seed": args.seed,
        "catalogue_items": args.items, "k": 10, "tensors": names,
    });
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    println!("exported to {}", dir.display());
    Ok(())
}

/// `n` catalogue items (cycled with a stride) plus N(0, 0.05²/dim) noise, renormalised.
pub fn noisy_items(catalogue: &[f32], n: usize, seed: u64) -> Vec<f32> {
    let items = catalogue.len() / TARGET_DIM;
    let noise = unit_rows(n, TARGET_DIM, seed);
    let mut out = Vec::with_capacity(n * TARGET_DIM);
    for i in 0..n {
        let item = (i * 7919) % items;
        let row: Vec<f32> = catalogue[item * TARGET_DIM..(item + 1) * TARGET_DIM]
            .iter()
            .zip(&noise[i * TARGET_DIM..(i + 1) * TARGET_DIM])
            .map(|(c, e)| c + 0.1 * e)
            .collect();
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        out.extend(row.iter().map(|v| v / norm));
    }
    out
}
