//! Shared helpers of the sampler tests: the backend, mixtures with known truth, and sample
//! statistics computed on the host in f64.

#![allow(dead_code)]

use burn::tensor::{Tensor, TensorData};
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::{Conditioning, GaussianMixture};
#[allow(unused_imports)]
pub use diff4steer_models::backend::{CpuAutodiff as TestAutodiff, CpuBackend as TestBackend};

/// Three well-separated, anisotropic components in 2-D with unequal weights.
pub fn three_modes() -> GaussianMixture {
    GaussianMixture::new(
        vec![vec![-3.0, 0.0], vec![3.0, 0.5], vec![0.0, 4.0]],
        vec![vec![0.30, 0.10], vec![0.20, 0.50], vec![0.40, 0.40]],
        vec![0.5, 0.3, 0.2],
    )
    .unwrap()
}

/// `n` null (unconditional) rows for a mixture denoiser.
pub fn unconditional(n: usize, mixture: &GaussianMixture) -> Conditioning<TestBackend> {
    Conditioning::unconditional(n, mixture.components(), &Default::default()).unwrap()
}

/// `n` rows all conditioned on the weight vector `weights`.
pub fn conditioned<B: burn::tensor::backend::Backend>(
    n: usize,
    weights: &[f64],
) -> Conditioning<B> {
    let row: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
    let one = Tensor::from_data(
        TensorData::new(row, [1, weights.len()]),
        &Default::default(),
    );
    Conditioning::new(one).unwrap().fit_batch(n).unwrap()
}

/// Rows of a `[n, dim]` tensor as f64 vectors.
pub fn rows<B: burn::tensor::backend::Backend>(x: Tensor<B, 2>) -> Vec<Vec<f64>> {
    let dim = x.dims()[1];
    to_host_f32(x)
        .unwrap()
        .chunks(dim)
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect()
}

/// A `[n, dim]` tensor from f64 rows.
pub fn tensor<B: burn::tensor::backend::Backend>(rows: &[Vec<f64>]) -> Tensor<B, 2> {
    let dim = rows[0].len();
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(
        TensorData::new(flat, [rows.len(), dim]),
        &Default::default(),
    )
}

/// Per-component statistics of samples assigned to their most likely component.
#[derive(Debug)]
pub struct ComponentStats {
    /// Fraction of samples per component.
    pub weights: Vec<f64>,
    /// Mean per component and dimension.
    pub means: Vec<Vec<f64>>,
    /// Variance per component and dimension.
    pub variances: Vec<Vec<f64>>,
    /// Correlation of dimensions 0 and 1 per component.
    pub correlations: Vec<f64>,
}

/// Assigns each sample to its component and measures weights, means and variances.
pub fn component_stats(mixture: &GaussianMixture, samples: &[Vec<f64>]) -> ComponentStats {
    let k = mixture.components();
    let dim = mixture.dim();
    let mut groups: Vec<Vec<&Vec<f64>>> = vec![Vec::new(); k];
    for s in samples {
        groups[mixture.component_of(s).unwrap()].push(s);
    }
    let n = samples.len() as f64;
    let mut means = vec![vec![0.0; dim]; k];
    let mut variances = vec![vec![0.0; dim]; k];
    for (c, group) in groups.iter().enumerate() {
        let m = group.len().max(1) as f64;
        for j in 0..dim {
            let mean = group.iter().map(|s| s[j]).sum::<f64>() / m;
            means[c][j] = mean;
            variances[c][j] =
                group.iter().map(|s| (s[j] - mean).powi(2)).sum::<f64>() / (m - 1.0).max(1.0);
        }
    }
    let correlations = groups
        .iter()
        .enumerate()
        .map(|(c, group)| {
            let m = group.len().max(2) as f64;
            let cov = group
                .iter()
                .map(|s| (s[0] - means[c][0]) * (s[1] - means[c][1]))
                .sum::<f64>()
                / (m - 1.0);
            cov / (variances[c][0] * variances[c][1]).sqrt().max(1e-12)
        })
        .collect();
    ComponentStats {
        correlations,
        weights: groups.iter().map(|g| g.len() as f64 / n).collect(),
        means,
        variances,
    }
}

/// Fraction of samples whose most likely component is `component`.
pub fn fraction_in(mixture: &GaussianMixture, samples: &[Vec<f64>], component: usize) -> f64 {
    samples
        .iter()
        .filter(|s| mixture.component_of(s).unwrap() == component)
        .count() as f64
        / samples.len() as f64
}

/// Largest absolute difference between two tensors' values.
pub fn max_abs_diff<B: burn::tensor::backend::Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f64 {
    to_host_f32(a)
        .unwrap()
        .iter()
        .zip(to_host_f32(b).unwrap())
        .map(|(x, y)| (*x as f64 - y as f64).abs())
        .fold(0.0, f64::max)
}
