//! Standardised target spaces: a denoiser that works on u = (z − μ)/s gives samples, likelihoods,
//! inversions and steering in catalogue units z, checked against an analytic mixture in u-space
//! mapped by hand; a prior trained on badly scaled data lands on its modes in catalogue units;
//! target-only rows and sampling weights shape the training draws.

mod common;

use burn::tensor::{backend::Backend, Tensor};
use common::*;
use diff4steer_core::{
    karras, Conditioning, Denoiser, GaussianMixture, SeededNoise, Similarity, Steered,
    SteeringTarget, TargetScaling,
};
use diff4steer_models::fast::{FastPrior, FastSampler, FastSeeds};
use diff4steer_models::training::{train_prior, train_regression, Batch, PairData, TrainingConfig};
use diff4steer_models::{
    invert, log_likelihood, DiffusionPriorConfig, PriorSeeds, RegressionConfig, ResMlpConfig,
    Sampler, SamplerKind, SeedGenerator, TraceEstimator,
};

/// A denoiser in u-space that reports a map to catalogue units: the analytic mixture, rescaled.
struct Rescaled {
    mixture: GaussianMixture,
    map: TargetScaling,
}

impl<B: Backend> Denoiser<B> for Rescaled {
    fn dim(&self) -> usize {
        Denoiser::<B>::dim(&self.mixture)
    }
    fn cond_dim(&self) -> usize {
        Denoiser::<B>::cond_dim(&self.mixture)
    }
    fn denoise(
        &self,
        x: Tensor<B, 2>,
        sigma: Tensor<B, 1>,
        cond: &Conditioning<B>,
    ) -> diff4steer_core::Result<Tensor<B, 2>> {
        self.mixture.denoise(x, sigma, cond)
    }
    fn target_scaling(&self) -> Option<&TargetScaling> {
        Some(&self.map)
    }
}

fn map() -> TargetScaling {
    TargetScaling::new(vec![100.0, -50.0], vec![10.0, 0.1]).unwrap()
}

fn to_catalogue(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let map = map();
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, &u)| f64::from(map.shift()[j]) + f64::from(map.scale()[j]) * u)
                .collect()
        })
        .collect()
}

fn close(a: &[Vec<f64>], b: &[Vec<f64>], tolerance: f64) -> bool {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .all(|(x, y)| (x - y).abs() <= tolerance * y.abs().max(1.0))
}

#[test]
fn a_rescaled_denoiser_samples_scores_inverts_and_steers_in_catalogue_units() {
    let mixture = three_modes();
    let rescaled = Rescaled {
        mixture: mixture.clone(),
        map: map(),
    };
    let sigmas = karras(24, 0.002, 80.0, 7.0).unwrap();
    let sampler = Sampler::new(SamplerKind::Heun, sigmas.clone()).unwrap();
    let cond = unconditional(400, &mixture);

    // Samples: the u-space trajectory mapped by z = μ + s ⊙ u.
    let samples = rows(
        sampler
            .sample(&rescaled, &cond, &mut SeededNoise::new(5))
            .unwrap(),
    );
    let in_u = rows(
        sampler
            .sample(&mixture, &cond, &mut SeededNoise::new(5))
            .unwrap(),
    );
    assert!(close(&samples, &to_catalogue(&in_u), 1e-5));
    // Likelihood: log p_z(z) = log p_u(u) − Σ log s, against the closed form in u.
    let points = mixture.sample(6, 9, None).unwrap();
    let null = Conditioning::<TestAutodiff>::unconditional(6, 3, &Default::default()).unwrap();
    let sigmas64 = karras(64, 0.002, 80.0, 7.0).unwrap();
    let got = log_likelihood(
        &rescaled,
        tensor::<TestAutodiff>(&to_catalogue(&points)),
        &null,
        &sigmas64,
        TraceEstimator::Exact,
    )
    .unwrap();
    let in_model_units = log_likelihood(
        &mixture,
        tensor::<TestAutodiff>(&points),
        &null,
        &sigmas64,
        TraceEstimator::Exact,
    )
    .unwrap();
    for ((g, u), p) in got.iter().zip(&in_model_units).zip(&points) {
        let closed = mixture.log_density(p, 0.002, None).unwrap() - map().log_det();
        assert!((g - (u - map().log_det())).abs() < 1e-3, "{g} vs {u}");
        // The 64-step integral is within 0.1 nats of the closed form for these narrow modes.
        assert!((g - closed).abs() < 0.1, "{g} vs {closed}");
    }

    // Inversion of catalogue points = inversion of their u-space points.
    let cond6 = unconditional(6, &mixture);
    let a = rows(invert(&rescaled, tensor(&to_catalogue(&points)), &cond6, &sigmas).unwrap());
    let b = rows(invert(&mixture, tensor(&points), &cond6, &sigmas).unwrap());
    let worst = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    println!("inversion: largest difference {worst:e}");
    // (f32 rounding of the catalogue points near 100, carried up to σ_max, accounts for ~1e-3;
    // a missing map would be off by the factor of 10 and the shift of 100.)
    assert!(close(&a, &b, 1e-3));

    // Steering toward a catalogue-unit target = steering the u-space denoiser toward its image.
    let target_u = vec![vec![3.0, 0.5]];
    let x = tensor::<TestBackend>(&[vec![0.3, -0.4], vec![1.0, 2.0]]);
    let sigma = Tensor::<TestBackend, 1>::from_floats([2.0, 0.5], &Default::default());
    let cond2 = unconditional(2, &mixture);
    let target = SteeringTarget::new(tensor::<TestBackend>(&to_catalogue(&target_u)), 0.05);
    let steered = Steered::new(&rescaled, vec![target.unwrap()], Similarity::Cosine).unwrap();
    let via_catalogue = rows(steered.denoise(x.clone(), sigma.clone(), &cond2).unwrap());
    let target = SteeringTarget::new(tensor::<TestBackend>(&target_u), 0.05).unwrap();
    let steered = Steered::new(&mixture, vec![target], Similarity::Cosine).unwrap();
    let via_model = rows(steered.denoise(x, sigma, &cond2).unwrap());
    assert!(close(&via_catalogue, &via_model, 1e-5));
}

/// Two queries over 2-D targets far from the origin and scaled unequally (×10 and ×0.1): query 0
/// has modes at u = (±2, 0), query 1 one mode at u = (0, 2), every mode of std 0.15 in u.
fn badly_scaled_pairs() -> PairData {
    let modes = [
        GaussianMixture::isotropic(
            vec![vec![-2.0, 0.0], vec![2.0, 0.0]],
            0.0225,
            vec![0.5, 0.5],
        )
        .unwrap(),
        GaussianMixture::isotropic(vec![vec![0.0, 2.0]], 0.0225, vec![1.0]).unwrap(),
    ];
    let (mut q, mut t) = (Vec::new(), Vec::new());
    for (i, m) in modes.iter().enumerate() {
        for point in to_catalogue(&m.sample(600, i as u64, None).unwrap()) {
            q.extend(if i == 0 { [1.0f32, 0.0] } else { [0.0, 1.0] });
            t.extend(point.iter().map(|&v| v as f32));
        }
    }
    PairData::from_vecs(q, 2, t, 2).unwrap()
}

#[test]
fn a_prior_trained_on_badly_scaled_targets_samples_their_modes_in_catalogue_units() {
    let device = Default::default();
    let data = badly_scaled_pairs();
    let network = ResMlpConfig::new()
        .with_width(64)
        .with_depth(2)
        .with_dropout(0.0)
        .with_embedding_dim(64)
        .with_fourier_features(8);
    let training = TrainingConfig::new()
        .with_steps(800)
        .with_batch_size(256)
        .with_learning_rate(2e-3)
        .with_warmup_steps(50)
        .with_ema_decay(0.99)
        .with_progress(false)
        .with_seed(3);
    let (prior, config, _) = train_prior::<TestAutodiff>(
        &DiffusionPriorConfig::new(2, 2).with_network(network.clone()),
        &training,
        &data,
        None,
        None,
        &device,
    )
    .unwrap();
    // The stored shift is the targets' mean: μ + s ⊙ (0, 1) of the generating map (half the
    // points at u = (±2, 0), half at (0, 2)).
    let shift = config.target_shift.clone();
    assert!((shift[0] - 100.0).abs() < 1.0 && (shift[1] + 49.9).abs() < 0.02);

    let sampler = Sampler::new(SamplerKind::Heun, karras(24, 0.002, 80.0, 7.0).unwrap()).unwrap();
    let queries = tensor::<TestBackend>(&[vec![1.0, 0.0], vec![0.0, 1.0]]);
    let seeds = rows(
        PriorSeeds::new(&prior, sampler)
            .seeds(queries.clone(), 300, 1)
            .unwrap(),
    );
    let modes = to_catalogue(&[vec![-2.0, 0.0], vec![2.0, 0.0], vec![0.0, 2.0]]);
    let near = |s: &[f64], m: &[f64]| ((s[0] - m[0]) / 10.0).hypot((s[1] - m[1]) / 0.1) < 0.6;
    let left = seeds[..300].iter().filter(|s| near(s, &modes[0])).count();
    let right = seeds[..300].iter().filter(|s| near(s, &modes[1])).count();
    let top = seeds[300..].iter().filter(|s| near(s, &modes[2])).count();
    println!("query 0: {left} left, {right} right of 300; query 1: {top} of 300 at its mode");
    assert!(
        left > 90 && right > 90 && left + right > 255,
        "{left} / {right}"
    );
    assert!(top > 255, "{top}");

    // The host path maps its samples the same way.
    let fast = FastSeeds::new(
        FastPrior::from_prior(&prior).unwrap(),
        FastSampler::new(
            SamplerKind::Heun,
            karras(24, 0.002, 80.0, 7.0).unwrap(),
            0.0,
        )
        .unwrap(),
    );
    let host = fast.seeds_host(&[1.0, 0.0, 0.0, 1.0], 300, 1).unwrap();
    let burn: Vec<f64> = seeds.iter().flatten().copied().collect();
    for (h, b) in host.iter().zip(&burn) {
        assert!(
            (f64::from(*h) - b).abs() < 1e-3 * b.abs().max(1.0),
            "{h} vs {b}"
        );
    }

    // The regression baseline predicts each query's conditional mean in catalogue units.
    let (regression, _) = train_regression::<TestAutodiff>(
        &RegressionConfig::new(2, 2).with_network(network),
        &training.with_steps(400),
        &data,
        None,
        None,
        &device,
    )
    .unwrap();
    let predicted = rows(regression.predict(queries));
    let means = to_catalogue(&[vec![0.0, 0.0], vec![0.0, 2.0]]);
    for (p, m) in predicted.iter().zip(&means) {
        assert!(
            ((p[0] - m[0]) / 10.0).hypot((p[1] - m[1]) / 0.1) < 0.3,
            "{p:?} vs {m:?}"
        );
    }
}

#[test]
fn target_only_rows_train_the_null_condition_and_weights_shape_the_draws() {
    let pairs = PairData::from_vecs(vec![1.0; 4 * 3], 3, vec![0.5; 4 * 2], 2).unwrap();
    let data = pairs
        .clone()
        .with_unconditional_targets(vec![2.0; 2 * 2])
        .unwrap();
    assert_eq!((data.rows(), data.conditional_rows()), (6, 4));
    // Rows 0 and 4 only, 1 : 3.
    let weighted = data
        .clone()
        .with_weights(&[1.0, 0.0, 0.0, 0.0, 3.0, 0.0])
        .unwrap();
    let mut rng = Batch::<TestBackend>::step_rng(1, 0);
    let draws: Vec<usize> = (0..20_000)
        .map(|_| weighted.draw_row(&mut rng, false))
        .collect();
    let fours = draws.iter().filter(|&&r| r == 4).count() as f64 / 20_000.0;
    assert!(draws.iter().all(|&r| r == 0 || r == 4));
    assert!((fours - 0.75).abs() < 0.015, "{fours}");
    // Conditional-only draws never reach a target-only row.
    assert!((0..2_000).all(|_| weighted.draw_row(&mut rng, true) == 0));
    assert!((0..2_000).all(|_| data.draw_row(&mut rng, true) < 4));
    // In a batch, every target-only row is a null row, whatever the dropout.
    let config = TrainingConfig::new().with_cond_dropout(0.0);
    let batch = Batch::<TestBackend>::draw(
        &data,
        Some(&[0, 4, 5, 1]),
        4,
        false,
        &config,
        &mut rng,
        &Default::default(),
    );
    assert_eq!(batch.null_rows, vec![false, true, true, false]);
    // Without additions the draw is the uniform one it always was.
    let mut a = Batch::<TestBackend>::step_rng(7, 3);
    let mut b = Batch::<TestBackend>::step_rng(7, 3);
    use rand::RngExt;
    assert!((0..100).all(|_| pairs.draw_row(&mut a, false) == b.random_range(0..4)));

    // Typed errors, never a panic.
    assert!(pairs.clone().with_weights(&[1.0; 3]).is_err());
    assert!(pairs.clone().with_weights(&[0.0; 4]).is_err());
    assert!(pairs.clone().with_weights(&[1.0, -1.0, 1.0, 1.0]).is_err());
    assert!(pairs.clone().with_weights(&[f64::NAN; 4]).is_err());
    assert!(pairs
        .clone()
        .with_unconditional_targets(vec![1.0; 3])
        .is_err());
    assert!(pairs
        .clone()
        .with_unconditional_targets(vec![f32::NAN; 2])
        .is_err());
    assert!(data.split(0.5, 0).is_err());
}
