//! `benchmark`: real-data benchmarks. `musiccaps` (module [`musiccaps`]) is text → music on real
//! VGGish audio of the MusicCaps clips; `jamendo-mood` (below) and `synthetic` score tag queries.
//!
//! `benchmark jamendo-mood`: where the prior helps and where it does not, on real audio-derived
//! vectors (../shared/data/jamendo-mood): train on one split, evaluate on another, against the
//! regression baseline and three non-learned references.
//!
//! Queries are single tags and tag pairs (their MiniLM text embeddings); a track is relevant when
//! it carries the tag (both tags). Systems: the prior (CFG w × seeds), the regression model (one
//! seed), "centroid" (mean of the tag's training tracks as the one seed), "tag-axis" (rank by the
//! tracks' own score for the tag — the classifier itself), "empirical" (32 of the tag's training
//! tracks as seeds: what a perfect prior would sample). The catalogue is the evaluation split,
//! preprocessed as none / standardised / whitened (fitted on it).

mod musiccaps;
mod rerank_grid;

use rerank_grid::{cost_cells, sigma_and_order, RerankCost, RerankGrid, RerankInput};

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use diff4steer_core::karras;
use diff4steer_eval::{
    coverage_at_k, evaluate_query, frechet_distance, intra_list_diversity, label_entropy,
    JamendoMood, JamendoMoodSplit, MusicWorld, MusicWorldConfig, RankingMetric, TagPair,
};
use diff4steer_examples::line_plot::render_lines_svg;
use diff4steer_index::{Fusion, Preprocessing};
use diff4steer_models::backend::CpuAutodiff;
use diff4steer_models::fast::{FastPrior, ScoreWeighting};
use diff4steer_models::retrieval::{
    HostPrior, Regression, RetrievalRequest, SearchSettings, SeedSampler, SeedSearch,
};
use diff4steer_models::training::{train_prior, train_regression, PairData, TrainingConfig};
use diff4steer_models::{
    DiffusionPriorConfig, RegressionConfig, ResMlpConfig, Sampler, SamplerKind,
};
use ndarray::Array2;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Hits searched per seed and kept after fusion.
pub(crate) const DEPTH: usize = 100;
/// Queries need at least this many relevant tracks in the evaluation split.
const MIN_RELEVANT: usize = 5;

/// `benchmark` options.
#[derive(clap::Args, Debug)]
pub struct BenchmarkArgs {
    #[command(subcommand)]
    dataset: Dataset,
}

#[derive(clap::Subcommand, Debug)]
enum Dataset {
    /// MusicCaps captions and aspects → real VGGish audio of the clips (text → music).
    Musiccaps(Box<musiccaps::MusicCapsArgs>),
    /// MTG-Jamendo mood/theme tags over VGGish tag-score vectors.
    JamendoMood(JamendoArgs),
    /// The synthetic music world (multi-modal relevant sets by construction).
    Synthetic(SyntheticArgs),
}

/// `benchmark synthetic` options.
#[derive(clap::Args, Debug)]
pub struct SyntheticArgs {
    /// Output folder: report.md, results.json, plots.
    #[arg(long)]
    out: PathBuf,
    /// Training steps of each model.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Seed of the world, training, sampling and the empirical seeds.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The default synthetic world in the shape of `jamendo-mood`: tags with text views, tag pairs
/// carried by ≥ 10 items, and a split by artist (artists ≡ 0…3 mod 5 train, the rest evaluate).
fn synthetic_dataset(seed: u64) -> Result<(JamendoMood, JamendoMoodSplit, JamendoMoodSplit)> {
    let world = MusicWorld::generate(&MusicWorldConfig {
        seed,
        ..MusicWorldConfig::default()
    })?;
    let tags = world.config().tags;
    let text_dim = world.text_views().ncols();
    let singles = world.queries(false, 1, seed + 1);
    let mut tag_text = Array2::<f32>::zeros((tags, text_dim));
    for q in &singles {
        tag_text
            .row_mut(q.tags[0])
            .assign(&ndarray::ArrayView1::from(&q.text));
    }
    let pair_queries: Vec<_> = world
        .queries(true, 10, seed + 2)
        .into_iter()
        .filter(|q| q.tags.len() == 2)
        .collect();
    let pairs: Vec<TagPair> = pair_queries
        .iter()
        .map(|q| TagPair {
            a: q.tags[0],
            b: q.tags[1],
            text: format!("tag{:02} and tag{:02}", q.tags[0], q.tags[1]),
            count_train: 0,
            count_valid: 0,
        })
        .collect();
    let pair_text = Array2::from_shape_vec(
        (pair_queries.len(), text_dim),
        pair_queries.iter().flat_map(|q| q.text.clone()).collect(),
    )?;
    let split = |name: &str, keep: &dyn Fn(usize) -> bool| -> Result<JamendoMoodSplit> {
        let rows: Vec<usize> = (0..world.items().nrows())
            .filter(|&r| keep(world.item_artists()[r]))
            .collect();
        let dim = world.items().ncols();
        let mut items = Array2::<f32>::zeros((rows.len(), dim));
        let mut labels = Array2::<u8>::zeros((rows.len(), tags));
        for (i, &r) in rows.iter().enumerate() {
            items.row_mut(i).assign(&world.items().row(r));
            for &t in &world.item_tags()[r] {
                labels[(i, t)] = 1;
            }
        }
        Ok(JamendoMoodSplit {
            name: name.to_owned(),
            items,
            labels,
            track_ids: rows.iter().map(|r| format!("item{r}")).collect(),
            artist_ids: rows
                .iter()
                .map(|&r| format!("artist{}", world.item_artists()[r]))
                .collect(),
            album_ids: rows.iter().map(|r| format!("album{r}")).collect(),
        })
    };
    let mood = JamendoMood {
        dir: PathBuf::from("synthetic"),
        tags: (0..tags).map(|t| format!("tag{t:02}")).collect(),
        tag_texts: (0..tags).map(|t| format!("tag{t:02}")).collect(),
        tag_text_embeddings: tag_text,
        pairs,
        pair_text_embeddings: pair_text,
    };
    let train = split("train", &|a| a % 5 < 4)?;
    let eval = split("eval", &|a| a % 5 == 4)?;
    Ok((mood, train, eval))
}

/// `benchmark jamendo-mood` options.
#[derive(clap::Args, Debug)]
pub struct JamendoArgs {
    /// The jamendo-mood folder (e.g. ../shared/data/jamendo-mood).
    #[arg(long)]
    data: PathBuf,
    /// Output folder: report.md and results.json.
    #[arg(long)]
    out: PathBuf,
    /// Split to train on.
    #[arg(long, default_value = "train")]
    train_split: String,
    /// Split to evaluate on (its tracks are the catalogue).
    #[arg(long, default_value = "valid")]
    eval_split: String,
    /// Training steps of each model.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Seed of training, sampling and the empirical seeds.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The re-ranking grid: depths N of each base's fused list re-ranked by the prior's
    /// implicit classifier (empty = no grid). Bases: the best prior row and the regression, raw
    /// catalogue.
    #[arg(long, value_delimiter = ',')]
    rerank_grid_top: Vec<usize>,
    /// The re-ranking grid: noise draws of the implicit classifier.
    #[arg(long, value_delimiter = ',', default_value = "4,16,64")]
    rerank_grid_draws: Vec<usize>,
    /// σ range of the implicit classifier's draws (prior units: standardised targets).
    #[arg(long, value_delimiter = ',', default_value = "0.2,20")]
    rerank_sigma: Vec<f64>,
    /// Blend of the implicit-classifier order with the fused order by reciprocal ranks with
    /// this constant (0 = by the score alone).
    #[arg(long, default_value_t = 30.0)]
    rerank_blend: f64,
}

/// One benchmark query.
pub(crate) struct Query {
    pub(crate) tags: Vec<usize>,
    pub(crate) text: Vec<f32>,
    pub(crate) relevant: Vec<usize>,
}

/// Mean metrics of one system on one query set.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Scores {
    pub(crate) ndcg_10: f64,
    recall_50: f64,
    coverage_100: f64,
    diversity_20: f64,
    artist_entropy_20: f64,
    frechet: Option<f64>,
}

/// Seeds (row-major, `per_query` per query) or a direct ranking, per query.
pub(crate) enum Answer {
    Seeds { rows: Vec<f32>, per_query: usize },
    Rankings(Vec<Vec<u64>>),
}

pub(crate) fn queries(mood: &JamendoMood, eval: &JamendoMoodSplit) -> Vec<Query> {
    let mut list: Vec<Query> = (0..mood.tags.len())
        .map(|t| Query {
            tags: vec![t],
            text: mood.tag_text_embeddings.row(t).to_vec(),
            relevant: eval.relevant(&[t]),
        })
        .collect();
    list.extend(mood.pairs.iter().enumerate().map(|(i, p)| Query {
        tags: vec![p.a, p.b],
        text: mood.pair_text_embeddings.row(i).to_vec(),
        relevant: eval.relevant(&[p.a, p.b]),
    }));
    list.retain(|q| q.relevant.len() >= MIN_RELEVANT);
    list
}

/// Training pairs: (text of each tag a training track carries → the track).
pub(crate) fn training_pairs(mood: &JamendoMood, train: &JamendoMoodSplit) -> Result<PairData> {
    let (mut q, mut t) = (Vec::new(), Vec::new());
    for r in 0..train.items.nrows() {
        for tag in 0..mood.tags.len() {
            if train.labels[(r, tag)] == 1 {
                q.extend(mood.tag_text_embeddings.row(tag).iter());
                t.extend(train.items.row(r).iter());
            }
        }
    }
    Ok(PairData::from_vecs(
        q,
        mood.tag_text_embeddings.ncols(),
        t,
        train.items.ncols(),
    )?)
}

/// Scores `answer` on `queries` over the catalogue `eval`, searched by the front door's search
/// stage `search` (its preprocessing and index) with `fusion`.
pub(crate) fn score(
    answer: &Answer,
    queries: &[Query],
    eval: &JamendoMoodSplit,
    search: &SeedSearch,
    fusion: Fusion,
    truth_items: &dyn Fn(&Query) -> Vec<f32>,
) -> Result<Scores> {
    let dim = eval.items.ncols();
    let mut s = Scores::default();
    let mut frechet = Vec::new();
    for (q, query) in queries.iter().enumerate() {
        let ids: Vec<u64> = match answer {
            Answer::Rankings(r) => r[q].clone(),
            Answer::Seeds { rows, per_query } => {
                let block = &rows[q * per_query * dim..(q + 1) * per_query * dim];
                let truth = truth_items(query);
                if *per_query >= 2 && truth.len() >= 2 * dim {
                    frechet.push(frechet_distance(block, &truth, dim)?);
                }
                search.search_grouped(block, &[*per_query], DEPTH, fusion)?[0]
                    .iter()
                    .map(|h| h.id)
                    .collect()
            }
        };
        let docs: Vec<String> = ids.iter().map(u64::to_string).collect();
        let judged = query.relevant.iter().map(|r| (r.to_string(), 1)).collect();
        s.ndcg_10 += evaluate_query(RankingMetric::Ndcg { k: 10 }, &docs, &judged);
        s.recall_50 += evaluate_query(RankingMetric::Recall { k: 50 }, &docs, &judged);
        let relevant: HashSet<u64> = query.relevant.iter().map(|&r| r as u64).collect();
        s.coverage_100 += coverage_at_k(&ids, &relevant, 100);
        let top: Vec<f32> = ids
            .iter()
            .take(20)
            .flat_map(|&i| eval.items.row(i as usize).to_vec())
            .collect();
        s.diversity_20 += intra_list_diversity(&top, dim)?;
        s.artist_entropy_20 +=
            label_entropy(ids.iter().take(20).map(|&i| &eval.artist_ids[i as usize]));
    }
    let n = queries.len() as f64;
    for v in [
        &mut s.ndcg_10,
        &mut s.recall_50,
        &mut s.coverage_100,
        &mut s.diversity_20,
        &mut s.artist_entropy_20,
    ] {
        *v /= n;
    }
    s.frechet = (!frechet.is_empty()).then(|| frechet.iter().sum::<f64>() / frechet.len() as f64);
    Ok(s)
}

/// Steering strengths of the steering curve.
const STEERING: [f64; 6] = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0];

/// One point of the steering curve: mean P@20 of A∧B and of A over the steered pairs.
#[derive(Debug, Clone, serde::Serialize)]
struct SteeringPoint {
    gamma: f64,
    precision_both_20: f64,
    precision_a_20: f64,
}

/// What steering needs: the data, the front door's seed stage and the raw catalogue's search.
struct SteeringSetup<'a> {
    mood: &'a JamendoMood,
    train: &'a JamendoMoodSplit,
    eval: &'a JamendoMoodSplit,
    sampler: &'a SeedSampler,
    search: &'a SeedSearch,
    seed: u64,
}

/// Query tag A (its text), steered toward the centroid of tag B's training tracks, for every
/// pair with ≥ 10 evaluation tracks carrying both, in both directions; CFG w = 1, 32 seeds, RRF,
/// raw catalogue. Returns the number of directed pairs and the curve.
fn steering_curve(setup: &SteeringSetup<'_>) -> Result<(usize, Vec<SteeringPoint>)> {
    let SteeringSetup {
        mood,
        train,
        eval,
        sampler,
        search,
        seed,
    } = setup;
    let dim = eval.items.ncols();
    let directed: Vec<(usize, usize)> = mood
        .pairs
        .iter()
        .filter(|p| eval.relevant(&[p.a, p.b]).len() >= 10)
        .flat_map(|p| [(p.a, p.b), (p.b, p.a)])
        .collect();
    let mut curve = Vec::new();
    for gamma in STEERING {
        let (mut both, mut only_a) = (0.0, 0.0);
        for &(a, b) in &directed {
            let rows = train.relevant(&[b]);
            let mut centroid = vec![0.0f32; dim];
            for &r in &rows {
                centroid
                    .iter_mut()
                    .zip(train.items.row(r))
                    .for_each(|(c, v)| *c += v / rows.len() as f32);
            }
            let request = RetrievalRequest::new()
                .seeds_per_query(32)
                .guidance(1.0)
                .steer(centroid, gamma)
                .seed(*seed);
            let seeds = sampler.seeds(&mood.tag_text_embeddings.row(a).to_vec(), &request)?;
            let mut hits = search
                .search_grouped(&seeds, &[32], DEPTH, Fusion::rrf())?
                .remove(0);
            hits.truncate(20);
            let has = |id: u64, t: usize| eval.labels[(id as usize, t)] == 1;
            both += hits.iter().filter(|h| has(h.id, a) && has(h.id, b)).count() as f64 / 20.0;
            only_a += hits.iter().filter(|h| has(h.id, a)).count() as f64 / 20.0;
        }
        let n = directed.len().max(1) as f64;
        curve.push(SteeringPoint {
            gamma,
            precision_both_20: both / n,
            precision_a_20: only_a / n,
        });
    }
    Ok((directed.len(), curve))
}

/// Runs `benchmark`.
pub fn benchmark_command(args: &BenchmarkArgs) -> Result<()> {
    match &args.dataset {
        Dataset::Musiccaps(a) => musiccaps::run(a),
        Dataset::JamendoMood(a) => {
            let mood =
                JamendoMood::load(&a.data).with_context(|| format!("{}", a.data.display()))?;
            let train = mood.split(&a.train_split)?;
            let eval = mood.split(&a.eval_split)?;
            let (sigma, order) = sigma_and_order(&a.rerank_sigma, a.rerank_blend)?;
            let rerank_grid = (!a.rerank_grid_top.is_empty()).then(|| RerankGrid {
                tops: a.rerank_grid_top.clone(),
                draws: a.rerank_grid_draws.clone(),
                sigma,
                weighting: ScoreWeighting::Edm,
                order,
                seed: a.seed,
            });
            let settings = Settings {
                title: "jamendo-mood".into(),
                command: std::iter::once("diff4steer".to_owned())
                    .chain(std::env::args().skip(1))
                    .collect::<Vec<_>>()
                    .join(" "),
                out: a.out.clone(),
                steps: a.steps,
                seed: a.seed,
                rerank_grid,
            };
            run(&mood, &train, &eval, &settings)
        }
        Dataset::Synthetic(a) => {
            let (mood, train, eval) = synthetic_dataset(a.seed)?;
            let settings = Settings {
                title: "synthetic music world".into(),
                command: format!(
                    "diff4steer benchmark synthetic --out {} --steps {} --seed {}",
                    a.out.display(),
                    a.steps,
                    a.seed
                ),
                out: a.out.clone(),
                steps: a.steps,
                seed: a.seed,
                rerank_grid: None,
            };
            run(&mood, &train, &eval, &settings)
        }
    }
}

/// What a run is called and where it goes.
struct Settings {
    title: String,
    command: String,
    out: PathBuf,
    steps: usize,
    seed: u64,
    /// The re-ranking grid, when asked for.
    rerank_grid: Option<RerankGrid>,
}

/// The benchmark on one dataset (tags, texts and pairs in `mood`; a training and an
/// evaluation split).
fn run(
    mood: &JamendoMood,
    train: &JamendoMoodSplit,
    eval: &JamendoMoodSplit,
    args: &Settings,
) -> Result<()> {
    let started = Instant::now();
    let all = queries(mood, eval);
    if all.is_empty() {
        bail!(
            "no query has {MIN_RELEVANT} relevant tracks in split {}",
            eval.name
        );
    }
    let dim = eval.items.ncols();
    let query_dim = mood.tag_text_embeddings.ncols();
    let device: burn::tensor::Device<diff4steer_models::backend::CpuBackend> = Default::default();
    println!(
        "{}: train {} tracks, evaluate on {} tracks, {} queries",
        args.title,
        train.items.nrows(),
        eval.items.nrows(),
        all.len()
    );

    let data = training_pairs(mood, train)?;
    let network = ResMlpConfig::new().with_width(256).with_depth(3);
    let training = TrainingConfig::new()
        .with_steps(args.steps)
        .with_batch_size(256)
        .with_seed(args.seed);
    let (prior, _, _) = train_prior::<CpuAutodiff>(
        &DiffusionPriorConfig::new(dim, query_dim).with_network(network.clone()),
        &training,
        &data,
        None,
        None,
        &device,
    )?;
    let (regression, _) = train_regression::<CpuAutodiff>(
        &RegressionConfig::new(dim, query_dim).with_network(network),
        &training,
        &data,
        None,
        None,
        &device,
    )?;

    let texts: Vec<f32> = all.iter().flat_map(|q| q.text.clone()).collect();
    // The front door's seed stage: the prior on the host path, Heun 16 steps.
    let sampler = SeedSampler::new(Box::new(HostPrior::from_prior(&prior)?))?.with_sampler(
        Sampler::new(SamplerKind::Heun, karras(16, 0.002, 80.0, 7.0)?)?,
    );
    // Training tracks with every tag of the query; with none (a pair never seen together in
    // training), those with any of its tags.
    let train_rows = |tags: &[usize]| -> Vec<usize> {
        let both = train.relevant(tags);
        if !both.is_empty() {
            return both;
        }
        (0..train.labels.nrows())
            .filter(|&r| tags.iter().any(|&t| train.labels[(r, t)] == 1))
            .collect()
    };
    let truth_items = |q: &Query| -> Vec<f32> {
        train_rows(&q.tags)
            .iter()
            .flat_map(|&r| train.items.row(r).to_vec())
            .collect()
    };
    let mut systems: Vec<(String, Answer, Fusion)> = Vec::new();
    for w in [0.0, 0.5, 1.0, 2.0, 4.0] {
        let request = RetrievalRequest::new()
            .seeds_per_query(32)
            .guidance(w)
            .seed(args.seed);
        let seeds = sampler.seeds(&texts, &request)?;
        for k in [1usize, 8, 32] {
            let rows: Vec<f32> = seeds
                .chunks(32 * dim)
                .flat_map(|q| q[..k * dim].to_vec())
                .collect();
            for fusion in [Fusion::rrf(), Fusion::MaxScore, Fusion::Mmr { lambda: 0.7 }] {
                if k == 1 && fusion != Fusion::rrf() {
                    continue;
                }
                systems.push((
                    format!("prior w={w} seeds={k} {fusion}"),
                    Answer::Seeds {
                        rows: rows.clone(),
                        per_query: k,
                    },
                    fusion,
                ));
            }
        }
    }
    let regression_seeds = SeedSampler::new(Box::new(Regression::new(regression, device)))?
        .seeds(&texts, &RetrievalRequest::new().seeds_per_query(1))?;
    systems.push((
        "regression".into(),
        Answer::Seeds {
            rows: regression_seeds,
            per_query: 1,
        },
        Fusion::rrf(),
    ));
    let centroids: Vec<f32> = all
        .iter()
        .flat_map(|q| {
            let rows = train_rows(&q.tags);
            let mut c = vec![0.0f32; dim];
            for &r in &rows {
                c.iter_mut()
                    .zip(train.items.row(r))
                    .for_each(|(c, v)| *c += v / rows.len().max(1) as f32);
            }
            c
        })
        .collect();
    systems.push((
        "centroid".into(),
        Answer::Seeds {
            rows: centroids,
            per_query: 1,
        },
        Fusion::rrf(),
    ));
    if eval.items.ncols() == mood.tags.len() {
        // Only where the item vectors are tag scores (jamendo-mood): rank by the tag's own
        // column (the smaller of the two for a pair).
        let axis: Vec<Vec<u64>> = all
            .iter()
            .map(|q| {
                let mut order: Vec<u64> = (0..eval.items.nrows() as u64).collect();
                let score = |r: u64| {
                    q.tags
                        .iter()
                        .map(|&t| eval.items[(r as usize, t)])
                        .fold(f32::INFINITY, f32::min)
                };
                order.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
                order.truncate(DEPTH);
                order
            })
            .collect();
        systems.push(("tag-axis".into(), Answer::Rankings(axis), Fusion::rrf()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let empirical: Vec<f32> = all
        .iter()
        .flat_map(|q| {
            let rows = train_rows(&q.tags);
            let picks: Vec<usize> = if rows.len() >= 32 {
                sample(&mut rng, rows.len(), 32).into_vec()
            } else {
                (0..32).map(|j| j % rows.len()).collect()
            };
            picks
                .into_iter()
                .flat_map(|p| train.items.row(rows[p]).to_vec())
                .collect::<Vec<f32>>()
        })
        .collect();
    systems.push((
        "empirical seeds=32 rrf".into(),
        Answer::Seeds {
            rows: empirical,
            per_query: 32,
        },
        Fusion::rrf(),
    ));

    let catalogue = eval
        .items
        .as_standard_layout()
        .into_owned()
        .into_raw_vec_and_offset()
        .0;
    let single: Vec<&Query> = all.iter().filter(|q| q.tags.len() == 1).collect();
    let mut results: BTreeMap<String, BTreeMap<String, Scores>> = BTreeMap::new();
    let mut tradeoff: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut markdown = String::new();
    writeln!(markdown, "# {} benchmark\n", args.title)?;
    writeln!(markdown, "Train split `{}` ({} tracks), evaluation split `{}` ({} tracks, the catalogue); {} queries ({} single tags, {} pairs) with ≥ {MIN_RELEVANT} relevant tracks; models ResNet-MLP 256×3, {} steps; Heun 16 steps; depth {DEPTH} per seed. Command: `{}`.\n",
        train.name, train.items.nrows(), eval.name, eval.items.nrows(), all.len(), single.len(), all.len() - single.len(), args.steps, args.command)?;
    for prep_kind in [
        Preprocessing::None,
        Preprocessing::Standardise,
        Preprocessing::WHITEN,
    ] {
        let search = SeedSearch::new(
            catalogue.clone(),
            dim,
            SearchSettings {
                preprocessing: prep_kind,
                ..SearchSettings::default()
            },
        )?;
        writeln!(markdown, "## Catalogue preprocessing: {prep_kind}\n")?;
        writeln!(markdown, "| system | nDCG@10 | Recall@50 | coverage@100 | diversity@20 | artist entropy@20 | FD(seeds, tag items) |")?;
        writeln!(markdown, "|---|---|---|---|---|---|---|")?;
        for (name, answer, fusion) in &systems {
            let s = score(answer, &all, eval, &search, *fusion, &truth_items)?;
            writeln!(
                markdown,
                "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {} |",
                s.ndcg_10,
                s.recall_50,
                s.coverage_100,
                s.diversity_20,
                s.artist_entropy_20,
                s.frechet.map_or("–".into(), |f| format!("{f:.4}"))
            )?;
            if name.starts_with("prior") && name.ends_with("seeds=32 rrf") {
                tradeoff
                    .entry(prep_kind.to_string())
                    .or_default()
                    .push((s.diversity_20, s.ndcg_10));
            }
            results
                .entry(prep_kind.to_string())
                .or_default()
                .insert(name.clone(), s);
        }
        writeln!(markdown)?;
    }
    let raw = SeedSearch::new(
        catalogue.clone(),
        dim,
        SearchSettings {
            preprocessing: Preprocessing::None,
            ..SearchSettings::default()
        },
    )?;
    let grid_rows = match &args.rerank_grid {
        Some(grid) => {
            let fast = FastPrior::from_prior(&prior)?;
            let bases = GridBases {
                systems: &systems,
                scores: &results["none"],
                search: &raw,
                catalogue: &catalogue,
            };
            rerank_grid(grid, &fast, &bases, &texts, &all, eval, &truth_items)?
        }
        None => Vec::new(),
    };
    if !grid_rows.is_empty() {
        writeln!(markdown, "## Re-ranking grid: the prior's implicit classifier over each base's fused top N (raw catalogue)\n")?;
        writeln!(markdown, "N = 0 is the base's own list (fused to the grid's depth). Cost per query: one thread (the first 32 queries) and two threads (every query, queries in parallel).\n")?;
        writeln!(markdown, "| base | N | draws | nDCG@10 | Recall@50 | coverage@100 | diversity@20 | ms/query, 1 thread | ms/query, 2 threads |\n|---|---|---|---|---|---|---|---|---|")?;
        for g in &grid_rows {
            let [n, d, one, two] = cost_cells(g.cost);
            writeln!(
                markdown,
                "| {} | {n} | {d} | {:.4} | {:.4} | {:.4} | {:.4} | {one} | {two} |",
                g.base,
                g.scores.ndcg_10,
                g.scores.recall_50,
                g.scores.coverage_100,
                g.scores.diversity_20
            )?;
        }
        writeln!(markdown)?;
    }
    let setup = SteeringSetup {
        mood,
        train,
        eval,
        sampler: &sampler,
        search: &raw,
        seed: args.seed,
    };
    let (pairs, curve) = steering_curve(&setup)?;
    writeln!(markdown, "## Steering\n\nQuery tag A steered toward the centroid of tag B's training tracks ({pairs} directed pairs with ≥ 10 evaluation tracks carrying both; CFG w = 1, 32 seeds, RRF, raw catalogue).\n")?;
    writeln!(markdown, "| γ | P@20 of A∧B | P@20 of A |\n|---|---|---|")?;
    for p in &curve {
        writeln!(
            markdown,
            "| {} | {:.4} | {:.4} |",
            p.gamma, p.precision_both_20, p.precision_a_20
        )?;
    }
    writeln!(
        markdown,
        "\n![CFG trade-off](cfg_tradeoff.svg) ![steering](steering.svg)\n"
    )?;
    writeln!(
        markdown,
        "Total time {:.0} s.",
        started.elapsed().as_secs_f64()
    )?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}", args.out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        diff4steer_index::atomic::write_atomic(&args.out.join(name), bytes)
            .with_context(|| format!("writing {name}"))
    };
    let series: Vec<(String, Vec<(f64, f64)>)> = tradeoff
        .into_iter()
        .map(|(k, v)| (format!("prior, 32 seeds, {k}"), v))
        .collect();
    write(
        "cfg_tradeoff.svg",
        render_lines_svg(
            "CFG w = 0, 0.5, 1, 2, 4: relevance vs diversity",
            "diversity@20",
            "nDCG@10",
            &series,
        )?
        .as_bytes(),
    )?;
    let steering_series = vec![
        (
            "P@20 of A∧B".to_owned(),
            curve
                .iter()
                .map(|p| (p.gamma, p.precision_both_20))
                .collect(),
        ),
        (
            "P@20 of A".to_owned(),
            curve.iter().map(|p| (p.gamma, p.precision_a_20)).collect(),
        ),
    ];
    write(
        "steering.svg",
        render_lines_svg("Steering A toward B", "γ", "precision@20", &steering_series)?.as_bytes(),
    )?;
    write("report.md", markdown.as_bytes())?;
    write(
        "results.json",
        &serde_json::to_vec_pretty(&serde_json::json!({
            "systems": results,
            "steering": curve,
            "rerank_grid": grid_rows,
        }))?,
    )?;
    println!("{markdown}");
    Ok(())
}

/// One row of the re-ranking grid: a base system, re-ranked at one cell (or not: no cost).
#[derive(Debug, Clone, serde::Serialize)]
struct GridRow {
    base: String,
    cost: Option<RerankCost>,
    scores: Scores,
}

/// Where the grid's bases come from: the systems, their scores on the raw catalogue (the best
/// prior row is a base), and that catalogue.
struct GridBases<'a> {
    systems: &'a [(String, Answer, Fusion)],
    scores: &'a BTreeMap<String, Scores>,
    search: &'a SeedSearch,
    catalogue: &'a [f32],
}

/// The re-ranking grid over the best prior row (by nDCG@10) and the regression.
fn rerank_grid(
    grid: &RerankGrid,
    prior: &FastPrior,
    bases: &GridBases<'_>,
    texts: &[f32],
    queries: &[Query],
    eval: &JamendoMoodSplit,
    truth_items: &dyn Fn(&Query) -> Vec<f32>,
) -> Result<Vec<GridRow>> {
    let best_prior = bases
        .scores
        .iter()
        .filter(|(name, _)| name.starts_with("prior"))
        .max_by(|a, b| a.1.ndcg_10.total_cmp(&b.1.ndcg_10))
        .map(|(name, _)| name.clone())
        .context("no prior row was scored")?;
    let depth = grid.tops.iter().copied().max().unwrap_or(0).max(DEPTH);
    let mut rows = Vec::new();
    for (name, answer, fusion) in bases.systems {
        if *name != best_prior && name != "regression" {
            continue;
        }
        let Answer::Seeds {
            rows: seeds,
            per_query,
        } = answer
        else {
            continue;
        };
        let lists: Vec<Vec<u64>> = bases
            .search
            .search_grouped(seeds, &vec![*per_query; queries.len()], depth, *fusion)?
            .into_iter()
            .map(|hits| hits.into_iter().map(|h| h.id).collect())
            .collect();
        let scored = |lists: Vec<Vec<u64>>| {
            score(
                &Answer::Rankings(lists),
                queries,
                eval,
                bases.search,
                *fusion,
                truth_items,
            )
        };
        rows.push(GridRow {
            base: name.clone(),
            cost: None,
            scores: scored(lists.clone())?,
        });
        let input = [RerankInput {
            queries: texts,
            lists: &lists,
        }];
        for cell in grid.cells() {
            let (mut reranked, cost) = grid.run_cell(prior, cell, &input, bases.catalogue)?;
            println!(
                "re-rank grid: {name} N={} draws={}: {:.1} ms/query (1 thread), {:.1} (2 threads)",
                cost.top, cost.draws, cost.ms_one_thread, cost.ms_two_threads
            );
            rows.push(GridRow {
                base: name.clone(),
                cost: Some(cost),
                scores: scored(reranked.remove(0))?,
            });
        }
    }
    Ok(rows)
}
