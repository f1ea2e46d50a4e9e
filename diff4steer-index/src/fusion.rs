//! Fusion of the per-seed hit lists of one query into one ranked, deduplicated list.

use std::collections::HashMap;

use crate::{Hit, IndexError, Result, Similarity};

/// How per-seed hit lists are combined. Every strategy deduplicates by id and returns at most `k`
/// hits in rank order with strictly meaningful, descending scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Union ranked by the best score any seed gave the item (CombMAX; Fox & Shaw 1994).
    MaxScore,
    /// Union ranked by Σ scores / number of lists (CombSUM normalised; an item missing from a
    /// list contributes 0 there).
    MeanScore,
    /// Reciprocal-rank fusion Σ_lists 1/(c + rank), rank 1-based (Cormack et al. 2009; c = 60
    /// there).
    ReciprocalRank {
        /// The constant c (> 0).
        c: f64,
    },
    /// Round-robin interleaving: every list's rank-1 hit (in list order), then every rank-2 hit,
    /// …, skipping ids already taken. Score = k − position (descending).
    RoundRobin,
    /// Maximal marginal relevance (Carbonell & Goldstein 1998) over the union: repeatedly take
    /// argmax λ·rel(i) − (1 − λ)·max_{j ∈ selected} cos(x_i, x_j), rel = best score, item vectors
    /// from the index. Score = k − position (descending).
    Mmr {
        /// λ ∈ [0, 1]: 1 = pure relevance, 0 = pure diversity.
        lambda: f64,
    },
}

impl Fusion {
    /// Reciprocal-rank fusion with c = 60.
    pub fn rrf() -> Self {
        Fusion::ReciprocalRank { c: 60.0 }
    }

    fn validate(&self) -> Result<()> {
        match *self {
            Fusion::ReciprocalRank { c } if !(c.is_finite() && c > 0.0) => {
                Err(IndexError::InvalidParameter {
                    name: "rrf constant c",
                    reason: format!("must be finite and positive, got {c}"),
                })
            }
            Fusion::Mmr { lambda } if !(0.0..=1.0).contains(&lambda) => {
                Err(IndexError::InvalidParameter {
                    name: "mmr lambda",
                    reason: format!("must be in [0, 1], got {lambda}"),
                })
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Fusion {
    /// The command-line name: `max`, `mean`, `rrf` (`rrf:C` when c ≠ 60), `round-robin`, `mmr:λ`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Fusion::MaxScore => f.write_str("max"),
            Fusion::MeanScore => f.write_str("mean"),
            Fusion::ReciprocalRank { c: 60.0 } => f.write_str("rrf"),
            Fusion::ReciprocalRank { c } => write!(f, "rrf:{c}"),
            Fusion::RoundRobin => f.write_str("round-robin"),
            Fusion::Mmr { lambda } => write!(f, "mmr:{lambda}"),
        }
    }
}

impl std::str::FromStr for Fusion {
    type Err = IndexError;

    /// Parses `max`, `mean`, `rrf` (c = 60) or `rrf:C`, `round-robin`, `mmr` (λ = 0.5) or
    /// `mmr:λ`.
    fn from_str(s: &str) -> Result<Self> {
        let (name, value) = match s.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (s, None),
        };
        let number = |default: f64| -> Result<f64> {
            value.map_or(Ok(default), |v| {
                v.parse().map_err(|_| IndexError::InvalidParameter {
                    name: "fusion",
                    reason: format!("`{v}` in `{s}` is not a number"),
                })
            })
        };
        let fusion = match (name, value) {
            ("max", None) => Fusion::MaxScore,
            ("mean", None) => Fusion::MeanScore,
            ("round-robin", None) => Fusion::RoundRobin,
            ("rrf", _) => Fusion::ReciprocalRank { c: number(60.0)? },
            ("mmr", _) => Fusion::Mmr {
                lambda: number(0.5)?,
            },
            _ => {
                return Err(IndexError::InvalidParameter {
                    name: "fusion",
                    reason: format!(
                        "unknown fusion `{s}`: expected max, mean, rrf[:C], round-robin or mmr[:λ]"
                    ),
                })
            }
        };
        fusion.validate()?;
        Ok(fusion)
    }
}

/// Fuses the hit lists of one query's seeds into at most `k` hits. `vector` looks up an item's
/// vector (needed by [`Fusion::Mmr`] only; e.g. `|id| index.vector(id)`).
///
/// # Errors
/// [`IndexError::InvalidParameter`] for k = 0 or an invalid strategy constant; for MMR, an id
/// whose vector `vector` cannot provide.
pub fn fuse<'a>(
    lists: &[Vec<Hit>],
    k: usize,
    fusion: Fusion,
    vector: &dyn Fn(u64) -> Option<&'a [f32]>,
) -> Result<Vec<Hit>> {
    crate::vector_index::check_k(k)?;
    fusion.validate()?;
    let ranked_by = |scores: HashMap<u64, f64>| -> Vec<Hit> {
        let mut hits: Vec<Hit> = scores
            .into_iter()
            .map(|(id, s)| Hit::new(id, s as f32))
            .collect();
        hits.sort_by(Hit::ranking);
        hits.truncate(k);
        hits
    };
    Ok(match fusion {
        Fusion::MaxScore => ranked_by(best_scores(lists)),
        Fusion::MeanScore => {
            let mut sums: HashMap<u64, f64> = HashMap::new();
            for list in lists {
                for hit in dedup(list) {
                    *sums.entry(hit.id).or_default() += hit.score as f64;
                }
            }
            let n = lists.len().max(1) as f64;
            ranked_by(sums.into_iter().map(|(id, s)| (id, s / n)).collect())
        }
        Fusion::ReciprocalRank { c } => {
            let mut sums: HashMap<u64, f64> = HashMap::new();
            for list in lists {
                for (rank, hit) in dedup(list).into_iter().enumerate() {
                    *sums.entry(hit.id).or_default() += 1.0 / (c + (rank + 1) as f64);
                }
            }
            ranked_by(sums)
        }
        Fusion::RoundRobin => {
            let mut taken = std::collections::HashSet::new();
            let mut order = Vec::new();
            let depth = lists.iter().map(Vec::len).max().unwrap_or(0);
            'outer: for rank in 0..depth {
                for list in lists {
                    if let Some(hit) = list.get(rank) {
                        if taken.insert(hit.id) {
                            order.push(hit.id);
                            if order.len() == k {
                                break 'outer;
                            }
                        }
                    }
                }
            }
            positional(&order, k)
        }
        Fusion::Mmr { lambda } => positional(&mmr(lists, k, lambda, vector)?, k),
    })
}

/// A list without repeated ids (first occurrence kept).
fn dedup(list: &[Hit]) -> Vec<Hit> {
    let mut seen = std::collections::HashSet::new();
    list.iter().copied().filter(|h| seen.insert(h.id)).collect()
}

fn best_scores(lists: &[Vec<Hit>]) -> HashMap<u64, f64> {
    let mut best: HashMap<u64, f64> = HashMap::new();
    for hit in lists.iter().flatten() {
        let entry = best.entry(hit.id).or_insert(f64::NEG_INFINITY);
        *entry = entry.max(hit.score as f64);
    }
    best
}

/// Hits in the given order with scores k, k − 1, … (descending, so any tool that sorts by score
/// keeps the order).
fn positional(order: &[u64], k: usize) -> Vec<Hit> {
    order
        .iter()
        .enumerate()
        .map(|(i, &id)| Hit::new(id, (k - i) as f32))
        .collect()
}

fn mmr<'a>(
    lists: &[Vec<Hit>],
    k: usize,
    lambda: f64,
    vector: &dyn Fn(u64) -> Option<&'a [f32]>,
) -> Result<Vec<u64>> {
    let mut candidates: Vec<Hit> = best_scores(lists)
        .into_iter()
        .map(|(id, s)| Hit::new(id, s as f32))
        .collect();
    candidates.sort_by(Hit::ranking);
    let vectors = candidates
        .iter()
        .map(|h| {
            vector(h.id).ok_or(IndexError::InvalidParameter {
                name: "mmr item vector",
                reason: format!("no vector for id {}", h.id),
            })
        })
        .collect::<Result<Vec<&[f32]>>>()?;
    let mut max_similarity = vec![f64::NEG_INFINITY; candidates.len()];
    let mut chosen = vec![false; candidates.len()];
    let mut order = Vec::with_capacity(k.min(candidates.len()));
    while order.len() < k.min(candidates.len()) {
        let mut best: Option<(usize, f64)> = None;
        for (i, hit) in candidates.iter().enumerate() {
            if chosen[i] {
                continue;
            }
            let redundancy = if order.is_empty() {
                0.0
            } else {
                max_similarity[i]
            };
            let value = lambda * hit.score as f64 - (1.0 - lambda) * redundancy;
            if best.is_none_or(|(_, b)| value > b) {
                best = Some((i, value));
            }
        }
        let Some((pick, _)) = best else { break };
        chosen[pick] = true;
        order.push(candidates[pick].id);
        for (i, v) in vectors.iter().enumerate() {
            if !chosen[i] {
                let s = Similarity::Cosine.score(v, vectors[pick]) as f64;
                max_similarity[i] = max_similarity[i].max(s);
            }
        }
    }
    Ok(order)
}
