//! Ranking metrics over graded judgments, per query, with the conventions of trec_eval and ranx.
//!
//! Conventions, for every metric here:
//! - A document is *relevant* when its grade is > 0; unjudged documents count as grade 0.
//! - A ranked list is taken in the order given (best first): ties in score are broken by that
//!   order (reading a TREC run file sorts by score, then by its rank column).
//! - Cut-off k counts positions, so a list shorter than k is as if padded with non-relevant items:
//!   precision@k still divides by k.
//! - A query without any relevant document scores 0 on every metric and still counts in the mean
//!   (the report says how many there were).
//!
//! Definitions, with rel(i) ∈ {0, 1} at rank i (1-based), g(i) the grade (negative → 0), R the
//! number of relevant documents:
//! - recall@k = Σ_{i≤k} rel(i) / R;  precision@k = Σ_{i≤k} rel(i) / k;
//! - nDCG@k = DCG@k / IDCG@k with DCG@k = Σ_{i≤k} g(i) / log2(i + 1) (linear gain, Järvelin &
//!   Kekäläinen 2002) and IDCG@k the DCG of the judgments sorted by grade;
//! - AP@k = Σ_{i≤k} rel(i)·precision@i / R (MAP is its mean over queries);
//! - RR@k = 1 / (rank of the first relevant document ≤ k), else 0 (MRR is its mean);
//! - hit_rate@k = 1 if Σ_{i≤k} rel(i) > 0;  R-precision = precision@R.

use std::collections::{BTreeMap, HashSet};

use crate::{EvalError, RankingMetric, Result};

/// Graded judgments: query id → document id → grade.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Qrels {
    queries: BTreeMap<String, BTreeMap<String, i32>>,
}

impl Qrels {
    /// No judgments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges `doc` for `query`.
    ///
    /// # Errors
    /// [`EvalError::InvalidParameter`] when (query, doc) is already judged.
    pub fn insert(&mut self, query: &str, doc: &str, grade: i32) -> Result<()> {
        let judged = self.queries.entry(query.to_owned()).or_default();
        if judged.insert(doc.to_owned(), grade).is_some() {
            return Err(EvalError::InvalidParameter {
                name: "qrels",
                reason: format!("({query}, {doc}) judged twice"),
            });
        }
        Ok(())
    }

    /// Binary judgments from relevant sets: query `q` (named by its index) → relevant document
    /// indices, all grade 1.
    pub fn from_relevant_sets(sets: &[Vec<usize>]) -> Self {
        let queries = sets
            .iter()
            .enumerate()
            .map(|(q, docs)| {
                let judged = docs.iter().map(|d| (d.to_string(), 1)).collect();
                (q.to_string(), judged)
            })
            .collect();
        Self { queries }
    }

    /// The judged queries, in id order.
    pub fn queries(&self) -> impl Iterator<Item = &str> {
        self.queries.keys().map(String::as_str)
    }

    /// The judgments of one query.
    pub fn judgments(&self, query: &str) -> Option<&BTreeMap<String, i32>> {
        self.queries.get(query)
    }

    /// Every (query, doc, grade), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, i32)> {
        self.queries
            .iter()
            .flat_map(|(q, docs)| docs.iter().map(move |(d, &g)| (q.as_str(), d.as_str(), g)))
    }

    /// Number of judged queries.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether nothing is judged.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
}

/// Ranked lists: query id → documents, best first, with their scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    queries: BTreeMap<String, Vec<(String, f64)>>,
    seen: BTreeMap<String, HashSet<String>>,
}

impl Run {
    /// No lists.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `doc` (with `score`) at the end of `query`'s list.
    ///
    /// # Errors
    /// [`EvalError::InvalidParameter`] when `doc` is already in the list; [`EvalError::NonFinite`]
    /// for a NaN or infinite score.
    pub fn push(&mut self, query: &str, doc: &str, score: f64) -> Result<()> {
        if !score.is_finite() {
            return Err(EvalError::NonFinite { what: "run score" });
        }
        if !self
            .seen
            .entry(query.to_owned())
            .or_default()
            .insert(doc.to_owned())
        {
            return Err(EvalError::InvalidParameter {
                name: "run",
                reason: format!("document {doc} listed twice for query {query}"),
            });
        }
        self.queries
            .entry(query.to_owned())
            .or_default()
            .push((doc.to_owned(), score));
        Ok(())
    }

    /// The queries with a list, in id order.
    pub fn queries(&self) -> impl Iterator<Item = &str> {
        self.queries.keys().map(String::as_str)
    }

    /// The list of one query, best first.
    pub fn ranking(&self, query: &str) -> Option<&[(String, f64)]> {
        self.queries.get(query).map(Vec::as_slice)
    }

    /// Number of queries with a list.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether no query has a list.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
}

/// The value of `metric` for one ranked list (document ids, best first) under `judgments`.
pub fn evaluate_query<S: AsRef<str>>(
    metric: RankingMetric,
    ranked: &[S],
    judgments: &BTreeMap<String, i32>,
) -> f64 {
    let grade = |doc: &S| judgments.get(doc.as_ref()).copied().unwrap_or(0).max(0);
    let relevant = |doc: &S| grade(doc) > 0;
    let n_relevant = judgments.values().filter(|&&g| g > 0).count();
    if n_relevant == 0 {
        return 0.0;
    }
    let top = |k: usize| &ranked[..k.min(ranked.len())];
    let hits = |k: usize| top(k).iter().filter(|d| relevant(d)).count() as f64;
    match metric {
        RankingMetric::Recall { k } => hits(k) / n_relevant as f64,
        RankingMetric::Precision { k } => hits(k) / k as f64,
        RankingMetric::HitRate { k } => f64::from(u8::from(hits(k) > 0.0)),
        RankingMetric::RPrecision => hits(n_relevant) / n_relevant as f64,
        RankingMetric::Ndcg { k } => {
            let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
            let dcg: f64 = top(k)
                .iter()
                .enumerate()
                .map(|(i, d)| f64::from(grade(d)) * discount(i))
                .sum();
            let mut ideal: Vec<i32> = judgments.values().map(|&g| g.max(0)).collect();
            ideal.sort_unstable_by(|a, b| b.cmp(a));
            let idcg: f64 = ideal
                .iter()
                .take(k)
                .enumerate()
                .map(|(i, &g)| f64::from(g) * discount(i))
                .sum();
            if idcg > 0.0 {
                dcg / idcg
            } else {
                0.0
            }
        }
        RankingMetric::Map { k } => {
            let mut found = 0.0;
            let mut sum = 0.0;
            for (i, d) in top(k.unwrap_or(usize::MAX)).iter().enumerate() {
                if relevant(d) {
                    found += 1.0;
                    sum += found / (i + 1) as f64;
                }
            }
            sum / n_relevant as f64
        }
        RankingMetric::Mrr { k } => top(k.unwrap_or(usize::MAX))
            .iter()
            .position(relevant)
            .map_or(0.0, |i| 1.0 / (i + 1) as f64),
    }
}

/// Per-query values and means of several metrics over a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// The metrics, in the order asked.
    pub metrics: Vec<RankingMetric>,
    /// Mean over the judged queries, by metric name.
    pub mean: BTreeMap<String, f64>,
    /// Query id → metric name → value.
    pub per_query: BTreeMap<String, BTreeMap<String, f64>>,
    /// Number of judged queries (the denominator of every mean).
    pub queries: usize,
    /// Judged queries without any relevant document (they score 0).
    pub queries_without_relevant: usize,
    /// Judged queries absent from the run (they score 0).
    pub queries_without_run: usize,
}

/// Evaluates `run` against `qrels`: every judged query counts (one missing from the run scores
/// 0, like `trec_eval -c`); run queries without judgments are ignored.
///
/// # Errors
/// [`EvalError::InvalidParameter`] for an empty metric list; [`EvalError::Shape`] when `qrels`
/// judges no query.
pub fn evaluate(run: &Run, qrels: &Qrels, metrics: &[RankingMetric]) -> Result<Report> {
    if metrics.is_empty() {
        return Err(EvalError::InvalidParameter {
            name: "metrics",
            reason: "no metric asked for".into(),
        });
    }
    if qrels.is_empty() {
        return Err(EvalError::Shape {
            what: "qrels",
            reason: "no judged query".into(),
        });
    }
    let mut per_query = BTreeMap::new();
    let mut sums = vec![0.0; metrics.len()];
    let (mut without_relevant, mut without_run) = (0, 0);
    for (query, judgments) in &qrels.queries {
        let ranked: Vec<&str> = match run.ranking(query) {
            Some(list) => list.iter().map(|(d, _)| d.as_str()).collect(),
            None => {
                without_run += 1;
                Vec::new()
            }
        };
        if !judgments.values().any(|&g| g > 0) {
            without_relevant += 1;
        }
        let values: BTreeMap<String, f64> = metrics
            .iter()
            .zip(&mut sums)
            .map(|(&m, sum)| {
                let v = evaluate_query(m, &ranked, judgments);
                *sum += v;
                (m.to_string(), v)
            })
            .collect();
        per_query.insert(query.clone(), values);
    }
    let n = qrels.len();
    Ok(Report {
        metrics: metrics.to_vec(),
        mean: metrics
            .iter()
            .zip(&sums)
            .map(|(m, s)| (m.to_string(), s / n as f64))
            .collect(),
        per_query,
        queries: n,
        queries_without_relevant: without_relevant,
        queries_without_run: without_run,
    })
}

impl Report {
    /// Writes the report as pretty JSON (temporary file, then rename).
    ///
    /// # Errors
    /// [`EvalError::Io`] naming the file.
    pub fn write_json(&self, path: &std::path::Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| crate::error::io_error(path, e))?;
        diff4steer_index::atomic::write_atomic(path, &json)
            .map_err(|e| crate::error::io_error(path, e))
    }
}

impl std::fmt::Display for Report {
    /// A two-line table: metric names, then means (4 decimals), and the query counts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.metrics.iter().map(|m| m.to_string()).collect();
        let widths: Vec<usize> = names.iter().map(|n| n.len().max(6)).collect();
        for (n, w) in names.iter().zip(&widths) {
            write!(f, "{n:>w$}  ")?;
        }
        writeln!(f)?;
        for (n, w) in names.iter().zip(&widths) {
            write!(f, "{:>w$.4}  ", self.mean[n])?;
        }
        writeln!(f)?;
        write!(
            f,
            "{} queries ({} without relevant documents, {} without a ranked list)",
            self.queries, self.queries_without_relevant, self.queries_without_run
        )
    }
}
