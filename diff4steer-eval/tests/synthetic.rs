//! The synthetic music world: reproducible, unit-norm, calibrated to the real spectrum, and with
//! multi-modal relevant sets that the item geometry actually reflects.

use std::path::Path;

use diff4steer_eval::io::tsv::Table;
use diff4steer_eval::{qrels_of, EvalError, MusicWorld, MusicWorldConfig, Spectrum};
use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::Array2;

/// Covariance eigenvalues of the rows, descending, as shares of the total.
fn spectrum_shares(items: &Array2<f32>) -> Vec<f64> {
    let (n, d) = items.dim();
    let mean: Vec<f64> = (0..d)
        .map(|j| items.column(j).iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64)
        .collect();
    let centred = DMatrix::from_fn(n, d, |i, j| f64::from(items[(i, j)]) - mean[j]);
    let cov = (centred.transpose() * &centred) / n as f64;
    let mut eig: Vec<f64> = SymmetricEigen::new(cov)
        .eigenvalues
        .iter()
        .copied()
        .collect();
    eig.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = eig.iter().sum();
    eig.iter().map(|e| e / total).collect()
}

fn components_for(shares: &[f64], fraction: f64) -> usize {
    let mut sum = 0.0;
    for (i, s) in shares.iter().enumerate() {
        sum += s;
        if sum >= fraction {
            return i + 1;
        }
    }
    shares.len()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum()
}

#[test]
fn same_seed_same_world_and_unit_items() {
    let config = MusicWorldConfig {
        items: 500,
        ..MusicWorldConfig::default()
    };
    let a = MusicWorld::generate(&config).unwrap();
    assert_eq!(a, MusicWorld::generate(&config).unwrap());
    let other = MusicWorld::generate(&MusicWorldConfig {
        seed: 1,
        ..config.clone()
    })
    .unwrap();
    assert_ne!(a.items(), other.items());
    assert_eq!(a.items().dim(), (500, 64));
    assert_eq!(a.text_views().dim(), (500, 48));
    assert_eq!(a.image_views().dim(), (500, 32));
    for row in a.items().rows() {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    for row in a.text_views().rows() {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}

#[test]
fn the_catalogue_has_the_real_spaces_spectrum_and_mean() {
    let world = MusicWorld::generate(&MusicWorldConfig::muq_mulan()).unwrap();
    let items = world.items();
    let n = items.nrows() as f64;
    let mean_norm = (0..items.ncols())
        .map(|j| (items.column(j).sum() as f64 / n).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((mean_norm - 0.577).abs() < 0.03, "mean norm {mean_norm}");
    let shares = spectrum_shares(items);
    // The real space (README of ../shared/data/muq-mulan-prior): 7, 19, 28, 37, 57 components
    // for 50, 80, 90, 95, 99 % of the variance. Normalising rows bends the spectrum a little.
    for (fraction, real) in [(0.5, 7), (0.8, 19), (0.9, 28), (0.95, 37)] {
        let got = components_for(&shares, fraction);
        let (lo, hi) = (real as f64 * 0.7, real as f64 * 1.3 + 1.0);
        assert!(
            (lo..=hi).contains(&(got as f64)),
            "{fraction}: {got} components vs {real}"
        );
    }
    // Against the file itself, where it is present.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/muq-mulan-prior/spectrum.tsv");
    if !path.exists() {
        eprintln!(
            "skipping the comparison with {}: not present",
            path.display()
        );
        return;
    }
    let table = Table::read(&path).unwrap();
    let real: Vec<f64> = table.parse_column("eigenvalue_sample_est").unwrap();
    let total: f64 = real.iter().map(|v| v.max(0.0)).sum();
    let real_shares: Vec<f64> = real.iter().map(|v| v.max(0.0) / total).collect();
    let fitted = Spectrum::MuqMulan.eigenvalues(512).unwrap();
    for fraction in [0.5, 0.8, 0.9, 0.95] {
        let (r, f) = (
            components_for(&real_shares, fraction),
            components_for(&fitted, fraction),
        );
        assert!(r.abs_diff(f) <= 1, "{fraction}: fitted {f}, real {r}");
    }
    let participation = |s: &[f64]| 1.0 / s.iter().map(|x| x * x).sum::<f64>();
    let (pr_real, pr_fit) = (participation(&real_shares), participation(&fitted));
    assert!(
        (pr_real - pr_fit).abs() < 0.5,
        "participation {pr_fit} vs {pr_real}"
    );
}

#[test]
fn queries_are_multi_modal_and_the_geometry_reflects_the_tags() {
    let world = MusicWorld::generate(&MusicWorldConfig::default()).unwrap();
    let queries = world.queries(true, 20, 7);
    let singles: Vec<_> = queries.iter().filter(|q| q.tags.len() == 1).collect();
    assert_eq!(
        singles.len(),
        world.config().tags,
        "every tag has ≥ 20 items"
    );
    assert!(queries.len() > singles.len(), "some tag pairs co-occur");
    for q in &queries {
        for &i in &q.relevant {
            assert!(q.tags.iter().all(|t| world.item_tags()[i].contains(t)));
        }
        assert_eq!(q.modes.len(), q.relevant.len());
    }
    let mean_modes =
        singles.iter().map(|q| q.mode_count()).sum::<usize>() as f64 / singles.len() as f64;
    assert!(
        mean_modes >= 5.0,
        "a single tag spans {mean_modes} styles on average"
    );
    // Items sharing a tag are closer than items in general, and items sharing a style closer
    // still: the modes are real clusters.
    let rows: Vec<&[f32]> = world
        .items()
        .rows()
        .into_iter()
        .map(|r| r.to_slice().unwrap())
        .collect();
    let mean_pair = |pairs: &mut dyn Iterator<Item = (usize, usize)>| {
        let (mut sum, mut count) = (0.0, 0);
        for (a, b) in pairs {
            sum += cosine(rows[a], rows[b]);
            count += 1;
        }
        sum / count as f64
    };
    let n = rows.len();
    let overall = mean_pair(&mut (0..2000).map(|i| (i * 7 % n, (i * 13 + 5) % n)));
    let q = &singles[0];
    let same_tag =
        mean_pair(&mut (0..q.relevant.len() - 1).map(|i| (q.relevant[i], q.relevant[i + 1])));
    let same_style = {
        let mut pairs = Vec::new();
        for (i, &a) in q.relevant.iter().enumerate() {
            for (j, &b) in q.relevant.iter().enumerate().skip(i + 1) {
                if q.modes[i] == q.modes[j] {
                    pairs.push((a, b));
                }
            }
        }
        mean_pair(&mut pairs.into_iter())
    };
    assert!(
        same_tag > overall + 0.05,
        "tag {same_tag} vs overall {overall}"
    );
    assert!(
        same_style > same_tag + 0.05,
        "style {same_style} vs tag {same_tag}"
    );
    // A query's text view is nearer to its own tag's item views than to others'.
    let own: f64 = q
        .relevant
        .iter()
        .map(|&i| cosine(&q.text, world.text_views().row(i).to_slice().unwrap()))
        .sum::<f64>()
        / q.relevant.len() as f64;
    let all: f64 = (0..n)
        .map(|i| cosine(&q.text, world.text_views().row(i).to_slice().unwrap()))
        .sum::<f64>()
        / n as f64;
    assert!(own > all + 0.1, "text view: own {own} vs all {all}");
    let qrels = qrels_of(&queries);
    assert_eq!(qrels.len(), queries.len());
}

#[test]
fn invalid_configs_are_errors() {
    let bad = [
        MusicWorldConfig {
            items: 0,
            ..Default::default()
        },
        MusicWorldConfig {
            dim: 0,
            ..Default::default()
        },
        MusicWorldConfig {
            tags_per_artist: 49,
            ..Default::default()
        },
        MusicWorldConfig {
            drop_tag: 1.5,
            ..Default::default()
        },
        MusicWorldConfig {
            noise_scale: f64::NAN,
            ..Default::default()
        },
        MusicWorldConfig {
            mean_norm: 1.0,
            ..Default::default()
        },
        MusicWorldConfig {
            spectrum: Spectrum::Explicit(vec![1.0; 3]),
            ..Default::default()
        },
        MusicWorldConfig {
            spectrum: Spectrum::PowerLaw { alpha: -1.0 },
            ..Default::default()
        },
    ];
    for config in bad {
        assert!(
            matches!(
                MusicWorld::generate(&config),
                Err(EvalError::InvalidParameter { .. })
            ),
            "{config:?}"
        );
    }
}
