//! # diff4steer-eval
//!
//! How we, and our users, know whether generated seeds and the lists they retrieve are relevant,
//! diverse and faithful (burn-free):
//!
//! - [`ranking`]: Recall@K, Precision@K, nDCG@K (linear gain), MAP@K, MRR, HitRate@K, R-precision
//!   over graded [`Qrels`] and ranked [`Run`]s, named by [`RankingMetric`] (`ndcg@10`, `mrr`, …),
//!   with per-query values and means in a [`Report`];
//! - [`diversity`]: coverage@K and mode coverage, intra-list diversity, Vendi score, label entropy;
//! - [`distribution`]: Fréchet distance, precision / recall / density / coverage, mean cosine to
//!   the nearest real item — seeds against the real items relevant to their query;
//! - [`io`]: .npy matrices and labels, TSV tables, TREC run and qrels files;
//! - [`datasets`]: the real data of `../shared/data` (when present): `jamendo-mood` and MusicCaps
//!   with VGGish audio;
//! - [`protocols`]: the MusicCaps text → music protocols (caption → clip, aspect → clips,
//!   steering) and their scores;
//! - [`synthetic`]: the seeded "music world" with known, multi-modal truth.
//!
//! ## Quick start
//! ```
//! use diff4steer_eval::{evaluate, Qrels, RankingMetric, Run};
//!
//! let mut qrels = Qrels::new();
//! qrels.insert("q1", "d1", 2)?;
//! qrels.insert("q1", "d3", 1)?;
//! let mut run = Run::new();
//! for (doc, score) in [("d1", 0.9), ("d2", 0.8), ("d3", 0.7)] {
//!     run.push("q1", doc, score)?;
//! }
//! let metrics = RankingMetric::parse_list("ndcg@10,recall@2,mrr")?;
//! let report = evaluate(&run, &qrels, &metrics)?;
//! assert_eq!(report.mean["recall@2"], 0.5);
//! assert_eq!(report.mean["mrr"], 1.0);
//! # Ok::<(), diff4steer_eval::EvalError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod datasets;
pub mod distribution;
pub mod diversity;
pub mod error;
pub mod io;
pub mod metric;
pub mod protocols;
pub mod ranking;
pub mod spectrum;
pub mod synthetic;

pub use datasets::{
    shared_data_dir, JamendoMood, JamendoMoodSplit, MusicCapsAudio, MusicCapsDistractors,
    MusicCapsSplit, TagPair,
};
pub use distribution::{frechet_distance, mean_nearest_cosine, prdc, Prdc};
pub use diversity::{
    coverage_at_k, intra_list_diversity, label_entropy, mode_coverage_at_k, vendi_score,
};
pub use error::{EvalError, Result};
pub use metric::RankingMetric;
pub use ranking::{evaluate, evaluate_query, Qrels, Report, Run};
pub use spectrum::Spectrum;
pub use synthetic::{qrels_of, MusicWorld, MusicWorldConfig, SyntheticQuery};
