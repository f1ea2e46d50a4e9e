//! A model shared across threads samples exactly what it samples alone: the same seeds, bit for
//! bit, from every thread at once (the prior and the regression baseline).

use burn::tensor::Tensor;
use diff4steer_core::karras;
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_models::backend::CpuBackend as B;
use diff4steer_models::{
    DiffusionPriorConfig, PriorSeeds, RegressionConfig, ResMlpConfig, Sampler, SamplerKind,
    SeedGenerator,
};

const THREADS: usize = 4;

fn queries() -> Tensor<B, 2> {
    let values: Vec<f32> = (0..5 * 6)
        .map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.5)
        .collect();
    Tensor::from_data(
        burn::tensor::TensorData::new(values, [5, 6]),
        &Default::default(),
    )
}

/// Bits of the seeds that `model` gives for the test queries, K = 8, noise seed `seed`.
fn seeds_of(model: &(impl SeedGenerator<B> + ?Sized), seed: u64) -> Vec<u32> {
    let seeds = model.seeds(queries(), 8, seed).unwrap();
    to_host_f32(seeds)
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// Every thread samples with the shared model (each with two noise seeds, in turn) and must
/// get what the model gives alone.
fn assert_shared_samples_as_alone<M: SeedGenerator<B> + Sync>(model: &M, name: &str) {
    let alone = [seeds_of(model, 1), seeds_of(model, 2)];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let first = 1 + (t as u64 % 2);
                    let second = 3 - first;
                    (
                        first,
                        seeds_of(model, first),
                        second,
                        seeds_of(model, second),
                    )
                })
            })
            .collect();
        for (t, handle) in handles.into_iter().enumerate() {
            let (a, seeds_a, b, seeds_b) = handle.join().unwrap();
            assert!(
                seeds_a == alone[a as usize - 1],
                "{name}: thread {t}, noise seed {a}"
            );
            assert!(
                seeds_b == alone[b as usize - 1],
                "{name}: thread {t}, noise seed {b}"
            );
        }
    });
}

#[test]
fn a_shared_prior_samples_as_it_does_alone() {
    let network = ResMlpConfig::new().with_width(32).with_depth(2);
    let prior = DiffusionPriorConfig::new(8, 6)
        .with_network(network)
        .init::<B>(&Default::default())
        .unwrap();
    for kind in [SamplerKind::Heun, SamplerKind::EulerMaruyama] {
        let sampler = Sampler::new(kind, karras(6, 0.002, 80.0, 7.0).unwrap()).unwrap();
        let seeds = PriorSeeds::new(prior.clone(), sampler);
        assert_shared_samples_as_alone(&seeds, &format!("prior, {kind}"));
    }
}

#[test]
fn a_shared_regression_model_predicts_as_it_does_alone() {
    let model = RegressionConfig::new(8, 6)
        .init::<B>(&Default::default())
        .unwrap();
    assert_shared_samples_as_alone(&model, "regression");
}
