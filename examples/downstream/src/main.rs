//! A user's program over the diff4steer crates: train a small prior on the synthetic music
//! world, save it, open it with a catalogue file through `GenerativeRetriever`, answer queries
//! (with guidance, a negative condition and steering), and check that the prior's lists beat
//! a random ranking. Exits non-zero when anything fails.

use anyhow::{ensure, Result};
use diff4steer_eval::io::npy::write_f32_matrix;
use diff4steer_eval::{evaluate_query, MusicWorld, MusicWorldConfig, RankingMetric};
use diff4steer_index::Fusion;
use diff4steer_models::backend::CpuAutodiff;
use diff4steer_models::retrieval::{GenerativeRetriever, RetrievalRequest};
use diff4steer_models::training::{train_prior, Output, PairData, TrainingConfig};
use diff4steer_models::{DiffusionPriorConfig, ResMlpConfig, SamplerKind};

fn main() -> Result<()> {
    let world = MusicWorld::generate(&MusicWorldConfig::default())?;
    let (items, texts) = (world.items(), world.text_views());
    let (dim, query_dim) = (items.ncols(), texts.ncols());
    let pairs = PairData::from_vecs(
        texts.iter().copied().collect(),
        query_dim,
        items.iter().copied().collect(),
        dim,
    )?;
    let dir = tempfile::tempdir()?;
    let (model, catalogue) = (dir.path().join("prior"), dir.path().join("catalogue.npy"));
    train_prior::<CpuAutodiff>(
        &DiffusionPriorConfig::new(dim, query_dim)
            .with_network(ResMlpConfig::new().with_width(128).with_depth(2)),
        &TrainingConfig::new()
            .with_steps(400)
            .with_seed(1)
            .with_progress(false),
        &pairs,
        None,
        Some(Output::new(&model)),
        &Default::default(),
    )?;
    write_f32_matrix(&catalogue, &items.to_owned())?;

    // The front door, as the README shows it.
    let retriever = GenerativeRetriever::open(&model, &catalogue)?;
    let queries = world.queries(false, 20, 11);
    let rows: Vec<f32> = queries.iter().flat_map(|q| q.text.clone()).collect();
    let lists = retriever.retrieve(&rows, 10)?;
    let ndcg = |lists: &[Vec<diff4steer_models::retrieval::Hit>]| -> f64 {
        lists
            .iter()
            .zip(&queries)
            .map(|(hits, q)| {
                let docs: Vec<String> = hits.iter().map(|h| h.id.to_string()).collect();
                let judged = q.relevant.iter().map(|i| (i.to_string(), 1)).collect();
                evaluate_query(RankingMetric::Ndcg { k: 10 }, &docs, &judged)
            })
            .sum::<f64>()
            / queries.len() as f64
    };
    let prior_ndcg = ndcg(&lists);
    // A random ranking's nDCG@10 is about the share of relevant items.
    let share = queries
        .iter()
        .map(|q| q.relevant.len() as f64 / items.nrows() as f64)
        .sum::<f64>()
        / queries.len() as f64;
    println!(
        "{} queries, {} items: nDCG@10 {prior_ndcg:.3} (random ≈ {share:.3})",
        queries.len(),
        retriever.seed_search().len()
    );
    ensure!(prior_ndcg > 3.0 * share, "the prior's lists are no better than random");

    // Per-request options and the builder.
    let request = RetrievalRequest::new()
        .seeds_per_query(16)
        .guidance(2.0)
        .negative(queries[1].text.clone())
        .steer(items.row(0).to_vec(), 0.01)
        .seed(3);
    let steered = retriever.retrieve_with(&queries[0].text, 10, &request)?;
    ensure!(steered[0].len() == 10);
    let source = diff4steer_models::retrieval::load_source(&model)?;
    let fast = GenerativeRetriever::builder(source)
        .catalogue_npy(&catalogue)?
        .sampler_kind(SamplerKind::DpmSolverPlusPlus2M, 8)?
        .fusion(Fusion::RoundRobin)
        .build()?;
    ensure!(fast.retrieve(&rows, 10)?.len() == queries.len());
    dir.close()?;
    println!("downstream: the front door works from outside the workspace");
    Ok(())
}
