//! Reproducibility (same seed → same samples, whatever the batch size), the VP/VE scheme sampler,
//! and typed errors for invalid input.

mod common;

use burn::tensor::Tensor;
use common::*;
use diff4steer_core::{
    karras, Conditioning, CoreError, DiffusionScheme, GaussianMixture, LinearGuidance, SeededNoise,
    Similarity, Steered, SteeringTarget,
};
use diff4steer_models::{
    sample_scheme_ode, Churn, ModelError, Sampler, SamplerKind, SchemeOdeMethod,
};

fn sampler(kind: SamplerKind) -> Sampler {
    Sampler::new(kind, karras(12, 0.002, 80.0, 7.0).unwrap()).unwrap()
}

#[test]
fn same_seed_gives_identical_samples_for_every_sampler() {
    let mixture = three_modes();
    for kind in SamplerKind::ALL {
        let draw = |seed| {
            rows(
                sampler(kind)
                    .sample(
                        &mixture,
                        &unconditional(50, &mixture),
                        &mut SeededNoise::new(seed),
                    )
                    .unwrap(),
            )
        };
        assert_eq!(draw(1), draw(1), "{kind}");
        assert_ne!(draw(1), draw(2), "{kind}");
    }
}

#[test]
fn samples_do_not_depend_on_the_batch_size() {
    let mixture = three_modes();
    let guided = LinearGuidance::<TestBackend, _>::classifier_free(mixture.clone(), 1.0).unwrap();
    for kind in SamplerKind::ALL {
        let whole = sampler(kind)
            .sample(
                &guided,
                &conditioned(10, &[0.2, 0.3, 0.5]),
                &mut SeededNoise::new(3),
            )
            .unwrap();
        let head = sampler(kind)
            .sample(
                &guided,
                &conditioned(4, &[0.2, 0.3, 0.5]),
                &mut SeededNoise::starting_at(3, 0),
            )
            .unwrap();
        let tail = sampler(kind)
            .sample(
                &guided,
                &conditioned(6, &[0.2, 0.3, 0.5]),
                &mut SeededNoise::starting_at(3, 4),
            )
            .unwrap();
        let pieces = Tensor::cat(vec![head, tail], 0);
        let diff = max_abs_diff(whole, pieces);
        assert!(
            diff <= 1e-6,
            "{kind}: batch of 10 vs 4 + 6 differ by {diff}"
        );
    }
}

#[test]
fn vp_and_ve_scheme_samplers_match_the_mixture() {
    let mixture = three_modes();
    for (scheme, name) in [(DiffusionScheme::vp(), "VP"), (DiffusionScheme::ve(), "VE")] {
        let x = sample_scheme_ode(
            &scheme,
            64,
            SchemeOdeMethod::Heun,
            &mixture,
            &unconditional(3000, &mixture),
            &mut SeededNoise::new(17),
        )
        .unwrap();
        let stats = component_stats(&mixture, &rows(x));
        for k in 0..3 {
            let w_err = (stats.weights[k] - mixture.weights()[k]).abs();
            let m_err = (0..2)
                .map(|j| (stats.means[k][j] - mixture.means()[k][j]).abs())
                .fold(0.0, f64::max);
            let v_err = (0..2)
                .map(|j| (stats.variances[k][j] / mixture.variances()[k][j] - 1.0).abs())
                .fold(0.0, f64::max);
            println!("{name} component {k}: weight error {w_err:.4}, mean error {m_err:.4}, variance error {v_err:.3}");
            assert!(
                w_err < 0.035 && m_err < 0.12 && v_err < 0.2,
                "{name} component {k}: {stats:?}"
            );
        }
    }
}

#[test]
fn invalid_input_gives_typed_errors() {
    let mixture = three_modes();
    let device = Default::default();
    let s = sampler(SamplerKind::Heun);
    let cond = unconditional(4, &mixture);
    let run = |x: Tensor<TestBackend, 2>, c: &Conditioning<TestBackend>| {
        s.run(&mixture, x, c, &mut SeededNoise::new(0), |_| {})
    };
    // NaN / Inf in the state.
    let nan = tensor::<TestBackend>(&vec![vec![0.0, f64::NAN]; 4]);
    assert!(matches!(
        run(nan, &cond),
        Err(ModelError::Core(CoreError::NonFinite { .. }))
    ));
    let inf = tensor::<TestBackend>(&vec![vec![f64::INFINITY, 0.0]; 4]);
    assert!(matches!(
        run(inf, &cond),
        Err(ModelError::Core(CoreError::NonFinite { .. }))
    ));
    // Wrong data dimension.
    let wide = Tensor::<TestBackend, 2>::zeros([4, 3], &device);
    assert!(matches!(
        run(wide, &cond),
        Err(ModelError::Core(CoreError::DimMismatch { .. }))
    ));
    // Zero samples.
    let empty = Tensor::<TestBackend, 2>::zeros([0, 2], &device);
    assert!(matches!(
        run(empty, &cond),
        Err(ModelError::Core(CoreError::Empty { .. }))
    ));
    assert!(Conditioning::<TestBackend>::unconditional(0, 3, &device).is_err());
    // Conditioning: wrong width, rows that do not divide the batch, NaN.
    let narrow = Conditioning::<TestBackend>::unconditional(4, 2, &device).unwrap();
    let x = Tensor::<TestBackend, 2>::zeros([4, 2], &device);
    assert!(matches!(
        run(x.clone(), &narrow),
        Err(ModelError::Core(CoreError::DimMismatch { .. }))
    ));
    let three = unconditional(3, &mixture);
    assert!(matches!(
        run(x, &three),
        Err(ModelError::Core(CoreError::BatchMismatch { .. }))
    ));
    assert!(matches!(
        Conditioning::new(tensor::<TestBackend>(&[vec![0.1, f64::NAN, 0.2]])),
        Err(CoreError::NonFinite { .. })
    ));
    // Sampler and guidance parameters.
    let bad_churn = Churn {
        s_churn: -1.0,
        ..Churn::default()
    };
    let sigmas = karras(8, 0.002, 80.0, 7.0).unwrap();
    assert!(Sampler::new(SamplerKind::EdmStochastic(bad_churn), sigmas.clone()).is_err());
    assert!(Sampler::new(
        SamplerKind::EdmStochastic(Churn {
            s_noise: f64::NAN,
            ..Churn::default()
        }),
        sigmas
    )
    .is_err());
    assert!(matches!(
        "rk4".parse::<SamplerKind>(),
        Err(ModelError::UnknownSampler { .. })
    ));
    for kind in SamplerKind::ALL {
        assert_eq!(
            kind.name().parse::<SamplerKind>().unwrap().name(),
            kind.name()
        );
    }
    assert!(LinearGuidance::<TestBackend, _>::classifier_free(mixture.clone(), f64::NAN).is_err());
    assert!(LinearGuidance::<TestBackend, _>::classifier_free(mixture.clone(), -1.0).is_err());
    let wrong_negative = Conditioning::<TestBackend>::unconditional(1, 5, &device).unwrap();
    assert!(matches!(
        LinearGuidance::contrastive(mixture.clone(), wrong_negative, 1.0),
        Err(CoreError::DimMismatch { .. })
    ));
    let wrong_target =
        SteeringTarget::new(Tensor::<TestBackend, 2>::ones([1, 5], &device), 0.1).unwrap();
    assert!(matches!(
        Steered::new(mixture.clone(), vec![wrong_target], Similarity::Cosine),
        Err(CoreError::DimMismatch { .. })
    ));
    assert!(SteeringTarget::new(tensor::<TestBackend>(&[vec![f64::NAN, 1.0]]), 0.1).is_err());
    assert!(SteeringTarget::new(tensor::<TestBackend>(&[vec![0.0, 1.0]]), f64::INFINITY).is_err());
    // Schemes and mixtures.
    assert!(sample_scheme_ode(
        &DiffusionScheme::vp(),
        1,
        SchemeOdeMethod::Heun,
        &mixture,
        &cond,
        &mut SeededNoise::new(0)
    )
    .is_err());
    assert!(GaussianMixture::isotropic(vec![vec![0.0, 0.0]], -1.0, vec![1.0]).is_err());
    assert!(GaussianMixture::isotropic(vec![vec![0.0, 0.0]], 1.0, vec![0.0]).is_err());
    assert!(GaussianMixture::isotropic(vec![], 1.0, vec![]).is_err());
}

#[test]
fn callback_sees_every_step_and_the_final_denoise_is_optional() {
    use diff4steer_core::Denoiser;
    let mixture = three_modes();
    let sigmas = karras(10, 0.002, 80.0, 7.0).unwrap();
    let cond = unconditional(8, &mixture);
    for kind in SamplerKind::ALL {
        let sampler = Sampler::new(kind, sigmas.clone()).unwrap();
        let mut seen = Vec::new();
        let with_final = sampler
            .sample_with_callback(&mixture, &cond, &mut SeededNoise::new(4), |step| {
                assert_eq!(step.x.dims(), [8, 2]);
                assert_eq!(step.denoised.dims(), [8, 2]);
                seen.push((step.index, step.sigma, step.sigma_next));
            })
            .unwrap();
        let expected: Vec<(usize, f64, f64)> = sigmas
            .pairs()
            .enumerate()
            .map(|(i, (a, b))| (i, a, b))
            .collect();
        assert_eq!(seen, expected, "{kind}");
        // Without the final denoise the sampler stops at σ_min; denoising that state by hand gives
        // the default output.
        let at_sigma_min = sampler
            .clone()
            .with_final_denoise(false)
            .sample(&mixture, &cond, &mut SeededNoise::new(4))
            .unwrap();
        let sigma_min = Tensor::full([8], sigmas.sigma_min(), &Default::default());
        let by_hand = mixture
            .denoise(at_sigma_min.clone(), sigma_min, &cond)
            .unwrap();
        assert!(max_abs_diff(by_hand, with_final.clone()) < 1e-6, "{kind}");
        assert!(max_abs_diff(at_sigma_min, with_final) > 0.0, "{kind}");
    }
}
