//! The whole method on the embedded synthetic "music world", in about three minutes on two cores:
//! train a small diffusion prior and the regression baseline on (text view → item) pairs, sample
//! many seeds per query with classifier-free guidance, retrieve and fuse, and compare with the
//! single seed of the regression model; then steer queries toward a second tag.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use std::collections::HashSet;

use anyhow::Result;
use burn::tensor::Tensor;
use diff4steer_core::tensor_util::{matrix_from_host, to_host_f32};
use diff4steer_core::{karras, LinearGuidance, Steered, SteeringTarget};
use diff4steer_eval::{
    coverage_at_k, evaluate_query, intra_list_diversity, mode_coverage_at_k, MusicWorld,
    MusicWorldConfig, RankingMetric, SyntheticQuery,
};
use diff4steer_index::{fuse, FlatIndex, Fusion, Similarity, VectorIndex};
use diff4steer_models::backend::{CpuAutodiff, CpuBackend};
use diff4steer_models::training::{train_prior, train_regression, PairData, TrainingConfig};
use diff4steer_models::{
    DiffusionPrior, DiffusionPriorConfig, PriorSeeds, RegressionConfig, ResMlpConfig, Sampler,
    SamplerKind, SeedGenerator,
};

type B = CpuBackend;

/// Seeds sampled per query from the prior.
const SEEDS: usize = 32;
/// Hits retrieved per seed and kept after fusion.
const DEPTH: usize = 100;

/// The numbers of one system, averaged over queries.
struct Row {
    ndcg_10: f64,
    coverage_50: f64,
    mode_coverage_50: f64,
    diversity_20: f64,
}

/// Retrieves with `per_query` seeds per query (row-major, query-major), fuses, and scores.
fn score_system(
    seeds: &[f32],
    per_query: usize,
    queries: &[SyntheticQuery],
    index: &FlatIndex,
    fusion: Fusion,
) -> Result<(Row, Vec<Vec<u64>>)> {
    let dim = index.dim();
    let mut row = Row {
        ndcg_10: 0.0,
        coverage_50: 0.0,
        mode_coverage_50: 0.0,
        diversity_20: 0.0,
    };
    let mut lists = Vec::new();
    for (q, query) in queries.iter().enumerate() {
        let block = &seeds[q * per_query * dim..(q + 1) * per_query * dim];
        let hits = fuse(&index.search(block, DEPTH)?, DEPTH, fusion, &|id| {
            index.vector(id)
        })?;
        let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
        let docs: Vec<String> = ids.iter().map(u64::to_string).collect();
        let judged = query.relevant.iter().map(|i| (i.to_string(), 1)).collect();
        row.ndcg_10 += evaluate_query(RankingMetric::Ndcg { k: 10 }, &docs, &judged);
        let relevant: HashSet<u64> = query.relevant.iter().map(|&i| i as u64).collect();
        row.coverage_50 += coverage_at_k(&ids, &relevant, 50);
        row.mode_coverage_50 += mode_coverage_at_k(&ids, &query.mode_map(), 50);
        let top: Vec<f32> = ids
            .iter()
            .take(20)
            .flat_map(|&id| index.vector(id).expect("listed ids are stored").to_vec())
            .collect();
        row.diversity_20 += intra_list_diversity(&top, dim)?;
        lists.push(ids);
    }
    let n = queries.len() as f64;
    for v in [
        &mut row.ndcg_10,
        &mut row.coverage_50,
        &mut row.mode_coverage_50,
        &mut row.diversity_20,
    ] {
        *v /= n;
    }
    Ok((row, lists))
}

fn main() -> Result<()> {
    let device = Default::default();
    // 1. The world: items (64-d, unit norm), text views of their tags (48-d), tag queries.
    let world = MusicWorld::generate(&MusicWorldConfig::default())?;
    let (items, texts) = (world.items(), world.text_views());
    let (dim, query_dim) = (items.ncols(), texts.ncols());
    let catalogue = items.as_slice().expect("standard layout");
    let data = PairData::from_vecs(
        texts.as_slice().expect("standard layout").to_vec(),
        query_dim,
        catalogue.to_vec(),
        dim,
    )?;
    let (train, valid) = data.split(0.05, 0)?;
    let queries = world.queries(false, 20, 11);
    println!(
        "music world: {} items ({dim}-d), {} tags, {} single-tag queries with {:.1} modes (artist styles) each\n",
        items.nrows(),
        world.config().tags,
        queries.len(),
        queries.iter().map(SyntheticQuery::mode_count).sum::<usize>() as f64 / queries.len() as f64
    );

    // 2. Train the prior and the regression baseline (same network size, same data).
    let network = ResMlpConfig::new().with_width(256).with_depth(3);
    let training = TrainingConfig::new()
        .with_steps(2000)
        .with_batch_size(256)
        .with_seed(1);
    println!("training the diffusion prior");
    let (prior, _, prior_report) = train_prior::<CpuAutodiff>(
        &DiffusionPriorConfig::new(dim, query_dim).with_network(network.clone()),
        &training,
        &train,
        Some(&valid),
        None,
        &device,
    )?;
    println!("training the regression baseline");
    let (regression, regression_report) = train_regression::<CpuAutodiff>(
        &RegressionConfig::new(dim, query_dim).with_network(network),
        &training.clone().with_steps(1000),
        &train,
        Some(&valid),
        None,
        &device,
    )?;
    println!(
        "validation loss: prior {:.4}, regression {:.4}\n",
        prior_report.final_valid_loss().unwrap_or(f64::NAN),
        regression_report.final_valid_loss().unwrap_or(f64::NAN)
    );

    // 3. Seeds: the regression model's single point vs 32 prior samples per query.
    let query_rows: Vec<f32> = queries.iter().flat_map(|q| q.text.clone()).collect();
    let query_matrix = matrix_from_host::<B>(query_rows, queries.len(), query_dim, &device)?;
    let sampler = Sampler::new(SamplerKind::Heun, karras(16, 0.002, 80.0, 7.0)?)?;
    let index = FlatIndex::from_rows(dim, Similarity::Cosine, catalogue)?;
    let regression_seeds = to_host_f32(regression.seeds(query_matrix.clone(), 1, 0)?)?;
    let (regression_row, _) =
        score_system(&regression_seeds, 1, &queries, &index, Fusion::MaxScore)?;
    let prior_seeds = |guidance: f64| -> Result<Vec<f32>> {
        let guided = LinearGuidance::classifier_free(prior.clone(), guidance)?;
        let seeds =
            PriorSeeds::new(guided, sampler.clone()).seeds(query_matrix.clone(), SEEDS, 7)?;
        Ok(to_host_f32(seeds)?)
    };
    println!(
        "{:<38} {:>8} {:>12} {:>17} {:>13}",
        "system", "nDCG@10", "coverage@50", "mode coverage@50", "diversity@20"
    );
    let print = |name: &str, r: &Row| {
        println!(
            "{name:<38} {:>8.4} {:>12.4} {:>17.4} {:>13.4}",
            r.ndcg_10, r.coverage_50, r.mode_coverage_50, r.diversity_20
        )
    };
    print("regression (1 seed)", &regression_row);
    for guidance in [0.0, 1.0, 3.0] {
        let seeds = prior_seeds(guidance)?;
        for fusion in [Fusion::rrf(), Fusion::RoundRobin] {
            let (row, _) = score_system(&seeds, SEEDS, &queries, &index, fusion)?;
            print(
                &format!("prior, CFG w={guidance}, {SEEDS} seeds, {fusion}"),
                &row,
            );
        }
    }

    // 4. Steering: query tag A, steered toward tag B's centroid in the item space.
    steer(&world, &queries, &prior, &sampler, &index, &device)?;
    Ok(())
}

/// For tag pairs (A, B) carried together by ≥ 15 items: sample for A's text, steered toward the
/// centroid of B's items, and report precision@20 of A∧B and of A.
fn steer(
    world: &MusicWorld,
    queries: &[SyntheticQuery],
    prior: &DiffusionPrior<B>,
    sampler: &Sampler,
    index: &FlatIndex,
    device: &burn::tensor::Device<B>,
) -> Result<()> {
    let dim = index.dim();
    let by_tag = |t: usize| queries.iter().find(|q| q.tags == [t]);
    let pairs: Vec<(usize, usize)> = world
        .queries(true, 15, 0)
        .into_iter()
        .filter(|q| q.tags.len() == 2)
        .map(|q| (q.tags[0], q.tags[1]))
        .filter(|&(a, b)| by_tag(a).is_some() && by_tag(b).is_some())
        .take(12)
        .collect();
    println!(
        "\nsteering: query tag A, steered toward the centroid of tag B ({} pairs, CFG w=1)",
        pairs.len()
    );
    println!("{:>8} {:>14} {:>12}", "γ", "P@20 of A∧B", "P@20 of A");
    for gamma in [0.0, 0.01, 0.03, 0.1, 0.3] {
        let (mut both, mut only_a) = (0.0, 0.0);
        for &(a, b) in &pairs {
            let (qa, qb) = (by_tag(a).expect("filtered"), by_tag(b).expect("filtered"));
            let mut centroid = vec![0.0f32; dim];
            for &i in &qb.relevant {
                centroid
                    .iter_mut()
                    .zip(world.items().row(i))
                    .for_each(|(c, v)| *c += v);
            }
            let target =
                SteeringTarget::new(matrix_from_host::<B>(centroid, 1, dim, device)?, gamma)?;
            let guided = LinearGuidance::classifier_free(prior.clone(), 1.0)?;
            let steered = Steered::new(guided, vec![target], diff4steer_core::Similarity::Cosine)?;
            let query = matrix_from_host::<B>(qa.text.clone(), 1, qa.text.len(), device)?;
            let seeds: Tensor<B, 2> =
                PriorSeeds::new(steered, sampler.clone()).seeds(query, SEEDS, 5)?;
            let seeds = to_host_f32(seeds)?;
            let hits = fuse(&index.search(&seeds, DEPTH)?, 20, Fusion::rrf(), &|id| {
                index.vector(id)
            })?;
            let tags = world.item_tags();
            let has = |id: u64, t: usize| tags[id as usize].contains(&t);
            both += hits.iter().filter(|h| has(h.id, a) && has(h.id, b)).count() as f64 / 20.0;
            only_a += hits.iter().filter(|h| has(h.id, a)).count() as f64 / 20.0;
        }
        let n = pairs.len() as f64;
        println!("{gamma:>8} {:>14.3} {:>12.3}", both / n, only_a / n);
    }
    Ok(())
}
