#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items.
//! CPU backend comparison: the same workloads on the backend variant selected by this crate's
//! `cpu-…` features (one variant per build; BENCHMARKS.md lists the commands and the results).
//!
//! Workloads: forward of the reference residual MLP (width 512, depth 4, 128-d) at batch 64 (32
//! seeds with CFG) and 1024, one training step (forward + backward, batch 256) on `Autodiff`, and
//! a 32-step Heun trajectory of the analytic mixture denoiser (element-wise, overhead bound).

use burn::backend::Autodiff;
use burn::tensor::{Distribution, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use diff4steer_benches::reference_mlp::ReferenceMlp;
use diff4steer_benches::{cpu_backend_label, CpuBackend};
use diff4steer_core::{karras, Conditioning, GaussianMixture, SeededNoise};
use diff4steer_models::{Sampler, SamplerKind};

type B = CpuBackend;

fn mlp_forward(c: &mut Criterion) {
    let device = Default::default();
    let model = ReferenceMlp::<B>::new(128, 512, 4, &device);
    let mut group = c.benchmark_group("mlp_forward");
    for batch in [64, 1024] {
        let x = Tensor::<B, 2>::random([batch, 128], Distribution::Normal(0.0, 1.0), &device);
        group.bench_with_input(
            BenchmarkId::new(cpu_backend_label(), batch),
            &batch,
            |b, _| b.iter(|| model.forward(x.clone()).into_data()),
        );
    }
    group.finish();
}

fn mlp_train_step(c: &mut Criterion) {
    type A = Autodiff<B>;
    let device = Default::default();
    let model = ReferenceMlp::<A>::new(128, 512, 4, &device);
    let x = Tensor::<A, 2>::random([256, 128], Distribution::Normal(0.0, 1.0), &device);
    let target = Tensor::<A, 2>::random([256, 128], Distribution::Normal(0.0, 1.0), &device);
    c.bench_function(
        &format!("mlp_train_step/{}/256", cpu_backend_label()),
        |b| {
            b.iter(|| {
                let loss = (model.forward(x.clone()) - target.clone()).square().mean();
                loss.backward()
            })
        },
    );
}

fn mixture_trajectory(c: &mut Criterion) {
    let mixture = GaussianMixture::isotropic(
        vec![vec![-3.0, 0.0], vec![3.0, 0.0], vec![0.0, 4.0]],
        0.2,
        vec![1.0, 1.0, 1.0],
    )
    .expect("valid mixture");
    let sampler = Sampler::new(
        SamplerKind::Heun,
        karras(32, 0.002, 80.0, 7.0).expect("valid grid"),
    )
    .expect("valid sampler");
    let cond = Conditioning::<B>::unconditional(1024, 3, &Default::default()).expect("non-empty");
    c.bench_function(
        &format!("mixture_heun32/{}/1024", cpu_backend_label()),
        |b| {
            b.iter(|| {
                sampler
                    .sample(&mixture, &cond, &mut SeededNoise::new(0))
                    .expect("sampling succeeds")
                    .into_data()
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = mlp_forward, mlp_train_step, mixture_trajectory
}
criterion_main!(benches);
