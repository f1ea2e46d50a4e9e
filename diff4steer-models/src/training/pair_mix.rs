//! Training pairs for text → music from MusicCaps with real audio: (caption → its clip) and
//! (aspect text → every clip carrying it), mixed by weight, plus audio without text as
//! target-only rows.
//!
//! Aspect pairs are what make p(audio | text) genuinely multi-modal (one aspect, many clips), but
//! they outnumber captions about 7 to 1; without weights they would dominate what the model
//! learns about captions. Target-only rows (the distractor clips) train the null condition the
//! classifier-free guidance of the prior contrasts with.

use diff4steer_eval::{MusicCapsAudio, MusicCapsSplit};

use super::PairData;
use crate::{ModelError, Result};

/// How the kinds of training rows are mixed: the probability that a drawn row is of each kind.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairMix {
    /// Share of caption → clip pairs among the rows with text (the rest are aspect pairs); 1 =
    /// captions only.
    pub caption_share: f64,
    /// Share of target-only rows (audio without text) among all draws; 0 = none added.
    pub target_only_share: f64,
}

impl Default for PairMix {
    /// Half captions, half aspects; 10 % target-only rows.
    fn default() -> Self {
        Self {
            caption_share: 0.5,
            target_only_share: 0.1,
        }
    }
}

/// The training pairs of `train` mixed as `mix` says; `target_only` (e.g. the distractors' audio,
/// row-major, as wide as the clips' audio) gives the target-only rows when
/// `mix.target_only_share > 0`.
///
/// # Errors
/// [`ModelError::InvalidConfig`] for shares outside [0, 1] (a caption share below 1 with no aspect
/// pair, or a target-only share with no target-only rows); [`ModelError::Data`] for embeddings of
/// inconsistent widths.
pub fn musiccaps_pairs(
    caps: &MusicCapsAudio,
    train: &MusicCapsSplit,
    target_only: Option<&[f32]>,
    mix: PairMix,
) -> Result<PairData> {
    let share_error =
        |field: &'static str, reason: String| ModelError::InvalidConfig { field, reason };
    if !(0.0..=1.0).contains(&mix.caption_share) {
        return Err(share_error(
            "caption_share",
            format!("must be in [0, 1], got {}", mix.caption_share),
        ));
    }
    if !(0.0..1.0).contains(&mix.target_only_share) {
        return Err(share_error(
            "target_only_share",
            format!("must be in [0, 1), got {}", mix.target_only_share),
        ));
    }
    let (dq, dt) = (caps.text_dim(), train.audio.ncols());
    let (mut queries, mut targets) = (Vec::new(), Vec::new());
    for r in 0..train.len() {
        queries.extend(train.captions.row(r).iter());
        targets.extend(train.audio.row(r).iter());
    }
    let captions = train.len();
    if mix.caption_share < 1.0 {
        for r in 0..train.len() {
            for &a in &train.aspects[r] {
                queries.extend(caps.aspect_embeddings.row(a).iter());
                targets.extend(train.audio.row(r).iter());
            }
        }
    }
    let aspects = targets.len() / dt - captions;
    if mix.caption_share < 1.0 && aspects == 0 {
        return Err(share_error(
            "caption_share",
            "below 1, but the training clips carry no aspect".into(),
        ));
    }
    let mut data = PairData::from_vecs(queries, dq, targets, dt)?;
    let mut extra = 0;
    if mix.target_only_share > 0.0 {
        let rows = target_only.unwrap_or(&[]);
        if rows.is_empty() {
            return Err(share_error(
                "target_only_share",
                "above 0, but no target-only rows were given".into(),
            ));
        }
        extra = rows.len() / dt;
        data = data.with_unconditional_targets(rows.to_vec())?;
    }
    let text_share = 1.0 - mix.target_only_share;
    let per = |share: f64, n: usize| if n == 0 { 0.0 } else { share / n as f64 };
    let weights: Vec<f64> =
        std::iter::repeat_n(per(text_share * mix.caption_share, captions), captions)
            .chain(std::iter::repeat_n(
                per(text_share * (1.0 - mix.caption_share), aspects),
                aspects,
            ))
            .chain(std::iter::repeat_n(
                per(mix.target_only_share, extra),
                extra,
            ))
            .collect();
    data.with_weights(&weights)
}
