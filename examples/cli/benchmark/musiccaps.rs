//! `benchmark musiccaps`: text → music on real audio, the paper's setting. Captions and aspects of
//! the MusicCaps clips (MiniLM) are the queries; the clips' real AudioSet VGGish vectors are the
//! catalogue (the evaluated split, and the split plus 11,044 music distractors). Every model is
//! trained on the training split only; settings are chosen on valid.
//!
//! Systems: the diffusion prior (CFG w × seeds × fusion, samplers), the regression baseline
//! (MSE and cosine), ridge regression, the audio of the nearest training captions, the aspect's
//! centroid and all of the aspect's training clips ("perfect prior"). Protocols and scores are in
//! `diff4steer_eval::protocols`; this file only wires systems to them and writes the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use diff4steer_core::tensor_util::{matrix_from_host, to_host_f32};
use diff4steer_core::{
    karras, Conditioning, GuidanceCondition, LinearGuidance, Sigmas, Steered, SteeringTarget,
    TargetScaling,
};
use diff4steer_eval::protocols::{
    aspect_queries, aspect_scores, caption_queries, caption_scores, steering_cases,
    steering_scores, AspectScores, CaptionScores, ProtocolQuery, SteeringScores,
};
use diff4steer_eval::{MusicCapsAudio, MusicCapsSplit};
use diff4steer_examples::line_plot::render_lines_svg;
use diff4steer_index::{Fusion, Preprocessing};
use diff4steer_models::backend::{CpuAutodiff, CpuBackend};
use diff4steer_models::fast::{FastPrior, ImplicitClassifier, RerankOrder, ScoreWeighting};

use super::rerank_grid::{cost_cells, sigma_and_order, RerankCost, RerankGrid, RerankInput};
use diff4steer_models::retrieval::{
    HostPrior, RetrievalRequest, SearchSettings, SeedSampler, SeedSearch,
};
use diff4steer_models::training::{
    load_prior, load_regression, musiccaps_pairs, train_prior, train_regression, Output, PairData,
    PairMix, TrainingConfig,
};
use diff4steer_models::{
    DiffusionPrior, DiffusionPriorConfig, NearestQuerySeeds, PriorSeeds, RegressionConfig,
    RegressionLoss, RegressionModel, ResMlpConfig, RidgeRegression, Sampler, SamplerKind,
    SeedGenerator,
};
use serde::Serialize;

type B = CpuBackend;

/// Hits searched per seed and kept after fusion.
const DEPTH: usize = 100;
/// Aspects need this many clips in the training split and in the evaluated one.
const MIN_ASPECT_CLIPS: usize = 5;
/// Seeds sampled per query; fewer are the first ones of these.
const MAX_SEEDS: usize = 32;
/// Steering: aspects drawn, captions per aspect, and the clips an aspect needs in both splits.
const STEERING_ASPECTS: usize = 20;
const STEERING_CAPTIONS: usize = 10;
const STEERING_MIN_CLIPS: usize = 20;

/// `benchmark musiccaps` options.
#[derive(clap::Args, Debug)]
pub struct MusicCapsArgs {
    /// The data folder holding `musiccaps/` and `musiccaps-vggish/` (e.g. ../shared/data).
    #[arg(long)]
    data: PathBuf,
    /// Split to evaluate on (its clips are the catalogue).
    #[arg(long, default_value = "valid")]
    split: String,
    /// Split to train on.
    #[arg(long, default_value = "train")]
    train_split: String,
    /// Output folder: report.md, results.json, plots.
    #[arg(long)]
    out: PathBuf,
    /// Training steps of the prior.
    #[arg(long, default_value_t = 6000)]
    steps: usize,
    /// Training steps of each regression model.
    #[arg(long, default_value_t = 3000)]
    regression_steps: usize,
    /// Width of every network.
    #[arg(long, default_value_t = 256)]
    width: usize,
    /// Residual blocks of every network.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// Dropout inside the residual blocks.
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    /// Condition dropout of the prior.
    #[arg(long, default_value_t = 0.1)]
    cond_dropout: f64,
    /// EMA decay of the prior's sampling weights (0 = the last step's weights).
    #[arg(long, default_value_t = 0.999)]
    ema_decay: f64,
    /// Share of caption pairs among the text pairs (the rest: aspect pairs).
    #[arg(long, default_value_t = 0.5)]
    caption_share: f64,
    /// Share of target-only rows (distractor audio: the null condition) among all draws.
    #[arg(long, default_value_t = 0.1)]
    target_only_share: f64,
    /// Train the prior in raw catalogue units instead of standardised ones.
    #[arg(long)]
    raw_targets: bool,
    /// Condition the prior through FiLM only (no query projection into the first layer).
    #[arg(long)]
    film_only: bool,
    /// Mean of ln σ during training (EDM P_mean).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    p_mean: f64,
    /// Standard deviation of ln σ during training (EDM P_std).
    #[arg(long, default_value_t = 1.0)]
    p_std: f64,
    /// Re-rank the top N fused ids by the prior's implicit classifier (0 = no re-ranked systems).
    #[arg(long, default_value_t = 100)]
    rerank_top: usize,
    /// Noise draws of the implicit classifier.
    #[arg(long, default_value_t = 16)]
    rerank_draws: usize,
    /// σ range of the implicit classifier's draws (prior units).
    #[arg(long, value_delimiter = ',', default_value = "0.2,20")]
    rerank_sigma: Vec<f64>,
    /// Blend the implicit-classifier order with the fused order by reciprocal ranks with this
    /// constant (0 = order by the score alone).
    #[arg(long, default_value_t = 30.0)]
    rerank_blend: f64,
    /// Weighting of the implicit classifier: edm, elbo or uniform.
    #[arg(long, default_value = "edm")]
    rerank_weighting: String,
    /// The re-ranking grid: depths N re-ranked (with --rerank-grid-draws; empty = no grid). Its
    /// bases are the best prior row and the MSE regression.
    #[arg(long, value_delimiter = ',')]
    rerank_grid_top: Vec<usize>,
    /// The re-ranking grid: noise draws of the implicit classifier.
    #[arg(long, value_delimiter = ',', default_value = "4,16,64")]
    rerank_grid_draws: Vec<usize>,
    /// Smallest σ of the sampler's grid (the final denoise happens there).
    #[arg(long, default_value_t = 0.002)]
    sigma_min: f64,
    /// Guidance strengths of the CFG sweep.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,4,8")]
    guidance: Vec<f64>,
    /// Keep trained models in this folder and reuse them when their settings match.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Evaluate only the first N queries of each protocol (a smoke run).
    #[arg(long)]
    limit: Option<usize>,
    /// Skip the catalogue with distractors, the preprocessing comparison, the sampler sweep and
    /// the steering curve.
    #[arg(long)]
    quick: bool,
    /// Steering strengths γ toward the centroid of B's training clips (besides 0).
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,2,3,5,10")]
    centroid_scales: Vec<f64>,
    /// Weights λ of B's text as a composed condition.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,6,8,16")]
    text_scales: Vec<f64>,
    /// Guidance strength of the steering curve (default: that of the best prior row).
    #[arg(long)]
    steering_guidance: Option<f64>,
    /// Run the steering curve even with --quick.
    #[arg(long)]
    steering: bool,
    /// Seed of training and sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The data of one run: the shared text side, the two splits and the distractors.
struct Data {
    caps: MusicCapsAudio,
    train: MusicCapsSplit,
    eval: MusicCapsSplit,
    distractors: Vec<f32>,
    dim: usize,
}

fn load(args: &MusicCapsArgs) -> Result<Data> {
    let caps = MusicCapsAudio::load_from(&args.data)
        .with_context(|| format!("loading MusicCaps from {}", args.data.display()))?;
    let train = caps.split(&args.train_split)?;
    let eval = caps.split(&args.split)?;
    let distractors = caps.distractors()?;
    let dim = train.audio.ncols();
    if eval.audio.ncols() != dim || distractors.audio.ncols() != dim {
        bail!("the splits and distractors have different audio widths");
    }
    Ok(Data {
        distractors: rows_of(&distractors.audio),
        caps,
        train,
        eval,
        dim,
    })
}

fn rows_of(a: &ndarray::Array2<f32>) -> Vec<f32> {
    a.as_standard_layout().iter().copied().collect()
}

/// Seeds for a set of queries: `counts[q]` rows for query q, row-major, query-major.
#[derive(Clone, Debug, Default)]
struct Seeds {
    rows: Vec<f32>,
    counts: Vec<usize>,
}

impl Seeds {
    /// `rows` (`dim` wide) split evenly over `queries` queries.
    fn uniform(rows: Vec<f32>, queries: usize, dim: usize) -> Self {
        let per = rows.len().checked_div(dim * queries).unwrap_or(0);
        Self {
            counts: vec![per; queries],
            rows,
        }
    }
    /// The first `k` seeds of every query (all of them where it has fewer).
    fn first(&self, k: usize, dim: usize) -> Self {
        let (mut rows, mut counts, mut at) = (Vec::new(), Vec::new(), 0);
        for &c in &self.counts {
            let take = c.min(k);
            rows.extend_from_slice(&self.rows[at * dim..(at + take) * dim]);
            counts.push(take);
            at += c;
        }
        Self { rows, counts }
    }
}

/// A system under test: seeds for either protocol (absent where it has none), a fusion, and
/// optionally a re-ranking of the fused lists by the prior's implicit classifier.
#[derive(Clone)]
struct System {
    name: String,
    captions: Option<Seeds>,
    aspects: Option<Seeds>,
    fusion: Fusion,
    rerank: Option<Rerank>,
}

/// Re-rank the first `top` fused ids by the implicit classifier of `prior`.
#[derive(Clone)]
struct Rerank {
    prior: FastPrior,
    classifier: ImplicitClassifier,
    top: usize,
    order: RerankOrder,
}

/// Searches all seeds in one batched call, then fuses each query's lists into DEPTH ids: the
/// front door's search stage ([`SeedSearch::search_grouped`]).
fn ranked(search: &SeedSearch, seeds: &Seeds, fusion: Fusion) -> Result<Vec<Vec<u64>>> {
    ranked_to(search, seeds, fusion, DEPTH)
}

/// [`ranked`] to `depth` ids per seed and per fused list.
fn ranked_to(
    search: &SeedSearch,
    seeds: &Seeds,
    fusion: Fusion,
    depth: usize,
) -> Result<Vec<Vec<u64>>> {
    Ok(search
        .search_grouped(&seeds.rows, &seeds.counts, depth, fusion)?
        .into_iter()
        .map(|hits| hits.into_iter().map(|h| h.id).collect())
        .collect())
}

/// One catalogue with one preprocessing, ready to search.
struct Catalogue {
    name: &'static str,
    prep_kind: Preprocessing,
    search: SeedSearch,
    /// The items in catalogue units (what a re-ranker scores).
    items: Vec<f32>,
    /// Every item standardised with the training statistics: the fixed space diversity is
    /// measured in, whatever the preprocessing.
    diversity_space: Vec<f32>,
}

fn catalogue(
    name: &'static str,
    items: &[f32],
    dim: usize,
    prep_kind: Preprocessing,
    train_stats: &TargetScaling,
) -> Result<Catalogue> {
    let search = SeedSearch::new(
        items.to_vec(),
        dim,
        SearchSettings {
            preprocessing: prep_kind,
            ..SearchSettings::default()
        },
    )?;
    let mut diversity_space = items.to_vec();
    train_stats.to_model_host(&mut diversity_space)?;
    Ok(Catalogue {
        name,
        prep_kind,
        search,
        items: items.to_vec(),
        diversity_space,
    })
}

/// Scores of one system on one catalogue.
#[derive(Debug, Clone, Serialize)]
struct Row {
    system: String,
    catalogue: String,
    preprocessing: String,
    caption: Option<CaptionScores>,
    aspect: Option<AspectScores>,
}

struct Protocols {
    captions: Vec<ProtocolQuery>,
    aspects: Vec<ProtocolQuery>,
    aspect_ids: Vec<usize>,
}

impl Protocols {
    fn caption_texts(&self) -> Vec<f32> {
        self.captions.iter().flat_map(|q| q.text.clone()).collect()
    }
    fn aspect_texts(&self) -> Vec<f32> {
        self.aspects.iter().flat_map(|q| q.text.clone()).collect()
    }
}

fn score(system: &System, cat: &Catalogue, protocols: &Protocols, dim: usize) -> Result<Row> {
    let lists = |seeds: &Seeds, texts: Vec<f32>| -> Result<Vec<Vec<u64>>> {
        let fused = ranked(&cat.search, seeds, system.fusion)?;
        match &system.rerank {
            None => Ok(fused),
            Some(r) => Ok(r
                .classifier
                .rerank_lists(&r.prior, &texts, &fused, &cat.items, r.top, r.order)?),
        }
    };
    let caption = match &system.captions {
        Some(seeds) => Some(caption_scores(
            &lists(seeds, protocols.caption_texts())?,
            &protocols.captions,
        )?),
        None => None,
    };
    let aspect = match &system.aspects {
        Some(seeds) => Some(aspect_scores(
            &lists(seeds, protocols.aspect_texts())?,
            &protocols.aspects,
            &cat.diversity_space,
            dim,
        )?),
        None => None,
    };
    Ok(Row {
        system: system.name.clone(),
        catalogue: cat.name.into(),
        preprocessing: cat.prep_kind.to_string(),
        caption,
        aspect,
    })
}

/// The network shared by every learned model of the run.
fn network(args: &MusicCapsArgs) -> ResMlpConfig {
    ResMlpConfig::new()
        .with_width(args.width)
        .with_depth(args.depth)
        .with_dropout(args.dropout)
}

fn training(args: &MusicCapsArgs, steps: usize) -> TrainingConfig {
    TrainingConfig::new()
        .with_steps(steps)
        .with_batch_size(256)
        .with_cond_dropout(args.cond_dropout)
        .with_checkpoint_every(0)
        .with_seed(args.seed)
}

/// Trains (or, with a cache holding the same settings, loads) the prior.
fn prior(args: &MusicCapsArgs, data: &Data, pairs: &PairData) -> Result<(DiffusionPrior<B>, f64)> {
    let name = format!(
        "prior-{}x{}-do{}-{}steps-cd{}-ema{}-cap{}-tos{}-{}-{}-pm{}-ps{}-seed{}",
        args.width,
        args.depth,
        args.dropout,
        args.steps,
        args.cond_dropout,
        args.ema_decay,
        args.caption_share,
        args.target_only_share,
        if args.raw_targets { "raw" } else { "std" },
        if args.film_only { "film" } else { "qin" },
        args.p_mean,
        args.p_std,
        args.seed
    );
    let dir = args.cache.as_ref().map(|c| c.join(&name));
    if let Some(dir) = dir.as_ref().filter(|d| d.join("latest").exists()) {
        let (prior, _) = load_prior::<B>(dir, &Default::default())?;
        println!("prior: loaded {}", dir.display());
        return Ok((prior, 0.0));
    }
    let config = DiffusionPriorConfig::new(data.dim, data.caps.text_dim())
        .with_network(network(args))
        .with_standardise_targets(!args.raw_targets)
        .with_query_to_input(!args.film_only);
    let started = Instant::now();
    let (prior, _, report) = train_prior::<CpuAutodiff>(
        &config,
        &training(args, args.steps)
            .with_p_mean(args.p_mean)
            .with_p_std(args.p_std)
            .with_ema_decay(args.ema_decay),
        pairs,
        None,
        dir.as_deref().map(Output::new),
        &Default::default(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "prior: {} steps in {seconds:.0} s ({:.1} steps/s)",
        args.steps, report.steps_per_second
    );
    Ok((prior, seconds))
}

/// Trains (or loads) a regression baseline with `loss`.
fn regression(
    args: &MusicCapsArgs,
    data: &Data,
    pairs: &PairData,
    loss: RegressionLoss,
) -> Result<(RegressionModel<B>, f64)> {
    let name = format!(
        "regression-{loss:?}-{}x{}-do{}-{}steps-cap{}-seed{}",
        args.width, args.depth, args.dropout, args.regression_steps, args.caption_share, args.seed
    );
    let dir = args.cache.as_ref().map(|c| c.join(&name));
    if let Some(dir) = dir.as_ref().filter(|d| d.join("latest").exists()) {
        let (model, _) = load_regression::<B>(dir, &Default::default())?;
        println!("regression ({loss:?}): loaded {}", dir.display());
        return Ok((model, 0.0));
    }
    let config = RegressionConfig::new(data.dim, data.caps.text_dim())
        .with_loss(loss)
        .with_network(network(args));
    let started = Instant::now();
    let (model, report) = train_regression::<CpuAutodiff>(
        &config,
        &training(args, args.regression_steps),
        pairs,
        None,
        dir.as_deref().map(Output::new),
        &Default::default(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "regression ({loss:?}): {} steps in {seconds:.0} s ({:.1} steps/s)",
        args.regression_steps, report.steps_per_second
    );
    Ok((model, seconds))
}

/// One sampler setting of the prior.
#[derive(Debug, Clone, Copy)]
struct SamplerSetting {
    kind: SamplerKind,
    steps: usize,
    sigma_min: f64,
}

impl SamplerSetting {
    const DEFAULT: SamplerSetting = SamplerSetting {
        kind: SamplerKind::Heun,
        steps: 16,
        sigma_min: 0.002,
    };
    fn sigmas(&self) -> Result<Sigmas> {
        Ok(karras(self.steps, self.sigma_min, 80.0, 7.0)?)
    }
    fn label(&self) -> String {
        format!("{} {}", self.kind, self.steps)
    }
}

/// 32 seeds per query of both protocols from the prior (the front door's seed stage on the host
/// path), and the seconds it took.
fn sample_prior(
    fast: &FastPrior,
    setting: SamplerSetting,
    w: f64,
    protocols: &Protocols,
    seed: u64,
) -> Result<(Seeds, Seeds, f64)> {
    let seeds = SeedSampler::new(Box::new(HostPrior::new(fast.clone())))?
        .with_sampler(Sampler::new(setting.kind, setting.sigmas()?)?);
    let request = RetrievalRequest::new()
        .seeds_per_query(MAX_SEEDS)
        .guidance(w)
        .seed(seed);
    let started = Instant::now();
    let captions = seeds.seeds(&protocols.caption_texts(), &request)?;
    let aspects = seeds.seeds(&protocols.aspect_texts(), &request)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((
        Seeds::uniform(captions, protocols.captions.len(), fast.target_dim()),
        Seeds::uniform(aspects, protocols.aspects.len(), fast.target_dim()),
        seconds,
    ))
}

/// The prior's systems at one guidance strength: 1, 8 and 32 seeds under each fusion (and, at
/// 32 seeds, MMR with λ = 0.5 and round-robin).
fn prior_systems(
    label: &str,
    captions: &Seeds,
    aspects: &Seeds,
    dim: usize,
    fusions: &[Fusion],
) -> Vec<System> {
    let mut out = vec![System {
        name: format!("{label} seeds=1"),
        captions: Some(captions.first(1, dim)),
        aspects: Some(aspects.first(1, dim)),
        fusion: Fusion::rrf(),
        rerank: None,
    }];
    for k in [8, MAX_SEEDS] {
        // The diversity-oriented fusions only where there are many lists to choose from.
        let diverse = [Fusion::Mmr { lambda: 0.5 }, Fusion::RoundRobin];
        let extra: &[Fusion] = if k == MAX_SEEDS { &diverse } else { &[] };
        for &fusion in fusions.iter().chain(extra) {
            out.push(System {
                name: format!("{label} seeds={k} {fusion}"),
                captions: Some(captions.first(k, dim)),
                aspects: Some(aspects.first(k, dim)),
                fusion,
                rerank: None,
            });
        }
    }
    out
}

/// Row-major host matrix of a tensor-producing seed generator's output.
fn generator_seeds(
    generator: &dyn SeedGenerator<B>,
    texts: &[f32],
    text_dim: usize,
    k: usize,
) -> Result<Vec<f32>> {
    let n = texts.len() / text_dim;
    let queries = matrix_from_host::<B>(texts.to_vec(), n, text_dim, &Default::default())?;
    Ok(to_host_f32(generator.seeds(queries, k, 0)?)?)
}

/// Pairs of captions only (what the ridge anchor and the nearest-caption seeds see).
fn caption_pairs(data: &Data) -> Result<PairData> {
    Ok(PairData::from_vecs(
        rows_of(&data.train.captions),
        data.caps.text_dim(),
        rows_of(&data.train.audio),
        data.dim,
    )?)
}

/// Training clips carrying `aspect`, as rows.
fn aspect_clips(train: &MusicCapsSplit, aspect: usize) -> Vec<f32> {
    train
        .clips_with_aspect(aspect)
        .into_iter()
        .flat_map(|r| train.audio.row(r).to_vec())
        .collect()
}

fn centroid(rows: &[f32], dim: usize) -> Vec<f32> {
    let n = (rows.len() / dim).max(1) as f32;
    let mut c = vec![0.0f32; dim];
    for row in rows.chunks(dim) {
        c.iter_mut().zip(row).for_each(|(c, v)| *c += v / n);
    }
    c
}

/// Everything the report and results.json hold.
#[derive(Serialize)]
struct Results {
    command: String,
    settings: Settings,
    rows: Vec<Row>,
    sampler_sweep: Vec<SamplerRow>,
    rerank_grid: Vec<GridRow>,
    steering: Vec<SteeringPoint>,
    seconds: BTreeMap<String, f64>,
}

/// One cell of the re-ranking grid (no cost: the base system's own lists at the grid's depth).
#[derive(Serialize)]
struct GridRow {
    cost: Option<RerankCost>,
    row: Row,
}

#[derive(Serialize)]
struct Settings {
    split: String,
    train_split: String,
    network: String,
    prior_steps: usize,
    regression_steps: usize,
    cond_dropout: f64,
    ema_decay: f64,
    p_mean: f64,
    p_std: f64,
    query_to_input: bool,
    rerank: String,
    mix: PairMix,
    standardised_targets: bool,
    caption_queries: usize,
    aspect_queries: usize,
    seed: u64,
}

#[derive(Serialize)]
struct SamplerRow {
    sampler: String,
    guidance: f64,
    evaluations: usize,
    ms_per_query: f64,
    row: Row,
}

#[derive(Serialize, Clone)]
struct SteeringPoint {
    mode: String,
    scale: f64,
    scores: SteeringScores,
}

/// Runs `benchmark musiccaps`.
pub fn run(args: &MusicCapsArgs) -> Result<()> {
    let started = Instant::now();
    let mut seconds: BTreeMap<String, f64> = BTreeMap::new();
    let data = load(args)?;
    let dim = data.dim;
    let text_dim = data.caps.text_dim();
    let mut captions = caption_queries(&data.eval);
    let mut aspect_list = aspect_queries(&data.caps, &data.train, &data.eval, MIN_ASPECT_CLIPS);
    if let Some(n) = args.limit {
        captions.truncate(n);
        aspect_list.truncate(n);
    }
    let protocols = Protocols {
        captions,
        aspect_ids: aspect_list.iter().map(|a| a.aspect).collect(),
        aspects: aspect_list.into_iter().map(|a| a.query).collect(),
    };
    println!(
        "musiccaps: train {} clips, evaluate on {} ({} clips; + {} distractors), {} caption and {} aspect queries",
        data.train.len(),
        data.eval.name,
        data.eval.len(),
        data.distractors.len() / dim,
        protocols.captions.len(),
        protocols.aspects.len()
    );

    // Models.
    let mix = PairMix {
        caption_share: args.caption_share,
        target_only_share: args.target_only_share,
    };
    let pairs = musiccaps_pairs(&data.caps, &data.train, Some(&data.distractors), mix)?;
    let (prior, prior_seconds) = prior(args, &data, &pairs)?;
    seconds.insert("train prior".into(), prior_seconds);
    let regression_pairs = musiccaps_pairs(
        &data.caps,
        &data.train,
        None,
        PairMix {
            target_only_share: 0.0,
            ..mix
        },
    )?;
    let (mse, s) = regression(args, &data, &regression_pairs, RegressionLoss::Mse)?;
    seconds.insert("train regression (MSE)".into(), s);
    let (cosine, s) = regression(args, &data, &regression_pairs, RegressionLoss::Cosine)?;
    seconds.insert("train regression (cosine)".into(), s);
    let captions_only = caption_pairs(&data)?;
    let ridge = RidgeRegression::fit(&captions_only, 1.0)?;
    let ridge_mix = RidgeRegression::fit(&regression_pairs, 1.0)?;
    let nearest = NearestQuerySeeds::new(&captions_only)?;

    // Systems.
    let (ct, at) = (protocols.caption_texts(), protocols.aspect_texts());
    let (nc, na) = (protocols.captions.len(), protocols.aspects.len());
    let one = |rows: Vec<f32>, n: usize| Some(Seeds::uniform(rows, n, dim));
    let mut systems: Vec<System> = Vec::new();
    let fast = FastPrior::from_prior(&prior)?;
    let fusions = [Fusion::rrf(), Fusion::MeanScore, Fusion::MaxScore];
    let sampling_started = Instant::now();
    let mut prior_seeds: BTreeMap<String, (Seeds, Seeds)> = BTreeMap::new();
    for &w in &args.guidance {
        let setting = SamplerSetting {
            sigma_min: args.sigma_min,
            ..SamplerSetting::DEFAULT
        };
        let (c, a, s) = sample_prior(&fast, setting, w, &protocols, args.seed)?;
        println!("prior w={w}: sampled in {s:.1} s");
        systems.extend(prior_systems(
            &format!("prior w={w}"),
            &c,
            &a,
            dim,
            &fusions,
        ));
        prior_seeds.insert(format!("{w}"), (c, a));
    }
    seconds.insert(
        "sample prior (CFG sweep)".into(),
        sampling_started.elapsed().as_secs_f64(),
    );
    let (weighting, sigma, order) = rerank_settings(args)?;
    let rerank = if args.rerank_top > 0 {
        Some(Rerank {
            prior: fast.clone(),
            classifier: ImplicitClassifier::new(
                args.rerank_draws,
                sigma.0,
                sigma.1,
                weighting,
                args.seed,
            )?,
            top: args.rerank_top,
            order,
        })
    } else {
        None
    };
    for (name, model) in [("regression (MSE)", &mse), ("regression (cosine)", &cosine)] {
        systems.push(System {
            name: name.into(),
            captions: one(generator_seeds(model, &ct, text_dim, 1)?, nc),
            aspects: one(generator_seeds(model, &at, text_dim, 1)?, na),
            fusion: Fusion::rrf(),
            rerank: None,
        });
    }
    for (name, model) in [
        ("ridge (captions)", &ridge),
        ("ridge (training mix)", &ridge_mix),
    ] {
        systems.push(System {
            name: name.into(),
            captions: one(model.predict_host(&ct)?, nc),
            aspects: one(model.predict_host(&at)?, na),
            fusion: Fusion::rrf(),
            rerank: None,
        });
    }
    for (k, fusion) in [
        (1, Fusion::rrf()),
        (8, Fusion::rrf()),
        (8, Fusion::MeanScore),
    ] {
        systems.push(System {
            name: if k == 1 {
                "nearest training caption".into()
            } else {
                format!("nearest {k} training captions {fusion}")
            },
            captions: one(nearest.seeds_host(&ct, k)?, nc),
            aspects: one(nearest.seeds_host(&at, k)?, na),
            fusion,
            rerank: None,
        });
    }
    let clips_of: Vec<Vec<f32>> = protocols
        .aspect_ids
        .iter()
        .map(|&a| aspect_clips(&data.train, a))
        .collect();
    systems.push(System {
        name: "aspect centroid".into(),
        captions: None,
        aspects: one(clips_of.iter().flat_map(|c| centroid(c, dim)).collect(), na),
        fusion: Fusion::rrf(),
        rerank: None,
    });
    let all_clips = Seeds {
        rows: clips_of.concat(),
        counts: clips_of.iter().map(|c| c.len() / dim).collect(),
    };
    for fusion in [Fusion::MaxScore, Fusion::rrf()] {
        systems.push(System {
            name: format!("all training clips of the aspect {fusion}"),
            captions: None,
            aspects: Some(all_clips.clone()),
            fusion,
            rerank: None,
        });
    }

    // Catalogues and scores.
    let train_stats = TargetScaling::standardising(&rows_of(&data.train.audio), dim)?;
    let eval_items = rows_of(&data.eval.audio);
    let mut with_distractors = eval_items.clone();
    with_distractors.extend_from_slice(&data.distractors);
    let mut rows: Vec<Row> = Vec::new();
    let scoring_started = Instant::now();
    let main = catalogue(
        "split",
        &eval_items,
        dim,
        Preprocessing::Standardise,
        &train_stats,
    )?;
    for system in &systems {
        rows.push(score(system, &main, &protocols, dim)?);
    }
    if !args.quick {
        let big = catalogue(
            "split + distractors",
            &with_distractors,
            dim,
            Preprocessing::Standardise,
            &train_stats,
        )?;
        // MMR and round-robin are compared on the split alone (MMR is the costly fusion).
        let cheap = |s: &&System| !matches!(s.fusion, Fusion::Mmr { .. } | Fusion::RoundRobin);
        for system in systems.iter().filter(cheap) {
            rows.push(score(system, &big, &protocols, dim)?);
        }
        let key = |s: &System| {
            !s.name.starts_with("prior") || s.name.ends_with(&format!("seeds={MAX_SEEDS} rrf"))
        };
        for prep in [Preprocessing::None, Preprocessing::WHITEN] {
            let cat = catalogue("split", &eval_items, dim, prep, &train_stats)?;
            for system in systems.iter().filter(|s| key(s)) {
                rows.push(score(system, &cat, &protocols, dim)?);
            }
        }
    }
    seconds.insert(
        "retrieve and score".into(),
        scoring_started.elapsed().as_secs_f64(),
    );

    // The best prior row on the main catalogue picks the guidance of the sampler sweep and the
    // steering curve.
    let best = best_prior(&rows).context("no prior row was scored")?;
    let best_w: f64 = best
        .system
        .trim_start_matches("prior w=")
        .split(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1.0);
    let best_fusion = fusions
        .iter()
        .chain(&[Fusion::Mmr { lambda: 0.5 }, Fusion::RoundRobin])
        .copied()
        .find(|f| best.system.ends_with(&format!(" {f}")))
        .unwrap_or(Fusion::rrf());
    let best_system = best.system.clone();
    // The prior as a scorer: re-rank the best prior row's lists and the regression's by the
    // implicit classifier (main catalogue only: it costs ≈ top × draws × 2 network rows per query).
    if let Some(r) = &rerank {
        let rerank_started = Instant::now();
        let mut chosen: Vec<System> = systems
            .iter()
            .filter(|s| s.name == best_system || s.name == "regression (MSE)")
            .cloned()
            .collect();
        for system in &mut chosen {
            system.name = format!(
                "{} + implicit rerank top {} ({} draws)",
                system.name, r.top, args.rerank_draws
            );
            system.rerank = Some(r.clone());
            rows.push(score(system, &main, &protocols, dim)?);
        }
        seconds.insert("re-rank".into(), rerank_started.elapsed().as_secs_f64());
    }
    // The re-ranking grid (N × draws) over the same two bases, on the main catalogue.
    let mut rerank_grid = Vec::new();
    if !args.rerank_grid_top.is_empty() {
        let grid_started = Instant::now();
        let grid = RerankGrid {
            tops: args.rerank_grid_top.clone(),
            draws: args.rerank_grid_draws.clone(),
            sigma,
            weighting,
            order,
            seed: args.seed,
        };
        let depth = grid.tops.iter().copied().max().unwrap_or(0).max(DEPTH);
        let bases: Vec<&System> = systems
            .iter()
            .filter(|s| s.name == best_system || s.name == "regression (MSE)")
            .collect();
        for base in bases {
            let (Some(c), Some(a)) = (&base.captions, &base.aspects) else {
                continue;
            };
            let lists = [
                ranked_to(&main.search, c, base.fusion, depth)?,
                ranked_to(&main.search, a, base.fusion, depth)?,
            ];
            let row = |lists: &[Vec<Vec<u64>>]| -> Result<Row> {
                Ok(Row {
                    system: base.name.clone(),
                    catalogue: main.name.into(),
                    preprocessing: main.prep_kind.to_string(),
                    caption: Some(caption_scores(&lists[0], &protocols.captions)?),
                    aspect: Some(aspect_scores(
                        &lists[1],
                        &protocols.aspects,
                        &main.diversity_space,
                        dim,
                    )?),
                })
            };
            rerank_grid.push(GridRow {
                cost: None,
                row: row(&lists)?,
            });
            let inputs = [
                RerankInput {
                    queries: &ct,
                    lists: &lists[0],
                },
                RerankInput {
                    queries: &at,
                    lists: &lists[1],
                },
            ];
            for cell in grid.cells() {
                let (reranked, cost) = grid.run_cell(&fast, cell, &inputs, &main.items)?;
                println!(
                    "re-rank grid: {} N={} draws={}: {:.1} ms/query (1 thread), {:.1} (2 threads)",
                    base.name, cost.top, cost.draws, cost.ms_one_thread, cost.ms_two_threads
                );
                rerank_grid.push(GridRow {
                    cost: Some(cost),
                    row: row(&reranked)?,
                });
            }
        }
        seconds.insert("re-rank grid".into(), grid_started.elapsed().as_secs_f64());
    }
    let mut sampler_sweep = Vec::new();
    let mut steering = Vec::new();
    if !args.quick {
        let sweep_started = Instant::now();
        for setting in [
            SamplerSetting::DEFAULT,
            SamplerSetting {
                kind: SamplerKind::DpmSolverPlusPlus2M,
                steps: 8,
                sigma_min: 0.002,
            },
            SamplerSetting {
                kind: SamplerKind::DpmSolverPlusPlus2M,
                steps: 4,
                sigma_min: 0.002,
            },
            SamplerSetting {
                kind: SamplerKind::Euler,
                steps: 32,
                sigma_min: 0.002,
            },
        ] {
            let (c, a, s) = sample_prior(&fast, setting, best_w, &protocols, args.seed)?;
            let system = System {
                name: format!(
                    "prior w={best_w} {} seeds={MAX_SEEDS} {best_fusion}",
                    setting.label()
                ),
                captions: Some(c),
                aspects: Some(a),
                fusion: best_fusion,
                rerank: None,
            };
            sampler_sweep.push(SamplerRow {
                sampler: setting.label(),
                guidance: best_w,
                evaluations: setting.kind.evaluations(setting.steps),
                ms_per_query: 1000.0 * s / (nc + na) as f64,
                row: score(&system, &main, &protocols, dim)?,
            });
        }
        seconds.insert(
            "sampler sweep".into(),
            sweep_started.elapsed().as_secs_f64(),
        );
    }
    if !args.quick || args.steering {
        let steering_started = Instant::now();
        let w = args.steering_guidance.unwrap_or(best_w);
        steering = steering_curve(&data, &prior, &mse, &main, w, best_fusion, args)?;
        seconds.insert("steering".into(), steering_started.elapsed().as_secs_f64());
    }
    seconds.insert("total".into(), started.elapsed().as_secs_f64());

    let results = Results {
        command: std::iter::once("diff4steer".to_owned())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        settings: Settings {
            split: args.split.clone(),
            train_split: args.train_split.clone(),
            network: format!(
                "ResMLP {}×{}, dropout {}",
                args.width, args.depth, args.dropout
            ),
            prior_steps: args.steps,
            regression_steps: args.regression_steps,
            cond_dropout: args.cond_dropout,
            ema_decay: args.ema_decay,
            p_mean: args.p_mean,
            p_std: args.p_std,
            query_to_input: !args.film_only,
            rerank: format!(
                "top {} of the fused list, {} draws, σ {:?} ({}), blend c = {}",
                args.rerank_top,
                args.rerank_draws,
                args.rerank_sigma,
                args.rerank_weighting,
                args.rerank_blend
            ),
            mix,
            standardised_targets: !args.raw_targets,
            caption_queries: nc,
            aspect_queries: na,
            seed: args.seed,
        },
        rows,
        sampler_sweep,
        rerank_grid,
        steering,
        seconds,
    };
    write_outputs(&args.out, &results)
}

/// The prior row with the best caption Recall@10 + aspect nDCG@10 on the main catalogue.
fn best_prior(rows: &[Row]) -> Option<&Row> {
    let value = |r: &Row| {
        r.caption.as_ref().map_or(0.0, |c| c.recall_10)
            + r.aspect.as_ref().map_or(0.0, |a| a.ndcg_10)
    };
    rows.iter()
        .filter(|r| {
            r.system.starts_with("prior")
                && r.catalogue == "split"
                && r.preprocessing == "standardise"
        })
        .max_by(|a, b| value(a).total_cmp(&value(b)))
}

/// The deterministic steering reference: how far the regression's seed moves toward B's centroid.
const INTERPOLATION: [f64; 5] = [0.1, 0.2, 0.3, 0.5, 0.7];

/// The steering curve: caption queries steered toward an aspect B they do not carry, by the
/// centroid of B's training clips (text steering, [`Steered`]), by B's text as a composed
/// condition (D̃ = D(∅) + (1 + w)(D(q) − D(∅)) + λ(D(B) − D(∅))), and, as the deterministic
/// reference, the regression's seed moved toward the centroid ((1 − α)·r + α·c).
fn steering_curve(
    data: &Data,
    prior: &DiffusionPrior<B>,
    regression: &RegressionModel<B>,
    cat: &Catalogue,
    w: f64,
    fusion: Fusion,
    args: &MusicCapsArgs,
) -> Result<Vec<SteeringPoint>> {
    let dim = data.dim;
    let text_dim = data.caps.text_dim();
    let mut cases = steering_cases(
        &data.caps,
        &data.train,
        &data.eval,
        STEERING_MIN_CLIPS,
        STEERING_ASPECTS,
        STEERING_CAPTIONS,
        args.seed,
    )?;
    if let Some(n) = args.limit {
        cases.truncate(n);
    }
    let device = Default::default();
    let n = cases.len();
    let texts: Vec<f32> = cases
        .iter()
        .flat_map(|c| data.eval.captions.row(c.clip).to_vec())
        .collect();
    let queries = matrix_from_host::<B>(texts.clone(), n, text_dim, &device)?;
    let centroids: Vec<f32> = cases
        .iter()
        .flat_map(|c| centroid(&aspect_clips(&data.train, c.aspect), dim))
        .collect();
    // One steering row per seed (query-major), so every query has its own B.
    let per_seed = |rows: &[f32], width: usize| -> Vec<f32> {
        rows.chunks(width)
            .flat_map(|r| std::iter::repeat_n(r, MAX_SEEDS).flatten().copied())
            .collect()
    };
    let sampler = Sampler::new(SamplerKind::Heun, SamplerSetting::DEFAULT.sigmas()?)?;
    let fast = FastPrior::from_prior(prior)?;
    let score_seeds = |seeds: Vec<f32>, per_query: usize| -> Result<SteeringScores> {
        let lists = ranked(
            &cat.search,
            &Seeds::uniform(seeds, n, dim),
            if per_query == 1 {
                Fusion::rrf()
            } else {
                fusion
            },
        )?;
        Ok(steering_scores(&lists, &cases, &data.eval)?)
    };
    let mut curve = Vec::new();
    for &gamma in std::iter::once(&0.0).chain(&args.centroid_scales) {
        let target = SteeringTarget::new(
            matrix_from_host::<B>(per_seed(&centroids, dim), n * MAX_SEEDS, dim, &device)?,
            gamma,
        )?;
        let guided = LinearGuidance::classifier_free(fast.clone(), w)?;
        let steered = Steered::new(guided, vec![target], diff4steer_core::Similarity::Cosine)?;
        let seeds = to_host_f32(PriorSeeds::new(steered, sampler.clone()).seeds(
            queries.clone(),
            MAX_SEEDS,
            args.seed,
        )?)?;
        curve.push(SteeringPoint {
            mode: "prior + centroid steering".into(),
            scale: gamma,
            scores: score_seeds(seeds, MAX_SEEDS)?,
        });
    }
    let b_texts: Vec<f32> = cases
        .iter()
        .flat_map(|c| data.caps.aspect_embeddings.row(c.aspect).to_vec())
        .collect();
    for &lambda in &args.text_scales {
        let b = Conditioning::new(matrix_from_host::<B>(
            b_texts.clone(),
            n,
            text_dim,
            &device,
        )?)?;
        let composed = LinearGuidance::composed(
            fast.clone(),
            vec![
                (GuidanceCondition::Given, 1.0 + w),
                (GuidanceCondition::Fixed(b), lambda),
            ],
        )?;
        let seeds = to_host_f32(PriorSeeds::new(composed, sampler.clone()).seeds(
            queries.clone(),
            MAX_SEEDS,
            args.seed,
        )?)?;
        curve.push(SteeringPoint {
            mode: "prior + B's text (composed)".into(),
            scale: lambda,
            scores: score_seeds(seeds, MAX_SEEDS)?,
        });
    }
    let r = to_host_f32(regression.seeds(queries, 1, 0)?)?;
    for alpha in std::iter::once(0.0).chain(INTERPOLATION) {
        let moved: Vec<f32> = r
            .iter()
            .zip(&centroids)
            .map(|(&a, &c)| ((1.0 - alpha) as f32) * a + (alpha as f32) * c)
            .collect();
        curve.push(SteeringPoint {
            mode: "regression moved toward the centroid".into(),
            scale: alpha,
            scores: score_seeds(moved, 1)?,
        });
    }
    Ok(curve)
}

fn caption_table(out: &mut String, rows: &[&Row]) -> Result<()> {
    writeln!(
        out,
        "| system | R@1 | R@5 | R@10 | MRR | median rank |\n|---|---|---|---|---|---|"
    )?;
    for r in rows {
        if let Some(c) = &r.caption {
            writeln!(
                out,
                "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
                r.system,
                c.recall_1,
                c.recall_5,
                c.recall_10,
                c.mrr,
                c.median_rank
                    .map_or(format!("> {DEPTH}"), |m| format!("{m:.0}"))
            )?;
        }
    }
    Ok(writeln!(out)?)
}

fn aspect_table(out: &mut String, rows: &[&Row]) -> Result<()> {
    writeln!(out, "| system | nDCG@10 | Recall@50 | coverage@100 | diversity@20 | Vendi@20 |\n|---|---|---|---|---|---|")?;
    for r in rows {
        if let Some(a) = &r.aspect {
            writeln!(
                out,
                "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.2} |",
                r.system, a.ndcg_10, a.recall_50, a.coverage_100, a.diversity_20, a.vendi_20
            )?;
        }
    }
    Ok(writeln!(out)?)
}

fn write_outputs(out: &Path, results: &Results) -> Result<()> {
    let mut md = String::new();
    let s = &results.settings;
    writeln!(md, "# MusicCaps benchmark: text → real audio (VGGish)\n")?;
    writeln!(
        md,
        "Train split `{}`, evaluated on `{}` ({} caption queries, {} aspect queries with ≥ {MIN_ASPECT_CLIPS} clips in both splits). Networks {}; prior {} steps (ln σ ~ N({}, {}²), condition dropout {}, EMA {}, {} targets, query {}), regressions {} steps; training mix: {:.0} % captions among text pairs, {:.0} % target-only draws (distractor audio). Sampler Heun 16 (31 evaluations), catalogue preprocessing `standardise` unless a table says otherwise, depth {DEPTH} per seed, cosine. Diversity is measured on the catalogue standardised with training statistics. Implicit re-ranking: {}. Seed {}.\n\nCommand: `{}`\n",
        s.train_split, s.split, s.caption_queries, s.aspect_queries, s.network, s.prior_steps,
        s.p_mean, s.p_std, s.cond_dropout, s.ema_decay,
        if s.standardised_targets { "standardised" } else { "raw" },
        if s.query_to_input { "through FiLM and the first layer" } else { "through FiLM only" },
        s.regression_steps,
        100.0 * s.mix.caption_share, 100.0 * s.mix.target_only_share, s.rerank, s.seed, results.command
    )?;
    let select = |catalogue: &str, prep: &str| -> Vec<&Row> {
        results
            .rows
            .iter()
            .filter(|r| r.catalogue == catalogue && r.preprocessing == prep)
            .collect()
    };
    for catalogue in ["split", "split + distractors"] {
        let rows = select(catalogue, "standardise");
        if rows.is_empty() {
            continue;
        }
        writeln!(md, "## Caption → clip, catalogue: {catalogue}\n")?;
        caption_table(&mut md, &rows)?;
        writeln!(md, "## Aspect → clips, catalogue: {catalogue}\n")?;
        aspect_table(&mut md, &rows)?;
    }
    for prep in ["none", "whiten"] {
        let rows = select("split", prep);
        if rows.is_empty() {
            continue;
        }
        writeln!(md, "## Catalogue preprocessing `{prep}` (split)\n")?;
        caption_table(&mut md, &rows)?;
        aspect_table(&mut md, &rows)?;
    }
    if !results.sampler_sweep.is_empty() {
        writeln!(md, "## Samplers (split, standardise)\n")?;
        writeln!(md, "| sampler | w | evaluations | ms/query (32 seeds) | caption R@10 | caption MRR | aspect nDCG@10 | diversity@20 |\n|---|---|---|---|---|---|---|---|")?;
        for r in &results.sampler_sweep {
            let (c, a) = (
                r.row.caption.clone().unwrap_or_default(),
                r.row.aspect.clone().unwrap_or_default(),
            );
            writeln!(
                md,
                "| {} | {} | {} | {:.1} | {:.3} | {:.3} | {:.4} | {:.4} |",
                r.sampler,
                r.guidance,
                r.evaluations,
                r.ms_per_query,
                c.recall_10,
                c.mrr,
                a.ndcg_10,
                a.diversity_20
            )?;
        }
        writeln!(md)?;
    }
    if !results.rerank_grid.is_empty() {
        writeln!(md, "## Re-ranking grid: the prior's implicit classifier over each base's fused top N (split, standardise)\n")?;
        writeln!(md, "N = 0 is the base's own list. Cost per query: one thread (the first 32 caption queries) and two threads (every query, queries in parallel).\n")?;
        writeln!(md, "| base | N | draws | caption R@10 | caption MRR | aspect nDCG@10 | aspect coverage@100 | aspect diversity@20 | ms/query, 1 thread | ms/query, 2 threads |\n|---|---|---|---|---|---|---|---|---|---|")?;
        for g in &results.rerank_grid {
            let (c, a) = (
                g.row.caption.clone().unwrap_or_default(),
                g.row.aspect.clone().unwrap_or_default(),
            );
            let [n, d, one, two] = cost_cells(g.cost);
            writeln!(
                md,
                "| {} | {n} | {d} | {:.3} | {:.3} | {:.4} | {:.4} | {:.4} | {one} | {two} |",
                g.row.system, c.recall_10, c.mrr, a.ndcg_10, a.coverage_100, a.diversity_20
            )?;
        }
        writeln!(md)?;
    }
    if !results.steering.is_empty() {
        writeln!(
            md,
            "## Steering toward an aspect B the caption's clip does not carry (split)\n"
        )?;
        writeln!(md, "{STEERING_ASPECTS} aspects with ≥ {STEERING_MIN_CLIPS} clips in both splits × {STEERING_CAPTIONS} captions; share of the top 20 carrying B, and the caption's own Recall@10.\n")?;
        writeln!(
            md,
            "| mode | scale | share of B in top 20 | caption R@10 |\n|---|---|---|---|"
        )?;
        for p in &results.steering {
            writeln!(
                md,
                "| {} | {} | {:.4} | {:.3} |",
                p.mode, p.scale, p.scores.share_b_20, p.scores.recall_10
            )?;
        }
        writeln!(md)?;
    }
    writeln!(md, "## Time\n\n| step | seconds |\n|---|---|")?;
    for (k, v) in &results.seconds {
        writeln!(md, "| {k} | {v:.0} |")?;
    }
    writeln!(
        md,
        "\n![CFG trade-off](cfg_tradeoff.svg) ![steering](steering.svg)"
    )?;

    std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        diff4steer_index::atomic::write_atomic(&out.join(name), bytes)
            .with_context(|| format!("writing {name}"))
    };
    // CFG trade-off: each w's best 32-seed row, relevance against aspect diversity.
    let mut recall = Vec::new();
    let mut ndcg = Vec::new();
    for r in select("split", "standardise") {
        if r.system.starts_with("prior") && r.system.ends_with(&format!("seeds={MAX_SEEDS} rrf")) {
            if let (Some(c), Some(a)) = (&r.caption, &r.aspect) {
                recall.push((a.diversity_20, c.recall_10));
                ndcg.push((a.diversity_20, a.ndcg_10));
            }
        }
    }
    let series = vec![
        ("caption Recall@10".to_owned(), recall),
        ("aspect nDCG@10".to_owned(), ndcg),
    ];
    write(
        "cfg_tradeoff.svg",
        render_lines_svg(
            "CFG w sweep (32 seeds, RRF): relevance against aspect diversity@20",
            "aspect diversity@20",
            "score",
            &series,
        )?
        .as_bytes(),
    )?;
    let mut modes: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for p in &results.steering {
        modes
            .entry(p.mode.clone())
            .or_default()
            .push((p.scores.recall_10, p.scores.share_b_20));
    }
    let steering_series: Vec<(String, Vec<(f64, f64)>)> = modes.into_iter().collect();
    if !steering_series.is_empty() {
        write(
            "steering.svg",
            render_lines_svg(
                "Steering: share of B in the top 20 against the caption's Recall@10",
                "caption Recall@10",
                "share of B in top 20",
                &steering_series,
            )?
            .as_bytes(),
        )?;
    }
    write("report.md", md.as_bytes())?;
    write("results.json", &serde_json::to_vec_pretty(results)?)?;
    println!("{md}");
    Ok(())
}

/// The implicit classifier's weighting, σ range and order from the command line.
fn rerank_settings(args: &MusicCapsArgs) -> Result<(ScoreWeighting, (f64, f64), RerankOrder)> {
    let weighting = match args.rerank_weighting.as_str() {
        "edm" => ScoreWeighting::Edm,
        "elbo" => ScoreWeighting::Elbo,
        "uniform" => ScoreWeighting::Uniform,
        other => bail!("unknown --rerank-weighting `{other}`: expected edm, elbo or uniform"),
    };
    let (sigma, order) = sigma_and_order(&args.rerank_sigma, args.rerank_blend)?;
    Ok((weighting, sigma, order))
}
