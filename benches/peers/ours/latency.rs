//! `latency`: the real-time query path end to end — one query → k seeds (host sampler, CFG) →
//! exact search of the catalogue → reciprocal-rank fusion to a top 10 — timed per query
//! (p50/p99), and as throughput with queries batched.

use std::time::Instant;

use anyhow::Result;
use diff4steer_benches::workload::{
    clustered_catalogue, reference_prior, unit_rows, CATALOGUE_ITEMS, QUERY_DIM, TARGET_DIM,
};
use diff4steer_core::karras;
use diff4steer_index::{fuse, FlatIndex, Fusion, Similarity, VectorIndex};
use diff4steer_models::backend::CpuBackend as B;
use diff4steer_models::fast::{FastPrior, FastSampler, FastScratch};
use diff4steer_models::SamplerKind;

/// `latency` options.
#[derive(clap::Args, Debug)]
pub struct LatencyArgs {
    /// Residual MLP width.
    #[arg(long, default_value_t = 512)]
    pub width: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Sampler: euler, heun or dpmpp2m.
    #[arg(long, default_value = "heun")]
    pub sampler: String,
    /// Sampler steps.
    #[arg(long, default_value_t = 16)]
    pub steps: usize,
    /// Seeds per query.
    #[arg(long, default_value_t = 32)]
    pub seeds: usize,
    /// Classifier-free guidance strength.
    #[arg(long, default_value_t = 2.0)]
    pub guidance: f64,
    /// Queries timed one at a time.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Queries per call in the throughput run (0 = skip it).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}

/// The pipeline's pieces, built once.
struct Pipeline {
    fast: FastPrior,
    sampler: FastSampler,
    flat: FlatIndex,
    seeds: usize,
}

impl Pipeline {
    /// Fused top 10 of each of `queries` (rows of QUERY_DIM).
    fn answer(&self, queries: &[f32], seed: u64, scratch: &mut FastScratch) -> Result<usize> {
        let seeds = self
            .sampler
            .sample(&self.fast, queries, self.seeds, seed, scratch)?;
        let lists = self.flat.search(&seeds, 10)?;
        let mut answered = 0;
        for per_query in lists.chunks(self.seeds) {
            let top = fuse(per_query, 10, Fusion::ReciprocalRank { c: 60.0 }, &|id| {
                self.flat.vector(id)
            })?;
            answered += usize::from(!top.is_empty());
        }
        Ok(answered)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs the measurement and prints one JSON line.
pub fn run(args: &LatencyArgs) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    pool.install(|| measure(args))
}

fn measure(args: &LatencyArgs) -> Result<()> {
    let kind: SamplerKind = args.sampler.parse()?;
    let prior = reference_prior::<B>(args.width, args.depth, 0);
    let pipeline = Pipeline {
        fast: FastPrior::from_prior(&prior)?,
        sampler: FastSampler::new(kind, karras(args.steps, 0.002, 80.0, 7.0)?, args.guidance)?,
        flat: FlatIndex::from_rows(
            TARGET_DIM,
            Similarity::InnerProduct,
            &clustered_catalogue(CATALOGUE_ITEMS, TARGET_DIM, 200, 3),
        )?,
        seeds: args.seeds,
    };
    let queries = unit_rows(args.queries.max(args.batch), QUERY_DIM, 1);
    let mut scratch = FastScratch::default();
    // Warm-up: page in the catalogue, grow the buffers.
    for i in 0..5 {
        pipeline.answer(
            &queries[i * QUERY_DIM..(i + 1) * QUERY_DIM],
            0,
            &mut scratch,
        )?;
    }
    let mut ms = Vec::with_capacity(args.queries);
    for i in 0..args.queries {
        let started = Instant::now();
        pipeline.answer(
            &queries[i * QUERY_DIM..(i + 1) * QUERY_DIM],
            i as u64,
            &mut scratch,
        )?;
        ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let mut throughput = serde_json::Value::Null;
    if args.batch > 0 {
        let batch = &queries[..args.batch * QUERY_DIM];
        pipeline.answer(batch, 0, &mut scratch)?;
        let rounds = (args.queries / args.batch).clamp(3, 20);
        let started = Instant::now();
        for r in 0..rounds {
            pipeline.answer(batch, r as u64, &mut scratch)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        throughput = serde_json::json!((rounds * args.batch) as f64 / seconds);
    }
    let report = serde_json::json!({
        "width": args.width, "depth": args.depth, "sampler": args.sampler, "steps": args.steps,
        "evaluations": pipeline.sampler.evaluations(), "seeds": args.seeds, "guidance": args.guidance,
        "threads": rayon::current_num_threads(), "queries": args.queries,
        "p50_ms": percentile(&ms, 50.0), "p99_ms": percentile(&ms, 99.0),
        "mean_ms": ms.iter().sum::<f64>() / ms.len() as f64,
        "batch": args.batch, "batched_queries_per_s": throughput,
    });
    println!("{report}");
    Ok(())
}
