//! Options shared by `sample`, `retrieve` and `query`: how seeds are drawn (sampler, guidance,
//! steering, negative conditions, seed) and how the catalogue is searched (index, fusion,
//! similarity, preprocessing, re-ranking), turned into the library's request and settings.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use diff4steer_core::karras;
use diff4steer_eval::io::npy::read_nonempty_f32_matrix;
use diff4steer_eval::Run;
use diff4steer_index::{Fusion, Preprocessing, Similarity};
use diff4steer_models::retrieval::{
    Hit, IndexChoice, Rerank, RetrievalRequest, SearchSettings, SeedSearch,
};
use diff4steer_models::{Sampler, SamplerKind};

/// How seeds are drawn.
#[derive(clap::Args, Debug)]
pub struct SamplingArgs {
    /// Sampler steps (Karras σ schedule from 80 to 0.002, ρ = 7). 16 Heun steps (31 network
    /// evaluations) match 32 Euler steps on MusicCaps and cost half (results/musiccaps).
    #[arg(long, default_value_t = 16)]
    steps: usize,
    /// Sampler: euler, heun, edm, sde or dpmpp2m (euler, heun and dpmpp2m run on the fast host
    /// path; edm and sde through burn over the host denoiser).
    #[arg(long, default_value = "heun")]
    sampler: String,
    /// Guidance strength w ≥ 0: classifier-free against the null condition, or against
    /// --negative when given (0 = plain conditional sampling). w = 4 by default: on MusicCaps
    /// (results/musiccaps) it is within noise of the best strength for both the 256×3 and the
    /// 512×4 prior on caption Recall@10 and aspect nDCG@10, where w = 1 falls short.
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    guidance: f64,
    /// Steering embeddings in the target space: one row per query, or one row for all.
    #[arg(long, requires = "steer_scale")]
    steer: Option<PathBuf>,
    /// Steering strength γ (negative pushes away).
    #[arg(long, requires = "steer", allow_negative_numbers = true)]
    steer_scale: Option<f64>,
    /// Negative conditions in the query space: one row per query, or one row for all.
    #[arg(long)]
    negative: Option<PathBuf>,
    /// Seed of the sampling noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl SamplingArgs {
    /// The sampler.
    pub fn sampler(&self) -> Result<Sampler> {
        let kind: SamplerKind = self.sampler.parse()?;
        Ok(Sampler::new(kind, karras(self.steps, 0.002, 80.0, 7.0)?)?)
    }

    /// The request for `queries` queries of `query_dim` into `target_dim`, with `k` seeds each.
    pub fn request(
        &self,
        k: usize,
        queries: usize,
        query_dim: usize,
        target_dim: usize,
    ) -> Result<RetrievalRequest> {
        let mut request = RetrievalRequest::new()
            .seeds_per_query(k)
            .guidance(self.guidance)
            .seed(self.seed);
        if let Some(path) = &self.negative {
            request = request.negative(per_query_rows(
                path,
                queries,
                query_dim,
                "negative conditions",
            )?);
        }
        if let (Some(path), Some(scale)) = (&self.steer, self.steer_scale) {
            let rows = per_query_rows(path, queries, target_dim, "steering embeddings")?;
            request = request.steer(rows, scale);
        }
        Ok(request)
    }
}

/// How the catalogue is searched and the fused lists re-ranked.
#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Index: flat (exact), hnsw, faiss (an HNSW32 through faiss; needs --features faiss), or
    /// milvus (the collection --collection at --milvus, loaded by `diff4steer index`, which also
    /// fixed its similarity and preprocessing; needs --features milvus).
    #[arg(long, default_value = "flat")]
    index: String,
    /// The Milvus server's URL, for --index milvus (e.g. http://127.0.0.1:19530).
    #[arg(long)]
    milvus: Option<String>,
    /// The Milvus collection, for --index milvus.
    #[arg(long)]
    collection: Option<String>,
    /// Seconds each call to Milvus may take, for --index milvus.
    #[arg(long, default_value_t = 10.0)]
    milvus_timeout: f64,
    /// Fusion: max, mean, rrf (or rrf:C), round-robin, or mmr (or mmr:λ).
    #[arg(long, default_value = "rrf")]
    fusion: String,
    /// Similarity: cosine, dot or l2 (--index milvus: the collection's).
    #[arg(long, default_value = "cosine")]
    similarity: String,
    /// Catalogue preprocessing fitted on the catalogue, applied to items and seeds: none,
    /// centre, standardise or whiten (--index milvus: the collection's). Standardise by default:
    /// raw embeddings share an offset that cosine would mostly measure (MusicCaps/VGGish,
    /// results/musiccaps: caption Recall@10 0.277 raw vs 0.283 standardised for the prior, 0.243
    /// vs 0.257 for regression; aspect nDCG@10 0.090 vs 0.106 for regression).
    #[arg(long, default_value = "standardise")]
    preprocess: String,
    /// Re-rank each fused list with the prior's implicit classifier, s(x, q) = the EDM-weighted
    /// gap between its denoising errors under the null condition and under the query (Li et al.
    /// 2023, arXiv 2303.16203): `implicit:N` scores the fused top N with 16 noise draws,
    /// `implicit:N:D` with D draws (σ from 0.2 to 20, log-uniform); the new order is the
    /// reciprocal-rank blend (c = 30) of the fused order and the score order, and the run's
    /// scores become 1/rank.
    #[arg(long)]
    rerank: Option<String>,
    /// Seed of the re-ranking noise draws.
    #[arg(long, default_value_t = 0)]
    rerank_seed: u64,
}

impl SearchArgs {
    /// The re-ranking step, if asked for.
    pub fn rerank(&self) -> Result<Option<Rerank>> {
        self.rerank
            .as_deref()
            .map(|spec| {
                let (top, draws) = parse_rerank(spec)?;
                Ok(Rerank::implicit(top, draws).with_seed(self.rerank_seed))
            })
            .transpose()
    }

    /// Where the catalogue is, for messages: the file, or the Milvus collection.
    pub fn catalogue_name(&self, catalog: Option<&Path>) -> String {
        match (self.index.as_str(), &self.milvus, &self.collection) {
            ("milvus", Some(url), Some(collection)) => {
                format!("the collection {collection} at {url}")
            }
            _ => catalog.map_or_else(
                || "the catalogue".into(),
                |p| format!("the catalogue {}", p.display()),
            ),
        }
    }

    /// The search stage: over the catalogue file `catalog` (`[items, dim]` float32, id = row),
    /// or, for `--index milvus`, over the collection (then `catalog`, when given, only gives the
    /// re-ranker the items' own vectors).
    pub fn search_stage(&self, catalog: Option<&Path>) -> Result<SeedSearch> {
        let items = catalog
            .map(|path| read_rows(path, "the catalogue"))
            .transpose()?;
        if self.index == "milvus" {
            return self.milvus_stage(items.map(|(rows, _)| rows));
        }
        if self.milvus.is_some() || self.collection.is_some() {
            bail!("--milvus and --collection go with --index milvus");
        }
        let Some((items, dim)) = items else {
            bail!("--catalog is needed for --index {}", self.index);
        };
        let fusion: Fusion = self.fusion.parse()?;
        let settings = SearchSettings {
            index: IndexChoice::Flat,
            similarity: self.similarity.parse::<Similarity>()?,
            preprocessing: self.preprocess.parse::<Preprocessing>()?,
            fusion,
        };
        Ok(match self.index.as_str() {
            "flat" => SeedSearch::new(items, dim, settings)?,
            "hnsw" => SeedSearch::new(
                items,
                dim,
                SearchSettings {
                    index: IndexChoice::Hnsw(Default::default()),
                    ..settings
                },
            )?,
            #[cfg(feature = "faiss")]
            "faiss" => {
                use diff4steer_index::{FaissIndex, Preprocessor, VectorIndex};
                let preprocessor = Preprocessor::fit(settings.preprocessing, &items, dim)?;
                let mut index = FaissIndex::new(dim, settings.similarity, "HNSW32")?;
                let ids: Vec<u64> = (0..(items.len() / dim) as u64).collect();
                index.add(&ids, &preprocessor.apply(&items)?)?;
                index.set_parameter("efSearch", 128.0)?;
                SeedSearch::prebuilt(Box::new(index), preprocessor, fusion)?
                    .with_catalogue_vectors(items)?
            }
            #[cfg(not(feature = "faiss"))]
            "faiss" => bail!("--index faiss needs the program built with --features faiss"),
            other => bail!("unknown index `{other}`: expected flat, hnsw, faiss or milvus"),
        })
    }

    /// `--index milvus`: the collection, its stored preprocessor, and the items' own vectors when
    /// the catalogue file was given too.
    #[cfg(feature = "milvus")]
    fn milvus_stage(&self, items: Option<Vec<f32>>) -> Result<SeedSearch> {
        use diff4steer_index::MilvusIndex;
        let (Some(url), Some(collection)) = (&self.milvus, &self.collection) else {
            bail!("--index milvus needs --milvus URL and --collection NAME");
        };
        let opened = milvus_config(url, collection, self.milvus_timeout)
            .and_then(|config| Ok(MilvusIndex::open(config)?))
            .and_then(|index| Ok((index.preprocessor()?, index)))
            .with_context(|| format!("{url}, collection {collection}"))?;
        let (preprocessor, index) = opened;
        let search = SeedSearch::prebuilt(Box::new(index), preprocessor, self.fusion.parse()?)?;
        Ok(match items {
            Some(items) => search.with_catalogue_vectors(items)?,
            None => search,
        })
    }

    /// `--index milvus` without the `milvus` feature: a clear refusal.
    #[cfg(not(feature = "milvus"))]
    fn milvus_stage(&self, _items: Option<Vec<f32>>) -> Result<SeedSearch> {
        bail!("--index milvus needs the program built with --features milvus")
    }

    /// A one-line description for the summary.
    pub fn describe(&self) -> String {
        if self.index == "milvus" {
            return format!(
                "milvus index (the collection's similarity and preprocessing), {} fusion",
                self.fusion
            );
        }
        format!(
            "{} index, {} fusion, {}, {}",
            self.index, self.fusion, self.similarity, self.preprocess
        )
    }
}

/// `implicit:N` or `implicit:N:D` → (N, D).
fn parse_rerank(spec: &str) -> Result<(usize, usize)> {
    let mut parts = spec.split(':');
    if parts.next() != Some("implicit") {
        bail!("unknown --rerank `{spec}`: expected implicit:N or implicit:N:D");
    }
    let number = |part: Option<&str>, what: &str| -> Result<Option<usize>> {
        part.map(|p| {
            p.parse::<usize>()
                .ok()
                .filter(|&v| v > 0)
                .with_context(|| format!("--rerank `{spec}`: {what} must be a whole number ≥ 1"))
        })
        .transpose()
    };
    let top = number(parts.next(), "N")?
        .with_context(|| format!("--rerank `{spec}`: expected implicit:N or implicit:N:D"))?;
    let draws = number(parts.next(), "D")?.unwrap_or(16);
    if parts.next().is_some() {
        bail!("--rerank `{spec}`: expected implicit:N or implicit:N:D");
    }
    Ok((top, draws))
}

/// The settings of a Milvus connection, with a per-call timeout in seconds.
#[cfg(feature = "milvus")]
pub fn milvus_config(
    url: &str,
    collection: &str,
    timeout: f64,
) -> Result<diff4steer_index::MilvusConfig> {
    let Some(timeout) = std::time::Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|t| !t.is_zero())
    else {
        bail!("the Milvus timeout must be a positive number of seconds, got {timeout}");
    };
    Ok(diff4steer_index::MilvusConfig::new(url, collection).with_timeout(timeout))
}

/// A whole .npy matrix as row-major values and its width.
pub fn read_rows(path: &Path, what: &str) -> Result<(Vec<f32>, usize)> {
    let m = read_nonempty_f32_matrix(path).with_context(|| format!("reading {what}"))?;
    let width = m.ncols();
    Ok((m.as_standard_layout().iter().copied().collect(), width))
}

/// Reads a matrix whose rows are one per query (n) or one for all (1), `width` wide.
fn per_query_rows(path: &Path, queries: usize, width: usize, what: &str) -> Result<Vec<f32>> {
    let (rows, cols) = read_rows(path, what)?;
    if cols != width {
        bail!(
            "{}: {what} rows are {cols}-d, expected {width}",
            path.display()
        );
    }
    let count = rows.len() / width;
    if count != 1 && count != queries {
        bail!(
            "{}: {count} {what} rows for {queries} queries (give one per query, or one for all)",
            path.display()
        );
    }
    Ok(rows)
}

/// The lists as a TREC run (qid = query row, docid = catalogue row).
pub fn run_of(lists: &[Vec<Hit>]) -> Result<Run> {
    let mut run = Run::new();
    for (q, hits) in lists.iter().enumerate() {
        for hit in hits {
            run.push(&q.to_string(), &hit.id.to_string(), f64::from(hit.score))?;
        }
    }
    Ok(run)
}
