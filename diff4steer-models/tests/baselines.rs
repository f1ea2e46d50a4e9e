//! The closed-form anchors against exact answers (a noise-free linear map, brute-force nearest
//! neighbours) and the MusicCaps pair mix against its shares.

mod common;

use common::TestBackend;
use diff4steer_core::SeededNoise;
use diff4steer_eval::{MusicCapsAudio, MusicCapsSplit};
use diff4steer_models::training::{musiccaps_pairs, Batch, PairData, PairMix};
use diff4steer_models::{NearestQuerySeeds, RidgeRegression};
use ndarray::Array2;

/// 200 centred 5-d queries and targets z = 3 + Q·A exactly (A fixed, 3 columns).
fn linear_pairs() -> (Vec<f32>, Vec<f32>) {
    let mut q = SeededNoise::new(4).normal_host(200, 5);
    for c in 0..5 {
        let mean = q.iter().skip(c).step_by(5).sum::<f32>() / 200.0;
        q.iter_mut().skip(c).step_by(5).for_each(|v| *v -= mean);
    }
    let a = [
        [1.0f32, -2.0, 0.5],
        [0.0, 1.0, 1.0],
        [2.0, 0.0, -1.0],
        [-1.0, 0.5, 0.0],
        [0.3, 0.3, 0.3],
    ];
    let t: Vec<f32> = q
        .chunks(5)
        .flat_map(|row| {
            (0..3)
                .map(|c| 3.0 + (0..5).map(|i| row[i] * a[i][c]).sum::<f32>())
                .collect::<Vec<_>>()
        })
        .collect();
    (q, t)
}

#[test]
fn ridge_recovers_a_noise_free_linear_map_and_shrinks_with_lambda() {
    let (q, t) = linear_pairs();
    let data = PairData::from_vecs(q.clone(), 5, t.clone(), 3).unwrap();
    let exact = RidgeRegression::fit(&data, 1e-9).unwrap();
    let predicted = exact.predict_host(&q).unwrap();
    for (p, e) in predicted.iter().zip(&t) {
        assert!((p - e).abs() < 1e-3, "{p} vs {e}");
    }
    // Rows of weight 0 are ignored, however wrong their targets.
    let wrong: Vec<f32> = t.iter().map(|v| -v).collect();
    let weighted = PairData::from_vecs(
        [q.clone(), q.clone()].concat(),
        5,
        [t.clone(), wrong].concat(),
        3,
    )
    .unwrap()
    .with_weights(&[vec![1.0; 200], vec![0.0; 200]].concat())
    .unwrap();
    let same = RidgeRegression::fit(&weighted, 1e-9).unwrap();
    for (p, e) in same.predict_host(&q).unwrap().iter().zip(&t) {
        assert!((p - e).abs() < 1e-3, "{p} vs {e}");
    }
    // A huge penalty shrinks every prediction to the target mean (3).
    let shrunk = RidgeRegression::fit(&data, 1e9).unwrap();
    assert!(shrunk
        .predict_host(&q[..5])
        .unwrap()
        .iter()
        .all(|p| (p - 3.0).abs() < 1e-3));
    // Typed errors.
    assert!(RidgeRegression::fit(&data, -1.0).is_err());
    assert!(exact.predict_host(&[1.0, 2.0]).is_err());
    assert!(exact.predict_host(&[f32::NAN; 5]).is_err());
}

#[test]
fn nearest_query_seeds_equal_brute_force() {
    let mut noise = SeededNoise::new(9);
    let (q, t) = (noise.normal_host(50, 4), noise.normal_host(50, 2));
    let data = PairData::from_vecs(q.clone(), 4, t.clone(), 2).unwrap();
    let nearest = NearestQuerySeeds::new(&data).unwrap();
    let queries = noise.normal_host(6, 4);
    let seeds = nearest.seeds_host(&queries, 3).unwrap();
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt()
            * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    };
    for (i, query) in queries.chunks(4).enumerate() {
        let mut order: Vec<usize> = (0..50).collect();
        order.sort_by(|&a, &b| {
            cos(query, &q[b * 4..b * 4 + 4]).total_cmp(&cos(query, &q[a * 4..a * 4 + 4]))
        });
        for j in 0..3 {
            let r = order[j];
            assert_eq!(
                &seeds[(i * 3 + j) * 2..(i * 3 + j + 1) * 2],
                &t[r * 2..r * 2 + 2]
            );
        }
    }
    assert!(nearest.seeds_host(&queries, 0).is_err());
    let zero = PairData::from_vecs(vec![0.0; 4], 4, vec![1.0; 2], 2).unwrap();
    assert!(NearestQuerySeeds::new(&zero).is_err());
}

fn miniature() -> (MusicCapsAudio, MusicCapsSplit) {
    let caps = MusicCapsAudio {
        text_dir: "text".into(),
        audio_dir: "audio".into(),
        aspects: vec!["rock".into(), "piano".into()],
        aspect_embeddings: Array2::from_elem((2, 3), 0.5),
        caption_embeddings: Array2::from_elem((4, 3), 1.0),
        clip_aspects: vec![vec![0], vec![0, 1], vec![], vec![1]],
        audioset_labels: vec!["Music".into()],
        audioset_is_music: vec![true],
    };
    let train = MusicCapsSplit {
        name: "train".into(),
        audio: Array2::from_shape_fn((4, 2), |(r, j)| (r * 2 + j) as f32),
        captions: Array2::from_elem((4, 3), 1.0),
        aspects: caps.clip_aspects.clone(),
        audioset_labels: vec![vec![0]; 4],
        csv_rows: vec![0, 1, 2, 3],
        ytids: (0..4).map(|r| format!("y{r}")).collect(),
    };
    (caps, train)
}

#[test]
fn the_pair_mix_draws_each_kind_at_its_share() {
    let (caps, train) = miniature();
    let distractors = vec![9.0f32; 3 * 2];
    let mix = PairMix {
        caption_share: 0.6,
        target_only_share: 0.2,
    };
    let data = musiccaps_pairs(&caps, &train, Some(&distractors), mix).unwrap();
    // 4 captions, 4 aspect pairs (clips 0, 1, 1, 3), 3 target-only rows.
    assert_eq!((data.rows(), data.conditional_rows()), (11, 8));
    assert_eq!(&data.queries()[4 * 3..4 * 3 + 3], &[0.5, 0.5, 0.5]);
    assert_eq!(&data.targets()[5 * 2..5 * 2 + 2], &[2.0, 3.0]);
    let mut rng = Batch::<TestBackend>::step_rng(3, 0);
    let mut counts = [0usize; 3];
    for _ in 0..40_000 {
        let r = data.draw_row(&mut rng, false);
        counts[if r < 4 {
            0
        } else if r < 8 {
            1
        } else {
            2
        }] += 1;
    }
    let shares: Vec<f64> = counts.iter().map(|&c| c as f64 / 40_000.0).collect();
    for (got, want) in shares.iter().zip([0.8 * 0.6, 0.8 * 0.4, 0.2]) {
        assert!((got - want).abs() < 0.01, "{shares:?}");
    }
    // Captions only, no target-only rows.
    let plain = musiccaps_pairs(
        &caps,
        &train,
        None,
        PairMix {
            caption_share: 1.0,
            target_only_share: 0.0,
        },
    )
    .unwrap();
    assert_eq!((plain.rows(), plain.conditional_rows()), (4, 4));
    // Shares out of range, or target-only draws without rows, are typed errors.
    for bad in [
        PairMix {
            caption_share: 1.5,
            target_only_share: 0.0,
        },
        PairMix {
            caption_share: 0.5,
            target_only_share: 1.0,
        },
        PairMix {
            caption_share: 0.5,
            target_only_share: 0.3,
        },
    ] {
        assert!(
            musiccaps_pairs(&caps, &train, None, bad).is_err(),
            "{bad:?}"
        );
    }
}
