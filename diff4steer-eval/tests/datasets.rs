//! The real `jamendo-mood` and MusicCaps data (skipped with a message where ../shared/data is absent).

use std::collections::HashSet;

use diff4steer_eval::{shared_data_dir, JamendoMood, MusicCapsAudio};

#[test]
fn jamendo_mood_loads_and_agrees_with_its_own_counts() {
    let Some(data) = shared_data_dir() else {
        eprintln!(
            "skipping: ../shared/data is not present (real data lives only beside the project)"
        );
        return;
    };
    let mood = JamendoMood::load(&data.join("jamendo-mood")).unwrap();
    assert_eq!(mood.tags.len(), 56);
    assert_eq!(mood.tag_text_embeddings.dim(), (56, 384));
    assert_eq!(mood.pairs.len(), 137);
    assert_eq!(mood.tags[0], "action");
    assert_eq!(mood.tag_texts[0], "action music");
    let train = mood.split("train").unwrap();
    let valid = mood.split("valid").unwrap();
    assert_eq!(train.items.dim(), (2925, 56));
    assert_eq!(valid.items.dim(), (468, 56));
    // tags.tsv's own positive counts equal the label columns.
    let table = diff4steer_eval::io::tsv::Table::read(&data.join("jamendo-mood/tags.tsv")).unwrap();
    let n_train: Vec<usize> = table.parse_column("n_train").unwrap();
    let n_valid: Vec<usize> = table.parse_column("n_valid").unwrap();
    for t in 0..56 {
        assert_eq!(train.relevant(&[t]).len(), n_train[t], "tag {t} train");
        assert_eq!(valid.relevant(&[t]).len(), n_valid[t], "tag {t} valid");
    }
    for pair in &mood.pairs {
        assert_eq!(train.relevant(&[pair.a, pair.b]).len(), pair.count_train);
        assert_eq!(valid.relevant(&[pair.a, pair.b]).len(), pair.count_valid);
    }
    // Artists never straddle the split.
    let train_artists: std::collections::HashSet<&String> = train.artist_ids.iter().collect();
    assert!(valid.artist_ids.iter().all(|a| !train_artists.contains(a)));
    // Text embeddings are unit vectors.
    for row in mood.tag_text_embeddings.rows() {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    // A split that does not exist is a typed error naming the file.
    let err = mood.split("test").unwrap_err().to_string();
    assert!(err.contains("items_test.npy"), "{err}");
}

fn dot(a: ndarray::ArrayView1<f32>, b: ndarray::ArrayView1<f32>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

#[test]
fn musiccaps_audio_loads_and_agrees_with_the_readme() {
    let Some(data) = shared_data_dir() else {
        eprintln!(
            "skipping: ../shared/data is not present (real data lives only beside the project)"
        );
        return;
    };
    let caps = MusicCapsAudio::load_from(&data).unwrap();
    // The README's counts.
    assert_eq!(caps.caption_embeddings.dim(), (5521, 384));
    assert_eq!(caps.clip_aspects.len(), 5521);
    assert_eq!(caps.aspects.len(), 778);
    assert_eq!(caps.aspect_embeddings.dim(), (778, 384));
    assert_eq!(caps.audioset_labels.len(), 527);
    assert_eq!(caps.audioset_labels[0], "Speech");
    let train = caps.split("train").unwrap();
    let valid = caps.split("valid").unwrap();
    let distractors = caps.distractors().unwrap();
    assert_eq!(train.audio.dim(), (2663, 128));
    assert_eq!(valid.audio.dim(), (952, 128));
    assert_eq!(distractors.audio.dim(), (11044, 128));
    assert_eq!(train.captions.dim(), (2663, 384));
    // aspects.tsv's n_clips counts each aspect once per clip over all 5,521 clips (≥ 10 each).
    let table = diff4steer_eval::io::tsv::Table::read(&data.join("musiccaps/aspects.tsv")).unwrap();
    let n_clips: Vec<usize> = table.parse_column("n_clips").unwrap();
    let mut counts = vec![0usize; 778];
    caps.clip_aspects
        .iter()
        .flatten()
        .for_each(|&a| counts[a] += 1);
    assert_eq!(counts, n_clips);
    assert!(n_clips.iter().all(|&n| n >= 10));
    assert_eq!(caps.aspects[0], "low quality");
    // A split's captions are the rows its clips name; its aspects are those of clips.tsv.
    for (i, &r) in valid.csv_rows.iter().enumerate() {
        assert_eq!(valid.captions.row(i), caps.caption_embeddings.row(r));
        assert_eq!(valid.aspects[i], caps.clip_aspects[r]);
    }
    // No YouTube id on two sides, and none of the distractors is a MusicCaps clip.
    let train_ids: HashSet<&String> = train.ytids.iter().collect();
    assert!(valid.ytids.iter().all(|y| !train_ids.contains(y)));
    assert!(distractors
        .ytids
        .iter()
        .all(|y| !train_ids.contains(y) && !valid.ytids.contains(y)));
    // Every distractor carries a music label (the README: "any label under Music").
    assert!(distractors
        .audioset_labels
        .iter()
        .all(|l| l.iter().any(|&c| caps.audioset_is_music[c])));
    // The README's check: mean cosine between a caption and an aspect it carries is 0.339,
    // 0.241 for aspects it does not carry (over all clips).
    let (mut carried, mut n_carried, mut other, mut n_other) = (0.0, 0usize, 0.0, 0usize);
    for (r, aspects) in caps.clip_aspects.iter().enumerate() {
        let caption = caps.caption_embeddings.row(r);
        for a in 0..caps.aspects.len() {
            let c = dot(caption, caps.aspect_embeddings.row(a));
            if aspects.contains(&a) {
                carried += c;
                n_carried += 1;
            } else {
                other += c;
                n_other += 1;
            }
        }
    }
    let (carried, other) = (carried / n_carried as f64, other / n_other as f64);
    assert!((carried - 0.339).abs() < 5e-4, "carried {carried}");
    assert!((other - 0.241).abs() < 5e-4, "not carried {other}");
    // Audio values are means of dequantised VGGish frames q·4/255 + 4/512 − 2, q in 0…255.
    let (low, high) = (4.0 / 512.0 - 2.0, 4.0 + 4.0 / 512.0 - 2.0);
    assert!(train
        .audio
        .iter()
        .all(|&v| (low - 1e-5..=high + 1e-5).contains(&v)));
    // A split that is not there (the held-out test split) is a typed error naming the file.
    let err = caps.split("test").unwrap_err().to_string();
    assert!(err.contains("vggish_test.npy"), "{err}");
}
