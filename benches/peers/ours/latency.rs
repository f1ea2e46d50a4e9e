//! `latency`: the real-time query path end to end through the front door, `GenerativeRetriever`
//! — one query → k seeds (host sampler, CFG) → exact search of the catalogue → reciprocal-rank
//! fusion to a top 10 — timed per query (p50/p99), as throughput with queries batched, and under
//! concurrent callers (`--clients 1,8,64`: that many threads share one retriever, each answering
//! its own queries one call at a time; p50/p99 per query and the throughput of all together).

use std::time::Instant;

use anyhow::Result;
use diff4steer_benches::workload::{
    clustered_catalogue, reference_prior, unit_rows, CATALOGUE_ITEMS, QUERY_DIM, TARGET_DIM,
};
use diff4steer_index::{Fusion, Preprocessing, Similarity};
use diff4steer_models::backend::CpuBackend as B;
use diff4steer_models::retrieval::{
    GenerativeRetriever, HostPrior, IndexChoice, RetrievalRequest, SearchSettings,
};
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
    /// Concurrent callers to measure, comma-separated (empty = skip); each level answers
    /// `--queries` queries in all.
    #[arg(long, value_delimiter = ',')]
    pub clients: Vec<usize>,
}

/// Fused top 10 of each of `queries` (rows of QUERY_DIM) through the front door.
fn answer(retriever: &GenerativeRetriever, queries: &[f32], seed: u64) -> Result<usize> {
    let request = retriever.defaults().clone().seed(seed);
    let lists = retriever.retrieve_with(queries, 10, &request)?;
    Ok(lists.iter().filter(|top| !top.is_empty()).count())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs the measurements and prints one JSON line for each.
pub fn run(args: &LatencyArgs) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    let retriever = pool.install(|| front_door(args))?;
    let queries = unit_rows(args.queries.max(args.batch), QUERY_DIM, 1);
    pool.install(|| measure(args, &retriever, &queries))?;
    // The callers are threads of their own (as a server's request handlers would be), outside
    // the pool whose threads do the work.
    for &clients in &args.clients {
        concurrent(&retriever, &queries, args, clients, &pool)?;
    }
    Ok(())
}

/// The reference prior, exact search of the clustered catalogue and reciprocal-rank fusion.
fn front_door(args: &LatencyArgs) -> Result<GenerativeRetriever> {
    let kind: SamplerKind = args.sampler.parse()?;
    let prior = reference_prior::<B>(args.width, args.depth, 0);
    Ok(
        GenerativeRetriever::builder(Box::new(HostPrior::from_prior(&prior)?))
            .sampler_kind(kind, args.steps)?
            .search(SearchSettings {
                index: IndexChoice::Flat,
                similarity: Similarity::InnerProduct,
                preprocessing: Preprocessing::None,
                fusion: Fusion::ReciprocalRank { c: 60.0 },
            })
            .catalogue(clustered_catalogue(CATALOGUE_ITEMS, TARGET_DIM, 200, 3))
            .defaults(
                RetrievalRequest::new()
                    .seeds_per_query(args.seeds)
                    .guidance(args.guidance),
            )
            .build()?,
    )
}

/// One query at a time (p50/p99), then batches of `--batch` queries (throughput).
fn measure(args: &LatencyArgs, retriever: &GenerativeRetriever, queries: &[f32]) -> Result<()> {
    let kind: SamplerKind = args.sampler.parse()?;
    let evaluations = kind.evaluations(args.steps);
    // Warm-up: page in the catalogue, grow the buffers.
    for i in 0..5 {
        answer(retriever, &queries[i * QUERY_DIM..(i + 1) * QUERY_DIM], 0)?;
    }
    let mut ms = Vec::with_capacity(args.queries);
    for i in 0..args.queries {
        let started = Instant::now();
        answer(
            retriever,
            &queries[i * QUERY_DIM..(i + 1) * QUERY_DIM],
            i as u64,
        )?;
        ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let mut throughput = serde_json::Value::Null;
    if args.batch > 0 {
        let batch = &queries[..args.batch * QUERY_DIM];
        answer(retriever, batch, 0)?;
        let rounds = (args.queries / args.batch).clamp(3, 20);
        let started = Instant::now();
        for r in 0..rounds {
            answer(retriever, batch, r as u64)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        throughput = serde_json::json!((rounds * args.batch) as f64 / seconds);
    }
    let report = serde_json::json!({
        "width": args.width, "depth": args.depth, "sampler": args.sampler, "steps": args.steps,
        "evaluations": evaluations, "seeds": args.seeds, "guidance": args.guidance,
        "threads": rayon::current_num_threads(), "queries": args.queries,
        "p50_ms": percentile(&ms, 50.0), "p99_ms": percentile(&ms, 99.0),
        "mean_ms": ms.iter().sum::<f64>() / ms.len() as f64,
        "batch": args.batch, "batched_queries_per_s": throughput,
    });
    println!("{report}");
    Ok(())
}

/// `clients` threads share `retriever`, each taking the next query from a shared counter and
/// answering it alone; prints p50/p99 per query and the throughput of all of them together.
fn concurrent(
    retriever: &GenerativeRetriever,
    queries: &[f32],
    args: &LatencyArgs,
    clients: usize,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let all_ms = Mutex::new(Vec::with_capacity(args.queries));
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..clients.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= args.queries {
                            return Ok(());
                        }
                        let query = &queries[i * QUERY_DIM..(i + 1) * QUERY_DIM];
                        let t = Instant::now();
                        pool.install(|| answer(retriever, query, i as u64))?;
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        all_ms.lock().expect("no worker panics").push(ms);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("no worker panics")?;
        }
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let mut ms = all_ms.into_inner().expect("no worker panics");
    ms.sort_by(f64::total_cmp);
    let report = serde_json::json!({
        "width": args.width, "depth": args.depth, "sampler": args.sampler, "steps": args.steps,
        "seeds": args.seeds, "threads": pool.current_num_threads(), "clients": clients,
        "queries": ms.len(), "p50_ms": percentile(&ms, 50.0), "p99_ms": percentile(&ms, 99.0),
        "queries_per_s": ms.len() as f64 / seconds,
    });
    println!("{report}");
    Ok(())
}
