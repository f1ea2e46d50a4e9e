//! The trained prior against a conditional Gaussian mixture: every mode of a query gets its share
//! of samples, while the regression baseline lands between the modes — the failure of a single
//! deterministic seed that this project exists to fix.

mod common;

use common::*;
use diff4steer_core::{karras, Conditioning, GaussianMixture, SeededNoise};
use diff4steer_models::training::{train_prior, train_regression, PairData, TrainingConfig};
use diff4steer_models::{
    DiffusionPriorConfig, RegressionConfig, ResMlpConfig, Sampler, SamplerKind,
};

/// Per query: (mode means, weights) in a 2-D target space; every mode has std 0.15.
fn query_modes() -> Vec<(Vec<Vec<f64>>, Vec<f64>)> {
    vec![
        (vec![vec![-2.0, 0.0], vec![2.0, 0.0]], vec![0.5, 0.5]),
        (
            vec![vec![0.0, 2.0], vec![0.0, -2.0], vec![2.5, 2.0]],
            vec![0.5, 0.25, 0.25],
        ),
        (vec![vec![-2.0, -2.0], vec![2.0, -2.0]], vec![0.7, 0.3]),
    ]
}

const MODE_VARIANCE: f64 = 0.0225;
const QUERY_DIM: usize = 4;

/// Query embeddings: one-hot-ish 4-d vectors, one per query.
fn query_embedding(q: usize) -> Vec<f32> {
    let mut v = vec![0.1f32; QUERY_DIM];
    v[q] = 1.0;
    v
}

fn mixture_of(q: usize) -> GaussianMixture {
    let (means, weights) = query_modes()[q].clone();
    GaussianMixture::isotropic(means, MODE_VARIANCE, weights).unwrap()
}

fn dataset(per_query: usize, seed: u64) -> PairData {
    let mut queries = Vec::new();
    let mut targets = Vec::new();
    for q in 0..query_modes().len() {
        for point in mixture_of(q)
            .sample(per_query, seed + q as u64, None)
            .unwrap()
        {
            queries.extend(query_embedding(q));
            targets.extend(point.iter().map(|&v| v as f32));
        }
    }
    PairData::from_vecs(queries, QUERY_DIM, targets, 2).unwrap()
}

fn small_network() -> ResMlpConfig {
    ResMlpConfig::new()
        .with_width(128)
        .with_depth(3)
        .with_dropout(0.0)
        .with_embedding_dim(128)
        .with_fourier_features(16)
}

fn training(steps: usize) -> TrainingConfig {
    TrainingConfig::new()
        .with_steps(steps)
        .with_batch_size(256)
        .with_learning_rate(2e-3)
        .with_warmup_steps(100)
        .with_ema_decay(0.995)
        .with_progress(false)
        .with_seed(1)
}

#[test]
fn prior_covers_every_mode_while_regression_lands_between_them() {
    let device = Default::default();
    let data = dataset(1000, 10);
    let (valid, _) = (dataset(100, 99), ());
    let prior_config = DiffusionPriorConfig::new(2, QUERY_DIM).with_network(small_network());
    let (prior, _, report) = train_prior::<TestAutodiff>(
        &prior_config,
        &training(2000),
        &data,
        Some(&valid),
        None,
        &device,
    )
    .unwrap();
    println!(
        "prior: {} parameters, {:.1} steps/s, final validation loss {:?}",
        report.parameter_count,
        report.steps_per_second,
        report.final_valid_loss()
    );
    let regression_config = RegressionConfig::new(2, QUERY_DIM).with_network(small_network());
    let (regression, _) = train_regression::<TestAutodiff>(
        &regression_config,
        &training(1000),
        &data,
        None,
        None,
        &device,
    )
    .unwrap();

    let sampler = Sampler::new(SamplerKind::Heun, karras(32, 0.002, 80.0, 7.0).unwrap()).unwrap();
    for (q, (means, weights)) in query_modes().into_iter().enumerate() {
        let query =
            tensor::<TestBackend>(&[query_embedding(q).iter().map(|&v| v as f64).collect()]);
        let cond = Conditioning::new(query.clone())
            .unwrap()
            .fit_batch(1000)
            .unwrap();
        let samples = rows(
            sampler
                .sample(&prior, &cond, &mut SeededNoise::new(q as u64))
                .unwrap(),
        );
        let truth = mixture_of(q);
        let mut counts = vec![0usize; means.len()];
        let mut near = 0;
        for s in &samples {
            let k = truth.component_of(s).unwrap();
            counts[k] += 1;
            let d2: f64 = s.iter().zip(&means[k]).map(|(a, b)| (a - b).powi(2)).sum();
            if d2.sqrt() < 4.0 * MODE_VARIANCE.sqrt() {
                near += 1;
            }
        }
        let shares: Vec<f64> = counts
            .iter()
            .map(|&c| c as f64 / samples.len() as f64)
            .collect();
        let near_share = near as f64 / samples.len() as f64;
        println!("query {q}: prior shares {shares:.3?} vs weights {weights:?}; {near_share:.3} within 4σ of a mode");
        for (share, weight) in shares.iter().zip(&weights) {
            assert!(
                (share - weight).abs() < 0.08,
                "query {q}: shares {shares:?} vs {weights:?}"
            );
        }
        assert!(
            near_share > 0.85,
            "query {q}: only {near_share} of samples near a mode"
        );

        // The regression baseline predicts the conditional mean, far from every mode.
        let predicted = rows(regression.predict(query))[0].clone();
        let conditional_mean: Vec<f64> = (0..2)
            .map(|j| means.iter().zip(&weights).map(|(m, w)| w * m[j]).sum())
            .collect();
        let to_mean = predicted
            .iter()
            .zip(&conditional_mean)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let to_nearest_mode = means
            .iter()
            .map(|m| {
                predicted
                    .iter()
                    .zip(m)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "query {q}: regression predicts {predicted:.2?}, conditional mean {conditional_mean:.2?}; \
             distance to it {to_mean:.3}, to the nearest mode {to_nearest_mode:.3}"
        );
        assert!(
            to_mean < 0.3,
            "query {q}: regression is {to_mean} from the conditional mean"
        );
        assert!(
            to_nearest_mode > 1.0,
            "query {q}: regression is {to_nearest_mode} from a mode"
        );
    }
}
