//! Fusion strategies against rankings computed by hand.

use diff4steer_index::{fuse, Fusion, Hit, IndexError};

fn h(id: u64, score: f32) -> Hit {
    Hit::new(id, score)
}

/// Two seeds' lists of one query:
/// seed A: 1 (0.9), 2 (0.8), 3 (0.5)
/// seed B: 4 (0.95), 2 (0.7), 5 (0.6)
fn lists() -> Vec<Vec<Hit>> {
    vec![
        vec![h(1, 0.9), h(2, 0.8), h(3, 0.5)],
        vec![h(4, 0.95), h(2, 0.7), h(5, 0.6)],
    ]
}

fn no_vectors(_: u64) -> Option<&'static [f32]> {
    None
}

fn ids(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|h| h.id).collect()
}

#[test]
fn max_score_union() {
    // best scores: 4 .95, 1 .9, 2 .8, 5 .6, 3 .5
    let fused = fuse(&lists(), 4, Fusion::MaxScore, &no_vectors).unwrap();
    assert_eq!(ids(&fused), vec![4, 1, 2, 5]);
    assert!((fused[2].score - 0.8).abs() < 1e-6);
}

#[test]
fn mean_score() {
    // sums / 2: 2 → (0.8 + 0.7)/2 = 0.75, 4 → 0.475, 1 → 0.45, 5 → 0.3, 3 → 0.25
    let fused = fuse(&lists(), 5, Fusion::MeanScore, &no_vectors).unwrap();
    assert_eq!(ids(&fused), vec![2, 4, 1, 5, 3]);
    assert!((fused[0].score - 0.75).abs() < 1e-6 && (fused[1].score - 0.475).abs() < 1e-6);
}

#[test]
fn reciprocal_rank_fusion() {
    // c = 1: 2 → 1/3 + 1/3 = 0.667; 1 → 1/2; 4 → 1/2; 3 → 1/4; 5 → 1/4. Ties by id.
    let fused = fuse(&lists(), 5, Fusion::ReciprocalRank { c: 1.0 }, &no_vectors).unwrap();
    assert_eq!(ids(&fused), vec![2, 1, 4, 3, 5]);
    assert!((fused[0].score - 2.0 / 3.0).abs() < 1e-6);
    assert!(matches!(
        fuse(&lists(), 5, Fusion::ReciprocalRank { c: 0.0 }, &no_vectors),
        Err(IndexError::InvalidParameter { .. })
    ));
}

#[test]
fn round_robin() {
    // rank 1: 1, 4; rank 2: 2, (2 taken); rank 3: 3, 5
    let fused = fuse(&lists(), 5, Fusion::RoundRobin, &no_vectors).unwrap();
    assert_eq!(ids(&fused), vec![1, 4, 2, 3, 5]);
    assert_eq!(
        fused.iter().map(|h| h.score).collect::<Vec<_>>(),
        vec![5.0, 4.0, 3.0, 2.0, 1.0]
    );
    assert_eq!(
        ids(&fuse(&lists(), 2, Fusion::RoundRobin, &no_vectors).unwrap()),
        vec![1, 4]
    );
}

#[test]
fn mmr_trades_relevance_for_diversity() {
    // Items 4 and 1 are near-duplicates; 2 points elsewhere; 5 and 3 elsewhere again.
    let vectors: std::collections::HashMap<u64, Vec<f32>> = [
        (1, vec![1.0, 0.0, 0.0]),
        (4, vec![0.99, 0.14, 0.0]),
        (2, vec![0.0, 1.0, 0.0]),
        (5, vec![0.0, 0.0, 1.0]),
        (3, vec![0.7, 0.7, 0.0]),
    ]
    .into_iter()
    .collect();
    let lookup = |id: u64| vectors.get(&id).map(|v| v.as_slice());
    // λ = 1: pure relevance = max-score order.
    assert_eq!(
        ids(&fuse(&lists(), 5, Fusion::Mmr { lambda: 1.0 }, &lookup).unwrap()),
        vec![4, 1, 2, 5, 3]
    );
    // λ = 0.5, by hand: pick 4 (0.475); then 1: 0.45 − 0.5·0.990 = −0.045, 2: 0.4 − 0.5·0.140 = 0.330,
    // 5: 0.3 − 0 = 0.300, 3: 0.25 − 0.5·0.799 = −0.150 → 2; then 5: 0.300, 1: −0.045,
    // 3: 0.25 − 0.5·0.707 = −0.104 → 5; then 1 (−0.045) before 3 (−0.104).
    let fused = fuse(&lists(), 5, Fusion::Mmr { lambda: 0.5 }, &lookup).unwrap();
    assert_eq!(ids(&fused), vec![4, 2, 5, 1, 3]);
    assert!(matches!(
        fuse(&lists(), 5, Fusion::Mmr { lambda: 1.5 }, &lookup),
        Err(IndexError::InvalidParameter { .. })
    ));
    assert!(fuse(&lists(), 5, Fusion::Mmr { lambda: 0.5 }, &no_vectors).is_err());
}

#[test]
fn edge_cases() {
    assert!(matches!(
        fuse(&lists(), 0, Fusion::MaxScore, &no_vectors),
        Err(IndexError::InvalidParameter { .. })
    ));
    assert!(fuse(&[], 5, Fusion::rrf(), &no_vectors).unwrap().is_empty());
    // Duplicates inside one list count once.
    let dup = vec![vec![h(1, 0.9), h(1, 0.9), h(2, 0.1)]];
    assert_eq!(
        ids(&fuse(&dup, 5, Fusion::MeanScore, &no_vectors).unwrap()),
        vec![1, 2]
    );
    assert_eq!(
        ids(&fuse(&dup, 5, Fusion::rrf(), &no_vectors).unwrap()),
        vec![1, 2]
    );
}

#[test]
fn fusion_names_round_trip() {
    for name in [
        "max",
        "mean",
        "rrf",
        "rrf:30",
        "round-robin",
        "mmr:0.5",
        "mmr:0.8",
    ] {
        let fusion: Fusion = name.parse().unwrap();
        assert_eq!(fusion.to_string(), name);
    }
    assert_eq!(
        "mmr".parse::<Fusion>().unwrap(),
        Fusion::Mmr { lambda: 0.5 }
    );
    for bad in ["", "borda", "rrf:x", "rrf:-1", "mmr:2", "max:3"] {
        assert!(bad.parse::<Fusion>().is_err(), "`{bad}`");
    }
}
