//! Loaders for the real evaluation data under `../shared/data` (see its README):
//! [`JamendoMood`] (tag-score vectors of MTG-Jamendo tracks, mood/theme tags) and
//! [`MusicCapsAudio`] (the MusicCaps clips with real AudioSet VGGish audio embeddings, their
//! captions and aspects, and music distractors).

use std::path::{Path, PathBuf};

mod jamendo_mood;
mod musiccaps;

pub use jamendo_mood::{JamendoMood, JamendoMoodSplit, TagPair};
pub use musiccaps::{MusicCapsAudio, MusicCapsDistractors, MusicCapsSplit};

/// The data folder next to the workspace (`../shared/data` from the project root), where tests
/// and benchmarks look for real data; `None` when it is absent (a user's machine).
pub fn shared_data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    dir.is_dir().then_some(dir)
}
