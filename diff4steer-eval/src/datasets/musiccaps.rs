//! `musiccaps` + `musiccaps-vggish`: the MusicCaps clips (Agostinelli et al. 2023, "MusicLM",
//! arXiv 2301.11325) with real audio embeddings of the same 10-second clips (AudioSet's 128-d
//! VGGish features, mean of ten 1-second frames), their captions and aspects embedded with
//! MiniLM, and 11,044 other AudioSet music clips without text (distractors, unconditional data).
//!
//! The text side (`musiccaps/`: captions, aspects, `clips.tsv`) is indexed by the row of the
//! MusicCaps CSV; a split (`musiccaps-vggish/vggish_{split}.npy` + `clips_{split}.tsv`) names the
//! CSV row of each of its clips. The held-out split has the same layout, so any split name works.

use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::io::npy::read_f32_matrix;
use crate::io::tsv::Table;
use crate::{EvalError, Result};

/// The caption and aspect side of MusicCaps, and the AudioSet label names: everything shared by
/// the splits. Splits and distractors are read on demand with [`MusicCapsAudio::split`] and
/// [`MusicCapsAudio::distractors`].
#[derive(Debug, Clone, PartialEq)]
pub struct MusicCapsAudio {
    /// The text folder (`…/musiccaps`).
    pub text_dir: PathBuf,
    /// The audio folder (`…/musiccaps-vggish`).
    pub audio_dir: PathBuf,
    /// Aspect strings occurring in ≥ 10 clips (`aspects.tsv`), by index.
    pub aspects: Vec<String>,
    /// `[aspects, 384]` MiniLM embeddings of the aspect strings.
    pub aspect_embeddings: Array2<f32>,
    /// `[5521, 384]` MiniLM embeddings of the captions, row = MusicCaps CSV data row.
    pub caption_embeddings: Array2<f32>,
    /// The aspects (indices into [`Self::aspects`]) of every clip, by CSV row.
    pub clip_aspects: Vec<Vec<usize>>,
    /// AudioSet class names (`audioset_labels.tsv`), by index.
    pub audioset_labels: Vec<String>,
    /// Whether each AudioSet class is "Music" or below it in the ontology.
    pub audioset_is_music: Vec<bool>,
}

/// One split of MusicCaps clips (`train`, `valid`, or a held-out one with the same files).
#[derive(Debug, Clone, PartialEq)]
pub struct MusicCapsSplit {
    /// The split's name.
    pub name: String,
    /// `[clips, 128]` mean VGGish vector per clip (the catalogue items).
    pub audio: Array2<f32>,
    /// `[clips, 384]` the caption embedding of each clip.
    pub captions: Array2<f32>,
    /// The aspects of each clip (indices into [`MusicCapsAudio::aspects`]).
    pub aspects: Vec<Vec<usize>>,
    /// The AudioSet labels of each clip (indices into [`MusicCapsAudio::audioset_labels`]).
    pub audioset_labels: Vec<Vec<usize>>,
    /// The MusicCaps CSV data row of each clip.
    pub csv_rows: Vec<usize>,
    /// YouTube id of each clip.
    pub ytids: Vec<String>,
}

impl MusicCapsSplit {
    /// Number of clips.
    pub fn len(&self) -> usize {
        self.audio.nrows()
    }

    /// Whether the split has no clip.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Clips (row indices) carrying `aspect`.
    pub fn clips_with_aspect(&self, aspect: usize) -> Vec<usize> {
        (0..self.len())
            .filter(|&r| self.aspects[r].contains(&aspect))
            .collect()
    }

    /// Number of clips carrying each of `aspects` aspects.
    pub fn aspect_counts(&self, aspects: usize) -> Vec<usize> {
        let mut counts = vec![0; aspects];
        for list in &self.aspects {
            for &a in list {
                if a < aspects {
                    counts[a] += 1;
                }
            }
        }
        counts
    }
}

/// The AudioSet music clips that are not MusicCaps clips (`vggish_distractors.npy`,
/// `distractors.tsv`): audio without text, for a larger catalogue and unconditional training.
#[derive(Debug, Clone, PartialEq)]
pub struct MusicCapsDistractors {
    /// `[clips, 128]` mean VGGish vector per clip.
    pub audio: Array2<f32>,
    /// The AudioSet labels of each clip.
    pub audioset_labels: Vec<Vec<usize>>,
    /// YouTube id of each clip.
    pub ytids: Vec<String>,
}

fn inconsistent(dir: &Path, reason: String) -> EvalError {
    EvalError::Shape {
        what: "musiccaps",
        reason: format!("{}: {reason}", dir.display()),
    }
}

/// Checks that a table's `index` column counts 0, 1, 2, …
fn check_index_order(table: &Table, dir: &Path, file: &str) -> Result<()> {
    let indices: Vec<usize> = table.parse_column("index")?;
    if indices.iter().enumerate().any(|(i, &j)| i != j) {
        return Err(inconsistent(
            dir,
            format!("{file} rows are not in index order"),
        ));
    }
    Ok(())
}

/// Checks every label of `lists` against `bound`.
fn check_labels(lists: &[Vec<usize>], bound: usize, dir: &Path, what: &str) -> Result<()> {
    if let Some((row, label)) = lists
        .iter()
        .enumerate()
        .find_map(|(r, l)| l.iter().find(|&&x| x >= bound).map(|&x| (r, x)))
    {
        return Err(inconsistent(
            dir,
            format!("{what}: row {row} names label {label}, but there are {bound}"),
        ));
    }
    Ok(())
}

impl MusicCapsAudio {
    /// Reads the shared side from the two folders: `text_dir` (`aspects.tsv`,
    /// `aspects_minilm.npy`, `captions_minilm.npy`, `clips.tsv`) and `audio_dir`
    /// (`audioset_labels.tsv`).
    ///
    /// # Errors
    /// The file errors of [`crate::io`]; [`EvalError::Shape`] when the files disagree (row
    /// counts, embedding widths, indices out of range).
    pub fn load(text_dir: &Path, audio_dir: &Path) -> Result<Self> {
        let aspect_table = Table::read(&text_dir.join("aspects.tsv"))?;
        check_index_order(&aspect_table, text_dir, "aspects.tsv")?;
        let aspects: Vec<String> = aspect_table.parse_column("aspect")?;
        let aspect_embeddings = read_f32_matrix(&text_dir.join("aspects_minilm.npy"))?;
        let caption_embeddings = read_f32_matrix(&text_dir.join("captions_minilm.npy"))?;
        let clips = Table::read(&text_dir.join("clips.tsv"))?;
        let rows: Vec<usize> = clips.parse_column("row")?;
        if rows.iter().enumerate().any(|(i, &j)| i != j) {
            return Err(inconsistent(
                text_dir,
                "clips.tsv rows are not in CSV order".into(),
            ));
        }
        let clip_aspects: Vec<Vec<usize>> = clips.parse_list_column("aspect_indices")?;
        if aspect_embeddings.nrows() != aspects.len() {
            return Err(inconsistent(
                text_dir,
                format!(
                    "{} aspects but {} aspect embeddings",
                    aspects.len(),
                    aspect_embeddings.nrows()
                ),
            ));
        }
        if caption_embeddings.nrows() != clip_aspects.len() {
            return Err(inconsistent(
                text_dir,
                format!(
                    "{} clips but {} caption embeddings",
                    clip_aspects.len(),
                    caption_embeddings.nrows()
                ),
            ));
        }
        if caption_embeddings.ncols() != aspect_embeddings.ncols() {
            return Err(inconsistent(
                text_dir,
                format!(
                    "captions are {}-d but aspects {}-d",
                    caption_embeddings.ncols(),
                    aspect_embeddings.ncols()
                ),
            ));
        }
        check_labels(
            &clip_aspects,
            aspects.len(),
            text_dir,
            "clips.tsv aspect_indices",
        )?;
        let labels = Table::read(&audio_dir.join("audioset_labels.tsv"))?;
        check_index_order(&labels, audio_dir, "audioset_labels.tsv")?;
        let audioset_labels: Vec<String> = labels.parse_column("name")?;
        let is_music: Vec<u8> = labels.parse_column("is_music")?;
        Ok(Self {
            text_dir: text_dir.to_owned(),
            audio_dir: audio_dir.to_owned(),
            aspects,
            aspect_embeddings,
            caption_embeddings,
            clip_aspects,
            audioset_labels,
            audioset_is_music: is_music.into_iter().map(|m| m == 1).collect(),
        })
    }

    /// [`Self::load`] from a data folder laid out as `../shared/data`: `DATA/musiccaps` and
    /// `DATA/musiccaps-vggish`.
    ///
    /// # Errors
    /// As [`Self::load`].
    pub fn load_from(data_dir: &Path) -> Result<Self> {
        Self::load(
            &data_dir.join("musiccaps"),
            &data_dir.join("musiccaps-vggish"),
        )
    }

    /// Width of a query (caption or aspect) embedding.
    pub fn text_dim(&self) -> usize {
        self.caption_embeddings.ncols()
    }

    /// Reads split `name`: `vggish_{name}.npy` and `clips_{name}.tsv` in the audio folder.
    ///
    /// # Errors
    /// The file errors of [`crate::io`]; [`EvalError::Shape`] when the two disagree in rows, a
    /// CSV row is out of range, or a label index is unknown.
    pub fn split(&self, name: &str) -> Result<MusicCapsSplit> {
        let audio = read_f32_matrix(&self.audio_dir.join(format!("vggish_{name}.npy")))?;
        let table = Table::read(&self.audio_dir.join(format!("clips_{name}.tsv")))?;
        if audio.nrows() != table.len() {
            return Err(inconsistent(
                &self.audio_dir,
                format!(
                    "split {name}: {} audio rows but {} clips",
                    audio.nrows(),
                    table.len()
                ),
            ));
        }
        let csv_rows: Vec<usize> = table.parse_column("csv_row")?;
        if let Some(&bad) = csv_rows.iter().find(|&&r| r >= self.clip_aspects.len()) {
            return Err(inconsistent(
                &self.audio_dir,
                format!(
                    "split {name}: csv_row {bad} is past the {} MusicCaps clips",
                    self.clip_aspects.len()
                ),
            ));
        }
        let audioset_labels: Vec<Vec<usize>> = table.parse_list_column("audioset_labels")?;
        check_labels(
            &audioset_labels,
            self.audioset_labels.len(),
            &self.audio_dir,
            &format!("clips_{name}.tsv audioset_labels"),
        )?;
        let mut captions = Array2::<f32>::zeros((csv_rows.len(), self.text_dim()));
        for (i, &r) in csv_rows.iter().enumerate() {
            captions.row_mut(i).assign(&self.caption_embeddings.row(r));
        }
        Ok(MusicCapsSplit {
            name: name.to_owned(),
            audio,
            captions,
            aspects: csv_rows
                .iter()
                .map(|&r| self.clip_aspects[r].clone())
                .collect(),
            audioset_labels,
            csv_rows,
            ytids: table.parse_column("ytid")?,
        })
    }

    /// Reads the distractors: `vggish_distractors.npy` and `distractors.tsv`.
    ///
    /// # Errors
    /// As [`Self::split`].
    pub fn distractors(&self) -> Result<MusicCapsDistractors> {
        let audio = read_f32_matrix(&self.audio_dir.join("vggish_distractors.npy"))?;
        let table = Table::read(&self.audio_dir.join("distractors.tsv"))?;
        if audio.nrows() != table.len() {
            return Err(inconsistent(
                &self.audio_dir,
                format!(
                    "distractors: {} audio rows but {} clips",
                    audio.nrows(),
                    table.len()
                ),
            ));
        }
        let audioset_labels: Vec<Vec<usize>> = table.parse_list_column("audioset_labels")?;
        check_labels(
            &audioset_labels,
            self.audioset_labels.len(),
            &self.audio_dir,
            "distractors.tsv audioset_labels",
        )?;
        Ok(MusicCapsDistractors {
            audio,
            audioset_labels,
            ytids: table.parse_column("ytid")?,
        })
    }
}
