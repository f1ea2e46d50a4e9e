//! Probability-flow likelihood and inversion against closed-form densities and round trips.

mod common;

use common::*;
use diff4steer_core::{karras, Conditioning, GaussianMixture, SeededNoise};
use diff4steer_models::{invert, log_likelihood, Sampler, SamplerKind, TraceEstimator};

fn grid() -> diff4steer_core::Sigmas {
    karras(64, 0.002, 80.0, 7.0).unwrap()
}

/// A finer grid for the single-Gaussian check: at 64 steps the trapezoidal divergence integral
/// is off by ~0.05 nats for a component of variance 0.05 (checked with an independent float64
/// NumPy integration), at 128 steps by < 0.01.
fn fine_grid() -> diff4steer_core::Sigmas {
    karras(128, 0.002, 80.0, 7.0).unwrap()
}

fn null_rows<B: burn::tensor::backend::Backend>(
    n: usize,
    mixture: &GaussianMixture,
) -> Conditioning<B> {
    Conditioning::unconditional(n, mixture.components(), &Default::default()).unwrap()
}

/// Exact log p_{σ_min}(x) (the integration starts at σ_min = 0.002, not 0).
fn closed_form(mixture: &GaussianMixture, points: &[Vec<f64>]) -> Vec<f64> {
    points
        .iter()
        .map(|p| mixture.log_density(p, 0.002, None).unwrap())
        .collect()
}

#[test]
fn exact_trace_likelihood_matches_a_gaussian_density() {
    // Centred near 0: the terminal density N(0, σ_max² I) of the method is then (almost) the exact
    // p_{σ_max}; a mean far from 0 adds a mismatch of order ⟨x − μ, μ⟩/(σ_max·√v) nats.
    let gaussian = GaussianMixture::new(
        vec![vec![0.1, -0.2, 0.0]],
        vec![vec![0.3, 1.2, 0.05]],
        vec![1.0],
    )
    .unwrap();
    let points = gaussian.sample(12, 3, None).unwrap();
    let got = log_likelihood(
        &gaussian,
        tensor::<TestAutodiff>(&points),
        &null_rows(points.len(), &gaussian),
        &fine_grid(),
        TraceEstimator::Exact,
    )
    .unwrap();
    for (g, e) in got.iter().zip(closed_form(&gaussian, &points)) {
        println!("log p: ODE {g:.4}, closed form {e:.4}");
        assert!((g - e).abs() < 0.02, "{g} vs {e}");
    }
}

#[test]
fn exact_trace_likelihood_matches_a_mixture_density() {
    let mixture = three_modes();
    // Points on the modes, between them and far out: the density spans many nats.
    let mut points = mixture.sample(8, 4, None).unwrap();
    points.extend([vec![0.0, 0.0], vec![1.5, 2.0], vec![-5.0, 1.0]]);
    let got = log_likelihood(
        &mixture,
        tensor::<TestAutodiff>(&points),
        &null_rows(points.len(), &mixture),
        &grid(),
        TraceEstimator::Exact,
    )
    .unwrap();
    for (g, e) in got.iter().zip(closed_form(&mixture, &points)) {
        println!("log p: ODE {g:.4}, closed form {e:.4}");
        assert!((g - e).abs() < 0.05 * e.abs().max(1.0), "{g} vs {e}");
    }
}

/// Hutchinson's estimator against the exact trace on a mixture, at points between the modes where
/// the Jacobian of the denoiser has off-diagonal terms (for a diagonal Jacobian a Rademacher probe
/// is exact, which would make this test vacuous).
#[test]
fn hutchinson_estimate_converges_to_the_exact_trace() {
    let mixture = three_modes();
    let points = vec![
        vec![0.0, 0.0],
        vec![1.5, 2.0],
        vec![-1.5, 2.0],
        vec![0.5, 1.0],
        vec![-0.5, 0.8],
        vec![2.0, 2.5],
    ];
    let run = |trace| {
        log_likelihood(
            &mixture,
            tensor::<TestAutodiff>(&points),
            &null_rows(points.len(), &mixture),
            &grid(),
            trace,
        )
        .unwrap()
    };
    let exact = run(TraceEstimator::Exact);
    let error = |probes: usize| {
        let got = run(TraceEstimator::Hutchinson { probes, seed: 1 });
        got.iter()
            .zip(&exact)
            .map(|(g, e)| (g - e).abs())
            .sum::<f64>()
            / exact.len() as f64
    };
    let (few, many) = (error(1), error(64));
    println!("Hutchinson vs exact trace: 1 probe {few:.4} nats, 64 probes {many:.4} nats");
    assert!(
        few > 1e-3,
        "the Jacobian should have off-diagonal terms here: {few}"
    );
    // Monte-Carlo error falls as 1/√probes: 64 probes should be ~8× closer than one.
    assert!(many < few / 4.0, "1 probe {few}, 64 probes {many}");
    // The same seed gives the same estimate.
    let same = |seed| run(TraceEstimator::Hutchinson { probes: 2, seed });
    assert_eq!(same(5), same(5));
    assert!(log_likelihood(
        &mixture,
        tensor::<TestAutodiff>(&points),
        &null_rows(points.len(), &mixture),
        &grid(),
        TraceEstimator::Hutchinson { probes: 0, seed: 1 },
    )
    .is_err());
}

#[test]
fn inversion_then_regeneration_returns_the_input() {
    let mixture = three_modes();
    let points = mixture.sample(200, 21, None).unwrap();
    let cond = null_rows::<TestBackend>(points.len(), &mixture);
    let noise = invert(&mixture, tensor::<TestBackend>(&points), &cond, &grid()).unwrap();
    // Exact data inverts to Gaussian noise of standard deviation σ_max.
    let noise_rows = rows(noise.clone());
    let std = (noise_rows.iter().flatten().map(|v| v * v).sum::<f64>()
        / (2.0 * points.len() as f64))
        .sqrt();
    assert!((std / 80.0 - 1.0).abs() < 0.15, "inverted noise std {std}");
    let regenerated = Sampler::new(SamplerKind::Heun, grid())
        .unwrap()
        .run(&mixture, noise, &cond, &mut SeededNoise::new(0), |_| {})
        .unwrap();
    let worst = rows(regenerated)
        .iter()
        .zip(&points)
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(u, v)| (u - v).abs())
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max);
    println!("round trip: largest coordinate error {worst:.5}");
    // 64 Heun steps each way; the modes are 3–6 apart and have standard deviations ≥ 0.3.
    assert!(worst < 0.05, "{worst}");
}
