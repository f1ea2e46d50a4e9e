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
        // Batches of 64 rows and more are computed in two shards side by side.
        (7, 6, 16, 2, true, 97),
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

fn training_data() -> PairData {
    let mut noise = diff4steer_core::SeededNoise::new(5);
    PairData::from_vecs(noise.normal_host(200, 7), 7, noise.normal_host(200, 6), 6).unwrap()
}

fn small_config(dropout: f64) -> DiffusionPriorConfig {
    DiffusionPriorConfig::new(6, 7).with_network(
        ResMlpConfig::new()
            .with_width(32)
            .with_depth(2)
            .with_embedding_dim(16)
            .with_fourier_features(4)
            .with_dropout(dropout),
    )
}

fn recipe(host: bool) -> TrainingConfig {
    TrainingConfig::new()
        .with_steps(40)
        .with_batch_size(32)
        .with_warmup_steps(5)
        .with_validate_every(10)
        .with_ema_decay(0.9)
        .with_seed(11)
        .with_progress(false)
        .with_host_gradients(host)
}

#[test]
fn the_host_training_loop_follows_burns_loss_curve_step_by_step() {
    use diff4steer_models::training::train_prior;
    let data = training_data();
    let run = |host: bool| {
        train_prior::<AB>(
            &small_config(0.0),
            &recipe(host),
            &data,
            Some(&data),
            None,
            &Default::default(),
        )
        .unwrap()
    };
    let (host_model, _, host) = run(true);
    let (burn_model, _, burn) = run(false);
    assert_eq!(host.history.len(), burn.history.len());
    // Same initial weights, batches and updates (AdamW, clipping, EMA); only the order of f32
    // sums differs, so the curves agree closely and drift only slowly.
    let mut worst = 0.0f64;
    for (h, b) in host.history.iter().zip(&burn.history) {
        assert_eq!(h.step, b.step);
        let rel = (h.train_loss - b.train_loss).abs() / b.train_loss.abs();
        worst = worst.max(rel);
        if let (Some(hv), Some(bv)) = (h.valid_loss, b.valid_loss) {
            assert!(
                (hv - bv).abs() <= 1e-3 * bv.abs(),
                "step {}: {hv} vs {bv}",
                h.step
            );
        }
    }
    assert!(
        worst <= 1e-3,
        "largest relative loss difference {worst:.2e}"
    );
    assert_eq!(host.best_step, burn.best_step);
    // The returned models (the EMA at the best validation) agree too.
    use diff4steer_core::{Conditioning, Denoiser};
    let x = Tensor::<B, 2>::from_floats([[0.3, -1.0, 2.0, 0.1, 0.0, 0.5]], &Default::default());
    let sigma = Tensor::<B, 1>::from_floats([1.3], &Default::default());
    let cond = Conditioning::new(Tensor::<B, 2>::from_floats(
        [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]],
        &Default::default(),
    ))
    .unwrap();
    let a: Vec<f32> = host_model
        .denoise(x.clone(), sigma.clone(), &cond)
        .unwrap()
        .into_data()
        .to_vec()
        .unwrap();
    let b: Vec<f32> = burn_model
        .denoise(x, sigma, &cond)
        .unwrap()
        .into_data()
        .to_vec()
        .unwrap();
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() <= 1e-3 * q.abs().max(1.0), "{p} vs {q}");
    }
}

#[test]
fn host_training_gives_bit_identical_weights_and_losses_with_one_thread_or_two() {
    use diff4steer_models::training::{load_prior, train_prior, Checkpoint, Output};
    let data = training_data();
    // (loss history bits, returned weights, weights a checkpoint's reader loads, last EMA).
    let run = |threads: usize| {
        let dir = tempfile::tempdir().unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (model, _, report) = pool.install(|| {
            train_prior::<AB>(
                &small_config(0.1),
                &recipe(true).with_steps(12).with_batch_size(128),
                &data,
                Some(&data),
                Some(Output::new(dir.path())),
                &Default::default(),
            )
            .unwrap()
        });
        let weights = |p: &DiffusionPrior<B>| -> Vec<u32> {
            PriorGradients::from_prior(p)
                .unwrap()
                .parameters()
                .iter()
                .flat_map(|t| t.iter().map(|v| v.to_bits()))
                .collect()
        };
        let (loaded, _) = load_prior::<B>(dir.path(), &Default::default()).unwrap();
        let losses: Vec<u64> = report
            .history
            .iter()
            .flat_map(|p| {
                [
                    p.train_loss.to_bits(),
                    p.valid_loss.unwrap_or(0.0).to_bits(),
                ]
            })
            .collect();
        assert!(Checkpoint::open(dir.path()).unwrap().has_best());
        (losses, weights(&model), weights(&loaded))
    };
    let (one, two) = (run(1), run(2));
    assert!(
        one.0 == two.0,
        "loss histories differ between 1 and 2 threads"
    );
    assert!(
        one.1 == two.1,
        "trained weights differ between 1 and 2 threads"
    );
    assert!(
        one.2 == two.2,
        "checkpointed weights differ between 1 and 2 threads"
    );
    assert!(one.1 == one.2, "the checkpoint holds the returned weights");
}
