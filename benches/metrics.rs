#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items.
//! Metric benches: ranking metrics over 1,000 queries × 100 results, and the distribution and
//! diversity metrics over 1,000 × 128 seed sets.

use criterion::{criterion_group, criterion_main, Criterion};
use diff4steer_benches::workload::{unit_rows, TARGET_DIM};
use diff4steer_eval::{
    evaluate, frechet_distance, intra_list_diversity, prdc, vendi_score, Qrels, RankingMetric, Run,
};

fn ranking(c: &mut Criterion) {
    let mut run = Run::new();
    let mut qrels = Qrels::new();
    for q in 0..1000 {
        let query = format!("q{q}");
        for d in 0..100 {
            run.push(
                &query,
                &format!("d{}", (q * 7 + d * 13) % 500),
                100.0 - d as f64,
            )
            .ok();
        }
        for d in 0..20 {
            qrels
                .insert(&query, &format!("d{}", (q * 3 + d * 11) % 500), 1)
                .ok();
        }
    }
    let metrics: Vec<RankingMetric> = ["ndcg@10", "recall@100", "map@100", "mrr@10"]
        .iter()
        .map(|m| m.parse().expect("metric"))
        .collect();
    c.bench_function("evaluate_1000q_x100_4metrics", |b| {
        b.iter(|| evaluate(&run, &qrels, &metrics).expect("report"))
    });
}

fn distribution(c: &mut Criterion) {
    let a = unit_rows(1000, TARGET_DIM, 1);
    let b_rows = unit_rows(1000, TARGET_DIM, 2);
    c.bench_function("frechet_1000x128", |b| {
        b.iter(|| frechet_distance(&a, &b_rows, TARGET_DIM).expect("fd"))
    });
    c.bench_function("prdc_1000x128_k5", |b| {
        b.iter(|| prdc(&a, &b_rows, TARGET_DIM, 5).expect("prdc"))
    });
    let seeds = unit_rows(32, TARGET_DIM, 3);
    c.bench_function("vendi_32x128", |b| {
        b.iter(|| vendi_score(&seeds, TARGET_DIM).expect("vendi"))
    });
    c.bench_function("intra_list_diversity_32x128", |b| {
        b.iter(|| intra_list_diversity(&seeds, TARGET_DIM).expect("ild"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2));
    targets = ranking, distribution
}
criterion_main!(benches);
