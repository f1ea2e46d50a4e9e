//! The text → music protocols on MusicCaps with real audio ([`MusicCapsAudio`]), and their
//! scores: what a system is asked, what counts as relevant, and how its ranked lists are scored.
//!
//! - **caption → clip**: the query is a clip's caption embedding; the one relevant item is that
//!   clip. Recall@1/5/10, MRR, median rank of the clip.
//! - **aspect → clips**: the query is an aspect's text embedding (for aspects with enough clips
//!   both in the training split and in the evaluated one); every evaluated clip carrying the
//!   aspect is relevant (many per query, genuinely multi-modal). nDCG@10, Recall@50,
//!   coverage@100, intra-list diversity@20 and Vendi@20.
//! - **steering**: a caption query steered toward an aspect B its clip does not carry: the share
//!   of the top 20 carrying B, and whether the caption's own clip stays in the top 10.
//!
//! A ranked list is catalogue row ids, best first; ids at or past the split's size (distractors
//! appended to the catalogue) are never relevant.

use std::collections::{BTreeMap, HashSet};

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::diversity::{intra_list_diversity, vendi_score};
use crate::ranking::evaluate_query;
use crate::{EvalError, MusicCapsAudio, MusicCapsSplit, RankingMetric, Result};

/// One query of a protocol: its text embedding and the catalogue rows relevant to it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolQuery {
    /// A name for reports (the clip's YouTube id, or the aspect string).
    pub name: String,
    /// The query embedding.
    pub text: Vec<f32>,
    /// Relevant catalogue rows (rows of the evaluated split).
    pub relevant: Vec<usize>,
}

/// Caption → clip: one query per clip of `split`, its caption; relevant = that clip.
pub fn caption_queries(split: &MusicCapsSplit) -> Vec<ProtocolQuery> {
    (0..split.len())
        .map(|r| ProtocolQuery {
            name: split.ytids[r].clone(),
            text: split.captions.row(r).to_vec(),
            relevant: vec![r],
        })
        .collect()
}

/// An aspect → clips query and the aspect it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct AspectQuery {
    /// Index into [`MusicCapsAudio::aspects`].
    pub aspect: usize,
    /// Its text embedding and the evaluated clips carrying it.
    pub query: ProtocolQuery,
}

/// Aspect → clips: every aspect with at least `min_clips` clips in `train` and in `split` (360
/// aspects for train/valid at 5), in aspect order.
pub fn aspect_queries(
    caps: &MusicCapsAudio,
    train: &MusicCapsSplit,
    split: &MusicCapsSplit,
    min_clips: usize,
) -> Vec<AspectQuery> {
    let n = caps.aspects.len();
    let (in_train, in_split) = (train.aspect_counts(n), split.aspect_counts(n));
    (0..n)
        .filter(|&a| in_train[a] >= min_clips && in_split[a] >= min_clips)
        .map(|a| AspectQuery {
            aspect: a,
            query: ProtocolQuery {
                name: caps.aspects[a].clone(),
                text: caps.aspect_embeddings.row(a).to_vec(),
                relevant: split.clips_with_aspect(a),
            },
        })
        .collect()
}

/// One steering case: the caption of clip `clip` (a row of the evaluated split) steered toward
/// aspect `aspect`, which that clip does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SteeringCase {
    /// Row of the evaluated split whose caption is the query.
    pub clip: usize,
    /// The aspect to steer toward.
    pub aspect: usize,
}

/// Steering cases: `aspects` aspects drawn (seeded) among those with at least `min_clips` clips in
/// `train` and in `split`, and for each `per_aspect` clips of `split` that do not carry it
/// (seeded), ordered by aspect then clip.
///
/// # Errors
/// [`EvalError::InvalidParameter`] when fewer aspects qualify than asked for.
pub fn steering_cases(
    caps: &MusicCapsAudio,
    train: &MusicCapsSplit,
    split: &MusicCapsSplit,
    min_clips: usize,
    aspects: usize,
    per_aspect: usize,
    seed: u64,
) -> Result<Vec<SteeringCase>> {
    let eligible: Vec<usize> = aspect_queries(caps, train, split, min_clips)
        .into_iter()
        .map(|q| q.aspect)
        .collect();
    if eligible.len() < aspects {
        return Err(EvalError::InvalidParameter {
            name: "steering aspects",
            reason: format!(
                "{aspects} asked for, {} aspects have ≥ {min_clips} clips in both splits",
                eligible.len()
            ),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked: Vec<usize> = sample(&mut rng, eligible.len(), aspects)
        .into_iter()
        .map(|i| eligible[i])
        .collect();
    picked.sort_unstable();
    let mut cases = Vec::new();
    for aspect in picked {
        let without: Vec<usize> = (0..split.len())
            .filter(|&r| !split.aspects[r].contains(&aspect))
            .collect();
        let take = per_aspect.min(without.len());
        let mut clips: Vec<usize> = sample(&mut rng, without.len(), take)
            .into_iter()
            .map(|i| without[i])
            .collect();
        clips.sort_unstable();
        cases.extend(clips.into_iter().map(|clip| SteeringCase { clip, aspect }));
    }
    Ok(cases)
}

/// Mean caption → clip scores of a system.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaptionScores {
    /// Share of queries whose clip is first.
    pub recall_1: f64,
    /// … in the top 5.
    pub recall_5: f64,
    /// … in the top 10.
    pub recall_10: f64,
    /// Mean reciprocal rank (0 where the clip is not in the list).
    pub mrr: f64,
    /// Median 1-based rank of the clip; `None` when more than half the lists miss it (the median
    /// lies past the lists' depth).
    pub median_rank: Option<f64>,
}

/// Scores the ranked lists (`ranked[i]` for `queries[i]`) of caption → clip.
///
/// # Errors
/// [`EvalError::Shape`] when there are not as many lists as queries or no query.
pub fn caption_scores(ranked: &[Vec<u64>], queries: &[ProtocolQuery]) -> Result<CaptionScores> {
    check_lists(ranked, queries)?;
    let ranks: Vec<Option<usize>> = ranked
        .iter()
        .zip(queries)
        .map(|(list, q)| {
            let target = q.relevant.first().map(|&r| r as u64);
            list.iter()
                .position(|&id| Some(id) == target)
                .map(|p| p + 1)
        })
        .collect();
    let n = queries.len() as f64;
    let within = |k: usize| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n;
    let mrr = ranks.iter().flatten().map(|&r| 1.0 / r as f64).sum::<f64>() / n;
    let mut found: Vec<usize> = ranks.iter().flatten().copied().collect();
    found.sort_unstable();
    // Missing clips rank after every listed one, so the median exists when ≥ half are found.
    let median_rank = {
        let m = queries.len();
        let at = |i: usize| found.get(i).map(|&r| r as f64);
        if m % 2 == 1 {
            at(m / 2)
        } else {
            at(m / 2).and_then(|b| at(m / 2 - 1).map(|a| 0.5 * (a + b)))
        }
    };
    Ok(CaptionScores {
        recall_1: within(1),
        recall_5: within(5),
        recall_10: within(10),
        mrr,
        median_rank,
    })
}

/// Mean aspect → clips scores of a system.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AspectScores {
    /// nDCG@10 (binary relevance).
    pub ndcg_10: f64,
    /// Recall@50.
    pub recall_50: f64,
    /// coverage@100: share of the relevant clips in the top 100.
    pub coverage_100: f64,
    /// Intra-list diversity of the top 20 (mean pairwise cosine distance).
    pub diversity_20: f64,
    /// Vendi score of the top 20 (effective number of distinct items, 1–20).
    pub vendi_20: f64,
}

/// Scores the ranked lists of aspect → clips. Diversity is measured on `vectors` (row-major,
/// `dim` wide, one row per catalogue id: choose one fixed space for every system, e.g. the
/// catalogue standardised with training statistics).
///
/// # Errors
/// [`EvalError::Shape`] for mismatched lists or an id without a vector; vector errors of the
/// diversity metrics.
pub fn aspect_scores(
    ranked: &[Vec<u64>],
    queries: &[ProtocolQuery],
    vectors: &[f32],
    dim: usize,
) -> Result<AspectScores> {
    check_lists(ranked, queries)?;
    let rows = vectors.len() / dim.max(1);
    let mut s = AspectScores::default();
    for (list, q) in ranked.iter().zip(queries) {
        let docs: Vec<String> = list.iter().map(u64::to_string).collect();
        let judged: BTreeMap<String, i32> = q.relevant.iter().map(|r| (r.to_string(), 1)).collect();
        s.ndcg_10 += evaluate_query(RankingMetric::Ndcg { k: 10 }, &docs, &judged);
        s.recall_50 += evaluate_query(RankingMetric::Recall { k: 50 }, &docs, &judged);
        let relevant: HashSet<u64> = q.relevant.iter().map(|&r| r as u64).collect();
        s.coverage_100 += crate::coverage_at_k(list, &relevant, 100);
        let mut top = Vec::with_capacity(20 * dim);
        for &id in list.iter().take(20) {
            let r = id as usize;
            if r >= rows {
                return Err(EvalError::Shape {
                    what: "aspect scores",
                    reason: format!("id {id} has no vector ({rows} rows given)"),
                });
            }
            top.extend_from_slice(&vectors[r * dim..(r + 1) * dim]);
        }
        s.diversity_20 += intra_list_diversity(&top, dim)?;
        s.vendi_20 += vendi_score(&top, dim)?;
    }
    let n = queries.len() as f64;
    for v in [
        &mut s.ndcg_10,
        &mut s.recall_50,
        &mut s.coverage_100,
        &mut s.diversity_20,
        &mut s.vendi_20,
    ] {
        *v /= n;
    }
    Ok(s)
}

/// Mean steering scores over steering cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SteeringScores {
    /// Share of the top 20 carrying the steering aspect B.
    pub share_b_20: f64,
    /// Share of cases whose caption's own clip is in the top 10 (its Recall@10).
    pub recall_10: f64,
}

/// Scores steered lists (`ranked[i]` for `cases[i]`) against `split`'s aspects.
///
/// # Errors
/// [`EvalError::Shape`] when there are not as many lists as cases or no case.
pub fn steering_scores(
    ranked: &[Vec<u64>],
    cases: &[SteeringCase],
    split: &MusicCapsSplit,
) -> Result<SteeringScores> {
    if ranked.len() != cases.len() || cases.is_empty() {
        return Err(EvalError::Shape {
            what: "steering scores",
            reason: format!("{} lists for {} cases", ranked.len(), cases.len()),
        });
    }
    let mut s = SteeringScores::default();
    for (list, case) in ranked.iter().zip(cases) {
        let carries = |id: u64| {
            let r = id as usize;
            r < split.len() && split.aspects[r].contains(&case.aspect)
        };
        s.share_b_20 += list.iter().take(20).filter(|&&id| carries(id)).count() as f64 / 20.0;
        s.recall_10 += f64::from(u8::from(
            list.iter().take(10).any(|&id| id as usize == case.clip),
        ));
    }
    let n = cases.len() as f64;
    s.share_b_20 /= n;
    s.recall_10 /= n;
    Ok(s)
}

fn check_lists(ranked: &[Vec<u64>], queries: &[ProtocolQuery]) -> Result<()> {
    if ranked.len() != queries.len() || queries.is_empty() {
        return Err(EvalError::Shape {
            what: "protocol scores",
            reason: format!("{} lists for {} queries", ranked.len(), queries.len()),
        });
    }
    Ok(())
}
