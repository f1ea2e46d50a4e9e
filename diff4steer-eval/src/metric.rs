//! Ranking-metric names: `ndcg@10`, `recall@50`, `mrr`, … parsed and printed the way ranx and
//! trec_eval users write them.

use std::fmt;
use std::str::FromStr;

use crate::{EvalError, Result};

/// A ranking metric with its cut-off. Definitions are in [`crate::ranking`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RankingMetric {
    /// `recall@k`: relevant items in the top k / all relevant items.
    Recall {
        /// Cut-off.
        k: usize,
    },
    /// `precision@k`: relevant items in the top k / k.
    Precision {
        /// Cut-off.
        k: usize,
    },
    /// `ndcg@k`: normalised discounted cumulative gain, linear gain (Järvelin & Kekäläinen 2002).
    Ndcg {
        /// Cut-off.
        k: usize,
    },
    /// `map@k` (or `map`, the whole list): average precision, denominator = number of relevant
    /// items.
    Map {
        /// Cut-off; `None` = the whole list.
        k: Option<usize>,
    },
    /// `mrr` (or `mrr@k`): reciprocal rank of the first relevant item.
    Mrr {
        /// Cut-off; `None` = the whole list.
        k: Option<usize>,
    },
    /// `hit_rate@k`: 1 if any relevant item is in the top k.
    HitRate {
        /// Cut-off.
        k: usize,
    },
    /// `r-precision`: precision at R = number of relevant items.
    RPrecision,
}

impl RankingMetric {
    /// Parses a comma-separated list such as `ndcg@10,recall@50,mrr`.
    ///
    /// # Errors
    /// [`EvalError::UnknownMetric`] for the first name that does not parse, or an empty list.
    pub fn parse_list(list: &str) -> Result<Vec<RankingMetric>> {
        let metrics = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>>>()?;
        if metrics.is_empty() {
            return Err(EvalError::UnknownMetric {
                name: list.to_owned(),
                reason: "no metric given".into(),
            });
        }
        Ok(metrics)
    }
}

/// The names that parse, for error messages.
const KNOWN: &str =
    "recall@K, precision@K, ndcg@K, map, map@K, mrr, mrr@K, hit_rate@K, r-precision";

impl FromStr for RankingMetric {
    type Err = EvalError;

    /// Parses `recall@K`, `precision@K` (`p@K`), `ndcg@K`, `map` / `map@K`, `mrr` / `mrr@K`,
    /// `hit_rate@K` (`hitrate@K`), `r-precision` (`rprec`); K ≥ 1. Case-insensitive.
    fn from_str(s: &str) -> Result<Self> {
        let fail = |reason: String| EvalError::UnknownMetric {
            name: s.to_owned(),
            reason,
        };
        let lower = s.trim().to_ascii_lowercase();
        let (name, k) = match lower.split_once('@') {
            None => (lower.as_str(), None),
            Some((name, k)) => {
                let k: usize = k
                    .parse()
                    .map_err(|_| fail(format!("cut-off `{k}` is not a positive integer")))?;
                if k == 0 {
                    return Err(fail("cut-off must be at least 1".into()));
                }
                (name, Some(k))
            }
        };
        let need_k = |k: Option<usize>| {
            k.ok_or_else(|| fail(format!("`{name}` needs a cut-off, e.g. `{name}@10`")))
        };
        match name {
            "recall" => Ok(RankingMetric::Recall { k: need_k(k)? }),
            "precision" | "p" => Ok(RankingMetric::Precision { k: need_k(k)? }),
            "ndcg" => Ok(RankingMetric::Ndcg { k: need_k(k)? }),
            "map" => Ok(RankingMetric::Map { k }),
            "mrr" => Ok(RankingMetric::Mrr { k }),
            "hit_rate" | "hitrate" => Ok(RankingMetric::HitRate { k: need_k(k)? }),
            "r-precision" | "rprec" if k.is_none() => Ok(RankingMetric::RPrecision),
            "r-precision" | "rprec" => Err(fail("r-precision takes no cut-off".into())),
            _ => Err(fail(format!("unknown metric; known: {KNOWN}"))),
        }
    }
}

impl fmt::Display for RankingMetric {
    /// The canonical name (`ndcg@10`, `map`, `r-precision`), which parses back to `self`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = |f: &mut fmt::Formatter<'_>, name: &str, k: Option<usize>| match k {
            Some(k) => write!(f, "{name}@{k}"),
            None => f.write_str(name),
        };
        match *self {
            RankingMetric::Recall { k } => cut(f, "recall", Some(k)),
            RankingMetric::Precision { k } => cut(f, "precision", Some(k)),
            RankingMetric::Ndcg { k } => cut(f, "ndcg", Some(k)),
            RankingMetric::Map { k } => cut(f, "map", k),
            RankingMetric::Mrr { k } => cut(f, "mrr", k),
            RankingMetric::HitRate { k } => cut(f, "hit_rate", Some(k)),
            RankingMetric::RPrecision => f.write_str("r-precision"),
        }
    }
}

impl serde::Serialize for RankingMetric {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
