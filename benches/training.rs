#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items.
//! Training of the prior: `train_prior` with the CLI's recipe (EDM loss, condition dropout 0.1,
//! AdamW, clipping, EMA) for 16 steps of batch 256 at 256×3 and 512×4 — through the host
//! gradient path (the default on CPU backends) and through burn's autodiff — reported as
//! steps/s. Each iteration also builds the model and standardises the 4,096 pairs (a few ms,
//! against 16 steps' ≈ 1–5 s); `benches/peers` times the same against PyTorch.

use burn::backend::Autodiff;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use diff4steer_benches::workload::{prior_config, training_pairs, training_recipe};
use diff4steer_benches::CpuBackend;
use diff4steer_models::training::train_prior;

const STEPS: usize = 16;
const BATCH: usize = 256;

fn train_steps(c: &mut Criterion) {
    let data = training_pairs();
    let device = Default::default();
    let mut group = c.benchmark_group("train_prior_batch256");
    group.throughput(Throughput::Elements(STEPS as u64));
    let runs = [
        ("host-gradients", 256, 3),
        ("host-gradients", 512, 4),
        ("burn-autodiff", 256, 3),
    ];
    for (path, width, depth) in runs {
        let config = prior_config(width, depth);
        let recipe = training_recipe(STEPS, BATCH).with_host_gradients(path == "host-gradients");
        group.bench_function(BenchmarkId::new(path, format!("{width}x{depth}")), |b| {
            b.iter(|| {
                train_prior::<Autodiff<CpuBackend>>(&config, &recipe, &data, None, None, &device)
                    .expect("training runs")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(10));
    targets = train_steps
}
criterion_main!(benches);
