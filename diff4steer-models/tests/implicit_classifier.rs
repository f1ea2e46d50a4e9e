//! The implicit-classifier score on the host path against the same sum computed through the burn
//! prior (a second implementation, and the library's burn path), its ranking against the exact
//! log p(x | q) − log p(x) of the analytic mixture, its determinism and input checks, and the
//! re-ranking orders against hand-made lists.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::{Conditioning, Denoiser, SeededNoise};
use diff4steer_models::backend::CpuBackend as B;
use diff4steer_models::fast::{
    rerank, FastPrior, FastScratch, ImplicitClassifier, RerankOrder, ScoreWeighting,
};
use diff4steer_models::{DiffusionPrior, DiffusionPriorConfig, ResMlpConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

const TARGET: usize = 6;
const QUERY: usize = 5;

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

/// A small prior with every weight perturbed and a target standardisation (shift 2, scale 3), so
/// the score must map candidates into the prior's units.
fn prior() -> DiffusionPrior<B> {
    DiffusionPriorConfig::new(TARGET, QUERY)
        .with_target_shift(vec![2.0; TARGET])
        .with_target_scale(vec![3.0; TARGET])
        .with_network(
            ResMlpConfig::new()
                .with_width(32)
                .with_depth(2)
                .with_fourier_features(4)
                .with_embedding_dim(16),
        )
        .init::<B>(&Default::default())
        .unwrap()
        .map(&mut Perturb(ChaCha8Rng::seed_from_u64(5)))
}

fn rows(len: usize, seed: u64) -> Vec<f32> {
    SeededNoise::new(seed).normal_host(1, len)
}

#[test]
fn the_host_score_equals_the_sum_through_the_burn_prior() {
    let prior = prior();
    let fast = FastPrior::from_prior(&prior).unwrap();
    let classifier = ImplicitClassifier::new(5, 0.3, 10.0, ScoreWeighting::Edm, 11).unwrap();
    let query = rows(QUERY, 1);
    let candidates: Vec<f32> = rows(4 * TARGET, 2).iter().map(|v| 2.0 + 3.0 * v).collect();
    let scores = classifier
        .score(&fast, &query, &candidates, &mut FastScratch::default())
        .unwrap();

    // The same sum, written out with the burn prior's denoiser.
    let device = Default::default();
    let map = prior.scaling().unwrap().clone();
    let mut clean = candidates.clone();
    map.to_model_host(&mut clean).unwrap();
    let noise = SeededNoise::new(11).normal_host(5, TARGET);
    let sigma_data = prior.preconditioning().sigma_data;
    let mut expected = vec![0.0f64; 4];
    for (j, &sigma) in classifier.sigmas().iter().enumerate() {
        let noisy: Vec<f32> = clean
            .chunks(TARGET)
            .flat_map(|c| {
                c.iter()
                    .zip(&noise[j * TARGET..(j + 1) * TARGET])
                    .map(|(&v, &e)| v + sigma as f32 * e)
                    .collect::<Vec<_>>()
            })
            .collect();
        let x = Tensor::<B, 2>::from_data(TensorData::new(noisy, [4, TARGET]), &device);
        let s = Tensor::<B, 1>::full([4], sigma, &device);
        let q = Tensor::<B, 2>::from_data(TensorData::new(query.clone(), [1, QUERY]), &device);
        let cond = Conditioning::new(q).unwrap().fit_batch(4).unwrap();
        let with_query = to_host_f32(prior.denoise(x.clone(), s.clone(), &cond).unwrap()).unwrap();
        let without = to_host_f32(prior.denoise(x, s, &cond.to_null()).unwrap()).unwrap();
        let weight = (sigma * sigma + sigma_data * sigma_data) / (sigma * sigma_data).powi(2) / 5.0;
        for (i, c) in clean.chunks(TARGET).enumerate() {
            let err = |d: &[f32]| -> f64 {
                d[i * TARGET..(i + 1) * TARGET]
                    .iter()
                    .zip(c)
                    .map(|(&a, &b)| f64::from(a - b).powi(2))
                    .sum()
            };
            expected[i] += weight * (err(&without) - err(&with_query));
        }
    }
    for (s, e) in scores.iter().zip(&expected) {
        assert!((s - e).abs() <= 1e-3 * e.abs().max(1.0), "{s} vs {e}");
    }
    // The library's burn path (any denoiser) computes the same sum.
    let q = Tensor::<B, 2>::from_data(TensorData::new(query.clone(), [1, QUERY]), &device);
    let through_burn = classifier
        .score_denoiser(&prior, sigma_data, q, &candidates)
        .unwrap();
    for (b, e) in through_burn.iter().zip(&expected) {
        assert!((b - e).abs() <= 1e-6 * e.abs().max(1.0), "{b} vs {e}");
    }
    // Deterministic; a candidate alone scores what it scores among others (shared draws).
    let again = classifier
        .score(&fast, &query, &candidates, &mut FastScratch::default())
        .unwrap();
    assert_eq!(scores, again);
    let alone = classifier
        .score(
            &fast,
            &query,
            &candidates[TARGET..2 * TARGET],
            &mut FastScratch::default(),
        )
        .unwrap();
    assert!((alone[0] - scores[1]).abs() <= 1e-4 * scores[1].abs().max(1.0));
}

#[test]
fn bad_scores_and_settings_are_typed_errors() {
    let fast = FastPrior::from_prior(&prior()).unwrap();
    let classifier = ImplicitClassifier::new(3, 0.5, 5.0, ScoreWeighting::Uniform, 0).unwrap();
    let mut scratch = FastScratch::default();
    let query = rows(QUERY, 1);
    assert!(classifier
        .score(&fast, &query, &[0.0; TARGET + 1], &mut scratch)
        .is_err());
    assert!(classifier
        .score(&fast, &query[..2], &[0.0; TARGET], &mut scratch)
        .is_err());
    assert!(classifier
        .score(&fast, &query, &[f32::NAN; TARGET], &mut scratch)
        .is_err());
    assert!(classifier
        .score(&fast, &query, &[], &mut scratch)
        .unwrap()
        .is_empty());
    assert!(ImplicitClassifier::new(0, 0.5, 5.0, ScoreWeighting::Edm, 0).is_err());
    assert!(ImplicitClassifier::new(4, 5.0, 0.5, ScoreWeighting::Edm, 0).is_err());
    assert!(ImplicitClassifier::new(4, 0.0, 0.5, ScoreWeighting::Elbo, 0).is_err());
    assert!(ImplicitClassifier::new(4, 0.1, f64::NAN, ScoreWeighting::Elbo, 0).is_err());
    // A list id without an item row.
    let lists = vec![vec![0u64, 9]];
    assert!(classifier
        .rerank_lists(
            &fast,
            &query,
            &lists,
            &[0.0; 2 * TARGET],
            2,
            RerankOrder::ByScore
        )
        .is_err());
}

#[test]
fn rerank_orders_by_score_or_by_the_reciprocal_rank_blend() {
    let fused = [10u64, 11, 12, 13, 14];
    // The first four are re-ranked; 14 stays last.
    let scores = [0.1, 0.9, 0.5, 0.9];
    assert_eq!(
        rerank(&fused, 4, &scores, RerankOrder::ByScore).unwrap(),
        vec![11, 13, 12, 10, 14]
    );
    // c = 0: fused ranks 1–4 and score ranks (11: 1, 13: 2, 12: 3, 10: 4):
    // 10 → 1 + 1/4, 11 → 1/2 + 1, 12 → 1/3 + 1/3, 13 → 1/4 + 1/2.
    assert_eq!(
        rerank(&fused, 4, &scores, RerankOrder::Blend { c: 0.0 }).unwrap(),
        vec![11, 10, 13, 12, 14]
    );
    assert!(rerank(&fused, 4, &scores[..3], RerankOrder::ByScore).is_err());
    assert!(rerank(&fused, 4, &scores, RerankOrder::Blend { c: -1.0 }).is_err());
}

/// Ranks 0..n of `values` (ascending; continuous values, so no ties).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut rank = vec![0.0; values.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r as f64;
    }
    rank
}

/// Spearman's rank correlation of two equally long series.
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let mean = (a.len() as f64 - 1.0) / 2.0;
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        ab += (x - mean) * (y - mean);
        aa += (x - mean).powi(2);
        bb += (y - mean).powi(2);
    }
    ab / (aa * bb).sqrt()
}

#[test]
fn on_the_analytic_mixture_the_score_and_the_ode_rank_as_the_exact_pointwise_mutual_information() {
    use diff4steer_core::GaussianMixture;
    // Four overlapping components in 3-D: log p(x | q) − log p(x) varies smoothly over space.
    let means = vec![
        vec![-1.0, 0.0, 0.5],
        vec![1.0, 0.5, -0.5],
        vec![0.0, -1.0, 0.0],
        vec![0.5, 1.0, 1.0],
    ];
    let mixture = GaussianMixture::isotropic(means, 0.3, vec![0.25; 4]).unwrap();
    let weights = [0.6, 0.25, 0.1, 0.05];
    let points = mixture.sample(300, 3, None).unwrap();
    let exact: Vec<f64> = points
        .iter()
        .map(|x| {
            mixture.log_density(x, 0.0, Some(&weights)).unwrap()
                - mixture.log_density(x, 0.0, None).unwrap()
        })
        .collect();
    let candidates: Vec<f32> = points.iter().flatten().map(|&v| v as f32).collect();
    let device = Default::default();
    let query = Tensor::<B, 2>::from_data(
        TensorData::new(weights.iter().map(|&w| w as f32).collect(), [1, 4]),
        &device,
    );
    // The variational-bound weight (1/σ² per unit ln σ) makes the score 2·(log p(x|q) − log p(x))
    // in the limit of many draws over all σ; a finite grid only has to rank as it does.
    let classifier = ImplicitClassifier::new(128, 0.01, 30.0, ScoreWeighting::Elbo, 7).unwrap();
    let scores = classifier
        .score_denoiser(&mixture, 0.5, query, &candidates)
        .unwrap();
    let rho = spearman(&scores, &exact);
    assert!(rho >= 0.95, "rank correlation {rho} with the exact PMI");

    // The slow reference: the probability-flow ODE's log-likelihood, conditional minus null.
    use diff4steer_models::backend::CpuAutodiff as A;
    use diff4steer_models::{log_likelihood, TraceEstimator};
    let grid = diff4steer_core::karras(32, 0.002, 80.0, 7.0).unwrap();
    let x = || {
        Tensor::<A, 2>::from_data(
            TensorData::new(candidates.clone(), [points.len(), 3]),
            &device,
        )
    };
    let q = Tensor::<A, 2>::from_data(
        TensorData::new(weights.iter().map(|&w| w as f32).collect(), [1, 4]),
        &device,
    );
    let conditioned = Conditioning::new(q)
        .unwrap()
        .fit_batch(points.len())
        .unwrap();
    let with_query =
        log_likelihood(&mixture, x(), &conditioned, &grid, TraceEstimator::Exact).unwrap();
    let without = log_likelihood(
        &mixture,
        x(),
        &conditioned.to_null(),
        &grid,
        TraceEstimator::Exact,
    )
    .unwrap();
    let ode: Vec<f64> = with_query
        .iter()
        .zip(&without)
        .map(|(c, u)| c - u)
        .collect();
    let rho_ode = spearman(&ode, &exact);
    assert!(
        rho_ode >= 0.95,
        "ODE rank correlation {rho_ode} with the exact PMI"
    );
    let rho_both = spearman(&scores, &ode);
    assert!(rho_both >= 0.95, "implicit classifier vs ODE: {rho_both}");
}

/// Common random numbers: with the same (σ, ε) draws for both candidates, the score difference
/// between two *neighbouring* candidates (0.12 apart, as the fused top N of a query are) varies
/// far less over seeds than with independent draws per candidate — measured 202× less with 8
/// draws and the EDM weight (for two items on opposite modes it is only ≈ 2×: their errors then
/// respond to the same ε differently). The comparison between candidates is what a re-ranking
/// needs.
#[test]
fn shared_draws_cut_the_variance_of_score_differences() {
    use diff4steer_core::GaussianMixture;
    let mixture = GaussianMixture::isotropic(
        vec![vec![-1.0, 0.0, 0.5], vec![1.0, 0.5, -0.5]],
        0.3,
        vec![0.5, 0.5],
    )
    .unwrap();
    let device = Default::default();
    let query = || Tensor::<B, 2>::from_data(TensorData::new(vec![0.8f32, 0.2], [1, 2]), &device);
    let (a, b) = ([-0.8f32, 0.1, 0.4], [-0.7f32, 0.15, 0.35]);
    let both: Vec<f32> = a.iter().chain(&b).copied().collect();
    let variance = |d: &[f64]| {
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (d.len() - 1) as f64
    };
    let (mut shared, mut independent) = (Vec::new(), Vec::new());
    for seed in 0..40u64 {
        let score = |seed: u64, rows: &[f32]| {
            ImplicitClassifier::new(8, 0.01, 30.0, ScoreWeighting::Edm, seed)
                .unwrap()
                .score_denoiser(&mixture, 0.5, query(), rows)
                .unwrap()
        };
        let s = score(seed, &both);
        shared.push(s[0] - s[1]);
        independent.push(score(1000 + seed, &a)[0] - score(2000 + seed, &b)[0]);
    }
    let ratio = variance(&independent) / variance(&shared);
    println!("variance of the score difference: independent / shared draws = {ratio:.1}");
    assert!(
        ratio >= 50.0,
        "shared draws cut the variance only {ratio:.1}×"
    );
}
