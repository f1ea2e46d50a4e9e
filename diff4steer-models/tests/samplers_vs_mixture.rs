//! Every sampler against a Gaussian mixture whose exact denoiser is closed-form: the samples must
//! reproduce the mixture's weights, means and variances.

mod common;

use common::*;
use diff4steer_core::{karras, GaussianMixture, SeededNoise};
use diff4steer_models::{Sampler, SamplerKind};

const SAMPLES: usize = 4000;
const STEPS: usize = 64;

/// Largest errors allowed for one sampler at 64 steps (4000 samples).
struct Tolerance {
    weight: f64,
    mean: f64,
    variance_relative: f64,
}

/// Second-order deterministic samplers (Heun, DPM-Solver++(2M)): sampling noise dominates. With
/// 4000 samples the weights have a standard error of ~0.008, the means of ~0.02 and the variances
/// of ~5% for the smallest component (800 samples).
const SECOND_ORDER: Tolerance = Tolerance {
    weight: 0.03,
    mean: 0.05,
    variance_relative: 0.10,
};
/// Euler is first order: at 64 steps it still pulls the modes ~0.05–0.09 toward each other.
const FIRST_ORDER: Tolerance = Tolerance {
    weight: 0.03,
    mean: 0.12,
    variance_relative: 0.10,
};
/// Stochastic samplers (EDM churn, Euler–Maruyama) at 64 steps inflate variances by ~15–20%.
const STOCHASTIC: Tolerance = Tolerance {
    weight: 0.03,
    mean: 0.06,
    variance_relative: 0.25,
};

fn check_sampler(kind: SamplerKind, tolerance: Tolerance) {
    let mixture = three_modes();
    let sampler = Sampler::new(kind, karras(STEPS, 0.002, 80.0, 7.0).unwrap()).unwrap();
    let x = sampler
        .sample(
            &mixture,
            &unconditional(SAMPLES, &mixture),
            &mut SeededNoise::new(11),
        )
        .unwrap();
    let samples = rows(x);
    let stats = component_stats(&mixture, &samples);
    let worst = |f: &dyn Fn(usize, usize) -> f64| {
        (0..mixture.components())
            .flat_map(|k| (0..mixture.dim()).map(move |j| (k, j)))
            .map(|(k, j)| f(k, j))
            .fold(0.0, f64::max)
    };
    let weight_err = (0..3)
        .map(|k| (stats.weights[k] - mixture.weights()[k]).abs())
        .fold(0.0, f64::max);
    let mean_err = worst(&|k, j| (stats.means[k][j] - mixture.means()[k][j]).abs());
    let var_rel_err =
        worst(&|k, j| (stats.variances[k][j] / mixture.variances()[k][j] - 1.0).abs());
    let corr_err = stats
        .correlations
        .iter()
        .fold(0.0f64, |m, c| m.max(c.abs()));
    println!(
        "{kind}: weight error {weight_err:.4}, mean error {mean_err:.4}, \
         variance relative error {var_rel_err:.4}, |correlation| {corr_err:.4}"
    );
    assert!(
        weight_err < tolerance.weight,
        "{kind}: weights {:?}",
        stats.weights
    );
    assert!(mean_err < tolerance.mean, "{kind}: means {:?}", stats.means);
    assert!(
        var_rel_err < tolerance.variance_relative,
        "{kind}: variances {:?}",
        stats.variances
    );
    // The components are axis-aligned: the correlation of the two coordinates must vanish
    // (standard error ~0.035 for 800 samples).
    assert!(
        corr_err < 0.12,
        "{kind}: correlations {:?}",
        stats.correlations
    );
}

#[test]
fn euler_matches_mixture() {
    check_sampler(SamplerKind::Euler, FIRST_ORDER);
}

#[test]
fn heun_matches_mixture() {
    check_sampler(SamplerKind::Heun, SECOND_ORDER);
}

#[test]
fn edm_stochastic_matches_mixture() {
    check_sampler(SamplerKind::EdmStochastic(Default::default()), STOCHASTIC);
}

#[test]
fn euler_maruyama_matches_mixture() {
    check_sampler(SamplerKind::EulerMaruyama, STOCHASTIC);
}

#[test]
fn dpm_solver_matches_mixture() {
    check_sampler(SamplerKind::DpmSolverPlusPlus2M, SECOND_ORDER);
}

/// On a single Gaussian the probability-flow ODE has a closed-form solution; at equal network
/// evaluations Heun (second order) must land closer to it than Euler (first order).
#[test]
fn heun_is_closer_than_euler_to_the_exact_ode_solution() {
    let gaussian = GaussianMixture::new(
        vec![vec![1.0, -0.5, 0.3]],
        vec![vec![0.25, 0.04, 1.0]],
        vec![1.0],
    )
    .unwrap();
    let n = 256;
    let sigma_max = 80.0;
    let start: Vec<Vec<f64>> = SeededNoise::new(5)
        .normal_host(n, 3)
        .chunks(3)
        .map(|r| r.iter().map(|&v| v as f64 * sigma_max).collect())
        .collect();
    let exact: Vec<Vec<f64>> = start
        .iter()
        .map(|x| gaussian.single_gaussian_flow(x, sigma_max, 0.0).unwrap())
        .collect();
    let error_of = |kind: SamplerKind, steps: usize| {
        let sampler = Sampler::new(kind, karras(steps, 0.002, sigma_max, 7.0).unwrap()).unwrap();
        let out = sampler
            .run(
                &gaussian,
                tensor::<TestBackend>(&start),
                &unconditional(n, &gaussian),
                &mut SeededNoise::new(0),
                |_| {},
            )
            .unwrap();
        let out = rows(out);
        out.iter()
            .zip(&exact)
            .map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(u, v)| (u - v).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .sum::<f64>()
            / n as f64
    };
    // Below ~16 steps the long first and last steps of the ρ = 7 grid (σ from 80 down to 0.002,
    // with a component of variance 0.04) keep both methods out of their asymptotic regime, and
    // Euler can win (Karras et al. 2022, Fig. 2, compares from ~15 evaluations on).
    let mut heun_errors = Vec::new();
    let mut euler_errors = Vec::new();
    for heun_steps in [16, 32, 64] {
        let evaluations = SamplerKind::Heun.evaluations(heun_steps);
        let heun = error_of(SamplerKind::Heun, heun_steps);
        let euler = error_of(SamplerKind::Euler, evaluations);
        println!("{evaluations} evaluations: Heun error {heun:.5}, Euler error {euler:.5}");
        assert!(
            heun < euler,
            "Heun {heun} not closer than Euler {euler} at {evaluations} evaluations"
        );
        heun_errors.push(heun);
        euler_errors.push(euler);
    }
    // Observed orders of convergence: doubling the steps divides Heun's error by ~4 (second order)
    // and Euler's by ~2 (first order).
    for w in heun_errors.windows(2) {
        assert!(
            w[0] / w[1] > 3.0,
            "Heun is not second order: {heun_errors:?}"
        );
    }
    for w in euler_errors.windows(2) {
        let ratio = w[0] / w[1];
        assert!(
            (1.6..2.6).contains(&ratio),
            "Euler is not first order: {euler_errors:?}"
        );
    }
}
