//! HNSW recall@10 against the exact flat index on 100k × 128 vectors, uniform on the sphere and
//! clustered. Minutes, so it is ignored by default; CI runs it (the crate is optimised in the test
//! profile too): `cargo test -p diff4steer-index --test recall_at_scale -- --ignored`.

use diff4steer_index::{FlatIndex, HnswConfig, HnswIndex, Similarity, VectorIndex};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const N: usize = 100_000;
const DIM: usize = 128;
const QUERIES: usize = 500;
const K: usize = 10;

fn normal_rows(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * DIM).map(|_| rng.sample(StandardNormal)).collect()
}

/// 100 random unit centres, each item a centre plus Gaussian noise of norm ≈ 0.3.
fn clustered_rows(n: usize, seed: u64) -> Vec<f32> {
    let centres = normal_rows(100, 999);
    let noise = normal_rows(n, seed);
    (0..n)
        .flat_map(|i| {
            let c = &centres[(i % 100) * DIM..(i % 100 + 1) * DIM];
            let norm = c.iter().map(|v| v * v).sum::<f32>().sqrt();
            let e = &noise[i * DIM..(i + 1) * DIM];
            c.iter()
                .zip(e)
                .map(move |(a, b)| a / norm + 0.3 * b / (DIM as f32).sqrt())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn recall_at_k(items: &[f32], queries: &[f32], ef_search: usize) -> f64 {
    let flat = FlatIndex::from_rows(DIM, Similarity::Cosine, items).unwrap();
    let truth = flat.search(queries, K).unwrap();
    let mut hnsw =
        HnswIndex::from_rows(DIM, Similarity::Cosine, HnswConfig::default(), items).unwrap();
    hnsw.set_ef_search(ef_search);
    let got = hnsw.search(queries, K).unwrap();
    let found: usize = got
        .iter()
        .zip(&truth)
        .map(|(g, t)| g.iter().filter(|h| t.iter().any(|x| x.id == h.id)).count())
        .sum();
    found as f64 / (K * QUERIES) as f64
}

#[test]
#[ignore = "release only (minutes in debug)"]
fn hnsw_recall_on_100k_uniform_sphere() {
    let recall = recall_at_k(&normal_rows(N, 1), &normal_rows(QUERIES, 2), 512);
    println!("uniform sphere, ef_search 512: recall@10 {recall:.4}");
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
#[ignore = "release only (minutes in debug)"]
fn hnsw_recall_on_100k_clustered() {
    let recall = recall_at_k(&clustered_rows(N, 1), &clustered_rows(QUERIES, 2), 128);
    println!("clustered, ef_search 128: recall@10 {recall:.4}");
    assert!(recall >= 0.95, "recall@10 {recall}");
}
