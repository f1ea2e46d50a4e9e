//! A retrieval service in miniature: many threads answer queries at once through one shared
//! [`GenerativeRetriever`], and the program prints the latency percentiles and the throughput.
//!
//! ```text
//! cargo run --release --example retrieval_service [-- --threads 8 --queries 400 --seeds 16]
//! cargo run --release --example retrieval_service --features milvus -- --milvus http://127.0.0.1:19530
//! ```
//!
//! It trains a small prior on the synthetic music world first (about a minute), then every
//! worker thread takes queries from a shared counter and answers each with
//! `retriever.retrieve(query, 10)`: 16 seeds (DPM-Solver++, 8 steps, CFG), exact search over
//! 4,000 items, reciprocal-rank fusion. With `--milvus URL` (feature `milvus`) the same
//! workload runs a second time with the catalogue in a Milvus collection (HNSW, loaded by
//! `MilvusIndex::load_catalogue`, dropped at the end) as the retriever's index.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use diff4steer_eval::{MusicWorld, MusicWorldConfig};
use diff4steer_index::Preprocessing;
use diff4steer_models::backend::CpuAutodiff;
use diff4steer_models::retrieval::{GenerativeRetriever, HostPrior, RetrievalRequest, SeedSearch};
use diff4steer_models::training::{train_prior, PairData, TrainingConfig};
use diff4steer_models::{DiffusionPriorConfig, ResMlpConfig, SamplerKind};

/// `--name value` from the command line, or `default`.
fn option(name: &str, default: usize) -> Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => match args.get(i + 1).and_then(|v| v.parse().ok()) {
            Some(v) if v > 0 => Ok(v),
            _ => bail!("{name} needs a whole number ≥ 1"),
        },
    }
}

/// `--name value` from the command line, if given.
#[cfg_attr(not(feature = "milvus"), allow(dead_code))]
fn text_option(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<()> {
    let threads = option("--threads", 8)?;
    let total = option("--queries", 400)?;
    let seeds = option("--seeds", 16)?;

    // A small prior on the synthetic world (text views → items).
    let world = MusicWorld::generate(&MusicWorldConfig::default())?;
    let (items, texts) = (world.items(), world.text_views());
    let (dim, query_dim) = (items.ncols(), texts.ncols());
    let catalogue: Vec<f32> = items.iter().copied().collect();
    let data = PairData::from_vecs(
        texts.iter().copied().collect(),
        query_dim,
        catalogue.clone(),
        dim,
    )?;
    println!(
        "training a 256×3 prior on {} pairs (1,000 steps)",
        data.rows()
    );
    let (prior, _, _) = train_prior::<CpuAutodiff>(
        &DiffusionPriorConfig::new(dim, query_dim)
            .with_network(ResMlpConfig::new().with_width(256).with_depth(3)),
        &TrainingConfig::new().with_steps(1000).with_seed(1),
        &data,
        None,
        None,
        &Default::default(),
    )?;

    // One retriever, shared by every worker.
    let build = |search: Option<SeedSearch>| -> Result<GenerativeRetriever> {
        let builder = GenerativeRetriever::builder(Box::new(HostPrior::from_prior(&prior)?))
            .sampler_kind(SamplerKind::DpmSolverPlusPlus2M, 8)?
            .defaults(RetrievalRequest::new().seeds_per_query(seeds).guidance(2.0));
        let builder = match search {
            Some(search) => builder.search_stage(search),
            None => builder
                .catalogue(catalogue.clone())
                .preprocessing(Preprocessing::None),
        };
        Ok(builder.build()?)
    };
    let queries: Vec<Vec<f32>> = world
        .queries(false, 20, 11)
        .into_iter()
        .map(|q| q.text)
        .collect();
    let local = build(None)?;
    let label = format!("exact search over {} items", local.seed_search().len());
    serve(Arc::new(local), &queries, threads, total, seeds, &label)?;

    #[cfg(feature = "milvus")]
    if let Some(url) = text_option("--milvus") {
        use diff4steer_index::{Fusion, MilvusConfig, MilvusIndex, Similarity};
        let config = MilvusConfig::new(url.clone(), format!("service_{}", std::process::id()))
            .with_timeout(Duration::from_secs(60));
        let index = MilvusIndex::load_catalogue(
            config.clone(),
            &catalogue,
            dim,
            Similarity::Cosine,
            Preprocessing::None,
            Duration::from_secs(600),
        )?;
        let preprocessor = index.preprocessor()?;
        let search = SeedSearch::prebuilt(Box::new(index), preprocessor, Fusion::rrf())?;
        let remote = build(Some(search))?;
        let label = format!("Milvus HNSW at {url}");
        let served = serve(Arc::new(remote), &queries, threads, total, seeds, &label);
        MilvusIndex::drop_collection(&config)?;
        served?;
    }
    #[cfg(not(feature = "milvus"))]
    if text_option("--milvus").is_some() {
        bail!("--milvus needs the example built with --features milvus");
    }
    Ok(())
}

/// Answers `total` queries from `threads` workers through one shared retriever and prints the
/// latency percentiles and the throughput.
fn serve(
    retriever: Arc<GenerativeRetriever>,
    queries: &[Vec<f32>],
    threads: usize,
    total: usize,
    seeds: usize,
    label: &str,
) -> Result<()> {
    let queries = Arc::new(queries.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (retriever, queries, next, latencies) = (
                retriever.clone(),
                queries.clone(),
                next.clone(),
                latencies.clone(),
            );
            std::thread::spawn(move || -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok(());
                    }
                    let asked = Instant::now();
                    let hits = retriever.retrieve(&queries[i % queries.len()], 10)?;
                    let took = asked.elapsed();
                    assert_eq!(hits[0].len(), 10);
                    latencies
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push(took);
                }
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
    }
    let wall = started.elapsed();
    let mut latencies = Arc::try_unwrap(latencies)
        .map_err(|_| anyhow::anyhow!("workers still hold the latencies"))?
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    latencies.sort();
    println!(
        "{total} queries, {threads} threads in flight, {seeds} seeds each (DPM-Solver++ 8, CFG w = 2, {label}, RRF):"
    );
    println!(
        "  latency p50 {:.1} ms, p99 {:.1} ms; throughput {:.1} queries/s on {} cores",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        total as f64 / wall.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
