//! `jamendo-mood`: MTG-Jamendo tracks with audio-derived 56-d tag-score vectors, mood/theme
//! tags, and MiniLM text embeddings of each tag and of tag pairs.

use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::io::npy::{read_f32_matrix, read_labels};
use crate::io::tsv::Table;
use crate::{EvalError, Result};

/// One split (`train`, `valid`, …) of `jamendo-mood`: tracks as items, their tags as labels.
#[derive(Debug, Clone, PartialEq)]
pub struct JamendoMoodSplit {
    /// The split's name.
    pub name: String,
    /// `[tracks, 56]` VGGish-baseline tag scores (the item vectors).
    pub items: Array2<f32>,
    /// `[tracks, 56]` 0/1 ground-truth tags.
    pub labels: Array2<u8>,
    /// Track id per row.
    pub track_ids: Vec<String>,
    /// Artist id per row.
    pub artist_ids: Vec<String>,
    /// Album id per row.
    pub album_ids: Vec<String>,
}

impl JamendoMoodSplit {
    /// Rows carrying every tag of `tags`.
    pub fn relevant(&self, tags: &[usize]) -> Vec<usize> {
        (0..self.labels.nrows())
            .filter(|&r| tags.iter().all(|&t| self.labels[(r, t)] == 1))
            .collect()
    }
}

/// A tag pair query of `jamendo-mood`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPair {
    /// First tag (index).
    pub a: usize,
    /// Second tag (index), a < b.
    pub b: usize,
    /// The query text that was embedded.
    pub text: String,
    /// Tracks carrying both tags in train.
    pub count_train: usize,
    /// Tracks carrying both tags in valid.
    pub count_valid: usize,
}

/// The tag side of `jamendo-mood`: names, query texts and their embeddings, and the pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct JamendoMood {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// Tag names, by column.
    pub tags: Vec<String>,
    /// Query text of each tag.
    pub tag_texts: Vec<String>,
    /// `[tags, 384]` MiniLM embeddings of the tag texts.
    pub tag_text_embeddings: Array2<f32>,
    /// Tag pairs with ≥ 10 tracks (train ∪ valid).
    pub pairs: Vec<TagPair>,
    /// `[pairs, 384]` MiniLM embeddings of the pair texts.
    pub pair_text_embeddings: Array2<f32>,
}

fn inconsistent(dir: &Path, reason: String) -> EvalError {
    EvalError::Shape {
        what: "jamendo-mood",
        reason: format!("{}: {reason}", dir.display()),
    }
}

impl JamendoMood {
    /// Reads `tags.tsv`, `tag_text_minilm.npy`, `pairs_valid.tsv` and `pair_text_minilm.npy`.
    ///
    /// # Errors
    /// The file errors of [`crate::io`]; [`EvalError::Shape`] when the files disagree (row counts,
    /// tag indices out of range).
    pub fn load(dir: &Path) -> Result<Self> {
        let tags_table = Table::read(&dir.join("tags.tsv"))?;
        let tags: Vec<String> = tags_table.parse_column("tag")?;
        let tag_texts: Vec<String> = tags_table.parse_column("text")?;
        let indices: Vec<usize> = tags_table.parse_column("index")?;
        if indices.iter().enumerate().any(|(i, &j)| i != j) {
            return Err(inconsistent(
                dir,
                "tags.tsv rows are not in index order".into(),
            ));
        }
        let tag_text_embeddings = read_f32_matrix(&dir.join("tag_text_minilm.npy"))?;
        let pairs_table = Table::read(&dir.join("pairs_valid.tsv"))?;
        let (a, b): (Vec<usize>, Vec<usize>) = (
            pairs_table.parse_column("a")?,
            pairs_table.parse_column("b")?,
        );
        let texts: Vec<String> = pairs_table.parse_column("text")?;
        let count_train: Vec<usize> = pairs_table.parse_column("count_train")?;
        let count_valid: Vec<usize> = pairs_table.parse_column("count_valid")?;
        let pairs: Vec<TagPair> = (0..pairs_table.len())
            .map(|i| TagPair {
                a: a[i],
                b: b[i],
                text: texts[i].clone(),
                count_train: count_train[i],
                count_valid: count_valid[i],
            })
            .collect();
        let pair_text_embeddings = read_f32_matrix(&dir.join("pair_text_minilm.npy"))?;
        if tag_text_embeddings.nrows() != tags.len() || pair_text_embeddings.nrows() != pairs.len()
        {
            return Err(inconsistent(
                dir,
                "embedding rows differ from the tables".into(),
            ));
        }
        if pairs.iter().any(|p| p.a >= p.b || p.b >= tags.len()) {
            return Err(inconsistent(
                dir,
                "a pair's tag indices are out of range".into(),
            ));
        }
        Ok(Self {
            dir: dir.to_owned(),
            tags,
            tag_texts,
            tag_text_embeddings,
            pairs,
            pair_text_embeddings,
        })
    }

    /// Reads split `name`: `items_{name}.npy`, `labels_{name}.npy`, `tracks_{name}.tsv`.
    ///
    /// # Errors
    /// The file errors of [`crate::io`]; [`EvalError::Shape`] when the three disagree in rows or
    /// the matrices are not one column per tag.
    pub fn split(&self, name: &str) -> Result<JamendoMoodSplit> {
        let items = read_f32_matrix(&self.dir.join(format!("items_{name}.npy")))?;
        let labels = read_labels(&self.dir.join(format!("labels_{name}.npy")))?;
        let tracks = Table::read(&self.dir.join(format!("tracks_{name}.tsv")))?;
        if items.nrows() != labels.nrows() || items.nrows() != tracks.len() {
            return Err(inconsistent(
                &self.dir,
                format!(
                    "split {name}: {} item rows, {} label rows, {} tracks",
                    items.nrows(),
                    labels.nrows(),
                    tracks.len()
                ),
            ));
        }
        if items.ncols() != self.tags.len() || labels.ncols() != self.tags.len() {
            return Err(inconsistent(
                &self.dir,
                format!("split {name}: not one column per tag"),
            ));
        }
        Ok(JamendoMoodSplit {
            name: name.to_owned(),
            items,
            labels,
            track_ids: tracks.parse_column("track_id")?,
            artist_ids: tracks.parse_column("artist_id")?,
            album_ids: tracks.parse_column("album_id")?,
        })
    }
}
