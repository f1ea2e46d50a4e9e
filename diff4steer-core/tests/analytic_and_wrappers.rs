//! The analytic mixture denoiser against Tweedie's formula, the steering gradient against finite
//! differences, and the small tensor plumbing of conditionings.

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::{
    similarity_gradient, Conditioning, CoreError, Denoiser, GaussianMixture, Similarity,
    SphereProjection, Steered, SteeringTarget,
};

type B = Flex<f32>;

fn matrix(rows: &[Vec<f64>]) -> Tensor<B, 2> {
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(
        TensorData::new(flat, [rows.len(), rows[0].len()]),
        &Default::default(),
    )
}

fn host(t: Tensor<B, 2>) -> Vec<f64> {
    to_host_f32(t).unwrap().into_iter().map(f64::from).collect()
}

fn mixture() -> GaussianMixture {
    GaussianMixture::new(
        vec![vec![-2.0, 0.5, 1.0], vec![1.5, -1.0, 0.0]],
        vec![vec![0.3, 0.2, 0.5], vec![0.6, 0.1, 0.4]],
        vec![0.7, 0.3],
    )
    .unwrap()
}

/// Tweedie's formula D(x, σ) = x + σ²·∇log p_σ(x), with the gradient of the closed-form density by
/// central differences in f64: an independent route to the posterior mean.
#[test]
fn mixture_denoiser_equals_tweedie_formula() {
    let m = mixture();
    let points = vec![
        vec![0.0, 0.0, 0.0],
        vec![-1.0, 0.3, 2.0],
        vec![2.0, -2.0, -1.0],
    ];
    for sigma in [0.05, 0.5, 2.0, 20.0] {
        let cond = Conditioning::<B>::unconditional(points.len(), 2, &Default::default()).unwrap();
        let sig = Tensor::<B, 1>::full([points.len()], sigma, &Default::default());
        let got = host(m.denoise(matrix(&points), sig, &cond).unwrap());
        for (i, p) in points.iter().enumerate() {
            for j in 0..3 {
                let h = 1e-5;
                let (mut up, mut down) = (p.clone(), p.clone());
                up[j] += h;
                down[j] -= h;
                let grad = (m.log_density(&up, sigma, None).unwrap()
                    - m.log_density(&down, sigma, None).unwrap())
                    / (2.0 * h);
                let expected = p[j] + sigma * sigma * grad;
                let tol = 1e-4 * expected.abs().max(1.0);
                assert!(
                    (got[i * 3 + j] - expected).abs() < tol,
                    "σ={sigma} point {i} dim {j}: {} vs {expected}",
                    got[i * 3 + j]
                );
            }
        }
    }
}

#[test]
fn conditional_rows_use_their_own_weights() {
    let m = mixture();
    let x = matrix(&[vec![-0.2, -0.2, 0.5], vec![-0.2, -0.2, 0.5]]);
    let sigma = Tensor::<B, 1>::full([2], 1.0, &Default::default());
    // Row 0 puts all weight on component 1, row 1 is null (weights 0.7 / 0.3).
    let cond =
        Conditioning::with_null_rows(matrix(&[vec![0.0, 1.0], vec![0.0, 0.0]]), vec![false, true])
            .unwrap();
    let got = host(m.denoise(x, sigma, &cond).unwrap());
    let point = [-0.2, -0.2, 0.5];
    // Component 1 alone: μ + v/(v + σ²)(x − μ).
    for j in 0..3 {
        let (mu, v) = (m.means()[1][j], m.variances()[1][j]);
        assert!((got[j] - (mu + v / (v + 1.0) * (point[j] - mu))).abs() < 1e-5);
    }
    // The null row uses the unconditional responsibilities.
    let r = m.responsibilities(&point, 1.0, None).unwrap();
    for j in 0..3 {
        let expected: f64 = (0..2)
            .map(|k| {
                let (mu, v) = (m.means()[k][j], m.variances()[k][j]);
                r[k] * (mu + v / (v + 1.0) * (point[j] - mu))
            })
            .sum();
        assert!((got[3 + j] - expected).abs() < 1e-5);
    }
}

#[test]
fn similarity_gradients_match_finite_differences() {
    let x = vec![0.3, -1.2, 0.8, 0.1];
    let e = vec![1.0, 0.5, -0.2, 2.0];
    let cosine = |x: &[f64]| {
        let dot: f64 = x.iter().zip(&e).map(|(a, b)| a * b).sum();
        dot / (x.iter().map(|v| v * v).sum::<f64>().sqrt()
            * e.iter().map(|v| v * v).sum::<f64>().sqrt())
    };
    let dot = |x: &[f64]| x.iter().zip(&e).map(|(a, b)| a * b).sum::<f64>();
    for (similarity, f) in [
        (Similarity::Cosine, &cosine as &dyn Fn(&[f64]) -> f64),
        (Similarity::Dot, &dot),
    ] {
        let got = host(similarity_gradient(
            similarity,
            matrix(std::slice::from_ref(&x)),
            matrix(std::slice::from_ref(&e)),
        ));
        for j in 0..4 {
            let h = 1e-6;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[j] += h;
            down[j] -= h;
            let expected = (f(&up) - f(&down)) / (2.0 * h);
            assert!(
                (got[j] - expected).abs() < 1e-5,
                "{similarity:?} dim {j}: {} vs {expected}",
                got[j]
            );
        }
    }
}

#[test]
fn steering_adds_sigma_squared_times_the_weighted_gradients() {
    let m = mixture();
    let e1 = vec![1.0, 0.0, 0.0];
    let e2 = vec![0.0, 1.0, 1.0];
    let steered = Steered::new(
        m.clone(),
        vec![
            SteeringTarget::new(matrix(std::slice::from_ref(&e1)), 0.3).unwrap(),
            SteeringTarget::new(matrix(std::slice::from_ref(&e2)), -0.1).unwrap(),
        ],
        Similarity::Dot,
    )
    .unwrap();
    let x = matrix(&[vec![0.1, 0.2, 0.3], vec![1.0, -1.0, 0.5]]);
    let sigma = Tensor::<B, 1>::from_floats([0.5, 2.0], &Default::default());
    let cond = Conditioning::<B>::unconditional(2, 2, &Default::default()).unwrap();
    let base = host(m.denoise(x.clone(), sigma.clone(), &cond).unwrap());
    let got = host(steered.denoise(x, sigma, &cond).unwrap());
    for (row, s) in [0.5f64, 2.0].iter().enumerate() {
        for j in 0..3 {
            let expected = base[row * 3 + j] + s * s * (0.3 * e1[j] - 0.1 * e2[j]);
            assert!((got[row * 3 + j] - expected).abs() < 1e-5);
        }
    }
}

#[test]
fn sphere_projection_has_the_requested_radius() {
    let m = mixture();
    let x = matrix(&[vec![0.1, 0.2, 0.3], vec![1.0, -1.0, 0.5]]);
    let sigma = Tensor::<B, 1>::full([2], 0.7, &Default::default());
    let cond = Conditioning::<B>::unconditional(2, 2, &Default::default()).unwrap();
    let projected = SphereProjection::with_radius(m.clone(), 2.5).unwrap();
    let out = host(projected.denoise(x, sigma, &cond).unwrap());
    for row in out.chunks(3) {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 2.5).abs() < 1e-5);
    }
    assert!(SphereProjection::with_radius(m, 0.0).is_err());
}

#[test]
fn conditioning_fits_per_query_rows_to_per_seed_batches() {
    let c =
        Conditioning::with_null_rows(matrix(&[vec![1.0, 2.0], vec![3.0, 4.0]]), vec![false, true])
            .unwrap();
    let fitted = c.fit_batch(6).unwrap();
    assert_eq!(fitted.null_rows(), &[false, false, false, true, true, true]);
    assert_eq!(
        host(fitted.embeddings().clone()),
        vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 3.0, 4.0]
    );
    assert!(matches!(
        c.fit_batch(5),
        Err(CoreError::BatchMismatch { .. })
    ));
    assert_eq!(c.fit_batch(2).unwrap().null_rows(), c.null_rows());
    let stacked = Conditioning::cat(&[&c, &c.to_null()]).unwrap();
    assert_eq!(stacked.null_rows(), &[false, true, true, true]);
    let other = Conditioning::<B>::unconditional(1, 3, &Default::default()).unwrap();
    assert!(matches!(
        Conditioning::cat(&[&c, &other]),
        Err(CoreError::DimMismatch { .. })
    ));
    assert!(Conditioning::with_null_rows(matrix(&[vec![1.0, 2.0]]), vec![false, true]).is_err());
    let rows = c.to_host_rows().unwrap();
    assert_eq!(rows, vec![Some(vec![1.0, 2.0]), None]);
}
