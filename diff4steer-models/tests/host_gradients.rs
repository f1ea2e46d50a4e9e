//! The host training path against burn's autodiff: the same loss and the same gradient for every
//! parameter (to 1e-5 relative to the parameter's largest gradient), on priors of several shapes
//! with null rows, with and without the query's input path; and the same masks and losses for the
//! same seed.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use diff4steer_models::backend::{CpuAutodiff as AB, CpuBackend as B};
use diff4steer_models::fast::PriorGradients;
use diff4steer_models::training::{Batch, HostBatch, PairData, TrainableModel, TrainingConfig};
use diff4steer_models::{DiffusionPrior, DiffusionPriorConfig, ResMlpConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Adds N(0, 0.2²) to every parameter (the output layers start at zero).
struct Perturb(ChaCha8Rng);

impl ModuleMapper<AB> for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let normal = Normal::new(0.0f32, 0.2).unwrap();
        let noise: Vec<f32> = (0..shape.num_elements())
            .map(|_| normal.sample(&mut self.0))
            .collect();
        let noise = Tensor::from_data(TensorData::new(noise, shape), &tensor.device());
        Param::from_mapped_value(id, (tensor + noise).detach().require_grad(), mapper)
    }
}

fn prior(
    target: usize,
    query: usize,
    width: usize,
    depth: usize,
    query_to_input: bool,
    dropout: f64,
) -> DiffusionPrior<AB> {
    DiffusionPriorConfig::new(target, query)
        .with_sigma_data(0.8)
        .with_query_to_input(query_to_input)
        .with_network(
            ResMlpConfig::new()
                .with_width(width)
                .with_depth(depth)
                .with_fourier_features(6)
                .with_embedding_dim(10)
                .with_dropout(dropout),
        )
        .init::<AB>(&Default::default())
        .unwrap()
        .map(&mut Perturb(ChaCha8Rng::seed_from_u64(target as u64)))
}

fn batch(target: usize, query: usize, rows: usize, seed: u64) -> HostBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).unwrap();
    let mut values = |n: usize| -> Vec<f32> { (0..n).map(|_| normal.sample(&mut rng)).collect() };
    let data = PairData::from_vecs(values(64 * query), query, values(64 * target), target).unwrap();
    let config = TrainingConfig::new().with_cond_dropout(0.3);
    let mut draw_rng = Batch::<B>::step_rng(seed, 0);
    HostBatch::draw(&data, None, rows, false, &config, &mut draw_rng)
}

/// Every float parameter's gradient in `a` and `b` (burn's and ours), compared.
struct Compare<'a> {
    burn: &'a GradientsParams,
    host: &'a GradientsParams,
    worst: f32,
    count: usize,
}

impl ModuleVisitor<AB> for Compare<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let Some(burn) = self.burn.get::<B, D>(param.id) else {
            panic!(
                "burn has no gradient for a parameter of shape {:?}",
                param.val().dims()
            );
        };
        let burn: Vec<f32> = burn.into_data().to_vec().unwrap();
        let host: Vec<f32> = self
            .host
            .get::<B, D>(param.id)
            .expect("the host path registers every parameter's gradient")
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(burn.len(), host.len());
        let scale = burn.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
        let error = burn
            .iter()
            .zip(&host)
            .map(|(a, b)| (a - b).abs() / scale)
            .fold(0.0f32, f32::max);
        self.worst = self.worst.max(error);
        self.count += 1;
    }
}

#[test]
fn the_host_gradients_equal_burns_autodiff_for_every_parameter() {
    for &(target, query, width, depth, query_to_input, rows) in &[
        (6usize, 5usize, 16usize, 1usize, true, 9usize),
        (8, 7, 24, 2, false, 16),
        (5, 9, 20, 3, true, 33),
    ] {
        let model = prior(target, query, width, depth, query_to_input, 0.0);
        let host = batch(target, query, rows, target as u64);
        assert!(host.null_rows.iter().any(|&n| n) && host.null_rows.iter().any(|&n| !n));

        let loss = model
            .loss(&Batch::<AB>::from_host(host.clone(), &Default::default()))
            .unwrap();
        let burn_loss = loss.clone().into_data().to_vec::<f32>().unwrap()[0] as f64;
        let burn_grads = GradientsParams::from_grads(loss.backward(), &model);

        let (host_loss, gradients) = PriorGradients::from_prior(&model)
            .unwrap()
            .loss_and_gradients(&host, 0)
            .unwrap();
        let mut host_grads = GradientsParams::new();
        gradients.register(&model, &mut host_grads, &Default::default());

        assert!(
            (host_loss - burn_loss).abs() <= 1e-5 * burn_loss.abs(),
            "loss {host_loss} vs burn {burn_loss}"
        );
        let mut compare = Compare {
            burn: &burn_grads,
            host: &host_grads,
            worst: 0.0,
            count: 0,
        };
        model.visit(&mut compare);
        println!("{target}/{query}/{width}×{depth}: loss {host_loss:.6} vs {burn_loss:.6}, {} gradients, worst error {:.2e}", compare.count, compare.worst);
        assert_eq!(
            compare.count,
            host_grads.len(),
            "one gradient per parameter"
        );
        assert!(
            compare.worst <= 1e-5,
            "{target}/{query}/{width}×{depth}: worst gradient error {:.2e}",
            compare.worst
        );
    }
}

#[test]
fn dropout_masks_follow_the_seed_and_keep_the_expected_share() {
    let model = prior(6, 5, 64, 2, true, 0.25);
    let host = batch(6, 5, 64, 1);
    let path = PriorGradients::from_prior(&model).unwrap();
    assert_eq!(path.dropout(), 0.25);
    let (a, _) = path.loss_and_gradients(&host, 7).unwrap();
    let (b, _) = path.loss_and_gradients(&host, 7).unwrap();
    let (c, _) = path.loss_and_gradients(&host, 8).unwrap();
    assert_eq!(a, b, "same seed, same masks, same loss");
    assert_ne!(a, c, "another seed, other masks");
    // Without dropout the seed does not matter.
    let plain = PriorGradients::from_prior(&prior(6, 5, 64, 2, true, 0.0)).unwrap();
    assert_eq!(
        plain.loss_and_gradients(&host, 1).unwrap().0,
        plain.loss_and_gradients(&host, 2).unwrap().0
    );
}

#[test]
fn a_batch_of_another_width_is_a_typed_error() {
    let model = prior(6, 5, 16, 1, true, 0.0);
    let err = PriorGradients::from_prior(&model)
        .unwrap()
        .loss_and_gradients(&batch(7, 5, 4, 1), 0)
        .unwrap_err();
    assert!(err.to_string().contains("7-d targets"), "{err}");
}
