//! Set and distribution metrics against hand-computed values.

use std::collections::{HashMap, HashSet};

use diff4steer_eval::{
    coverage_at_k, frechet_distance, intra_list_diversity, label_entropy, mean_nearest_cosine,
    mode_coverage_at_k, prdc, vendi_score, EvalError,
};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn coverage_and_mode_coverage() {
    let relevant: HashSet<u64> = [1, 2, 3, 4].into();
    let ranked = [9, 1, 8, 2, 3];
    assert_eq!(coverage_at_k(&ranked, &relevant, 2), 0.25);
    assert_eq!(coverage_at_k(&ranked, &relevant, 100), 0.75);
    assert_eq!(coverage_at_k(&ranked, &HashSet::new(), 5), 0.0);
    // Modes: {1, 2} → "a", {3} → "b", {4} → "c".
    let modes: HashMap<u64, &str> = [(1, "a"), (2, "a"), (3, "b"), (4, "c")].into();
    assert!(close(
        mode_coverage_at_k(&ranked, &modes, 4),
        1.0 / 3.0,
        1e-12
    ));
    assert!(close(
        mode_coverage_at_k(&ranked, &modes, 5),
        2.0 / 3.0,
        1e-12
    ));
    assert_eq!(mode_coverage_at_k::<&str>(&ranked, &HashMap::new(), 5), 0.0);
}

#[test]
fn intra_list_diversity_vendi_and_entropy() {
    // Three unit vectors: e1, e2 and (e1 + e2)/√2: distances 1, 1 − 1/√2, 1 − 1/√2.
    let s = std::f32::consts::FRAC_1_SQRT_2;
    let v = [1.0, 0.0, 0.0, 1.0, s, s];
    let expected = (1.0 + 2.0 * (1.0 - f64::from(s))) / 3.0;
    assert!(close(intra_list_diversity(&v, 2).unwrap(), expected, 1e-6));
    assert_eq!(intra_list_diversity(&v[..2], 2).unwrap(), 0.0);
    // Vendi: n identical vectors → 1; n orthogonal → n; two at cosine c → eigenvalues (1 ± c)/2.
    assert!(close(
        vendi_score(&[1.0, 2.0, 2.0, 4.0, 3.0, 6.0], 2).unwrap(),
        1.0,
        1e-9
    ));
    let eye = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    assert!(close(vendi_score(&eye, 3).unwrap(), 3.0, 1e-9));
    let c = 0.6f64;
    let pair = [1.0, 0.0, 0.6, 0.8];
    let (l1, l2) = ((1.0 + c) / 2.0, (1.0 - c) / 2.0);
    let expected = (-(l1 * l1.ln()) - l2 * l2.ln()).exp();
    assert!(close(vendi_score(&pair, 2).unwrap(), expected, 1e-6));
    assert_eq!(vendi_score(&[], 2).unwrap(), 0.0);
    // Entropy: two equally frequent labels → ln 2; one label → 0.
    assert!(close(label_entropy(["a", "b", "a", "b"]), 2f64.ln(), 1e-12));
    assert_eq!(label_entropy(["a", "a"]), 0.0);
    assert_eq!(label_entropy(Vec::<u8>::new()), 0.0);
    assert!(matches!(
        intra_list_diversity(&[1.0, f32::NAN], 2),
        Err(EvalError::NonFinite { .. })
    ));
    assert!(matches!(
        vendi_score(&[1.0, 2.0, 3.0], 2),
        Err(EvalError::Shape { .. })
    ));
}

#[test]
fn frechet_distance_matches_the_closed_form() {
    // A = {±a_i e_i}, B = {±b_i e_i + c}: means 0 and c, covariances diagonal
    // diag(2a_i² / (2d − 1)) and diag(2b_i² / (2d − 1)), so
    // FD = |c|² + Σ_i (√va_i − √vb_i)².
    let d = 3;
    let (a, b, c) = ([1.0f32, 2.0, 0.5], [0.5f32, 1.0, 3.0], [0.3f32, -0.2, 1.0]);
    let points = |scale: &[f32; 3], shift: &[f32; 3]| -> Vec<f32> {
        let mut rows = Vec::new();
        for (i, &length) in scale.iter().enumerate() {
            for sign in [1.0f32, -1.0] {
                rows.extend((0..d).map(|j| if i == j { sign * length } else { 0.0 } + shift[j]));
            }
        }
        rows
    };
    let set_a = points(&a, &[0.0; 3]);
    let set_b = points(&b, &c);
    let var = |x: f32| 2.0 * f64::from(x).powi(2) / (2 * d - 1) as f64;
    let expected: f64 = c.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>()
        + (0..d)
            .map(|i| (var(a[i]).sqrt() - var(b[i]).sqrt()).powi(2))
            .sum::<f64>();
    let got = frechet_distance(&set_a, &set_b, d).unwrap();
    assert!(close(got, expected, 1e-6), "{got} vs {expected}");
    assert!(frechet_distance(&set_a, &set_a, d).unwrap() < 1e-9);
    // A 1-D case.
    let one_a = [0.0f32, 2.0];
    let one_b = [1.0f32, 5.0];
    // means 1 and 3, sample sds √2 and √8: FD = 4 + (√2 − √8)² = 4 + 2 = 6.
    assert!(close(
        frechet_distance(&one_a, &one_b, 1).unwrap(),
        6.0,
        1e-9
    ));
    assert!(matches!(
        frechet_distance(&one_a[..1], &one_b, 1),
        Err(EvalError::Shape { .. })
    ));
}

#[test]
fn prdc_and_nearest_cosine_match_hand_computation() {
    // Real {0, 1, 3}, k = 1: radii 1, 1, 2. Generated {0.5, 10, 2.9}: radii 2.4, 7.1, 2.4.
    let real = [0.0f32, 1.0, 3.0];
    let fake = [0.5f32, 10.0, 2.9];
    let p = prdc(&real, &fake, 1, 1).unwrap();
    assert!(close(p.precision, 2.0 / 3.0, 1e-12), "{p:?}");
    assert!(close(p.recall, 1.0, 1e-12), "{p:?}");
    assert!(close(p.density, 1.0, 1e-12), "{p:?}");
    assert!(close(p.coverage, 1.0, 1e-12), "{p:?}");
    // Moving the far sample next to nothing real lowers precision only.
    let real4 = [0.0f32, 1.0, 3.0, 20.0];
    let p = prdc(&real4, &fake, 1, 1).unwrap();
    // Radii: 1, 1, 2, 17. 10 is within 17 of 20 now: precision 1; density (2 + 1 + 1)/3.
    assert!(close(p.precision, 1.0, 1e-12), "{p:?}");
    assert!(close(p.density, 4.0 / 3.0, 1e-12), "{p:?}");
    // Coverage: real 20's nearest generated is 10 (distance 10 < 17): all 4 covered.
    assert!(close(p.coverage, 1.0, 1e-12), "{p:?}");
    assert!(matches!(
        prdc(&real, &fake, 1, 0),
        Err(EvalError::InvalidParameter { .. })
    ));
    assert!(matches!(
        prdc(&real, &fake, 1, 3),
        Err(EvalError::Shape { .. })
    ));
    let r = [1.0f32, 0.0, 0.0, 1.0];
    let g = [1.0f32, 1.0, 1.0, 0.0];
    let expected = (f64::from(std::f32::consts::FRAC_1_SQRT_2) + 1.0) / 2.0;
    assert!(close(
        mean_nearest_cosine(&r, &g, 2).unwrap(),
        expected,
        1e-6
    ));
}
