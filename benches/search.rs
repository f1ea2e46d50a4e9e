#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items.
//! Retrieval benches: exact flat search of one query's 32 seeds and of a batch over a 55,525 ×
//! 128 clustered catalogue (the size of jamendo-tags), HNSW search at several ef over 20,000
//! items, batched and one query per call (its build is slow; BENCHMARKS.md and benches/peers
//! compare it at full size), and the fusion of 32 per-seed lists.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use diff4steer_benches::workload::{clustered_catalogue, unit_rows, CATALOGUE_ITEMS, TARGET_DIM};
use diff4steer_index::{fuse, FlatIndex, Fusion, HnswConfig, HnswIndex, Similarity, VectorIndex};
use std::hint::black_box;

fn flat(c: &mut Criterion) {
    let catalogue = clustered_catalogue(CATALOGUE_ITEMS, TARGET_DIM, 200, 3);
    let index =
        FlatIndex::from_rows(TARGET_DIM, Similarity::InnerProduct, &catalogue).expect("index");
    let mut group = c.benchmark_group("flat_55525x128_top10");
    for queries in [1usize, 32, 1024] {
        let q = unit_rows(queries, TARGET_DIM, 5);
        group.bench_with_input(BenchmarkId::from_parameter(queries), &queries, |b, _| {
            b.iter(|| index.search(&q, 10).expect("hits"))
        });
    }
    group.finish();

    let seeds = unit_rows(32, TARGET_DIM, 6);
    let lists = index.search(&seeds, 100).expect("hits");
    let mut group = c.benchmark_group("fuse_32x100_to_10");
    for fusion in [
        Fusion::MaxScore,
        Fusion::ReciprocalRank { c: 60.0 },
        Fusion::RoundRobin,
        Fusion::Mmr { lambda: 0.5 },
    ] {
        group.bench_function(fusion.to_string(), |b| {
            b.iter(|| fuse(&lists, 10, fusion, &|id| index.vector(id)).expect("fused"))
        });
    }
    group.finish();
}

fn hnsw(c: &mut Criterion) {
    let catalogue = clustered_catalogue(20_000, TARGET_DIM, 200, 3);
    let mut index = HnswIndex::from_rows(
        TARGET_DIM,
        Similarity::Cosine,
        HnswConfig::default(),
        &catalogue,
    )
    .expect("index");
    let queries = unit_rows(256, TARGET_DIM, 7);
    let mut group = c.benchmark_group("hnsw_20000x128_256queries_top10");
    for ef in [16usize, 64, 128] {
        index.set_ef_search(ef);
        group.bench_with_input(BenchmarkId::new("ef", ef), &ef, |b, _| {
            b.iter(|| index.search(&queries, 10).expect("hits"))
        });
        // The same queries one call each: the per-query path a server answering one request at
        // a time takes (no batch to spread over threads, scratch reused per thread).
        group.bench_with_input(BenchmarkId::new("ef-one-at-a-time", ef), &ef, |b, _| {
            b.iter(|| {
                for query in queries.chunks_exact(TARGET_DIM) {
                    black_box(index.search(query, 10).expect("hits"));
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2));
    targets = flat, hnsw
}
criterion_main!(benches);
