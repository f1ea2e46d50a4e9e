//! The evaluation crate at work on the synthetic music world, with no model involved: every
//! single-tag query is answered from two oracle seed sets that bracket what a prior can do —
//! one seed (the centroid of the tag's items, what a regression model aims at) and 16 seeds (16 of
//! the tag's own items, "empirical seeds", what a perfect prior would sample), the latter fused by
//! round-robin fusion. Prints ranking, set and distribution metrics side by side and writes
//! them to out/eval_report/report.json.
//!
//! ```text
//! cargo run --release --example eval_report
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::Result;
use diff4steer_eval::{
    coverage_at_k, evaluate, frechet_distance, intra_list_diversity, label_entropy,
    mode_coverage_at_k, qrels_of, vendi_score, MusicWorld, MusicWorldConfig, RankingMetric, Run,
    SyntheticQuery,
};
use diff4steer_index::{fuse, FlatIndex, Fusion, Hit, Similarity, VectorIndex};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const DEPTH: usize = 100;

/// Command-line options (the defaults are the documented run).
#[derive(clap::Parser, Debug)]
#[command(about = "Evaluation metrics on the synthetic music world, two oracle seed sets")]
struct Args {
    /// Seeds of the empirical system.
    #[arg(long, default_value_t = 16)]
    seeds: usize,
    /// Item noise of the world (relative to the unit tag mixture).
    #[arg(long)]
    noise: Option<f64>,
    /// Artist offset of the world.
    #[arg(long)]
    artist_scale: Option<f64>,
    /// Fusion of the per-seed lists: max, mean, rrf, round-robin or mmr.
    #[arg(long, default_value = "round-robin")]
    fusion: String,
}

/// Set and distribution metrics of one system, averaged over queries.
#[derive(Default, serde::Serialize)]
struct SetMetrics {
    coverage_at_50: f64,
    mode_coverage_at_50: f64,
    diversity_at_20: f64,
    vendi_at_20: f64,
    artist_entropy_at_20: f64,
    frechet_seeds_vs_relevant: Option<f64>,
}

fn seeds_of(
    world: &MusicWorld,
    query: &SyntheticQuery,
    oracle: &str,
    seeds: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let items = world.items();
    let dim = items.ncols();
    match oracle {
        "centroid" => {
            let mut centroid = vec![0.0f32; dim];
            for &i in &query.relevant {
                centroid
                    .iter_mut()
                    .zip(items.row(i))
                    .for_each(|(c, v)| *c += v);
            }
            centroid
        }
        _ => sample(rng, query.relevant.len(), seeds.min(query.relevant.len()))
            .into_iter()
            .flat_map(|j| items.row(query.relevant[j]).to_vec())
            .collect(),
    }
}

fn main() -> Result<()> {
    let args = <Args as clap::Parser>::parse();
    let defaults = MusicWorldConfig::default();
    let world = MusicWorld::generate(&MusicWorldConfig {
        noise_scale: args.noise.unwrap_or(defaults.noise_scale),
        artist_scale: args.artist_scale.unwrap_or(defaults.artist_scale),
        ..defaults
    })?;
    let fusion: Fusion = args.fusion.parse()?;
    let queries = world.queries(false, 20, 1);
    let dim = world.items().ncols();
    let catalogue = world.items().as_slice().expect("standard layout");
    let index = FlatIndex::from_rows(dim, Similarity::Cosine, catalogue)?;
    let qrels = qrels_of(&queries);
    let metrics = RankingMetric::parse_list("ndcg@10,recall@50,map@100,mrr,precision@20")?;
    let mut json = BTreeMap::new();
    println!(
        "synthetic music world: {} items ({dim}-d), {} single-tag queries, {:.1} modes per query\n",
        world.items().nrows(),
        queries.len(),
        queries
            .iter()
            .map(SyntheticQuery::mode_count)
            .sum::<usize>() as f64
            / queries.len() as f64
    );
    for oracle in ["centroid", "empirical"] {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut run = Run::new();
        let mut set = SetMetrics::default();
        let mut frechet = Vec::new();
        for (q, query) in queries.iter().enumerate() {
            let seeds = seeds_of(&world, query, oracle, args.seeds, &mut rng);
            let per_seed = index.search(&seeds, DEPTH)?;
            let list: Vec<Hit> = fuse(&per_seed, DEPTH, fusion, &|id| index.vector(id))?;
            for hit in &list {
                run.push(&q.to_string(), &hit.id.to_string(), f64::from(hit.score))?;
            }
            let ids: Vec<u64> = list.iter().map(|h| h.id).collect();
            let relevant: HashSet<u64> = query.relevant.iter().map(|&i| i as u64).collect();
            set.coverage_at_50 += coverage_at_k(&ids, &relevant, 50);
            set.mode_coverage_at_50 += mode_coverage_at_k(&ids, &query.mode_map(), 50);
            let top20: Vec<f32> = ids
                .iter()
                .take(20)
                .flat_map(|&i| world.items().row(i as usize).to_vec())
                .collect();
            set.diversity_at_20 += intra_list_diversity(&top20, dim)?;
            set.vendi_at_20 += vendi_score(&top20, dim)?;
            set.artist_entropy_at_20 += label_entropy(
                ids.iter()
                    .take(20)
                    .map(|&i| world.item_artists()[i as usize]),
            );
            if seeds.len() >= 2 * dim {
                let relevant_vectors: Vec<f32> = query
                    .relevant
                    .iter()
                    .flat_map(|&i| world.items().row(i).to_vec())
                    .collect();
                frechet.push(frechet_distance(&seeds, &relevant_vectors, dim)?);
            }
        }
        let n = queries.len() as f64;
        for v in [
            &mut set.coverage_at_50,
            &mut set.mode_coverage_at_50,
            &mut set.diversity_at_20,
            &mut set.vendi_at_20,
            &mut set.artist_entropy_at_20,
        ] {
            *v /= n;
        }
        set.frechet_seeds_vs_relevant =
            (!frechet.is_empty()).then(|| frechet.iter().sum::<f64>() / frechet.len() as f64);
        let report = evaluate(&run, &qrels, &metrics)?;
        println!("== {oracle}\n{report}");
        println!(
            "coverage@50 {:.4}  mode coverage@50 {:.4}  diversity@20 {:.4}  vendi@20 {:.2}  artist entropy@20 {:.3} nats  FD(seeds, relevant) {}\n",
            set.coverage_at_50,
            set.mode_coverage_at_50,
            set.diversity_at_20,
            set.vendi_at_20,
            set.artist_entropy_at_20,
            set.frechet_seeds_vs_relevant
                .map_or("n/a (fewer seeds than 2·dim)".to_owned(), |f| format!("{f:.4}"))
        );
        json.insert(oracle, serde_json::json!({ "ranking": report, "set": set }));
    }
    let path = Path::new("out/eval_report/report.json");
    diff4steer_index::atomic::write_atomic(path, &serde_json::to_vec_pretty(&json)?)?;
    println!("wrote {}", path.display());
    Ok(())
}
