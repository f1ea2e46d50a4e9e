//! Set metrics of a result list for generative retrieval: how much of the relevant set (and of its
//! modes) it reaches, and how diverse it is (pairwise distance, Vendi score, label entropy).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use nalgebra::{DMatrix, SymmetricEigen};

use crate::{EvalError, Result};

/// coverage@k: the fraction of the relevant set found in the top `k` of `ranked`. (As a number it
/// equals recall@k; it is named for what generative retrieval asks: how much of what the query can
/// mean does the list reach.) 0 for an empty relevant set.
pub fn coverage_at_k(ranked: &[u64], relevant: &HashSet<u64>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|id| relevant.contains(id))
        .count();
    found as f64 / relevant.len() as f64
}

/// Mode coverage@k: the fraction of the relevant set's modes (clusters, sub-genres, artists …)
/// with at least one member in the top `k`. `mode_of` maps every relevant item to its mode. 0 when
/// there is no mode.
pub fn mode_coverage_at_k<M: Hash + Eq>(
    ranked: &[u64],
    mode_of: &HashMap<u64, M>,
    k: usize,
) -> f64 {
    let modes: HashSet<&M> = mode_of.values().collect();
    if modes.is_empty() {
        return 0.0;
    }
    let reached: HashSet<&M> = ranked
        .iter()
        .take(k)
        .filter_map(|id| mode_of.get(id))
        .collect();
    reached.len() as f64 / modes.len() as f64
}

/// Cosine similarity of two vectors (0 when either is zero).
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa > 0.0 && bb > 0.0 {
        ab / (aa * bb).sqrt()
    } else {
        0.0
    }
}

/// Checks that `vectors` holds whole finite rows of `dim`; returns the row count.
pub(crate) fn check_vectors(vectors: &[f32], dim: usize, what: &'static str) -> Result<usize> {
    if dim == 0 || !vectors.len().is_multiple_of(dim) {
        return Err(EvalError::Shape {
            what,
            reason: format!("{} values are not whole rows of {dim}", vectors.len()),
        });
    }
    if vectors.iter().any(|v| !v.is_finite()) {
        return Err(EvalError::NonFinite { what });
    }
    Ok(vectors.len() / dim)
}

/// Intra-list diversity: the mean over pairs of listed items of the cosine distance 1 − cos
/// (Ziegler et al. 2005). `vectors` holds the listed items' vectors, row-major; fewer than two
/// items give 0.
///
/// # Errors
/// [`EvalError::Shape`] / [`EvalError::NonFinite`] for malformed vectors.
pub fn intra_list_diversity(vectors: &[f32], dim: usize) -> Result<f64> {
    let n = check_vectors(vectors, dim, "list vectors")?;
    if n < 2 {
        return Ok(0.0);
    }
    let rows: Vec<&[f32]> = vectors.chunks(dim).collect();
    let mut sum = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            sum += 1.0 - cosine(rows[i], rows[j]);
        }
    }
    Ok(sum / (n * (n - 1) / 2) as f64)
}

/// The Vendi score with the cosine kernel (Friedman & Dieng 2023, "The Vendi Score", eq. 1):
/// exp(−Σ λ_i ln λ_i) over the eigenvalues λ of K/n, K_ij = cos(x_i, x_j) — the effective number
/// of distinct items, from 1 (all alike) to n (orthogonal). Empty input gives 0.
///
/// # Errors
/// [`EvalError::Shape`] / [`EvalError::NonFinite`] for malformed vectors.
pub fn vendi_score(vectors: &[f32], dim: usize) -> Result<f64> {
    let n = check_vectors(vectors, dim, "vectors")?;
    if n == 0 {
        return Ok(0.0);
    }
    let rows: Vec<&[f32]> = vectors.chunks(dim).collect();
    let kernel = DMatrix::from_fn(n, n, |i, j| cosine(rows[i], rows[j]) / n as f64);
    let eigen = SymmetricEigen::new(kernel);
    let entropy: f64 = eigen
        .eigenvalues
        .iter()
        .filter(|&&l| l > 1e-12)
        .map(|&l| -l * l.ln())
        .sum();
    Ok(entropy.exp())
}

/// Shannon entropy (natural log, nats) of the distribution of `labels`: −Σ p ln p over the
/// label frequencies. For multi-label items pass every label of every item. Empty input gives 0.
pub fn label_entropy<L: Hash + Eq>(labels: impl IntoIterator<Item = L>) -> f64 {
    let mut counts: HashMap<L, usize> = HashMap::new();
    for label in labels {
        *counts.entry(label).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    counts
        .values()
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.ln()
        })
        .sum()
}
