//! Catalogue preprocessing against statistics computed independently (float64, by hand).

use diff4steer_index::{
    FlatIndex, IndexError, Preprocessing, Preprocessor, Similarity, VectorIndex,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` rows of A·z + offset, z standard normal (Box–Muller), A lower-triangular with a wide
/// spread of scales: strongly correlated, anisotropic, off-centre.
fn correlated(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = move || {
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let a: Vec<f64> = (0..dim * dim)
        .map(|k| {
            let (i, j) = (k / dim, k % dim);
            if j <= i {
                (i + 1) as f64 * (1.0 + 0.3 * (k as f64).sin())
            } else {
                0.0
            }
        })
        .collect();
    (0..n)
        .flat_map(|_| {
            let z: Vec<f64> = (0..dim).map(|_| normal()).collect();
            (0..dim)
                .map(|i| (5.0 + (0..dim).map(|j| a[i * dim + j] * z[j]).sum::<f64>()) as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Mean vector and covariance matrix (float64, population).
fn moments(rows: &[f32], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() / dim;
    let mut mean = vec![0.0; dim];
    for r in rows.chunks(dim) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += f64::from(v) / n as f64;
        }
    }
    let mut cov = vec![0.0; dim * dim];
    for r in rows.chunks(dim) {
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] +=
                    (f64::from(r[i]) - mean[i]) * (f64::from(r[j]) - mean[j]) / n as f64;
            }
        }
    }
    (mean, cov)
}

#[test]
fn centring_and_standardising_give_zero_mean_and_unit_variance() {
    let dim = 5;
    let mut rows = correlated(4000, dim, 1);
    for r in rows.chunks_mut(dim) {
        r[2] = 3.0; // a constant dimension: centred, never divided by zero
    }
    let centred = Preprocessor::fit(Preprocessing::Centre, &rows, dim).unwrap();
    let (mean, cov_raw) = moments(&rows, dim);
    let (m, cov) = moments(&centred.apply(&rows).unwrap(), dim);
    for i in 0..dim {
        assert!(m[i].abs() < 1e-3, "centre mean {i}: {}", m[i]);
        assert!(
            (cov[i * dim + i] - cov_raw[i * dim + i]).abs() < 1e-3 * cov_raw[i * dim + i].max(1.0)
        );
        assert!((f64::from(centred.mean()[i]) - mean[i]).abs() < 1e-4 * mean[i].abs().max(1.0));
    }
    let standard = Preprocessor::fit(Preprocessing::Standardise, &rows, dim).unwrap();
    let out = standard.apply(&rows).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
    let (m, cov) = moments(&out, dim);
    for i in 0..dim {
        assert!(m[i].abs() < 1e-3, "standardise mean {i}");
        let expected = if i == 2 { 0.0 } else { 1.0 };
        assert!(
            (cov[i * dim + i] - expected).abs() < 1e-3,
            "var {i}: {}",
            cov[i * dim + i]
        );
    }
}

#[test]
fn whitening_gives_identity_covariance() {
    let dim = 6;
    let rows = correlated(5000, dim, 2);
    let (_, cov_raw) = moments(&rows, dim);
    assert!(cov_raw[dim * dim - 1] > 20.0, "the input is far from white");
    let white = Preprocessor::fit(Preprocessing::Whiten { epsilon: 0.0 }, &rows, dim).unwrap();
    let (m, cov) = moments(&white.apply(&rows).unwrap(), dim);
    for i in 0..dim {
        assert!(m[i].abs() < 1e-3);
        for j in 0..dim {
            let expected = if i == j { 1.0 } else { 0.0 };
            assert!(
                (cov[i * dim + j] - expected).abs() < 1e-3,
                "cov[{i},{j}] = {}",
                cov[i * dim + j]
            );
        }
    }
    // Regularised: every output variance is λ / (λ + ε·mean λ) < 1, and the weak directions
    // shrink the most.
    let regular = Preprocessor::fit(Preprocessing::WHITEN, &rows, dim).unwrap();
    let (_, cov) = moments(&regular.apply(&rows).unwrap(), dim);
    let trace: f64 = (0..dim).map(|i| cov[i * dim + i]).sum();
    assert!(
        trace < dim as f64 && trace > 0.5 * dim as f64,
        "trace {trace}"
    );
}

#[test]
fn whitening_matches_a_hand_computed_case() {
    // Four points on the axes of a rotated ellipse: ±2 along u = (1, 1)/√2, ±1/2 along
    // v = (1, −1)/√2, around the centre (3, −1). Covariance = 2·uuᵀ + 1/8·vvᵀ, so whitening maps
    // them to ±1 on one output axis and ±1 on the other (up to sign and axis order).
    let s = std::f32::consts::FRAC_1_SQRT_2;
    let (cx, cy) = (3.0f32, -1.0f32);
    let rows = [
        cx + 2.0 * s,
        cy + 2.0 * s,
        cx - 2.0 * s,
        cy - 2.0 * s,
        cx + 0.5 * s,
        cy - 0.5 * s,
        cx - 0.5 * s,
        cy + 0.5 * s,
    ];
    let white = Preprocessor::fit(Preprocessing::Whiten { epsilon: 0.0 }, &rows, 2).unwrap();
    let out = white.apply(&rows).unwrap();
    let (a, b) = (out[0].abs(), out[1].abs());
    let along_first = a > b;
    for (k, point) in out.chunks(2).enumerate() {
        let (big, small) = if (k < 2) == along_first {
            (point[0], point[1])
        } else {
            (point[1], point[0])
        };
        assert!(
            (big.abs() - 2f32.sqrt()).abs() < 1e-4,
            "point {k}: {point:?}"
        );
        assert!(small.abs() < 1e-4, "point {k}: {point:?}");
    }
    // (±2 along u has variance 2 over the four points, so it maps to ±2/√2 = ±√2; likewise ±1/2
    // along v, variance 1/8, maps to ±(1/2)/√(1/8) = ±√2.)
}

#[test]
fn preprocessing_removes_a_dominant_common_direction() {
    // Items of 8 clusters in 14 dimensions plus 2 high-variance nuisance axes unrelated to the
    // clusters (as a "loudness" axis would be): raw cosine mostly sees the nuisance; centring
    // alone does not help; standardising or whitening the catalogue lets the clusters show.
    let dim = 16;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut uniform = move || rng.random::<f32>() - 0.5;
    let centres: Vec<f32> = (0..8 * dim).map(|_| uniform() * 2.0).collect();
    let mut make = |count: usize| -> (Vec<f32>, Vec<usize>) {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..count {
            let c = i % 8;
            labels.push(c);
            let nuisance = [40.0 * uniform(), 40.0 * uniform()];
            rows.extend((0..dim).map(|d| match d {
                0 | 1 => nuisance[d],
                _ => centres[c * dim + d] + 0.3 * uniform(),
            }));
        }
        (rows, labels)
    };
    let (items, item_labels) = make(800);
    let (queries, query_labels) = make(40);
    let precision = |kind: Preprocessing| {
        let p = Preprocessor::fit(kind, &items, dim).unwrap();
        let index =
            FlatIndex::from_rows(dim, Similarity::Cosine, &p.apply(&items).unwrap()).unwrap();
        let hits = index.search(&p.apply(&queries).unwrap(), 20).unwrap();
        let correct: usize = hits
            .iter()
            .zip(&query_labels)
            .map(|(h, &l)| {
                h.iter()
                    .filter(|hit| item_labels[hit.id as usize] == l)
                    .count()
            })
            .sum();
        correct as f64 / (20 * query_labels.len()) as f64
    };
    let raw = precision(Preprocessing::None);
    let centred = precision(Preprocessing::Centre);
    assert!(centred < 0.7, "centring alone: {centred}");
    for kind in [Preprocessing::Standardise, Preprocessing::WHITEN] {
        let fixed = precision(kind);
        assert!(fixed > 0.9, "{kind} precision@20 {fixed}");
        assert!(raw < fixed - 0.2, "raw {raw} vs {kind} {fixed}");
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(matches!(
        Preprocessor::fit(Preprocessing::Centre, &[], 4),
        Err(IndexError::Shape { .. })
    ));
    assert!(matches!(
        Preprocessor::fit(Preprocessing::Centre, &[1.0, 2.0, 3.0], 2),
        Err(IndexError::DimMismatch { .. })
    ));
    assert!(matches!(
        Preprocessor::fit(Preprocessing::WHITEN, &[1.0, f32::NAN], 2),
        Err(IndexError::NonFinite { .. })
    ));
    assert!(matches!(
        Preprocessor::fit(Preprocessing::Whiten { epsilon: -1.0 }, &[1.0, 2.0], 2),
        Err(IndexError::InvalidParameter { .. })
    ));
    let p = Preprocessor::fit(Preprocessing::Standardise, &[1.0, 2.0, 3.0, 5.0], 2).unwrap();
    assert!(matches!(
        p.apply(&[1.0, 2.0, 3.0]),
        Err(IndexError::DimMismatch { .. })
    ));
    assert!(matches!(
        p.apply(&[1.0, f32::INFINITY]),
        Err(IndexError::NonFinite { .. })
    ));
    assert!("sphere".parse::<Preprocessing>().is_err());
    for kind in [
        Preprocessing::None,
        Preprocessing::Centre,
        Preprocessing::Standardise,
        Preprocessing::WHITEN,
    ] {
        assert_eq!(kind.name().parse::<Preprocessing>().unwrap(), kind);
    }
}

#[test]
fn the_text_form_gives_back_exactly_the_same_transform() {
    let dim = 6;
    let rows = correlated(300, dim, 11);
    let probe = correlated(20, dim, 12);
    for kind in [
        Preprocessing::None,
        Preprocessing::Centre,
        Preprocessing::Standardise,
        Preprocessing::Whiten { epsilon: 0.0 },
        Preprocessing::WHITEN,
    ] {
        let fitted = Preprocessor::fit(kind, &rows, dim).unwrap();
        let text = fitted.to_text();
        assert!(text.is_ascii() && !text.contains('\n'), "{text}");
        let read = Preprocessor::from_text(&text).unwrap();
        assert_eq!(read, fitted, "{kind}");
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert_eq!(
            bits(read.apply(&probe).unwrap()),
            bits(fitted.apply(&probe).unwrap()),
            "{kind}"
        );
    }
}

#[test]
fn a_malformed_text_form_is_a_typed_error() {
    let fitted = Preprocessor::fit(Preprocessing::Standardise, &correlated(50, 3, 13), 3).unwrap();
    let good = fitted.to_text();
    let words: Vec<&str> = good.split(' ').collect();
    let with = |i: usize, word: &str| {
        let mut w = words.clone();
        w[i] = word;
        w.join(" ")
    };
    let short_mean = &words[3][..16];
    let nan = format!("{}{:08x}", &words[3][..16], f32::NAN.to_bits());
    for text in [
        String::new(),
        "diff4steer-preprocessor-v1 none 3".to_owned(),
        with(0, "other-tag"),
        with(1, "rotate"),
        with(1, "whiten:abc"),
        with(2, "0"),
        with(2, "4"),
        with(3, short_mean),
        with(3, &nan),
        with(3, "zzzzzzzzzzzzzzzzzzzzzzzz"),
        with(4, "-"),
        with(1, "centre"),
    ] {
        assert!(
            matches!(
                Preprocessor::from_text(&text),
                Err(IndexError::InvalidParameter { .. })
            ),
            "{text}"
        );
    }
}
