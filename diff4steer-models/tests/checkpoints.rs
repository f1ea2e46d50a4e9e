//! Checkpoints: save → load is bit-identical, resume reproduces an uninterrupted run exactly, and
//! missing, truncated, corrupt or mismatched checkpoints give typed errors.

mod common;

use std::fs;
use std::path::Path;

use burn::tensor::Tensor;
use common::*;
use diff4steer_core::{Conditioning, Denoiser};
use diff4steer_models::training::{
    load_prior, load_regression, train_prior, train_regression, Checkpoint, LossPoint, Output,
    PairData, TrainingConfig,
};
use diff4steer_models::{
    DiffusionPrior, DiffusionPriorConfig, ModelError, RegressionConfig, ResMlpConfig,
};

fn data() -> PairData {
    let mut noise = diff4steer_core::SeededNoise::new(3);
    PairData::from_vecs(noise.normal_host(300, 5), 5, noise.normal_host(300, 3), 3).unwrap()
}

fn prior_config() -> DiffusionPriorConfig {
    DiffusionPriorConfig::new(3, 5).with_network(
        ResMlpConfig::new()
            .with_width(32)
            .with_depth(2)
            .with_dropout(0.1)
            .with_embedding_dim(16)
            .with_fourier_features(4),
    )
}

fn training(steps: usize) -> TrainingConfig {
    TrainingConfig::new()
        .with_steps(steps)
        .with_batch_size(32)
        .with_warmup_steps(5)
        .with_validate_every(10)
        .with_checkpoint_every(10)
        .with_ema_decay(0.9)
        .with_progress(false)
        .with_seed(7)
}

fn train_into(
    steps: usize,
    output: Output<'_>,
) -> (
    DiffusionPrior<TestBackend>,
    Vec<diff4steer_models::training::LossPoint>,
) {
    let valid = data();
    let (model, _, report) = train_prior::<TestAutodiff>(
        &prior_config(),
        &training(steps),
        &data(),
        Some(&valid),
        Some(output),
        &Default::default(),
    )
    .unwrap();
    (model, report.history)
}

fn outputs(model: &DiffusionPrior<TestBackend>) -> Vec<Vec<f64>> {
    let device = Default::default();
    let x = Tensor::<TestBackend, 2>::from_floats([[0.3, -1.0, 2.0], [1.0, 0.5, -0.2]], &device);
    let sigma = Tensor::<TestBackend, 1>::from_floats([0.7, 5.0], &device);
    let cond = Conditioning::with_null_rows(
        Tensor::from_floats(
            [[0.1, 0.2, 0.3, 0.4, 0.5], [1.0, 0.0, 0.0, 0.0, 0.0]],
            &device,
        ),
        vec![false, true],
    )
    .unwrap();
    rows(model.denoise(x, sigma, &cond).unwrap())
}

#[test]
fn save_then_load_gives_bit_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (model, history) = train_into(25, Output::new(dir.path()));
    let (loaded, config) = load_prior::<TestBackend>(dir.path(), &Default::default()).unwrap();
    assert_eq!(outputs(&model), outputs(&loaded));
    // Trained on standardised targets (the default): the stored shift is each column's mean, and
    // σ_d the spread of the standardised targets.
    let scaling = config
        .target_scaling()
        .unwrap()
        .expect("standardised by default");
    let targets = data().targets().to_vec();
    for (c, &shift) in scaling.shift().iter().enumerate() {
        let mean = targets
            .iter()
            .skip(c)
            .step_by(3)
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / 300.0;
        assert!((f64::from(shift) - mean).abs() < 1e-6, "column {c}");
    }
    let standardised = data().to_model_units(&scaling).unwrap();
    assert!((config.sigma_data - standardised.target_std()).abs() < 1e-12);
    assert!((config.sigma_data - 1.0).abs() < 1e-6);
    // The newest checkpoint and one before it are kept; the loss curve is written.
    let checkpoint = Checkpoint::open(dir.path()).unwrap();
    assert_eq!(checkpoint.step(), 25);
    assert_eq!(checkpoint.history(), &history[..]);
    assert!(dir.path().join("step-000020").exists() && !dir.path().join("step-000010").exists());
    let csv = fs::read_to_string(dir.path().join("loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 26);
    assert!(fs::read_to_string(dir.path().join("loss.svg"))
        .unwrap()
        .starts_with("<svg"));
}

/// Loss histories agree step by step: the same steps and learning rates, and losses equal to
/// within 1e-5 relative. Run alone the trajectories are bit-identical; burn-flex's rayon kernels
/// may round the last bit differently when other tests load the CPU at the same time.
fn assert_same_trajectory(a: &[LossPoint], b: &[LossPoint]) {
    assert_eq!(a.len(), b.len());
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-5 * x.abs().max(1.0);
    for (p, q) in a.iter().zip(b) {
        assert_eq!((p.step, p.learning_rate), (q.step, q.learning_rate));
        assert!(
            close(p.train_loss, q.train_loss),
            "step {}: {} vs {}",
            p.step,
            p.train_loss,
            q.train_loss
        );
        assert_eq!(
            p.valid_loss.is_some(),
            q.valid_loss.is_some(),
            "step {}",
            p.step
        );
        if let (Some(x), Some(y)) = (p.valid_loss, q.valid_loss) {
            assert!(close(x, y), "step {}: validation {x} vs {y}", p.step);
        }
    }
}

#[test]
fn resume_reproduces_the_uninterrupted_run() {
    let whole = tempfile::tempdir().unwrap();
    let (uninterrupted, full_history) = train_into(30, Output::new(whole.path()));
    let split = tempfile::tempdir().unwrap();
    // Interrupted after 17 steps (the last checkpoint is at 17, not at a multiple of 10).
    let (_, first_part) = train_into(30, Output::new(split.path()).stopping_after(17));
    assert_same_trajectory(&first_part, &full_history[..17]);
    let (resumed, resumed_history) = train_into(30, Output::resuming(split.path()));
    assert_same_trajectory(&resumed_history, &full_history);
    let (a, b) = (outputs(&resumed), outputs(&uninterrupted));
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
    }
    // A resume under another training configuration is refused.
    let err = train_prior::<TestAutodiff>(
        &prior_config(),
        &training(40).with_learning_rate(0.5),
        &data(),
        None,
        Some(Output::resuming(split.path())),
        &Default::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ModelError::Checkpoint { .. }), "{err}");
}

fn expect_checkpoint_error(dir: &Path) {
    match load_prior::<TestBackend>(dir, &Default::default()) {
        Err(ModelError::Checkpoint { .. }) => {}
        Err(other) => panic!("expected a checkpoint error, got {other}"),
        Ok(_) => panic!("a broken checkpoint loaded"),
    }
}

#[test]
fn broken_or_mismatched_checkpoints_give_typed_errors() {
    let empty = tempfile::tempdir().unwrap();
    expect_checkpoint_error(empty.path());

    let dir = tempfile::tempdir().unwrap();
    train_into(10, Output::new(dir.path()));
    let step = dir.path().join("step-000010");
    let pristine = |name: &str| fs::read(step.join(name)).unwrap();
    // The weights sampling loads (the run had validation data: the lowest-validation ones).
    let file = Checkpoint::open(dir.path()).unwrap().sampling_file();
    assert_eq!(file, "best.mpk");
    let (weights, config) = (pristine(file), pristine("config.json"));
    let restore = || {
        fs::write(step.join(file), &weights).unwrap();
        fs::write(step.join("config.json"), &config).unwrap();
    };

    // Truncated weights.
    fs::write(step.join(file), &weights[..weights.len() / 2]).unwrap();
    expect_checkpoint_error(dir.path());
    restore();
    // One flipped byte.
    let mut flipped = weights.clone();
    flipped[weights.len() / 3] ^= 0x40;
    fs::write(step.join(file), &flipped).unwrap();
    expect_checkpoint_error(dir.path());
    restore();
    // Missing weights.
    fs::remove_file(step.join(file)).unwrap();
    expect_checkpoint_error(dir.path());
    restore();
    // Truncated and garbage manifest.
    fs::write(step.join("config.json"), &config[..config.len() / 2]).unwrap();
    expect_checkpoint_error(dir.path());
    fs::write(step.join("config.json"), b"\xff\xfe not json").unwrap();
    expect_checkpoint_error(dir.path());
    restore();
    // A manifest whose model configuration does not match the stored weights (another width).
    let text = String::from_utf8(config.clone())
        .unwrap()
        .replace("\"width\": 32", "\"width\": 48");
    assert_ne!(text.as_bytes(), &config[..]);
    fs::write(step.join("config.json"), text).unwrap();
    expect_checkpoint_error(dir.path());
    restore();
    // `latest` pointing nowhere.
    fs::write(dir.path().join("latest"), "step-999999").unwrap();
    expect_checkpoint_error(dir.path());
    fs::write(dir.path().join("latest"), "../../etc").unwrap();
    expect_checkpoint_error(dir.path());
    fs::write(dir.path().join("latest"), "step-000010").unwrap();
    // Intact again, it loads; as the wrong kind of model it does not.
    assert!(load_prior::<TestBackend>(dir.path(), &Default::default()).is_ok());
    assert!(matches!(
        load_regression::<TestBackend>(dir.path(), &Default::default()),
        Err(ModelError::Checkpoint { .. })
    ));
}

#[test]
fn regression_checkpoints_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let config = RegressionConfig::new(3, 5).with_network(prior_config().network);
    let (model, _) = train_regression::<TestAutodiff>(
        &config,
        &training(12),
        &data(),
        None,
        Some(Output::new(dir.path())),
        &Default::default(),
    )
    .unwrap();
    let (loaded, loaded_config) =
        load_regression::<TestBackend>(dir.path(), &Default::default()).unwrap();
    // The stored configuration is the given one plus the fitted standardisation.
    assert_eq!(loaded_config.target_shift.len(), 3);
    assert_eq!(
        loaded_config
            .clone()
            .with_target_shift(vec![])
            .with_target_scale(vec![]),
        config
    );
    let q = Tensor::<TestBackend, 2>::from_floats([[0.1, 0.2, 0.3, 0.4, 0.5]], &Default::default());
    assert_eq!(rows(model.predict(q.clone())), rows(loaded.predict(q)));
    assert!(matches!(
        load_prior::<TestBackend>(dir.path(), &Default::default()),
        Err(ModelError::Checkpoint { .. })
    ));
}

#[test]
fn invalid_training_input_gives_typed_errors() {
    assert!(matches!(
        PairData::from_vecs(vec![0.0; 10], 5, vec![0.0; 9], 3),
        Err(ModelError::Data { .. })
    ));
    assert!(matches!(
        PairData::from_vecs(vec![f32::NAN; 5], 5, vec![0.0; 3], 3),
        Err(ModelError::Data { .. })
    ));
    assert!(matches!(
        PairData::from_vecs(vec![], 5, vec![], 3),
        Err(ModelError::Data { .. })
    ));
    let device = Default::default();
    // Data of another dimension than the model.
    let wrong = DiffusionPriorConfig::new(4, 5).with_network(prior_config().network);
    assert!(matches!(
        train_prior::<TestAutodiff>(&wrong, &training(2), &data(), None, None, &device),
        Err(ModelError::Data { .. })
    ));
    // Invalid settings.
    for bad in [
        training(0),
        training(5).with_batch_size(0),
        training(5).with_learning_rate(f64::NAN),
        training(5).with_cond_dropout(1.0),
    ] {
        assert!(matches!(
            train_prior::<TestAutodiff>(&prior_config(), &bad, &data(), None, None, &device),
            Err(ModelError::InvalidConfig { .. })
        ));
    }
    let bad_net = DiffusionPriorConfig::new(3, 5).with_network(ResMlpConfig::new().with_width(0));
    assert!(bad_net.init::<TestBackend>(&device).is_err());
    // Constant targets have σ_data = 0.
    let constant = PairData::from_vecs(vec![0.5; 50], 5, vec![1.0; 30], 3).unwrap();
    assert!(matches!(
        train_prior::<TestAutodiff>(
            &prior_config(),
            &training(2),
            &constant,
            None,
            None,
            &device
        ),
        Err(ModelError::Data { .. })
    ));
    // .npy files: missing, another dtype.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.npy");
    assert!(matches!(
        PairData::from_npy(&missing, &missing),
        Err(ModelError::Data { .. })
    ));
    let f64_file = dir.path().join("f64.npy");
    ndarray_npy::write_npy(&f64_file, &ndarray::Array2::<f64>::zeros((3, 2))).unwrap();
    assert!(matches!(
        PairData::from_npy(&f64_file, &f64_file),
        Err(ModelError::Data { .. })
    ));
    let f32_file = dir.path().join("f32.npy");
    ndarray_npy::write_npy(&f32_file, &ndarray::Array2::<f32>::ones((3, 2))).unwrap();
    let pairs = PairData::from_npy(&f32_file, &f32_file).unwrap();
    assert_eq!(
        (pairs.rows(), pairs.query_dim(), pairs.target_dim()),
        (3, 2, 2)
    );
}

#[test]
fn both_models_serve_k_seeds_per_query() {
    use diff4steer_models::{PriorSeeds, Sampler, SamplerKind, SeedGenerator};
    let device = Default::default();
    let prior = prior_config().init::<TestBackend>(&device).unwrap();
    let regression = RegressionConfig::new(3, 5)
        .with_network(prior_config().network)
        .init::<TestBackend>(&device)
        .unwrap();
    let queries = Tensor::<TestBackend, 2>::from_floats(
        [[0.1, 0.2, 0.3, 0.4, 0.5], [1.0, 0.0, 0.0, 0.0, 0.0]],
        &device,
    );
    let sampler = Sampler::new(
        SamplerKind::Heun,
        diff4steer_core::karras(4, 0.002, 80.0, 7.0).unwrap(),
    )
    .unwrap();
    let generators: [(&str, &dyn SeedGenerator<TestBackend>); 2] = [
        ("prior", &PriorSeeds::new(prior, sampler)),
        ("regression", &regression),
    ];
    for (name, generator) in generators {
        let seeds = rows(generator.seeds(queries.clone(), 4, 9).unwrap());
        assert_eq!((seeds.len(), seeds[0].len()), (8, 3), "{name}");
        assert_eq!(
            seeds,
            rows(generator.seeds(queries.clone(), 4, 9).unwrap()),
            "{name}: same seed"
        );
        // Query-major: rows 0–3 belong to query 0, and a query's seeds do not depend on the others.
        let alone = rows(
            generator
                .seeds(queries.clone().narrow(0, 0, 1), 4, 9)
                .unwrap(),
        );
        assert_eq!(alone[..], seeds[..4], "{name}");
        assert!(
            generator.seeds(queries.clone(), 0, 9).is_err(),
            "{name}: k = 0"
        );
        let wide = Tensor::<TestBackend, 2>::zeros([2, 6], &device);
        assert!(generator.seeds(wide, 2, 9).is_err(), "{name}: wrong width");
        let nan = Tensor::<TestBackend, 2>::from_floats([[f32::NAN, 0.0, 0.0, 0.0, 0.0]], &device);
        assert!(generator.seeds(nan, 2, 9).is_err(), "{name}: NaN");
    }
    // The regression baseline's K seeds are K copies of one point.
    let copies = rows(regression.seeds(queries, 3, 0).unwrap());
    assert!(copies[0] == copies[1] && copies[1] == copies[2] && copies[3] != copies[0]);
}

#[test]
fn cosine_regression_predicts_unit_vectors_and_learns_the_direction() {
    use diff4steer_models::RegressionLoss;
    // Every query maps to the same unit target direction (0.6, 0.8, 0).
    let queries = diff4steer_core::SeededNoise::new(1).normal_host(200, 5);
    let targets: Vec<f32> = (0..200).flat_map(|_| [0.6f32, 0.8, 0.0]).collect();
    let data = PairData::from_vecs(queries, 5, targets, 3).unwrap();
    // Constant targets: standardising them would leave nothing to learn, so this test trains in
    // catalogue units.
    let config = RegressionConfig::new(3, 5)
        .with_loss(RegressionLoss::Cosine)
        .with_standardise_targets(false)
        .with_network(prior_config().network.with_dropout(0.0));
    let (model, report) = train_regression::<TestAutodiff>(
        &config,
        &training(150).with_learning_rate(3e-3),
        &data,
        None,
        None,
        &Default::default(),
    )
    .unwrap();
    let first = report.history[0].train_loss;
    let last = report.history[report.history.len() - 1].train_loss;
    let q =
        Tensor::<TestBackend, 2>::from_floats([[0.3, -0.2, 1.0, 0.0, 0.5]], &Default::default());
    let p = rows(model.predict(q))[0].clone();
    let norm = p.iter().map(|v| v * v).sum::<f64>().sqrt();
    let cos = (0.6 * p[0] + 0.8 * p[1]) / norm;
    println!("cosine loss {first:.4} → {last:.4}; prediction {p:.3?}, cos to target {cos:.4}");
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    assert!(
        last < first / 4.0 && cos > 0.95,
        "{first} → {last}, cos {cos}"
    );
}

/// The checkpoint loaders refuse a configuration needing more parameters than the stored
/// weights hold; the bound they use must never exceed a real model's count.
#[test]
fn the_minimum_parameter_count_bounds_the_real_one() {
    let device = Default::default();
    for (width, depth, embedding_dim, fourier_features) in [
        (1, 1, 1, 1),
        (8, 1, 4, 2),
        (64, 3, 32, 16),
        (256, 4, 128, 8),
    ] {
        let network = ResMlpConfig::new()
            .with_width(width)
            .with_depth(depth)
            .with_embedding_dim(embedding_dim)
            .with_fourier_features(fourier_features);
        let prior = DiffusionPriorConfig::new(7, 5).with_network(network.clone());
        let real = prior
            .init::<TestBackend>(&device)
            .unwrap()
            .parameter_count() as u128;
        assert!(prior.minimum_parameters() <= real, "prior {width}×{depth}");
        if width >= 64 {
            // Weight matrices dominate once layers are wide: the bound is close.
            assert!(
                prior.minimum_parameters() * 2 > real,
                "prior {width}×{depth}: a loose bound"
            );
        }
        let regression = RegressionConfig::new(7, 5).with_network(network);
        let real = regression
            .init::<TestBackend>(&device)
            .unwrap()
            .parameter_count() as u128;
        assert!(
            regression.minimum_parameters() <= real,
            "regression {width}×{depth}"
        );
    }
}

#[test]
fn keep_best_returns_and_stores_the_lowest_validation_weights_and_patience_stops_early() {
    let valid = data();
    let run = |training: TrainingConfig, dir: &Path| {
        train_prior::<TestAutodiff>(
            &prior_config(),
            &training,
            &data(),
            Some(&valid),
            Some(Output::new(dir)),
            &Default::default(),
        )
        .unwrap()
    };
    // A learning rate high enough that the validation loss does not fall monotonically.
    let recipe = || {
        training(60)
            .with_validate_every(3)
            .with_checkpoint_every(0)
            .with_learning_rate(0.02)
    };
    let dir = tempfile::tempdir().unwrap();
    let (model, _, report) = run(recipe(), dir.path());
    let validations: Vec<(usize, f64)> = report
        .history
        .iter()
        .filter_map(|p| p.valid_loss.map(|v| (p.step, v)))
        .collect();
    let lowest = validations
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(report.best_step, Some(lowest.0));
    assert_ne!(lowest.0, 60, "the test wants a minimum before the end");
    // What sampling loads is what the run returned: the lowest-validation weights.
    let checkpoint = Checkpoint::open(dir.path()).unwrap();
    assert!(checkpoint.has_best() && checkpoint.sampling_file() == "best.mpk");
    let (loaded, _) = load_prior::<TestBackend>(dir.path(), &Default::default()).unwrap();
    assert_eq!(outputs(&model), outputs(&loaded));
    // Without keep_best: the last EMA weights, and no best.mpk.
    let last_dir = tempfile::tempdir().unwrap();
    let (last, _, last_report) = run(recipe().with_keep_best(false), last_dir.path());
    assert_eq!(last_report.best_step, None);
    assert!(!Checkpoint::open(last_dir.path()).unwrap().has_best());
    assert_ne!(outputs(&last), outputs(&model));
    // Patience: stop after two validations without a new lowest loss.
    let early_dir = tempfile::tempdir().unwrap();
    let (_, _, early) = run(recipe().with_patience(2), early_dir.path());
    assert!(early.steps < 60, "stopped early");
    assert_eq!(early.history.len(), early.steps);
    let seen: Vec<f64> = early.history.iter().filter_map(|p| p.valid_loss).collect();
    let best_before = seen[..seen.len() - 2]
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    assert!(seen[seen.len() - 2..].iter().all(|&v| v >= best_before));
    assert_eq!(
        Checkpoint::open(early_dir.path()).unwrap().step(),
        early.steps
    );
}

#[test]
fn checkpoints_written_before_the_newer_training_options_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = train_into(10, Output::new(dir.path()));
    let manifest = dir.path().join("step-000010").join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&fs::read(&manifest).unwrap()).unwrap();
    let training = json["training"].as_object_mut().unwrap();
    for key in ["host_gradients", "keep_best", "patience"] {
        assert!(training.remove(key).is_some(), "{key} is written");
    }
    fs::write(&manifest, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let (loaded, _) = load_prior::<TestBackend>(dir.path(), &Default::default()).unwrap();
    assert_eq!(outputs(&model), outputs(&loaded));
    let checkpoint = Checkpoint::open(dir.path()).unwrap();
    assert_eq!(
        checkpoint.training().patience,
        TrainingConfig::new().patience
    );
}
