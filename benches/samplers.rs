#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items.
//! Sampler benches over the analytic mixture denoiser (128-d, 8 components): one full trajectory
//! per sampler at 16 steps, plain and with classifier-free guidance, batch 64 (32 seeds × 2
//! queries). The learned prior's benches join these once it exists.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use diff4steer_benches::{cpu_backend_label, CpuBackend};
use diff4steer_core::{karras, Conditioning, GaussianMixture, LinearGuidance, SeededNoise};
use diff4steer_models::{Sampler, SamplerKind};

type B = CpuBackend;

const DIM: usize = 128;
const COMPONENTS: usize = 8;
const BATCH: usize = 64;

fn mixture() -> GaussianMixture {
    let mut noise = SeededNoise::new(99);
    let means = (0..COMPONENTS)
        .map(|_| {
            noise
                .normal_host(1, DIM)
                .into_iter()
                .map(f64::from)
                .collect()
        })
        .collect();
    GaussianMixture::isotropic(means, 0.05, vec![1.0; COMPONENTS]).expect("valid mixture")
}

fn trajectories(c: &mut Criterion) {
    let mixture = mixture();
    let guided = LinearGuidance::<B, _>::classifier_free(mixture.clone(), 2.0).expect("valid w");
    let weights: Vec<f32> = (0..COMPONENTS)
        .map(|k| if k < 2 { 0.5 } else { 0.0 })
        .collect();
    let cond = Conditioning::<B>::new(burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(weights, [1, COMPONENTS]),
        &Default::default(),
    ))
    .and_then(|c| c.fit_batch(BATCH))
    .expect("valid conditioning");
    let sigmas = karras(16, 0.002, 80.0, 7.0).expect("valid grid");
    let mut group = c.benchmark_group(format!("trajectory16/{}", cpu_backend_label()));
    for kind in SamplerKind::ALL {
        let sampler = Sampler::new(kind, sigmas.clone()).expect("valid sampler");
        group.bench_with_input(BenchmarkId::new("plain", kind.name()), &kind, |b, _| {
            b.iter(|| {
                sampler
                    .sample(&mixture, &cond, &mut SeededNoise::new(0))
                    .expect("samples")
                    .into_data()
            })
        });
        group.bench_with_input(BenchmarkId::new("cfg", kind.name()), &kind, |b, _| {
            b.iter(|| {
                sampler
                    .sample(&guided, &cond, &mut SeededNoise::new(0))
                    .expect("samples")
                    .into_data()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = trajectories
}
criterion_main!(benches);
