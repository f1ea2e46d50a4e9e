//! How well a query's seeds match the real target embeddings relevant to it: Fréchet distance,
//! precision / recall / density / coverage, and mean cosine to the nearest real item.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::diversity::{check_vectors, cosine};
use crate::{EvalError, Result};

/// Mean and sample covariance (denominator n − 1) of row-major vectors, in float64.
fn moments(vectors: &[f32], dim: usize) -> (DVector<f64>, DMatrix<f64>) {
    let n = vectors.len() / dim;
    let data = DMatrix::from_fn(n, dim, |i, j| f64::from(vectors[i * dim + j]));
    let mean = DVector::from_fn(dim, |j, _| data.column(j).mean());
    let centred = DMatrix::from_fn(n, dim, |i, j| data[(i, j)] - mean[j]);
    let covariance = (centred.transpose() * centred) / (n as f64 - 1.0);
    (mean, covariance)
}

/// The symmetric positive semi-definite square root through an eigen-decomposition (negative
/// eigenvalues from round-off clamped to 0).
fn sqrt_psd(matrix: DMatrix<f64>) -> DMatrix<f64> {
    let symmetric = (&matrix + matrix.transpose()) * 0.5;
    let eigen = SymmetricEigen::new(symmetric);
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

fn check_pair(a: &[f32], b: &[f32], dim: usize, min_rows: usize) -> Result<(usize, usize)> {
    let n = check_vectors(a, dim, "real vectors")?;
    let m = check_vectors(b, dim, "generated vectors")?;
    if n < min_rows || m < min_rows {
        return Err(EvalError::Shape {
            what: "vectors",
            reason: format!("need at least {min_rows} rows on each side, got {n} and {m}"),
        });
    }
    Ok((n, m))
}

/// The Fréchet distance between Gaussians fitted to two sets (Dowson & Landau 1982; the FID of
/// Heusel et al. 2017): ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}). The
/// symmetric form keeps every square root that of a symmetric PSD matrix, computed by
/// eigen-decomposition in float64, so it is stable where the product Σ_a Σ_b is not.
///
/// # Errors
/// [`EvalError::Shape`] for fewer than 2 rows on a side or malformed rows;
/// [`EvalError::NonFinite`] for NaN/Inf.
pub fn frechet_distance(a: &[f32], b: &[f32], dim: usize) -> Result<f64> {
    check_pair(a, b, dim, 2)?;
    let (mean_a, cov_a) = moments(a, dim);
    let (mean_b, cov_b) = moments(b, dim);
    let root_a = sqrt_psd(cov_a.clone());
    let cross = sqrt_psd(&root_a * &cov_b * &root_a);
    let distance =
        (mean_a - mean_b).norm_squared() + cov_a.trace() + cov_b.trace() - 2.0 * cross.trace();
    Ok(distance.max(0.0))
}

/// Precision, recall, density and coverage of generated samples against real ones (Naeem et al.
/// 2020, "Reliable Fidelity and Diversity Metrics for Generative Models", eqs. 1–4), with
/// Euclidean k-nearest-neighbour balls.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Prdc {
    /// Share of generated samples inside some real sample's k-NN ball.
    pub precision: f64,
    /// Share of real samples inside some generated sample's k-NN ball.
    pub recall: f64,
    /// Mean number of real k-NN balls holding a generated sample, divided by k (can exceed 1).
    pub density: f64,
    /// Share of real samples whose k-NN ball holds some generated sample.
    pub coverage: f64,
}

/// Distance from each row to its k-th nearest other row.
fn kth_neighbour_radii(distances: &DMatrix<f64>, k: usize) -> Vec<f64> {
    (0..distances.nrows())
        .map(|i| {
            let mut row: Vec<f64> = distances.row(i).iter().copied().collect();
            row.sort_by(f64::total_cmp);
            row[k] // row[0] is the row itself (distance 0)
        })
        .collect()
}

fn euclidean(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn distance_matrix(a: &[&[f32]], b: &[&[f32]]) -> DMatrix<f64> {
    DMatrix::from_fn(a.len(), b.len(), |i, j| euclidean(a[i], b[j]))
}

/// [`Prdc`] of `generated` against `real` (row-major, `dim` wide) with `k` neighbours; strict
/// inequalities as in the authors' reference code.
///
/// # Errors
/// [`EvalError::InvalidParameter`] for k = 0; [`EvalError::Shape`] unless both sides have more
/// than k rows; [`EvalError::NonFinite`] for NaN/Inf.
pub fn prdc(real: &[f32], generated: &[f32], dim: usize, k: usize) -> Result<Prdc> {
    if k == 0 {
        return Err(EvalError::InvalidParameter {
            name: "k",
            reason: "must be at least 1".into(),
        });
    }
    let (n, m) = check_pair(real, generated, dim, k + 1)?;
    let real_rows: Vec<&[f32]> = real.chunks(dim).collect();
    let fake_rows: Vec<&[f32]> = generated.chunks(dim).collect();
    let real_radii = kth_neighbour_radii(&distance_matrix(&real_rows, &real_rows), k);
    let fake_radii = kth_neighbour_radii(&distance_matrix(&fake_rows, &fake_rows), k);
    let cross = distance_matrix(&real_rows, &fake_rows);
    let inside_real = |i: usize, j: usize| cross[(i, j)] < real_radii[i];
    let precision = (0..m)
        .filter(|&j| (0..n).any(|i| inside_real(i, j)))
        .count() as f64
        / m as f64;
    let recall = (0..n)
        .filter(|&i| (0..m).any(|j| cross[(i, j)] < fake_radii[j]))
        .count() as f64
        / n as f64;
    let density = (0..m)
        .map(|j| (0..n).filter(|&i| inside_real(i, j)).count())
        .sum::<usize>() as f64
        / (k * m) as f64;
    let coverage = (0..n)
        .filter(|&i| (0..m).any(|j| inside_real(i, j)))
        .count() as f64
        / n as f64;
    Ok(Prdc {
        precision,
        recall,
        density,
        coverage,
    })
}

/// The mean, over generated vectors, of the cosine similarity to the nearest real vector.
///
/// # Errors
/// [`EvalError::Shape`] for an empty side or malformed rows; [`EvalError::NonFinite`] for NaN/Inf.
pub fn mean_nearest_cosine(real: &[f32], generated: &[f32], dim: usize) -> Result<f64> {
    let (_, m) = check_pair(real, generated, dim, 1)?;
    let total: f64 = generated
        .chunks(dim)
        .map(|g| {
            real.chunks(dim)
                .map(|r| cosine(g, r))
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .sum();
    Ok(total / m as f64)
}
