//! The MusicCaps protocols on a hand-made miniature (queries, relevance, steering cases) and their
//! scores against hand-computed values.

use diff4steer_eval::protocols::{
    aspect_queries, aspect_scores, caption_queries, caption_scores, steering_cases,
    steering_scores, ProtocolQuery, SteeringCase,
};
use diff4steer_eval::{MusicCapsAudio, MusicCapsSplit};
use ndarray::Array2;

/// Three aspects; the text side of six clips.
fn caps() -> MusicCapsAudio {
    MusicCapsAudio {
        text_dir: "text".into(),
        audio_dir: "audio".into(),
        aspects: vec!["rock".into(), "piano".into(), "calm".into()],
        aspect_embeddings: Array2::from_shape_fn((3, 2), |(a, j)| (a * 2 + j) as f32),
        caption_embeddings: Array2::from_shape_fn((6, 2), |(r, j)| (10 * r + j) as f32),
        clip_aspects: vec![vec![0], vec![0, 1], vec![1], vec![0, 2], vec![2], vec![0]],
        audioset_labels: vec!["Music".into()],
        audioset_is_music: vec![true],
    }
}

fn split(name: &str, csv_rows: Vec<usize>) -> MusicCapsSplit {
    let c = caps();
    let n = csv_rows.len();
    MusicCapsSplit {
        name: name.into(),
        audio: Array2::from_shape_fn((n, 2), |(r, j)| (r + j) as f32),
        captions: Array2::from_shape_fn((n, 2), |(r, j)| c.caption_embeddings[(csv_rows[r], j)]),
        aspects: csv_rows
            .iter()
            .map(|&r| c.clip_aspects[r].clone())
            .collect(),
        audioset_labels: vec![vec![0]; n],
        ytids: (0..n).map(|r| format!("{name}{r}")).collect(),
        csv_rows,
    }
}

#[test]
fn queries_relevance_and_steering_cases_follow_the_splits() {
    let (caps, train, eval) = (
        caps(),
        split("train", vec![0, 1, 2]),
        split("eval", vec![3, 4, 5]),
    );
    let captions = caption_queries(&eval);
    assert_eq!(captions.len(), 3);
    assert_eq!(captions[1].text, vec![40.0, 41.0]);
    assert_eq!(captions[1].relevant, vec![1]);
    // rock: 2 training clips, 2 evaluated clips; piano: none evaluated; calm: none in training.
    let aspects = aspect_queries(&caps, &train, &eval, 2);
    assert_eq!(aspects.len(), 1);
    assert_eq!(aspects[0].aspect, 0);
    assert_eq!(aspects[0].query.relevant, vec![0, 2]);
    assert_eq!(aspects[0].query.text, vec![0.0, 1.0]);
    assert!(aspect_queries(&caps, &train, &eval, 3).is_empty());
    // Steering toward rock: only clip 1 (calm) does not carry it.
    let cases = steering_cases(&caps, &train, &eval, 2, 1, 5, 7).unwrap();
    assert_eq!(cases, vec![SteeringCase { clip: 1, aspect: 0 }]);
    assert!(steering_cases(&caps, &train, &eval, 2, 2, 5, 7).is_err());
}

fn query(relevant: Vec<usize>) -> ProtocolQuery {
    ProtocolQuery {
        name: "q".into(),
        text: vec![0.0],
        relevant,
    }
}

#[test]
fn caption_scores_match_hand_computed_values() {
    // The clip sits at ranks 1, 3, 12 and nowhere.
    let mut deep: Vec<u64> = (100..111).collect();
    deep.push(2);
    let lists = vec![vec![0, 5, 6], vec![7, 8, 1], deep, vec![9, 9, 9]];
    let queries = vec![
        query(vec![0]),
        query(vec![1]),
        query(vec![2]),
        query(vec![3]),
    ];
    let s = caption_scores(&lists, &queries).unwrap();
    assert_eq!(s.recall_1, 0.25);
    assert_eq!(s.recall_5, 0.5);
    assert_eq!(s.recall_10, 0.5);
    assert!((s.mrr - (1.0 + 1.0 / 3.0 + 1.0 / 12.0) / 4.0).abs() < 1e-12);
    // Ranks 1, 3, 12, ∞: the median is (3 + 12)/2.
    assert_eq!(s.median_rank, Some(7.5));
    // Three of four missing: the median lies past the lists.
    let missing = caption_scores(&[vec![0], vec![9], vec![9], vec![9]], &queries).unwrap();
    assert_eq!(missing.median_rank, None);
    assert!(caption_scores(&lists[..2], &queries).is_err());
}

#[test]
fn aspect_and_steering_scores_match_hand_computed_values() {
    // Items: 0 and 1 identical, 2 orthogonal to them.
    let vectors = [1.0f32, 0.0, 1.0, 0.0, 0.0, 1.0];
    let lists = vec![vec![0u64, 2, 1]];
    let queries = vec![query(vec![0, 1])];
    let s = aspect_scores(&lists, &queries, &vectors, 2).unwrap();
    // DCG = 1 + 1/log2(4), ideal 1 + 1/log2(3).
    let ndcg = (1.0 + 0.5) / (1.0 + 1.0 / 3f64.log2());
    assert!((s.ndcg_10 - ndcg).abs() < 1e-12);
    assert_eq!(s.recall_50, 1.0);
    assert_eq!(s.coverage_100, 1.0);
    // Pairs (0,2), (0,1), (2,1): distances 1, 0, 1.
    assert!((s.diversity_20 - 2.0 / 3.0).abs() < 1e-9);
    assert!(aspect_scores(&[vec![7]], &queries, &vectors, 2).is_err());

    let eval = split("eval", vec![3, 4, 5]); // aspects [0, 2], [2], [0]
    let cases = [SteeringCase { clip: 1, aspect: 0 }];
    // Top 20 holds clips 0 and 2 (both rock) and 18 distractors; clip 1 is at rank 3.
    let mut list: Vec<u64> = vec![0, 2, 1];
    list.extend(100..117);
    let s = steering_scores(&[list], &cases, &eval).unwrap();
    assert_eq!(s.share_b_20, 2.0 / 20.0);
    assert_eq!(s.recall_10, 1.0);
}
