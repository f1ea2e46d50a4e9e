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
use diff4steer_eval::{
    coverage_at_k, evaluate_query, intra_list_diversity, mode_coverage_at_k, MusicWorld,
    MusicWorldConfig, RankingMetric, SyntheticQuery,
};
use diff4steer_index::{Fusion, Preprocessing};
use diff4steer_models::backend::CpuAutodiff;
use diff4steer_models::retrieval::{
    GenerativeRetriever, Hit, HostPrior, Regression, RetrievalRequest, SeedSource,
};
use diff4steer_models::training::{train_prior, train_regression, PairData, TrainingConfig};
use diff4steer_models::{DiffusionPriorConfig, RegressionConfig, ResMlpConfig};

/// Seeds sampled per query from the prior.
const SEEDS: usize = 32;
/// Hits kept per query (and searched per seed).
const DEPTH: usize = 100;

/// The numbers of one system, averaged over queries.
struct Row {
    ndcg_10: f64,
    coverage_50: f64,
    mode_coverage_50: f64,
    diversity_20: f64,
}

/// Scores each query's retrieved list (nDCG@10, coverage@50, mode coverage@50, diversity@20 of
/// the items' vectors).
fn score_lists(lists: &[Vec<Hit>], queries: &[SyntheticQuery], world: &MusicWorld) -> Result<Row> {
    let dim = world.items().ncols();
    let mut row = Row {
        ndcg_10: 0.0,
        coverage_50: 0.0,
        mode_coverage_50: 0.0,
        diversity_20: 0.0,
    };
    for (hits, query) in lists.iter().zip(queries) {
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
            .flat_map(|&id| world.items().row(id as usize).to_vec())
            .collect();
        row.diversity_20 += intra_list_diversity(&top, dim)?;
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
    Ok(row)
}

/// A retriever over the world's items (unit norm already: no preprocessing) with `fusion`.
fn retriever(
    source: Box<dyn SeedSource>,
    catalogue: &[f32],
    fusion: Fusion,
) -> Result<GenerativeRetriever> {
    Ok(GenerativeRetriever::builder(source)
        .catalogue(catalogue.to_vec())
        .preprocessing(Preprocessing::None)
        .fusion(fusion)
        .build()?)
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

    // 3. Retrieval through the front door: the regression model's single point vs 32 prior
    //    samples per query (host fast path), each seed's neighbours fused into one list.
    let query_rows: Vec<f32> = queries.iter().flat_map(|q| q.text.clone()).collect();
    let regression = retriever(
        Box::new(Regression::new(regression, device)),
        catalogue,
        Fusion::MaxScore,
    )?;
    let regression_row = score_lists(&regression.retrieve(&query_rows, DEPTH)?, &queries, &world)?;
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
    let host = HostPrior::from_prior(&prior)?;
    for fusion in [Fusion::rrf(), Fusion::RoundRobin] {
        let prior = retriever(Box::new(host.clone()), catalogue, fusion)?;
        for guidance in [0.0, 1.0, 3.0] {
            let request = RetrievalRequest::new()
                .seeds_per_query(SEEDS)
                .guidance(guidance)
                .seed(7);
            let lists = prior.retrieve_with(&query_rows, DEPTH, &request)?;
            print(
                &format!("prior, CFG w={guidance}, {SEEDS} seeds, {fusion}"),
                &score_lists(&lists, &queries, &world)?,
            );
        }
    }

    // 4. Steering: query tag A, steered toward tag B's centroid in the item space.
    let prior = retriever(Box::new(host), catalogue, Fusion::rrf())?;
    steer(&world, &queries, &prior)?;
    Ok(())
}

/// For tag pairs (A, B) carried together by ≥ 15 items: sample for A's text, steered toward the
/// centroid of B's items, and report precision@20 of A∧B and of A.
fn steer(
    world: &MusicWorld,
    queries: &[SyntheticQuery],
    prior: &GenerativeRetriever,
) -> Result<()> {
    let dim = world.items().ncols();
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
    let tags = world.item_tags();
    let has = |id: u64, t: usize| tags[id as usize].contains(&t);
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
            let request = RetrievalRequest::new()
                .seeds_per_query(SEEDS)
                .guidance(1.0)
                .steer(centroid, gamma)
                .seed(5);
            let hits = &prior.retrieve_with(&qa.text, 20, &request)?[0];
            both += hits.iter().filter(|h| has(h.id, a) && has(h.id, b)).count() as f64 / 20.0;
            only_a += hits.iter().filter(|h| has(h.id, a)).count() as f64 / 20.0;
        }
        let n = pairs.len() as f64;
        println!("{gamma:>8} {:>14.3} {:>12.3}", both / n, only_a / n);
    }
    Ok(())
}
