//! The samplers, guidance and likelihood on the wgpu backend give what they give on the CPU
//! backend (same seed, same noise, f32 on both): a backend-conformance check that runs for real
//! on Mesa's llvmpipe software Vulkan driver in CI, and on a GPU where there is one.

mod common;

use burn::backend::{Autodiff, Wgpu};
use burn::tensor::backend::{AutodiffBackend, Backend};
use common::*;
use diff4steer_core::{karras, Conditioning, LinearGuidance, SeededNoise};
use diff4steer_models::{log_likelihood, Sampler, SamplerKind, TraceEstimator};

type Gpu = Wgpu<f32>;

fn samples_on<B: Backend>(kind: SamplerKind) -> Vec<Vec<f64>> {
    let mixture = three_modes();
    let guided = LinearGuidance::<B, _>::classifier_free(mixture, 1.5).unwrap();
    let cond: Conditioning<B> = conditioned(256, &[0.6, 0.3, 0.1]);
    let sampler = Sampler::new(kind, karras(24, 0.002, 80.0, 7.0).unwrap()).unwrap();
    rows(
        sampler
            .sample(&guided, &cond, &mut SeededNoise::new(8))
            .unwrap(),
    )
}

#[test]
fn every_sampler_agrees_with_the_cpu_backend() {
    for kind in SamplerKind::ALL {
        let cpu = samples_on::<TestBackend>(kind);
        let gpu = samples_on::<Gpu>(kind);
        let worst = cpu
            .iter()
            .flatten()
            .zip(gpu.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("{kind}: largest CPU/wgpu difference {worst:.2e}");
        // Same arithmetic in f32 with different reduction orders and exp/log implementations;
        // the trajectories start at σ = 80, so agreement to 1e-3 means the same samples.
        assert!(worst < 1e-3, "{kind}: {worst}");
    }
}

fn likelihoods_on<B: AutodiffBackend>() -> Vec<f64> {
    let mixture = three_modes();
    let points = mixture.sample(6, 2, None).unwrap();
    let grid = karras(32, 0.002, 80.0, 7.0).unwrap();
    let cond = Conditioning::<B>::unconditional(points.len(), 3, &Default::default()).unwrap();
    log_likelihood(
        &mixture,
        tensor(&points),
        &cond,
        &grid,
        TraceEstimator::Exact,
    )
    .unwrap()
}

#[test]
fn likelihood_agrees_with_the_cpu_backend() {
    let (cpu, gpu) = (
        likelihoods_on::<TestAutodiff>(),
        likelihoods_on::<Autodiff<Gpu>>(),
    );
    for (c, g) in cpu.iter().zip(&gpu) {
        assert!((c - g).abs() < 1e-3 * c.abs().max(1.0), "{c} vs {g}");
    }
}
