//! The fast host path against the burn model it was copied from: the denoiser to 1e-5, whole
//! guided trajectories to 1e-4, and its input checks.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::{karras, Conditioning, Denoiser, LinearGuidance};
use diff4steer_models::backend::CpuBackend as B;
use diff4steer_models::fast::{
    FastPrior, FastSampler, FastScratch, FastSeeds, HostCondition, Threads,
};
use diff4steer_models::{
    DiffusionPrior, DiffusionPriorConfig, PriorSeeds, ResMlpConfig, Sampler, SamplerKind,
    SeedGenerator,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

const TARGET: usize = 16;
const QUERY: usize = 12;

/// Adds N(0, 0.3²) to every parameter, so that no block is the identity (a fresh prior's output
/// layers start at zero) and the null query, norms and biases all matter.
struct Perturb(ChaCha8Rng);

impl ModuleMapper<B> for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let normal = Normal::new(0.0f32, 0.3).unwrap();
        let noise: Vec<f32> = (0..shape.num_elements())
            .map(|_| normal.sample(&mut self.0))
            .collect();
        let noise = Tensor::from_data(TensorData::new(noise, shape), &tensor.device());
        Param::from_mapped_value(id, tensor + noise, mapper)
    }
}

fn prior() -> DiffusionPrior<B> {
    let config = DiffusionPriorConfig::new(TARGET, QUERY)
        .with_sigma_data(0.7)
        .with_network(
            ResMlpConfig::new()
                // Three column panels of the host path's row products (64 + 64 + 16 columns).
                .with_width(144)
                .with_depth(3)
                .with_fourier_features(8)
                .with_embedding_dim(24),
        );
    config
        .init::<B>(&Default::default())
        .unwrap()
        .map(&mut Perturb(ChaCha8Rng::seed_from_u64(3)))
}

fn values(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, scale).unwrap();
    (0..len).map(|_| normal.sample(&mut rng)).collect()
}

fn matrix(values: Vec<f32>, cols: usize) -> Tensor<B, 2> {
    let rows = values.len() / cols;
    Tensor::from_data(TensorData::new(values, [rows, cols]), &Default::default())
}

fn max_scaled_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(1.0))
        .fold(0.0, f32::max)
}

#[test]
fn the_host_denoiser_agrees_with_the_burn_prior_to_1e_5() {
    let burn_prior = prior();
    for threads in [Threads::Pool, Threads::Single] {
        let fast = FastPrior::from_prior(&burn_prior)
            .unwrap()
            .with_threads(threads);
        // 12 rows: σ from 0.002 to 80, three distinct queries (one repeated), null rows mixed in.
        let sigmas = [
            0.002f32, 0.01, 0.05, 0.2, 0.5, 1.0, 1.0, 2.0, 5.0, 10.0, 40.0, 80.0,
        ];
        let rows = sigmas.len();
        let x: Vec<f32> = values(rows * TARGET, 1, 1.0)
            .chunks(TARGET)
            .zip(&sigmas)
            .flat_map(|(row, s)| row.iter().map(move |v| v * (s + 0.5)).collect::<Vec<_>>())
            .collect();
        let distinct = values(3 * QUERY, 2, 1.0);
        let queries: Vec<f32> = (0..rows)
            .flat_map(|r| distinct[(r % 3) * QUERY..(r % 3 + 1) * QUERY].to_vec())
            .collect();
        let null_rows: Vec<bool> = (0..rows).map(|r| r % 4 == 1).collect();
        let cond = Conditioning::with_null_rows(matrix(queries, QUERY), null_rows).unwrap();
        let sigma = Tensor::<B, 1>::from_floats(sigmas, &Default::default());

        let reference = burn_prior
            .denoise(matrix(x.clone(), TARGET), sigma.clone(), &cond)
            .unwrap();
        let ours = fast.denoise(matrix(x, TARGET), sigma, &cond).unwrap();
        let (reference, ours) = (to_host_f32(reference).unwrap(), to_host_f32(ours).unwrap());
        let error = max_scaled_error(&reference, &ours);
        assert!(error <= 1e-5, "{threads:?}: max error {error}");
        // Not trivially equal: the rows differ from one another.
        assert!(reference[..TARGET] != reference[TARGET..2 * TARGET]);
    }
}

#[test]
fn host_trajectories_agree_with_the_burn_sampler_over_the_burn_prior() {
    let burn_prior = prior();
    let fast = FastPrior::from_prior(&burn_prior).unwrap();
    let queries = values(3 * QUERY, 5, 1.0);
    for kind in [
        SamplerKind::Euler,
        SamplerKind::Heun,
        SamplerKind::DpmSolverPlusPlus2M,
    ] {
        for w in [0.0, 2.0] {
            let sigmas = karras(10, 0.002, 80.0, 7.0).unwrap();
            let reference = PriorSeeds::new(
                LinearGuidance::classifier_free(&burn_prior, w).unwrap(),
                Sampler::new(kind, sigmas.clone()).unwrap(),
            );
            let reference = to_host_f32(
                SeedGenerator::<B>::seeds(&reference, matrix(queries.clone(), QUERY), 4, 9)
                    .unwrap(),
            )
            .unwrap();
            let sampler = FastSampler::new(kind, sigmas, w).unwrap();
            let ours = sampler
                .sample(&fast, &queries, 4, 9, &mut FastScratch::default())
                .unwrap();
            let error = max_scaled_error(&reference, &ours);
            assert!(error <= 1e-4, "{kind} w={w}: max error {error}");
            // Same seed, same seeds, bit for bit; another seed, other seeds.
            let again = sampler
                .sample(&fast, &queries, 4, 9, &mut FastScratch::default())
                .unwrap();
            assert_eq!(ours, again);
            let other = sampler
                .sample(&fast, &queries, 4, 10, &mut FastScratch::default())
                .unwrap();
            assert_ne!(ours, other);
        }
    }
}

#[test]
fn fast_seeds_serve_the_seed_generator_interface_and_the_burn_sampler() {
    let burn_prior = prior();
    let fast = FastPrior::from_prior(&burn_prior).unwrap();
    let sigmas = karras(6, 0.002, 80.0, 7.0).unwrap();
    let queries = values(2 * QUERY, 6, 1.0);
    let seeds = FastSeeds::new(
        fast.clone(),
        FastSampler::new(SamplerKind::Heun, sigmas.clone(), 1.5).unwrap(),
    );
    let host = seeds.seeds_host(&queries, 3, 4).unwrap();
    let through_trait =
        SeedGenerator::<B>::seeds(&seeds, matrix(queries.clone(), QUERY), 3, 4).unwrap();
    assert_eq!(through_trait.dims(), [6, TARGET]);
    assert_eq!(to_host_f32(through_trait).unwrap(), host);
    // The burn sampler over the host denoiser (guidance wrapper in burn): the same seeds.
    let burn_sampler = PriorSeeds::new(
        LinearGuidance::classifier_free(fast, 1.5).unwrap(),
        Sampler::new(SamplerKind::Heun, sigmas).unwrap(),
    );
    let mixed = SeedGenerator::<B>::seeds(&burn_sampler, matrix(queries, QUERY), 3, 4).unwrap();
    let error = max_scaled_error(&to_host_f32(mixed).unwrap(), &host);
    assert!(error <= 1e-5, "max error {error}");
}

#[test]
fn bad_input_to_the_host_path_is_a_typed_error() {
    let fast = FastPrior::from_prior(&prior()).unwrap();
    let sigmas = karras(4, 0.002, 80.0, 7.0).unwrap();
    for kind in [
        SamplerKind::EulerMaruyama,
        SamplerKind::EdmStochastic(Default::default()),
    ] {
        let err = FastSampler::new(kind, sigmas.clone(), 1.0).unwrap_err();
        assert!(err.to_string().contains("host sampler"), "{err}");
    }
    for w in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(FastSampler::new(SamplerKind::Heun, sigmas.clone(), w).is_err());
    }
    let sampler = FastSampler::new(SamplerKind::Heun, sigmas, 1.0).unwrap();
    let mut scratch = FastScratch::default();
    let query = values(QUERY, 1, 1.0);
    let cases: [(&[f32], usize, &str); 4] = [
        (&query, 0, "seeds per query"),
        (&[], 4, "queries"),
        (&query[..QUERY - 1], 4, "query embedding"),
        (&[f32::NAN; QUERY], 4, "query embeddings"),
    ];
    for (queries, k, words) in cases {
        let err = sampler
            .sample(&fast, queries, k, 1, &mut scratch)
            .unwrap_err()
            .to_string();
        assert!(err.contains(words), "{err}");
    }
    // The denoiser checks shapes like every other denoiser.
    let cond = Conditioning::new(matrix(query.clone(), QUERY)).unwrap();
    let sigma = Tensor::<B, 1>::from_floats([1.0], &Default::default());
    let wrong_x = matrix(vec![0.0; TARGET + 1], TARGET + 1);
    assert!(fast.denoise(wrong_x, sigma, &cond).is_err());
}

#[test]
fn a_query_gets_the_same_bits_alone_in_any_batch_and_with_any_thread_count() {
    let burn_prior = prior();
    let sigmas = karras(5, 0.002, 80.0, 7.0).unwrap();
    let sampler = FastSampler::new(SamplerKind::Heun, sigmas, 2.0).unwrap();
    let queries = values(9 * QUERY, 8, 1.0);
    // 20 seeds × 9 queries × 2 guidance rows = 360 rows: six 64-row tiles, a ragged last one.
    // On a pool of four threads the batch's tiles are spread over threads, while one query (one
    // tile) and two queries (two tiles) have each product split by column panels instead.
    let k = 20;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let mut outputs = Vec::new();
    for threads in [Threads::Pool, Threads::Single] {
        let fast = FastPrior::from_prior(&burn_prior)
            .unwrap()
            .with_threads(threads);
        let sample = |queries: &[f32], scratch: &mut FastScratch| {
            pool.install(|| sampler.sample(&fast, queries, k, 3, scratch).unwrap())
        };
        let mut scratch = FastScratch::default();
        let batch = sample(&queries, &mut scratch);
        // Query 0 alone draws the noise streams 0..k, as it does in the batch.
        let alone = sample(&queries[..QUERY], &mut FastScratch::default());
        assert!(
            bits(&alone) == bits(&batch[..k * TARGET]),
            "{threads:?}: query 0 alone differs from its rows in the batch"
        );
        // The first two and the first five queries alone as a batch equal the batch's first rows.
        for n in [2, 5] {
            let first = sample(&queries[..n * QUERY], &mut scratch);
            assert!(
                bits(&first) == bits(&batch[..n * k * TARGET]),
                "{threads:?}: the first {n} queries depend on the batch"
            );
        }
        outputs.push(batch);
    }
    assert!(
        bits(&outputs[0]) == bits(&outputs[1]),
        "the pool and one thread give different bits"
    );
}

#[test]
fn concurrent_callers_of_one_prior_get_the_bits_each_gets_alone() {
    // Six callers share one prior on a two-thread pool: while two or more calls are in progress
    // they keep to their own threads instead of splitting products, which must change no bits.
    let burn_prior = prior();
    let sigmas = karras(4, 0.002, 80.0, 7.0).unwrap();
    let sampler = FastSampler::new(SamplerKind::Heun, sigmas, 2.0).unwrap();
    let fast = FastPrior::from_prior(&burn_prior).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let queries = values(6 * QUERY, 9, 1.0);
    let sample = |i: usize| {
        let query = &queries[i * QUERY..(i + 1) * QUERY];
        pool.install(|| {
            sampler
                .sample(&fast, query, 16, i as u64, &mut FastScratch::default())
                .unwrap()
        })
    };
    let alone: Vec<Vec<f32>> = (0..6).map(sample).collect();
    for _round in 0..3 {
        let together: Vec<Vec<f32>> = std::thread::scope(|scope| {
            let callers: Vec<_> = (0..6).map(|i| scope.spawn(move || sample(i))).collect();
            callers.into_iter().map(|c| c.join().unwrap()).collect()
        });
        for (i, (alone, together)) in alone.iter().zip(&together).enumerate() {
            assert!(
                bits(alone) == bits(together),
                "caller {i}: concurrent bits differ from alone"
            );
        }
    }
}

#[test]
fn a_trajectory_wide_condition_table_gives_the_bits_of_per_evaluation_conditioning() {
    let fast = FastPrior::from_prior(&prior()).unwrap();
    let queries = values(3 * QUERY, 9, 1.0);
    let sources: Vec<Option<&[f32]>> = queries
        .chunks(QUERY)
        .map(Some)
        .chain(std::iter::once(None))
        .collect();
    let grid = [80.0f32, 11.0, 1.3, 0.2, 0.002];
    // The whole grid's conditions at once, σ-major: condition s·4 + j.
    let all: Vec<HostCondition<'_>> = grid
        .iter()
        .flat_map(|&sigma| {
            sources
                .iter()
                .map(move |&query| HostCondition { sigma, query })
        })
        .collect();
    let mut scratch = FastScratch::default();
    let table = fast.condition_table(&all, &mut scratch);
    assert_eq!(table.len(), 20);
    // 70 rows (three tiles, a ragged last one), each under one of the four sources.
    let rows = 70;
    let row_source: Vec<usize> = (0..rows).map(|r| (r * 7) % 4).collect();
    let x = values(rows * TARGET, 10, 3.0);
    let mut seen = Vec::new();
    for (s, &sigma) in grid.iter().enumerate() {
        let at_sigma: Vec<HostCondition<'_>> = sources
            .iter()
            .map(|&query| HostCondition { sigma, query })
            .collect();
        let mut one = vec![0.0f32; rows * TARGET];
        fast.denoise_into(
            &x,
            &row_source,
            &at_sigma,
            &mut one,
            &mut FastScratch::default(),
        );
        let shifted: Vec<usize> = row_source.iter().map(|&j| s * 4 + j).collect();
        let mut from_table = vec![0.0f32; rows * TARGET];
        fast.denoise_with_table(&x, &shifted, &table, &mut from_table, &mut scratch);
        assert!(
            bits(&one) == bits(&from_table),
            "σ = {sigma}: the table's rows differ from per-evaluation conditioning"
        );
        seen.push(one);
    }
    // Not trivially equal: σ changes the output.
    assert!(seen[0] != seen[1]);
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn host_negative_conditions_and_steering_agree_with_the_burn_wrappers() {
    use diff4steer_core::{Similarity, Steered, SteeringTarget};
    use diff4steer_models::fast::{HostGuidance, HostSteering};
    let burn_prior = prior();
    let fast = FastPrior::from_prior(&burn_prior).unwrap();
    let queries = values(3 * QUERY, 11, 1.0);
    let negative = values(QUERY, 12, 1.0);
    let steer = values(3 * TARGET, 13, 1.0);
    let sigmas = karras(8, 0.002, 80.0, 7.0).unwrap();
    for (steering, similarity) in [
        (None, Similarity::Cosine),
        (Some(0.004), Similarity::Cosine),
        (Some(-0.0005), Similarity::Dot),
    ] {
        let contrastive = LinearGuidance::contrastive(
            &burn_prior,
            Conditioning::new(matrix(negative.clone(), QUERY)).unwrap(),
            1.5,
        )
        .unwrap();
        let sampler = Sampler::new(SamplerKind::Heun, sigmas.clone()).unwrap();
        let reference = match steering {
            None => SeedGenerator::<B>::seeds(
                &PriorSeeds::new(contrastive, sampler),
                matrix(queries.clone(), QUERY),
                4,
                5,
            ),
            Some(gamma) => {
                let target = SteeringTarget::new(matrix(steer.clone(), TARGET), gamma).unwrap();
                let steered = Steered::new(contrastive, vec![target], similarity).unwrap();
                SeedGenerator::<B>::seeds(
                    &PriorSeeds::new(steered, sampler),
                    matrix(queries.clone(), QUERY),
                    4,
                    5,
                )
            }
        }
        .unwrap();
        let reference = to_host_f32(reference).unwrap();
        let mut guidance = HostGuidance::contrastive(negative.clone(), 1.5).unwrap();
        if let Some(gamma) = steering {
            guidance = guidance
                .with_steering(
                    vec![HostSteering {
                        embedding: steer.clone(),
                        weight: gamma,
                    }],
                    similarity,
                )
                .unwrap();
        }
        let ours = FastSampler::new(SamplerKind::Heun, sigmas.clone(), 0.0)
            .unwrap()
            .sample_guided(
                &fast,
                &queries,
                4,
                5,
                &guidance,
                &mut FastScratch::default(),
            )
            .unwrap();
        let error = max_scaled_error(&reference, &ours);
        assert!(
            error <= 1e-4,
            "{steering:?} {similarity:?}: max error {error}"
        );
    }
    // Malformed guidance rows are typed errors.
    let bad = HostGuidance::contrastive(vec![0.0; QUERY + 1], 1.0).unwrap();
    let sampler = FastSampler::new(SamplerKind::Heun, sigmas, 0.0).unwrap();
    let err = sampler
        .sample_guided(&fast, &queries, 2, 1, &bad, &mut FastScratch::default())
        .unwrap_err();
    assert!(err.to_string().contains("guidance condition"), "{err}");
    let two_rows = HostGuidance::contrastive(vec![0.0; 2 * QUERY], 1.0).unwrap();
    let err = sampler
        .sample_guided(
            &fast,
            &queries,
            2,
            1,
            &two_rows,
            &mut FastScratch::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("rows"), "{err}");
    assert!(HostGuidance::contrastive(vec![f32::NAN; QUERY], 1.0).is_err());
    assert!(HostGuidance::classifier_free(-1.0).is_err());
}
