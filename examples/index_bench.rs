//! Flat vs HNSW on synthetic vectors: build time, queries per second and recall@10 against the
//! exact flat index; with feature `faiss`, faiss' Flat and HNSW through the same trait, in the
//! same run; with feature `milvus` and `--milvus URL`, a Milvus HNSW collection (M,
//! efConstruction and ef as ours) too. With `--seeds-per-query S` each query is S seeds, all
//! searched in one batched call, and queries/s counts queries (S seed searches each).
//!
//! ```text
//! cargo run --release --example index_bench -- --n 100000 --dim 128 --data sphere
//! cargo run --release --example index_bench --features faiss -- --n 100000 --data clustered
//! cargo run --release --example index_bench --features milvus -- --milvus http://127.0.0.1:19530 --queries 100 --seeds-per-query 32
//! ```

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use diff4steer_core::SeededNoise;
use diff4steer_index::{FlatIndex, Hit, HnswConfig, HnswIndex, Similarity, VectorIndex};

/// Which synthetic vectors to index.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Data {
    /// Uniform on the unit sphere.
    Sphere,
    /// 100 Gaussian clusters (spread 0.1 around random unit centres), normalised.
    Clustered,
}

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Build and query flat and HNSW indexes; report QPS and recall@10")]
struct Args {
    /// Catalogue size.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Number of queries.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Seeds per query (each seed is one search; all of them go in one batched call).
    #[arg(long, default_value_t = 1)]
    seeds_per_query: usize,
    /// A Milvus server's URL (feature `milvus`): its HNSW runs side by side, in a collection
    /// created for the run and dropped after it.
    #[arg(long)]
    milvus: Option<String>,
    /// Synthetic data.
    #[arg(long, value_enum, default_value_t = Data::Sphere)]
    data: Data,
    /// HNSW M.
    #[arg(long, default_value_t = 32)]
    m: usize,
    /// HNSW ef_construction.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// HNSW ef_search values to try.
    #[arg(long, value_delimiter = ',', default_value = "32,64,128,256,512")]
    ef_search: Vec<usize>,
    /// faiss index-factory descriptions to run side by side (feature `faiss`); HNSW ones get
    /// the same M (write `HNSW{m}`), ef_construction and ef_search values as ours.
    #[arg(long, value_delimiter = ',', default_value = "Flat,HNSW32")]
    faiss: Vec<String>,
}

/// Mean recall@k of `got` against `truth`.
fn recall(got: &[Vec<Hit>], truth: &[Vec<Hit>], k: usize) -> f64 {
    got.iter()
        .zip(truth)
        .map(|(g, t)| {
            let t: HashSet<u64> = t.iter().map(|h| h.id).collect();
            g.iter().filter(|h| t.contains(&h.id)).count() as f64 / k as f64
        })
        .sum::<f64>()
        / truth.len() as f64
}

/// Runs every seed once in one batched call, prints queries/s (a query being
/// `seeds_per_query` seeds) and recall@k per seed.
fn measure(
    label: &str,
    index: &dyn VectorIndex,
    seeds: &[f32],
    truth: &[Vec<Hit>],
    k: usize,
    seeds_per_query: usize,
) -> Result<()> {
    let start = Instant::now();
    let got = index.search(seeds, k)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label}: {:.1} queries/s ({:.0} seeds/s), recall@{k} {:.4}",
        (truth.len() / seeds_per_query) as f64 / secs,
        truth.len() as f64 / secs,
        recall(&got, truth, k)
    );
    Ok(())
}

/// Milvus HNSW with our M, efConstruction and ef values, in a collection of its own.
#[cfg(feature = "milvus")]
fn run_milvus(
    args: &Args,
    url: &str,
    items: &[f32],
    seeds: &[f32],
    truth: &[Vec<Hit>],
    k: usize,
) -> Result<()> {
    use diff4steer_index::{MilvusConfig, MilvusIndex, MilvusIndexKind, Preprocessing};
    use std::time::Duration;
    let kind = |ef: usize| MilvusIndexKind::Hnsw {
        m: args.m,
        ef_construction: args.ef_construction,
        ef,
    };
    let config = MilvusConfig::new(url, format!("index_bench_{}", std::process::id()))
        .with_index(kind(64))
        .with_timeout(Duration::from_secs(120));
    let start = Instant::now();
    MilvusIndex::load_catalogue(
        config.clone(),
        items,
        args.dim,
        Similarity::Cosine,
        Preprocessing::None,
        Duration::from_secs(1800),
    )?;
    println!(
        "milvus HNSW{}: loaded and built in {:.2} s (M {}, efConstruction {})",
        args.m,
        start.elapsed().as_secs_f64(),
        args.m,
        args.ef_construction
    );
    let measured = args.ef_search.iter().try_for_each(|&ef| -> Result<()> {
        let index = MilvusIndex::open(config.clone().with_index(kind(ef)))?;
        measure(
            &format!("milvus HNSW{} ef {ef}", args.m),
            &index,
            seeds,
            truth,
            k,
            args.seeds_per_query,
        )
    });
    MilvusIndex::drop_collection(&config)?;
    measured
}

#[cfg(feature = "faiss")]
fn run_faiss(
    args: &Args,
    items: &[f32],
    queries: &[f32],
    truth: &[Vec<Hit>],
    k: usize,
) -> Result<()> {
    use diff4steer_index::FaissIndex;
    for description in &args.faiss {
        let hnsw = description.starts_with("HNSW");
        let start = Instant::now();
        let mut index = FaissIndex::new(args.dim, Similarity::Cosine, description)?;
        if hnsw {
            index.set_parameter("efConstruction", args.ef_construction as f64)?;
        }
        let ids: Vec<u64> = (0..args.n as u64).collect();
        index.add(&ids, items)?;
        println!(
            "faiss {description}: built in {:.2} s",
            start.elapsed().as_secs_f64()
        );
        if hnsw {
            for ef in &args.ef_search {
                index.set_parameter("efSearch", *ef as f64)?;
                measure(
                    &format!("faiss {description} efSearch {ef}"),
                    &index,
                    queries,
                    truth,
                    k,
                    args.seeds_per_query,
                )?;
            }
        } else {
            measure(
                &format!("faiss {description}"),
                &index,
                queries,
                truth,
                k,
                args.seeds_per_query,
            )?;
        }
    }
    Ok(())
}

fn vectors(data: Data, n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut noise = SeededNoise::new(seed);
    match data {
        Data::Sphere => noise.normal_host(n, dim),
        Data::Clustered => {
            let centres = SeededNoise::new(999).normal_host(100, dim);
            let jitter = noise.normal_host(n, dim);
            (0..n)
                .flat_map(|i| {
                    let c = &centres[(i % 100) * dim..(i % 100 + 1) * dim];
                    let norm = c.iter().map(|v| v * v).sum::<f32>().sqrt();
                    let j = &jitter[i * dim..(i + 1) * dim];
                    c.iter()
                        .zip(j)
                        .map(move |(a, b)| a / norm + 0.1 * b / (dim as f32).sqrt())
                        .collect::<Vec<_>>()
                })
                .collect()
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let items = vectors(args.data, args.n, args.dim, 1);
    if args.seeds_per_query == 0 {
        anyhow::bail!("--seeds-per-query must be at least 1");
    }
    // Every seed is a search; a query's seeds are consecutive rows.
    let queries = vectors(args.data, args.queries * args.seeds_per_query, args.dim, 2);
    let k = 10;

    let start = Instant::now();
    let flat = FlatIndex::from_rows(args.dim, Similarity::Cosine, &items)?;
    println!("flat: built in {:.2} s", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let truth = flat.search(&queries, k)?;
    let flat_secs = start.elapsed().as_secs_f64();
    println!(
        "flat: {:.1} queries/s ({} queries × {} seeds batched)",
        args.queries as f64 / flat_secs,
        args.queries,
        args.seeds_per_query
    );

    let config = HnswConfig {
        m: args.m,
        ef_construction: args.ef_construction,
        ef_search: 64,
        seed: 0,
    };
    let start = Instant::now();
    let mut hnsw = HnswIndex::from_rows(args.dim, Similarity::Cosine, config, &items)?;
    println!(
        "hnsw: built in {:.2} s (M {}, ef_construction {})",
        start.elapsed().as_secs_f64(),
        args.m,
        args.ef_construction
    );
    for ef in &args.ef_search {
        hnsw.set_ef_search(*ef);
        measure(
            &format!("hnsw ef_search {ef}"),
            &hnsw,
            &queries,
            &truth,
            k,
            args.seeds_per_query,
        )?;
    }
    #[cfg(feature = "faiss")]
    run_faiss(&args, &items, &queries, &truth, k)?;
    match &args.milvus {
        #[cfg(feature = "milvus")]
        Some(url) => run_milvus(&args, url, &items, &queries, &truth, k)?,
        #[cfg(not(feature = "milvus"))]
        Some(_) => anyhow::bail!("--milvus needs the example built with --features milvus"),
        None => {}
    }
    Ok(())
}
