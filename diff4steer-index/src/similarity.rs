//! The similarity an index ranks by.

use std::fmt;
use std::str::FromStr;

use crate::IndexError;

/// How query–item similarity is scored; every score is "higher is more similar".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Similarity {
    /// ⟨q, x⟩.
    InnerProduct,
    /// ⟨q, x⟩ / (‖q‖·‖x‖): items and queries are L2-normalised, then inner product.
    #[default]
    Cosine,
    /// −‖q − x‖² (so the nearest item has the highest score).
    NegativeL2,
}

impl Similarity {
    /// The command-line name: `dot`, `cosine` or `l2`.
    pub fn name(&self) -> &'static str {
        match self {
            Similarity::InnerProduct => "dot",
            Similarity::Cosine => "cosine",
            Similarity::NegativeL2 => "l2",
        }
    }

    pub(crate) fn code(&self) -> u8 {
        match self {
            Similarity::InnerProduct => 0,
            Similarity::Cosine => 1,
            Similarity::NegativeL2 => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        [
            Similarity::InnerProduct,
            Similarity::Cosine,
            Similarity::NegativeL2,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }

    /// The score of one pair, computed directly (the reference the indexes are tested against).
    pub fn score(&self, query: &[f32], item: &[f32]) -> f32 {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        match self {
            Similarity::InnerProduct => dot(query, item),
            Similarity::Cosine => {
                let n = (dot(query, query) * dot(item, item)).sqrt();
                if n > 0.0 {
                    dot(query, item) / n
                } else {
                    0.0
                }
            }
            Similarity::NegativeL2 => -query
                .iter()
                .zip(item)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>(),
        }
    }
}

impl fmt::Display for Similarity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Similarity {
    type Err = IndexError;

    /// Parses `dot`, `cosine` or `l2`.
    fn from_str(s: &str) -> Result<Self, IndexError> {
        [
            Similarity::InnerProduct,
            Similarity::Cosine,
            Similarity::NegativeL2,
        ]
        .into_iter()
        .find(|k| k.name() == s)
        .ok_or_else(|| IndexError::InvalidParameter {
            name: "similarity",
            reason: format!("unknown similarity `{s}`: expected dot, cosine or l2"),
        })
    }
}
