//! `tradeoff jamendo-mood`: quality against cost for the real-time path. Trains priors of several
//! sizes on the jamendo-mood training split, then scores (nDCG@10 on the evaluation split, the
//! benchmark's queries, RRF over the raw catalogue) every sampler setting of the host path:
//! DPM-Solver++(2M) at 4, 8 and 16 steps and the reference Heun at 16, with 8, 16 and 32 seeds.
//! BENCHMARKS.md pairs each setting with its end-to-end latency (`diff4steer-peers latency`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use diff4steer_core::karras;
use diff4steer_eval::JamendoMood;
use diff4steer_index::{atomic::write_atomic, Fusion, Preprocessing};
use diff4steer_models::backend::CpuAutodiff;
use diff4steer_models::retrieval::{
    HostPrior, RetrievalRequest, SearchSettings, SeedSampler, SeedSearch,
};
use diff4steer_models::training::{train_prior, TrainingConfig};
use diff4steer_models::{DiffusionPriorConfig, ResMlpConfig, Sampler, SamplerKind};

use crate::benchmark::{queries, score, training_pairs, Answer, Query};

/// `tradeoff` options.
#[derive(clap::Args, Debug)]
pub struct TradeoffArgs {
    /// The jamendo-mood folder (e.g. ../shared/data/jamendo-mood).
    #[arg(long)]
    data: PathBuf,
    /// Output folder: tradeoff.md and tradeoff.json.
    #[arg(long)]
    out: PathBuf,
    /// Training steps of each prior.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Network sizes, `WIDTHxDEPTH`, comma-separated.
    #[arg(long, default_value = "64x2,128x2,256x3,512x4")]
    sizes: String,
    /// Classifier-free guidance strength.
    #[arg(long, default_value_t = 1.0)]
    guidance: f64,
    /// Seed of training and sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// One scored setting.
#[derive(Debug, Clone, serde::Serialize)]
struct Point {
    width: usize,
    depth: usize,
    sampler: String,
    steps: usize,
    evaluations: usize,
    seeds: usize,
    ndcg_10: f64,
}

/// Runs the sweep and writes the report.
pub fn tradeoff_command(args: &TradeoffArgs) -> Result<()> {
    let started = Instant::now();
    let sizes = args
        .sizes
        .split(',')
        .map(|size| {
            size.split_once('x')
                .and_then(|(w, d)| Some((w.parse().ok()?, d.parse().ok()?)))
                .filter(|&(w, d): &(usize, usize)| w > 0 && d > 0)
                .with_context(|| format!("--sizes: `{size}` is not WIDTHxDEPTH with both ≥ 1"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mood = JamendoMood::load(&args.data).with_context(|| format!("{}", args.data.display()))?;
    let train = mood.split("train")?;
    let eval = mood.split("valid")?;
    let all: Vec<Query> = queries(&mood, &eval);
    let dim = eval.items.ncols();
    let query_dim = mood.tag_text_embeddings.ncols();
    let data = training_pairs(&mood, &train)?;
    let catalogue = eval
        .items
        .as_standard_layout()
        .into_owned()
        .into_raw_vec_and_offset()
        .0;
    let search = SeedSearch::new(
        catalogue,
        dim,
        SearchSettings {
            preprocessing: Preprocessing::None,
            ..SearchSettings::default()
        },
    )?;
    let texts: Vec<f32> = all.iter().flat_map(|q| q.text.clone()).collect();
    let no_truth = |_: &Query| Vec::new();
    let mut points = Vec::new();
    for (width, depth) in sizes {
        let config = DiffusionPriorConfig::new(dim, query_dim)
            .with_network(ResMlpConfig::new().with_width(width).with_depth(depth));
        let training = TrainingConfig::new()
            .with_steps(args.steps)
            .with_batch_size(256)
            .with_seed(args.seed);
        let t = Instant::now();
        let (prior, _, _) =
            train_prior::<CpuAutodiff>(&config, &training, &data, None, None, &Default::default())?;
        println!(
            "{width}x{depth}: trained in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        let host = HostPrior::from_prior(&prior)?;
        for (kind, steps) in [
            (SamplerKind::DpmSolverPlusPlus2M, 4),
            (SamplerKind::DpmSolverPlusPlus2M, 8),
            (SamplerKind::DpmSolverPlusPlus2M, 16),
            (SamplerKind::Heun, 16),
        ] {
            let sampler = SeedSampler::new(Box::new(host.clone()))?
                .with_sampler(Sampler::new(kind, karras(steps, 0.002, 80.0, 7.0)?)?);
            let request = RetrievalRequest::new()
                .seeds_per_query(32)
                .guidance(args.guidance)
                .seed(args.seed);
            let seeds = sampler.seeds(&texts, &request)?;
            for k in [8usize, 16, 32] {
                let rows: Vec<f32> = seeds
                    .chunks(32 * dim)
                    .flat_map(|q| q[..k * dim].to_vec())
                    .collect();
                let answer = Answer::Seeds { rows, per_query: k };
                let s = score(&answer, &all, &eval, &search, Fusion::rrf(), &no_truth)?;
                let point = Point {
                    width,
                    depth,
                    sampler: kind.name().into(),
                    steps,
                    evaluations: kind.evaluations(steps),
                    seeds: k,
                    ndcg_10: s.ndcg_10,
                };
                println!("{point:?}");
                points.push(point);
            }
        }
    }
    let best = points.iter().map(|p| p.ndcg_10).fold(f64::MIN, f64::max);
    let mut md = String::new();
    writeln!(md, "# Real-time trade-off on jamendo-mood\n")?;
    writeln!(md, "{} queries, nDCG@10 (RRF, raw catalogue of {} tracks), CFG w = {}, {} training steps per prior; best {best:.4}. `within 2%` = nDCG@10 ≥ 0.98 × best.\n", all.len(), eval.items.nrows(), args.guidance, args.steps)?;
    writeln!(
        md,
        "| network | sampler | steps | evaluations | seeds | nDCG@10 | within 2% |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---|")?;
    for p in &points {
        let ok = if p.ndcg_10 >= 0.98 * best { "yes" } else { "" };
        writeln!(
            md,
            "| {}×{} | {} | {} | {} | {} | {:.4} | {ok} |",
            p.width, p.depth, p.sampler, p.steps, p.evaluations, p.seeds, p.ndcg_10
        )?;
    }
    writeln!(md, "\nTotal time {:.0} s.", started.elapsed().as_secs_f64())?;
    std::fs::create_dir_all(&args.out)?;
    write_atomic(&args.out.join("tradeoff.md"), md.as_bytes())?;
    write_atomic(
        &args.out.join("tradeoff.json"),
        serde_json::to_string_pretty(&points)?.as_bytes(),
    )?;
    print!("{md}");
    Ok(())
}
