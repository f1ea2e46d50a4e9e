//! `serve`: times our side of each comparison on request, so the peer script can alternate
//! ours and theirs in one run. Commands on stdin, one per line; one JSON line back per command:
//!
//! - `sample fast N` / `sample burn N`: N single-query trajectories (k seeds, the exported
//!   sampler with CFG) through the host path / the burn model;
//! - `sample batch Q N`: N trajectories of Q queries sampled together on the host path (one
//!   GEMM per layer over all their seeds);
//! - `sgemm D N`: N products of two D × D matrices on rayon's pool (the machine's GEMM rate);
//! - `forward fast B N` / `forward burn B N`: N denoiser calls on B rows (half conditional, half
//!   null, one query);
//! - `flat N`: N exact searches of one query's k seeds (top 10) over the catalogue;
//! - `hnsw EF N`: N batched HNSW searches of the HNSW queries at ef_search EF, with recall@10;
//! - `hnsw-single EF N`: the same queries one `search` call each, on the calling thread;
//! - `fuse N`: N reciprocal-rank fusions of one query's per-seed lists (depth 100) to a top 10;
//! - `quit`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::{Tensor, TensorData};
use diff4steer_benches::workload::{reference_prior, QUERY_DIM, TARGET_DIM};
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::{Conditioning, Denoiser, LinearGuidance, Sigmas};
use diff4steer_eval::io::npy::read_f32_matrix;
use diff4steer_index::dense::{matmul, RightLayout, Threads};
use diff4steer_index::{
    fuse, FlatIndex, Fusion, Hit, HnswConfig, HnswIndex, Similarity, VectorIndex,
};
use diff4steer_models::backend::CpuBackend as B;
use diff4steer_models::fast::{FastPrior, FastSampler, FastScratch, HostCondition};
use diff4steer_models::{DiffusionPrior, PriorSeeds, Sampler, SamplerKind, SeedGenerator};

/// `serve` options.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Folder written by `export`.
    #[arg(long)]
    pub dir: PathBuf,
}

/// Everything the commands time, loaded once.
struct Workload {
    prior: DiffusionPrior<B>,
    fast: FastPrior,
    sigmas: Sigmas,
    guidance: f64,
    seeds_per_query: usize,
    queries: Vec<f32>,
    seeds: Vec<f32>,
    check_x: Vec<f32>,
    flat: FlatIndex,
    hnsw: HnswIndex,
    hnsw_build_s: f64,
    hnsw_queries: Vec<f32>,
    hnsw_truth: Vec<Vec<Hit>>,
}

fn matrix(dir: &std::path::Path, name: &str) -> Result<Vec<f32>> {
    Ok(read_f32_matrix(&dir.join(format!("{name}.npy")))?
        .into_raw_vec_and_offset()
        .0)
}

impl Workload {
    fn load(dir: &std::path::Path) -> Result<Self> {
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json"))?)?;
        let get = |key: &str| {
            manifest[key]
                .as_u64()
                .with_context(|| format!("manifest {key}"))
        };
        let prior =
            reference_prior::<B>(get("width")? as usize, get("depth")? as usize, get("seed")?);
        let fast = FastPrior::from_prior(&prior)?;
        let sigmas: Vec<f64> = serde_json::from_value(manifest["sigmas"].clone())?;
        let catalogue = matrix(dir, "catalogue")?;
        let started = Instant::now();
        let hnsw = HnswIndex::from_rows(
            TARGET_DIM,
            Similarity::Cosine,
            HnswConfig::default(),
            &catalogue,
        )?;
        let hnsw_build_s = started.elapsed().as_secs_f64();
        eprintln!("our HNSW built in {hnsw_build_s:.1} s");
        let flat = FlatIndex::from_rows(TARGET_DIM, Similarity::InnerProduct, &catalogue)?;
        let hnsw_queries = matrix(dir, "hnsw_queries")?;
        let hnsw_truth = flat.search(&hnsw_queries, 10)?;
        let workload = Self {
            prior,
            fast,
            sigmas: Sigmas::new(sigmas)?,
            guidance: manifest["guidance"].as_f64().context("manifest guidance")?,
            seeds_per_query: get("seeds_per_query")? as usize,
            queries: matrix(dir, "queries")?,
            seeds: matrix(dir, "seeds")?,
            check_x: matrix(dir, "check_x")?,
            flat,
            hnsw,
            hnsw_build_s,
            hnsw_queries,
            hnsw_truth,
        };
        // The weights re-created from the seed must be the exported ones.
        let expected = matrix(dir, "check_denoised")?;
        let got = workload.forward_burn(2 * workload.seeds_per_query)?;
        let worst = expected
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        if worst > 1e-5 {
            bail!("re-created prior differs from the exported one by {worst}");
        }
        Ok(workload)
    }

    fn query(&self, i: usize) -> &[f32] {
        let n = self.queries.len() / QUERY_DIM;
        &self.queries[(i % n) * QUERY_DIM..(i % n + 1) * QUERY_DIM]
    }

    /// The burn prior on `rows` rows of the check batch (half conditional, half null) at σ = 2.
    fn forward_burn(&self, rows: usize) -> Result<Vec<f32>> {
        let device = Default::default();
        let x = Tensor::<B, 2>::from_data(
            TensorData::new(self.check_x_rows(rows), [rows, TARGET_DIM]),
            &device,
        );
        let cond_rows: Vec<f32> = (0..rows).flat_map(|_| self.query(0).to_vec()).collect();
        let cond = Conditioning::<B>::with_null_rows(
            Tensor::from_data(TensorData::new(cond_rows, [rows, QUERY_DIM]), &device),
            (0..rows).map(|r| rows > 1 && r >= rows / 2).collect(),
        )?;
        let sigma = Tensor::<B, 1>::from_data(TensorData::new(vec![2.0f32; rows], [rows]), &device);
        Ok(to_host_f32(self.prior.denoise(x, sigma, &cond)?)?)
    }

    /// `rows` rows of the check batch, cycled.
    fn check_x_rows(&self, rows: usize) -> Vec<f32> {
        self.check_x
            .iter()
            .cycle()
            .take(rows * TARGET_DIM)
            .copied()
            .collect()
    }
}

/// Times `n` calls of `f`, in milliseconds, after one untimed warm-up call.
fn time(n: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<Vec<f64>> {
    f(0)?;
    (0..n)
        .map(|i| {
            let started = Instant::now();
            f(i + 1)?;
            Ok(started.elapsed().as_secs_f64() * 1e3)
        })
        .collect()
}

fn answer(w: &Workload, words: &[&str], scratch: &mut FastScratch) -> Result<serde_json::Value> {
    let n = |i: usize| -> Result<usize> { Ok(words.get(i).context("missing count")?.parse()?) };
    let k = w.seeds_per_query;
    Ok(match words {
        ["sample", "fast", ..] => {
            let sampler = FastSampler::new(SamplerKind::Heun, w.sigmas.clone(), w.guidance)?;
            let ms = time(n(2)?, |i| {
                sampler.sample(&w.fast, w.query(i), k, i as u64, scratch)?;
                Ok(())
            })?;
            serde_json::json!({ "ms": ms })
        }
        ["sample", "batch", ..] => {
            let sampler = FastSampler::new(SamplerKind::Heun, w.sigmas.clone(), w.guidance)?;
            let queries: Vec<f32> = (0..n(2)?).flat_map(|q| w.query(q).to_vec()).collect();
            let ms = time(n(3)?, |i| {
                sampler.sample(&w.fast, &queries, k, i as u64, scratch)?;
                Ok(())
            })?;
            serde_json::json!({ "ms": ms })
        }
        ["sgemm", ..] => {
            let d = n(1)?;
            let a: Vec<f32> = (0..d * d).map(|i| (i % 7) as f32 * 0.1).collect();
            let mut c = vec![0.0f32; d * d];
            let ms = time(n(2)?, |_| {
                matmul(
                    &mut c,
                    &a,
                    &a,
                    (d, d, d),
                    RightLayout::RowMajor,
                    false,
                    Threads::Pool,
                )?;
                Ok(())
            })?;
            serde_json::json!({ "ms": ms })
        }
        ["sample", "burn", ..] => {
            let seeds = PriorSeeds::new(
                LinearGuidance::classifier_free(&w.prior, w.guidance)?,
                Sampler::new(SamplerKind::Heun, w.sigmas.clone())?,
            );
            let ms = time(n(2)?, |i| {
                let q = Tensor::<B, 2>::from_data(
                    TensorData::new(w.query(i).to_vec(), [1, QUERY_DIM]),
                    &Default::default(),
                );
                let out = SeedGenerator::<B>::seeds(&seeds, q, k, i as u64)?;
                to_host_f32(out)?;
                Ok(())
            })?;
            serde_json::json!({ "ms": ms })
        }
        ["forward", "fast", ..] => {
            let rows = n(2)?;
            let conditions = [
                HostCondition {
                    sigma: 2.0,
                    query: Some(w.query(0)),
                },
                HostCondition {
                    sigma: 2.0,
                    query: None,
                },
            ];
            let row_condition: Vec<usize> = (0..rows)
                .map(|r| usize::from(rows > 1 && r >= rows / 2))
                .collect();
            let mut out = vec![0.0f32; rows * TARGET_DIM];
            let x = &w.check_x_rows(rows);
            let ms = time(n(3)?, |_| {
                w.fast
                    .denoise_into(x, &row_condition, &conditions, &mut out, scratch);
                Ok(())
            })?;
            serde_json::json!({ "ms": ms })
        }
        ["forward", "burn", ..] => {
            let rows = n(2)?;
            let ms = time(n(3)?, |_| {
                w.forward_burn(rows)?;
                Ok(())
            })?;
            serde_json::json!({ "ms": ms })
        }
        ["flat", ..] => {
            let queries = w.seeds.len() / (k * TARGET_DIM);
            let ms = time(n(1)?, |i| {
                let q = i % queries;
                w.flat
                    .search(&w.seeds[q * k * TARGET_DIM..(q + 1) * k * TARGET_DIM], 10)?;
                Ok(())
            })?;
            serde_json::json!({ "ms": ms })
        }
        ["hnsw", ..] => {
            let ef: usize = n(1)?;
            let mut index = w.hnsw.clone();
            index.set_ef_search(ef);
            let mut recall = 0.0;
            let ms = time(n(2)?, |_| {
                let got = index.search(&w.hnsw_queries, 10)?;
                recall = recall_at_10(&got, &w.hnsw_truth);
                Ok(())
            })?;
            serde_json::json!({ "ms": ms, "recall": recall, "queries": w.hnsw_truth.len() })
        }
        ["hnsw-single", ..] => {
            let ef: usize = n(1)?;
            let mut index = w.hnsw.clone();
            index.set_ef_search(ef);
            let mut recall = 0.0;
            let ms = time(n(2)?, |_| {
                let got = w
                    .hnsw_queries
                    .chunks_exact(TARGET_DIM)
                    .map(|q| Ok(index.search(q, 10)?.swap_remove(0)))
                    .collect::<Result<Vec<_>>>()?;
                recall = recall_at_10(&got, &w.hnsw_truth);
                Ok(())
            })?;
            serde_json::json!({ "ms": ms, "recall": recall, "queries": w.hnsw_truth.len() })
        }
        ["fuse", ..] => {
            let lists = w.flat.search(&w.seeds[..k * TARGET_DIM], 100)?;
            let ms = time(n(1)?, |_| {
                fuse(&lists, 10, Fusion::ReciprocalRank { c: 60.0 }, &|id| {
                    w.flat.vector(id)
                })?;
                Ok(())
            })?;
            serde_json::json!({ "ms": ms })
        }
        _ => bail!("unknown command {words:?}"),
    })
}

/// Mean fraction of the true top 10 found.
pub fn recall_at_10(got: &[Vec<Hit>], truth: &[Vec<Hit>]) -> f64 {
    let total: usize = got
        .iter()
        .zip(truth)
        .map(|(g, t)| g.iter().filter(|h| t.iter().any(|x| x.id == h.id)).count())
        .sum();
    total as f64 / (10 * truth.len()) as f64
}

/// Loads the workload, prints `ready`, then answers commands until `quit` or end of input.
pub fn run(args: &ServeArgs) -> Result<()> {
    let workload = Workload::load(&args.dir)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "{}",
        serde_json::json!({
            "ready": true,
            "threads": rayon::current_num_threads(),
            "hnsw_build_s": workload.hnsw_build_s,
        })
    )?;
    out.flush()?;
    let mut scratch = FastScratch::default();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"quit") {
            break;
        }
        let reply = answer(&workload, &words, &mut scratch)
            .unwrap_or_else(|e| serde_json::json!({ "error": format!("{e:#}") }));
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}
