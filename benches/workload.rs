//! The reference workload of the performance benches and the peer comparison: a prior of the
//! paper's size with every weight non-trivial, unit-norm queries, and a clustered catalogue.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use diff4steer_models::training::{PairData, TrainingConfig};
use diff4steer_models::{DiffusionPrior, DiffusionPriorConfig, ResMlpConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Target (music) embedding width of the reference configuration.
pub const TARGET_DIM: usize = 128;
/// Query (text) embedding width of the reference configuration (MiniLM).
pub const QUERY_DIM: usize = 384;
/// Catalogue size: the number of tracks in ../shared/data/jamendo-tags.
pub const CATALOGUE_ITEMS: usize = 55_525;

/// Adds N(0, σ²) to every parameter: a fresh prior's output layers start at zero (each block the
/// identity), which would make timings of a real network and agreement checks too easy.
struct Perturb {
    rng: ChaCha8Rng,
    std: f32,
}

impl<B: Backend> ModuleMapper<B> for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let normal = Normal::new(0.0f32, self.std).expect("finite standard deviation");
        let noise: Vec<f32> = (0..shape.num_elements())
            .map(|_| normal.sample(&mut self.rng))
            .collect();
        let noise = Tensor::from_data(TensorData::new(noise, shape), &tensor.device());
        Param::from_mapped_value(id, tensor + noise, mapper)
    }
}

/// The prior of `width` × `depth` (128-d targets, 384-d queries, 512-d conditioning, 64 Fourier
/// frequencies, σ_d = 0.5), initialised from `seed` and perturbed by N(0, 0.02²) everywhere.
pub fn reference_prior<B: Backend>(width: usize, depth: usize, seed: u64) -> DiffusionPrior<B> {
    let config = DiffusionPriorConfig::new(TARGET_DIM, QUERY_DIM)
        .with_network(ResMlpConfig::new().with_width(width).with_depth(depth));
    B::seed(&Default::default(), seed);
    config
        .init::<B>(&Default::default())
        .expect("the reference configuration is valid")
        .map(&mut Perturb {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed),
            std: 0.02,
        })
}

/// `n` rows of `dim` standard-normal values, each scaled to unit L2 norm.
pub fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values: Vec<f32> = (0..n * dim)
        .map(|_| Normal::new(0.0f32, 1.0).unwrap().sample(&mut rng))
        .collect();
    for row in values.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
    values
}

/// A clustered catalogue of unit vectors: `clusters` random unit centres plus Gaussian noise of
/// norm ≈ 0.3, renormalised (music embeddings cluster by genre and mood; uniform directions
/// would defeat every graph index, see BENCHMARKS.md).
pub fn clustered_catalogue(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let centres = unit_rows(clusters, dim, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    let noise = Normal::new(0.0f32, 0.3 / (dim as f32).sqrt()).unwrap();
    let mut values = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = i % clusters;
        let start = values.len();
        values.extend(
            centres[c * dim..(c + 1) * dim]
                .iter()
                .map(|v| v + noise.sample(&mut rng)),
        );
        let row = &mut values[start..];
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    values
}

/// The training set of the training benches: 4,096 pairs of unit 384-d queries and 128-d targets
/// (unit rows scaled by 11 and shifted by 0.3, so standardisation has work to do).
pub fn training_pairs() -> PairData {
    let n = 4096;
    PairData::from_vecs(
        unit_rows(n, QUERY_DIM, 11),
        QUERY_DIM,
        unit_rows(n, TARGET_DIM, 12)
            .into_iter()
            .map(|v| v * 11.0 + 0.3)
            .collect(),
        TARGET_DIM,
    )
    .expect("rows of the declared widths")
}

/// The reference prior's configuration at `width` × `depth` (untrained; what the training
/// benches train).
pub fn prior_config(width: usize, depth: usize) -> DiffusionPriorConfig {
    DiffusionPriorConfig::new(TARGET_DIM, QUERY_DIM)
        .with_network(ResMlpConfig::new().with_width(width).with_depth(depth))
}

/// The CLI's training recipe (EDM loss, condition dropout 0.1, AdamW with warm-up and cosine
/// decay, clipping, EMA) for `steps` steps of `batch` pairs, seed 3, without checkpoints,
/// validation or progress output.
pub fn training_recipe(steps: usize, batch: usize) -> TrainingConfig {
    TrainingConfig::new()
        .with_steps(steps)
        .with_batch_size(batch)
        .with_checkpoint_every(0)
        .with_validate_every(0)
        .with_seed(3)
        .with_progress(false)
}
