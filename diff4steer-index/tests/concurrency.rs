//! An index searched from many threads at once returns exactly what serial searches return:
//! the same ids, the same scores bit for bit, whatever the interleaving.

use diff4steer_index::{FlatIndex, Hit, Similarity, VectorIndex};
#[cfg(feature = "hnsw")]
use diff4steer_index::{HnswConfig, HnswIndex};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 24;
const THREADS: usize = 8;

fn random_rows(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * DIM)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect()
}

/// Hits as (id, score bits): equality is bit-exact.
fn exact(lists: &[Vec<Hit>]) -> Vec<Vec<(u64, u32)>> {
    lists
        .iter()
        .map(|l| l.iter().map(|h| (h.id, h.score.to_bits())).collect())
        .collect()
}

/// Serial answers (one query at a time) against every thread searching all queries at once, in
/// a different order per thread, one by one, batched and filtered.
fn assert_thread_safe(index: &dyn VectorIndex, name: &str) {
    let queries = random_rows(96, 99);
    let k = 10;
    let keep = |id: u64| !id.is_multiple_of(3);
    let serial: Vec<Vec<Hit>> = queries
        .chunks(DIM)
        .map(|q| index.search(q, k).unwrap().remove(0))
        .collect();
    let serial_filtered: Vec<Vec<Hit>> = queries
        .chunks(DIM)
        .map(|q| index.search_filtered(q, k, Some(&keep)).unwrap().remove(0))
        .collect();
    let serial = exact(&serial);
    let serial_filtered = exact(&serial_filtered);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let queries = &queries;
                scope.spawn(move || {
                    let n = queries.len() / DIM;
                    // Each thread walks the queries from its own starting point.
                    let mut one_by_one = vec![Vec::new(); n];
                    for step in 0..n {
                        let i = (step + t * 13) % n;
                        let q = &queries[i * DIM..(i + 1) * DIM];
                        one_by_one[i] = index.search(q, k).unwrap().remove(0);
                    }
                    let batched = index.search(queries, k).unwrap();
                    let filtered = index.search_filtered(queries, k, Some(&keep)).unwrap();
                    (exact(&one_by_one), exact(&batched), exact(&filtered))
                })
            })
            .collect();
        for (t, handle) in handles.into_iter().enumerate() {
            let (one_by_one, batched, filtered) = handle.join().unwrap();
            assert_eq!(
                one_by_one, serial,
                "{name}: thread {t}, one query at a time"
            );
            assert_eq!(batched, serial, "{name}: thread {t}, batched");
            assert_eq!(filtered, serial_filtered, "{name}: thread {t}, filtered");
        }
    });
}

#[test]
fn flat_index_answers_many_threads_as_it_answers_one() {
    for similarity in [
        Similarity::Cosine,
        Similarity::InnerProduct,
        Similarity::NegativeL2,
    ] {
        let index = FlatIndex::from_rows(DIM, similarity, &random_rows(5000, 1)).unwrap();
        assert_thread_safe(&index, &format!("flat {similarity}"));
    }
}

#[cfg(feature = "hnsw")]
#[test]
fn hnsw_index_answers_many_threads_as_it_answers_one() {
    let index = HnswIndex::from_rows(
        DIM,
        Similarity::Cosine,
        HnswConfig::default(),
        &random_rows(5000, 2),
    )
    .unwrap();
    assert_thread_safe(&index, "hnsw");
}

#[cfg(feature = "faiss")]
#[test]
fn faiss_index_answers_many_threads_as_it_answers_one() {
    for description in ["Flat", "HNSW32"] {
        let mut index =
            diff4steer_index::FaissIndex::new(DIM, Similarity::Cosine, description).unwrap();
        let ids: Vec<u64> = (0..5000).collect();
        index.add(&ids, &random_rows(5000, 3)).unwrap();
        assert_thread_safe(&index, &format!("faiss {description}"));
    }
}

/// Against a real Milvus server (`DIFF4STEER_MILVUS_URL`; skipped when unset): eight threads
/// through one client. FLAT answers bit for bit as serially. With HNSW, Milvus itself changes
/// answers over time (it compacts and re-indexes sealed segments in the background), so there
/// every thread's hits must be its own query's: each score the exact similarity of that query
/// and that id, and ≥ 90 % of the serial ids.
#[cfg(feature = "milvus")]
#[test]
fn milvus_index_answers_many_threads_as_it_answers_one() {
    use diff4steer_index::{MilvusConfig, MilvusIndex, MilvusIndexKind};
    let Ok(url) = std::env::var("DIFF4STEER_MILVUS_URL") else {
        eprintln!("skipped: DIFF4STEER_MILVUS_URL is not set (no Milvus server to test against)");
        return;
    };
    /// Drops the test's collections when it ends, passed or not.
    struct DropOnExit(Vec<MilvusConfig>);
    impl Drop for DropOnExit {
        fn drop(&mut self) {
            for config in &self.0 {
                let _ = MilvusIndex::drop_collection(config);
            }
        }
    }
    let items = random_rows(5000, 4);
    let ids: Vec<u64> = (0..5000).collect();
    let config = |kind: MilvusIndexKind| {
        MilvusConfig::new(
            url.clone(),
            format!("concurrency_{}_{}", std::process::id(), kind.milvus_name()),
        )
        .with_index(kind)
        .with_timeout(std::time::Duration::from_secs(60))
    };
    let _cleanup = DropOnExit(vec![
        config(MilvusIndexKind::Flat),
        config(MilvusIndexKind::HNSW),
    ]);
    let create = |kind: MilvusIndexKind| {
        let config = config(kind);
        let mut index = MilvusIndex::create(config, DIM, Similarity::Cosine).unwrap();
        index.add(&ids, &items).unwrap();
        index.flush().unwrap();
        index
            .wait_indexed(std::time::Duration::from_secs(120))
            .unwrap();
        index
    };
    assert_thread_safe(&create(MilvusIndexKind::Flat), "milvus FLAT");

    let hnsw = create(MilvusIndexKind::HNSW);
    let queries = random_rows(96, 99);
    let serial = hnsw.search(&queries, 10).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| scope.spawn(|| hnsw.search(&queries, 10).unwrap()))
            .collect();
        for (t, handle) in handles.into_iter().enumerate() {
            let answers = handle.join().unwrap();
            for (q, (got, expected)) in answers.iter().zip(&serial).enumerate() {
                let query = &queries[q * DIM..(q + 1) * DIM];
                for hit in got {
                    let item = &items[hit.id as usize * DIM..(hit.id as usize + 1) * DIM];
                    let exact = Similarity::Cosine.score(query, item);
                    assert!(
                        (hit.score - exact).abs() <= 1e-4,
                        "thread {t} query {q}: id {} scored {} for {exact}",
                        hit.id,
                        hit.score
                    );
                }
                let found = got
                    .iter()
                    .filter(|h| expected.iter().any(|e| e.id == h.id))
                    .count();
                assert!(found >= 9, "thread {t} query {q}: {found} of 10 serial ids");
            }
        }
    });
}
