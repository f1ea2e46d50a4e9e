//! Guidance and steering, sampled through the real samplers, against the conditional mixture whose
//! exact conditional and unconditional denoisers are known.

mod common;

use burn::tensor::Tensor;
use common::*;
use diff4steer_core::{
    karras, Conditioning, Denoiser, GaussianMixture, GuidanceCondition, LinearGuidance,
    SeededNoise, Similarity, SphereProjection, Steered, SteeringTarget,
};
use diff4steer_models::{Sampler, SamplerKind};

/// Three modes; the condition (a weight vector) favours the first one, the unconditional weights
/// are uniform.
fn conditional_mixture() -> GaussianMixture {
    GaussianMixture::isotropic(
        vec![vec![-3.0, 0.0], vec![3.0, 0.0], vec![0.0, 4.0]],
        0.2,
        vec![1.0, 1.0, 1.0],
    )
    .unwrap()
}

const QUERY: [f64; 3] = [0.5, 0.3, 0.2];

fn heun() -> Sampler {
    Sampler::new(SamplerKind::Heun, karras(32, 0.002, 80.0, 7.0).unwrap()).unwrap()
}

fn sample<D: Denoiser<TestBackend>>(denoiser: &D, n: usize, seed: u64) -> Vec<Vec<f64>> {
    rows(
        heun()
            .sample(
                denoiser,
                &conditioned(n, &QUERY),
                &mut SeededNoise::new(seed),
            )
            .unwrap(),
    )
}

#[test]
fn cfg_with_zero_strength_is_the_conditional_sampler() {
    let mixture = conditional_mixture();
    let guided = LinearGuidance::classifier_free(mixture.clone(), 0.0).unwrap();
    let plain = sample(&mixture, 500, 3);
    let with_cfg = sample(&guided, 500, 3);
    assert_eq!(plain, with_cfg);
    // And the conditional sampler reproduces the query's weights.
    let fraction = fraction_in(&mixture, &plain, 0);
    assert!((fraction - 0.5).abs() < 0.06, "{fraction}");
}

#[test]
fn cfg_denoiser_is_the_closed_form_combination() {
    let mixture = conditional_mixture();
    let w = 1.5;
    let guided = LinearGuidance::classifier_free(mixture.clone(), w).unwrap();
    let x = tensor::<TestBackend>(&[vec![0.3, 1.0], vec![-1.0, 2.0], vec![2.5, -0.5]]);
    let sigma = Tensor::from_floats([0.5, 1.0, 3.0], &Default::default());
    let cond = conditioned::<TestBackend>(3, &QUERY);
    let got = guided.denoise(x.clone(), sigma.clone(), &cond).unwrap();
    let conditional = mixture.denoise(x.clone(), sigma.clone(), &cond).unwrap();
    let unconditional = mixture.denoise(x, sigma, &cond.to_null()).unwrap();
    let expected = conditional.mul_scalar(1.0 + w) - unconditional.mul_scalar(w);
    assert!(max_abs_diff(got, expected) < 1e-5);
}

#[test]
fn larger_cfg_concentrates_on_the_dominant_component() {
    let mixture = conditional_mixture();
    let mut previous = 0.0;
    for w in [0.0, 1.0, 3.0] {
        let guided = LinearGuidance::classifier_free(mixture.clone(), w).unwrap();
        let fraction = fraction_in(&mixture, &sample(&guided, 1500, 9), 0);
        println!("w = {w}: fraction in the dominant component {fraction:.3}");
        assert!(
            fraction > previous + 0.05,
            "w = {w}: {fraction} not above {previous}"
        );
        previous = fraction;
    }
    assert!(
        previous > 0.8,
        "w = 3 should put most samples on the dominant mode: {previous}"
    );
}

#[test]
fn a_negative_condition_pushes_samples_away_from_its_component() {
    let mixture = conditional_mixture();
    let negative = conditioned::<TestBackend>(1, &[0.0, 1.0, 0.0]);
    let plain = fraction_in(&mixture, &sample(&mixture, 1500, 4), 1);
    let guided = LinearGuidance::contrastive(mixture.clone(), negative, 2.0).unwrap();
    let pushed = fraction_in(&mixture, &sample(&guided, 1500, 4), 1);
    println!("fraction in the negative's component: {plain:.3} → {pushed:.3}");
    assert!(pushed < plain / 3.0, "{plain} → {pushed}");
}

#[test]
fn composed_conditions_equal_the_weighted_formula() {
    let mixture = conditional_mixture();
    let second = conditioned::<TestBackend>(1, &[0.0, 0.0, 1.0]);
    let negative = conditioned::<TestBackend>(1, &[0.0, 1.0, 0.0]);
    let composed = LinearGuidance::composed(
        mixture.clone(),
        vec![
            (GuidanceCondition::Given, 1.5),
            (GuidanceCondition::Fixed(second.clone()), 0.7),
            (GuidanceCondition::Fixed(negative.clone()), -0.4),
        ],
    )
    .unwrap();
    let x = tensor::<TestBackend>(&[vec![0.3, 1.0], vec![-1.0, 2.0]]);
    let sigma = Tensor::from_floats([0.7, 2.0], &Default::default());
    let cond = conditioned::<TestBackend>(2, &QUERY);
    let d = |c: &Conditioning<TestBackend>| {
        mixture
            .denoise(x.clone(), sigma.clone(), &c.fit_batch(2).unwrap())
            .unwrap()
    };
    let null = d(&cond.to_null());
    let expected = null.clone()
        + (d(&cond) - null.clone()).mul_scalar(1.5)
        + (d(&second) - null.clone()).mul_scalar(0.7)
        + (d(&negative) - null).mul_scalar(-0.4);
    let got = composed.denoise(x, sigma, &cond).unwrap();
    assert!(max_abs_diff(got, expected) < 1e-5);
}

fn mean_cosine(samples: &[Vec<f64>], e: &[f64]) -> f64 {
    let e_norm = e.iter().map(|v| v * v).sum::<f64>().sqrt();
    samples
        .iter()
        .map(|s| {
            let dot: f64 = s.iter().zip(e).map(|(a, b)| a * b).sum();
            dot / (s.iter().map(|v| v * v).sum::<f64>().sqrt() * e_norm)
        })
        .sum::<f64>()
        / samples.len() as f64
}

#[test]
fn steering_with_zero_weight_is_the_identity() {
    let mixture = conditional_mixture();
    let target = SteeringTarget::new(tensor::<TestBackend>(&[vec![0.0, 1.0]]), 0.0).unwrap();
    let steered = Steered::new(mixture.clone(), vec![target], Similarity::Cosine).unwrap();
    assert_eq!(sample(&mixture, 300, 2), sample(&steered, 300, 2));
}

#[test]
fn positive_steering_raises_the_cosine_to_the_steering_embedding() {
    let mixture = conditional_mixture();
    let e = vec![0.0, 1.0]; // toward the third mode (0, 4)
    let base = mean_cosine(&sample(&mixture, 800, 6), &e);
    for similarity in [Similarity::Cosine, Similarity::Dot] {
        let toward = Steered::new(
            mixture.clone(),
            vec![
                SteeringTarget::new(tensor::<TestBackend>(std::slice::from_ref(&e)), 0.02).unwrap(),
            ],
            similarity,
        )
        .unwrap();
        let away = Steered::new(
            mixture.clone(),
            vec![
                SteeringTarget::new(tensor::<TestBackend>(std::slice::from_ref(&e)), -0.02)
                    .unwrap(),
            ],
            similarity,
        )
        .unwrap();
        let up = mean_cosine(&sample(&toward, 800, 6), &e);
        let down = mean_cosine(&sample(&away, 800, 6), &e);
        println!(
            "{similarity:?}: mean cosine to e {base:.3}; steered toward {up:.3}, away {down:.3}"
        );
        assert!(up > base + 0.05, "{similarity:?}: {base} → {up}");
        assert!(down < base - 0.05, "{similarity:?}: {base} → {down}");
    }
}

#[test]
fn sphere_projection_puts_samples_on_the_unit_sphere() {
    let mixture =
        GaussianMixture::isotropic(vec![vec![0.8, 0.6], vec![-0.6, 0.8]], 0.01, vec![1.0, 1.0])
            .unwrap();
    let projected = SphereProjection::unit(mixture);
    let samples = rows(
        heun()
            .sample(
                &projected,
                &conditioned::<TestBackend>(200, &[0.5, 0.5]),
                &mut SeededNoise::new(1),
            )
            .unwrap(),
    );
    for s in samples {
        let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
}
