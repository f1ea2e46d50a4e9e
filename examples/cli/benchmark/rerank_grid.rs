//! The re-ranking grid shared by `benchmark musiccaps` and `benchmark jamendo-mood`: a base
//! system's fused top N re-ordered by the prior's implicit classifier (Li et al. 2023, arXiv
//! 2303.16203, Eq. 5–6; Clark & Jaini 2023, arXiv 2303.15233; [`ImplicitClassifier`]) for every
//! N × number of noise draws, with what it costs per query on one thread and on two.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use diff4steer_models::fast::{FastPrior, ImplicitClassifier, RerankOrder, ScoreWeighting};
use serde::Serialize;

/// Queries timed on one thread per grid cell (the first ones of the list).
const ONE_THREAD_QUERIES: usize = 32;

/// The grid and the classifier's fixed settings.
#[derive(Debug, Clone)]
pub(crate) struct RerankGrid {
    /// Re-ranked depths N.
    pub(crate) tops: Vec<usize>,
    /// Noise draws of the implicit classifier.
    pub(crate) draws: Vec<usize>,
    /// σ range of the draws (prior units).
    pub(crate) sigma: (f64, f64),
    /// Weighting of the error difference per noise level.
    pub(crate) weighting: ScoreWeighting,
    /// How the score and the fused order combine.
    pub(crate) order: RerankOrder,
    /// Seed of the noise draws.
    pub(crate) seed: u64,
}

/// What one grid cell cost.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct RerankCost {
    /// Re-ranked depth N.
    pub(crate) top: usize,
    /// Noise draws.
    pub(crate) draws: usize,
    /// Milliseconds per query with one thread (the first [`ONE_THREAD_QUERIES`] queries).
    pub(crate) ms_one_thread: f64,
    /// Milliseconds per query with two threads (every query; queries run in parallel).
    pub(crate) ms_two_threads: f64,
}

/// One protocol's queries and base lists, as a grid cell re-ranks them.
pub(crate) struct RerankInput<'a> {
    /// Query embeddings, row-major.
    pub(crate) queries: &'a [f32],
    /// The base system's fused list per query (catalogue row ids).
    pub(crate) lists: &'a [Vec<u64>],
}

impl RerankGrid {
    /// Every (N, draws) cell, in order.
    pub(crate) fn cells(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.tops
            .iter()
            .flat_map(|&t| self.draws.iter().map(move |&d| (t, d)))
    }

    /// Re-ranks every input (protocol) at one cell over `items` (catalogue units, row-major):
    /// the lists per input, and the cost per query over all inputs together.
    pub(crate) fn run_cell(
        &self,
        prior: &FastPrior,
        (top, draws): (usize, usize),
        inputs: &[RerankInput<'_>],
        items: &[f32],
    ) -> Result<(Vec<Vec<Vec<u64>>>, RerankCost)> {
        let classifier =
            ImplicitClassifier::new(draws, self.sigma.0, self.sigma.1, self.weighting, self.seed)?;
        let rerank = |input: &RerankInput<'_>, queries: usize| {
            let dq = prior.query_dim();
            classifier.rerank_lists(
                prior,
                &input.queries[..queries * dq],
                &input.lists[..queries],
                items,
                top,
                self.order,
            )
        };
        let Some(first) = inputs.first() else {
            bail!("the re-ranking grid needs at least one protocol");
        };
        let timed = first.lists.len().min(ONE_THREAD_QUERIES);
        let (_, one_thread) = in_pool(1, || rerank(first, timed))?;
        let mut lists = Vec::with_capacity(inputs.len());
        let mut two_threads = 0.0;
        for input in inputs {
            let (reranked, seconds) = in_pool(2, || rerank(input, input.lists.len()))?;
            lists.push(reranked?);
            two_threads += seconds;
        }
        let queries: usize = inputs.iter().map(|i| i.lists.len()).sum();
        Ok((
            lists,
            RerankCost {
                top,
                draws,
                ms_one_thread: 1000.0 * one_thread / timed.max(1) as f64,
                ms_two_threads: 1000.0 * two_threads / queries.max(1) as f64,
            },
        ))
    }
}

/// The N, draws and two cost cells of a report row ("0" and dashes for the base's own list).
pub(crate) fn cost_cells(cost: Option<RerankCost>) -> [String; 4] {
    cost.map_or(
        ["0".into(), "–".into(), "–".into(), "–".into()],
        |k| {
            [
                k.top.to_string(),
                k.draws.to_string(),
                format!("{:.1}", k.ms_one_thread),
                format!("{:.1}", k.ms_two_threads),
            ]
        },
    )
}

/// The σ range (`MIN,MAX`) and the order (blend constant c > 0, or by the score alone) from
/// the command line.
pub(crate) fn sigma_and_order(sigma: &[f64], blend: f64) -> Result<((f64, f64), RerankOrder)> {
    let [lo, hi] = sigma[..] else {
        bail!("--rerank-sigma takes two values: MIN,MAX");
    };
    let order = if blend > 0.0 {
        RerankOrder::Blend { c: blend }
    } else {
        RerankOrder::ByScore
    };
    Ok(((lo, hi), order))
}

/// Runs `work` on a rayon pool of `threads` threads; its result and the wall seconds it took.
fn in_pool<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> Result<(T, f64)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("building a thread pool for the re-ranking grid")?;
    let started = Instant::now();
    let out = pool.install(work);
    Ok((out, started.elapsed().as_secs_f64()))
}
