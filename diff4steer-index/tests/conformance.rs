//! One conformance body run against every index, compared with an independent brute-force
//! scorer (`Similarity::score` on every pair, full sort).

use diff4steer_index::{FlatIndex, Hit, IndexError, Similarity, VectorIndex};
#[cfg(feature = "hnsw")]
use diff4steer_index::{HnswConfig, HnswIndex};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * dim)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect()
}

/// Independent truth: score every item with `Similarity::score`, sort everything.
fn brute_force(
    items: &[f32],
    ids: &[u64],
    dim: usize,
    sim: Similarity,
    query: &[f32],
    k: usize,
    filter: &dyn Fn(u64) -> bool,
) -> Vec<Hit> {
    let mut hits: Vec<Hit> = items
        .chunks(dim)
        .zip(ids)
        .filter(|(_, &id)| filter(id))
        .map(|(item, &id)| Hit::new(id, sim.score(query, item)))
        .collect();
    hits.sort_by(Hit::ranking);
    hits.truncate(k);
    hits
}

/// For approximate indexes: every returned score is exact for its id, and at least `min_recall`
/// of the true top ids are found.
fn assert_recall(got: &[Hit], expected: &[Hit], min_recall: f64, context: &str) {
    assert!(got.len() <= expected.len(), "{context}: too many hits");
    let truth: std::collections::HashSet<u64> = expected.iter().map(|h| h.id).collect();
    let found = got.iter().filter(|h| truth.contains(&h.id)).count();
    let recall = found as f64 / expected.len().max(1) as f64;
    assert!(recall >= min_recall, "{context}: recall {recall}");
    for pair in got.windows(2) {
        assert!(pair[0].score >= pair[1].score, "{context}: not sorted");
    }
}

fn assert_same_ids(got: &[Hit], expected: &[Hit], context: &str) {
    assert_eq!(got.len(), expected.len(), "{context}: lengths");
    for (g, e) in got.iter().zip(expected) {
        // Scores agree to float tolerance; ids must agree unless two scores tie within it.
        assert!(
            (g.score - e.score).abs() <= 1e-4 * e.score.abs().max(1.0),
            "{context}: {g:?} vs {e:?}"
        );
        if g.id != e.id {
            assert!(
                (g.score - e.score).abs() <= 1e-4,
                "{context}: ids {} vs {}",
                g.id,
                e.id
            );
        }
    }
}

/// How an index is checked against brute force: exactly, or by a minimum recall.
#[derive(Clone, Copy)]
#[cfg_attr(not(any(feature = "hnsw", feature = "faiss")), allow(dead_code))]
enum Truth {
    Exact,
    Recall(f64),
}

fn compare(got: &[Hit], expected: &[Hit], truth: Truth, context: &str) {
    match truth {
        Truth::Exact => assert_same_ids(got, expected, context),
        Truth::Recall(r) => assert_recall(got, expected, r, context),
    }
}

/// The conformance body: every index type runs it through `conformance!`.
fn check_index<I: VectorIndex>(
    make: &dyn Fn(usize, Similarity) -> I,
    save_load: Option<&dyn Fn(&I) -> I>,
    similarities: &[Similarity],
    truth: Truth,
) {
    let dim = 16;
    for &sim in similarities {
        // Empty index: searches return empty lists, k = 0 is still an error.
        let empty = make(dim, sim);
        assert!(empty.is_empty());
        let q = random_rows(2, dim, 1);
        assert_eq!(empty.search(&q, 5).unwrap(), vec![Vec::<Hit>::new(); 2]);
        assert!(matches!(
            empty.search(&q, 0),
            Err(IndexError::InvalidParameter { .. })
        ));

        let n = 5000; // more than one GEMM block
        let items = random_rows(n, dim, 2);
        let ids: Vec<u64> = (0..n as u64).map(|i| i * 3 + 7).collect();
        let mut index = make(dim, sim);
        index.add(&ids, &items).unwrap();
        assert_eq!(index.len(), n);
        let queries = random_rows(7, dim, 3);
        let all = |_: u64| true;
        let hits = index.search(&queries, 10).unwrap();
        for (qi, query) in queries.chunks(dim).enumerate() {
            let brute = brute_force(&items, &ids, dim, sim, query, 10, &all);
            compare(&hits[qi], &brute, truth, &format!("{sim} query {qi}"));
        }
        // Filtered search: only ids divisible by 2.
        let even = |id: u64| id.is_multiple_of(2);
        let filtered = index.search_filtered(&queries, 10, Some(&even)).unwrap();
        for (qi, query) in queries.chunks(dim).enumerate() {
            assert!(filtered[qi].iter().all(|h| even(h.id)));
            let brute = brute_force(&items, &ids, dim, sim, query, 10, &even);
            compare(
                &filtered[qi],
                &brute,
                truth,
                &format!("{sim} filtered {qi}"),
            );
        }
        // A restrictive filter (1 id in 64): still the true best among the accepted.
        let rare = |id: u64| id.is_multiple_of(64);
        let filtered = index.search_filtered(&queries, 10, Some(&rare)).unwrap();
        for (qi, query) in queries.chunks(dim).enumerate() {
            let brute = brute_force(&items, &ids, dim, sim, query, 10, &rare);
            compare(&filtered[qi], &brute, truth, &format!("{sim} rare {qi}"));
        }
        // k larger than the index: everything, ranked.
        let mut small = make(dim, sim);
        small.add(&ids[..4], &items[..4 * dim]).unwrap();
        let everything = small.search(&queries[..dim], 50).unwrap();
        assert_eq!(everything[0].len(), 4);
        assert_same_ids(
            &everything[0],
            &brute_force(
                &items[..4 * dim],
                &ids[..4],
                dim,
                sim,
                &queries[..dim],
                50,
                &all,
            ),
            "k > len",
        );
        // Bad input.
        assert!(matches!(
            index.search(&queries[..dim - 1], 3),
            Err(IndexError::DimMismatch { .. })
        ));
        let mut nan = queries[..dim].to_vec();
        nan[3] = f32::NAN;
        assert!(matches!(
            index.search(&nan, 3),
            Err(IndexError::NonFinite { .. })
        ));
        assert!(matches!(
            index.add(&[ids[0]], &items[..dim]),
            Err(IndexError::DuplicateId { .. })
        ));
        assert!(matches!(
            index.add(&[1, 1], &items[..2 * dim]),
            Err(IndexError::DuplicateId { .. })
        ));
        assert!(matches!(
            index.add(&[1, 2], &items[..dim]),
            Err(IndexError::Shape { .. })
        ));
        let mut inf = items[..dim].to_vec();
        inf[0] = f32::INFINITY;
        assert!(matches!(
            index.add(&[1], &inf),
            Err(IndexError::NonFinite { .. })
        ));
        assert_eq!(index.len(), n, "failed adds must add nothing");
        // Save / load round trip.
        if let Some(round_trip) = save_load {
            let loaded = round_trip(&index);
            assert_eq!(loaded.search(&queries, 10).unwrap(), hits);
        }
    }
}

macro_rules! conformance {
    ($name:ident, $make:expr, $save_load:expr, $similarities:expr, $truth:expr) => {
        #[test]
        fn $name() {
            check_index(&$make, $save_load, $similarities, $truth);
        }
    };
}

const ALL: &[Similarity] = &[
    Similarity::InnerProduct,
    Similarity::Cosine,
    Similarity::NegativeL2,
];

fn flat_round_trip(index: &FlatIndex) -> FlatIndex {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.bin");
    index.save(&path).unwrap();
    FlatIndex::load(&path).unwrap()
}

conformance!(
    flat_index_conforms,
    |dim, sim| FlatIndex::new(dim, sim).unwrap(),
    Some(&flat_round_trip),
    ALL,
    Truth::Exact
);

#[cfg(feature = "hnsw")]
fn hnsw_round_trip(index: &HnswIndex) -> HnswIndex {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.bin");
    index.save(&path).unwrap();
    let loaded = HnswIndex::load(&path).unwrap();
    assert_eq!(&loaded, index, "the graph is saved, not rebuilt");
    loaded
}

#[cfg(feature = "hnsw")]
conformance!(
    hnsw_index_conforms,
    |dim, sim| HnswIndex::new(dim, sim, HnswConfig::default()).unwrap(),
    Some(&hnsw_round_trip),
    &[Similarity::Cosine, Similarity::NegativeL2],
    Truth::Recall(0.9)
);

#[cfg(feature = "faiss")]
mod faiss_adapter {
    use super::*;
    use diff4steer_index::FaissIndex;

    fn faiss_round_trip(index: &FaissIndex) -> FaissIndex {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.bin");
        index.save(&path).unwrap();
        let loaded = FaissIndex::load(&path).unwrap();
        assert_eq!(loaded.description(), index.description());
        loaded
    }

    conformance!(
        faiss_flat_conforms,
        |dim, sim| FaissIndex::new(dim, sim, "Flat").unwrap(),
        Some(&faiss_round_trip),
        ALL,
        Truth::Exact
    );

    conformance!(
        faiss_hnsw_conforms,
        // faiss builds HNSW graphs with OpenMP threads, so the graph (and at its default
        // efSearch 16, the recall of a query) varies from run to run: search wider so the
        // recall bound tests the adapter, not faiss' luck.
        |dim, sim| {
            let mut index = FaissIndex::new(dim, sim, "HNSW32").unwrap();
            index.set_parameter("efSearch", 128.0).unwrap();
            index
        },
        Some(&faiss_round_trip),
        ALL,
        Truth::Recall(0.9)
    );

    // IVF with every list probed is exact; trained up front so that tiny indexes work.
    conformance!(
        faiss_ivf_conforms,
        |dim, sim| {
            let mut index = FaissIndex::new(dim, sim, "IVF16,Flat").unwrap();
            index.train(&random_rows(2000, dim, 99)).unwrap();
            index.set_parameter("nprobe", 16.0).unwrap();
            index
        },
        Some(&faiss_round_trip),
        ALL,
        Truth::Exact
    );

    #[test]
    fn faiss_refusals_are_typed_errors() {
        assert!(matches!(
            FaissIndex::new(8, Similarity::Cosine, "NoSuchIndex12"),
            Err(IndexError::InvalidParameter { .. })
        ));
        let mut ivf = FaissIndex::new(8, Similarity::Cosine, "IVF64,Flat").unwrap();
        assert!(!ivf.is_trained());
        // Too few vectors to train 64 lists: an error, and nothing added.
        assert!(matches!(
            ivf.add(&[1, 2], &random_rows(2, 8, 1)),
            Err(IndexError::Backend { .. })
        ));
        assert_eq!(ivf.len(), 0);
        let mut flat = FaissIndex::new(8, Similarity::Cosine, "Flat").unwrap();
        assert!(flat.set_parameter("efSearch", 10.0).is_err());
        flat.add(&[1, 2], &random_rows(2, 8, 1)).unwrap();
        check_broken_files(&|p| flat.save(p).unwrap(), &FaissIndex::load);
    }
}

#[cfg(feature = "hnsw")]
#[test]
fn hnsw_rejects_what_it_cannot_serve() {
    assert!(HnswIndex::new(8, Similarity::InnerProduct, HnswConfig::default()).is_err());
    for m in [0, 1, 300] {
        let config = HnswConfig {
            m,
            ..HnswConfig::default()
        };
        assert!(
            HnswIndex::new(8, Similarity::Cosine, config).is_err(),
            "M {m}"
        );
    }
    let no_ef = HnswConfig {
        ef_construction: 0,
        ..HnswConfig::default()
    };
    assert!(HnswIndex::new(8, Similarity::Cosine, no_ef).is_err());
    assert!(HnswIndex::new(0, Similarity::Cosine, HnswConfig::default()).is_err());
}

#[cfg(feature = "hnsw")]
#[test]
fn hnsw_graph_does_not_depend_on_thread_count() {
    let items = random_rows(3000, 12, 11);
    let build = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                HnswIndex::from_rows(12, Similarity::Cosine, HnswConfig::default(), &items).unwrap()
            })
    };
    let one = build(1);
    assert_eq!(one, build(3), "1 thread vs 3 threads");
    let other_seed = HnswIndex::from_rows(
        12,
        Similarity::Cosine,
        HnswConfig {
            seed: 5,
            ..HnswConfig::default()
        },
        &items,
    )
    .unwrap();
    assert_ne!(one, other_seed, "the seed draws the layers");
}

/// Writes `index`, then checks that a missing file, and truncated, altered or foreign versions of
/// it, give typed errors from `load`.
fn check_broken_files<T>(
    save: &dyn Fn(&std::path::Path),
    load: &dyn Fn(&std::path::Path) -> Result<T, IndexError>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.bin");
    assert!(matches!(load(&path), Err(IndexError::Io { .. })));
    save(&path);
    let bytes = std::fs::read(&path).unwrap();
    assert!(!dir.path().join("index.bin.tmp").exists());
    for broken in [
        bytes[..bytes.len() / 2].to_vec(),
        bytes[..10].to_vec(),
        Vec::new(),
        {
            let mut b = bytes.clone();
            b[40] ^= 1;
            b
        },
        {
            let mut b = bytes.clone();
            b[0] = b'X';
            b
        },
    ] {
        std::fs::write(&path, &broken).unwrap();
        assert!(
            matches!(load(&path), Err(IndexError::Corrupt { .. })),
            "{} bytes",
            broken.len()
        );
    }
}

#[cfg(feature = "hnsw")]
#[test]
fn hnsw_files_that_are_broken_give_typed_errors() {
    let index = HnswIndex::from_rows(
        4,
        Similarity::Cosine,
        HnswConfig::default(),
        &random_rows(50, 4, 9),
    )
    .unwrap();
    check_broken_files(&|p| index.save(p).unwrap(), &HnswIndex::load);
    // A flat-index file is not an HNSW file, and the other way round.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.bin");
    FlatIndex::from_rows(4, Similarity::Cosine, &random_rows(5, 4, 1))
        .unwrap()
        .save(&path)
        .unwrap();
    assert!(matches!(
        HnswIndex::load(&path),
        Err(IndexError::Corrupt { .. })
    ));
    index.save(&path).unwrap();
    assert!(matches!(
        FlatIndex::load(&path),
        Err(IndexError::Corrupt { .. })
    ));
}

#[test]
fn flat_files_that_are_broken_give_typed_errors() {
    let index = FlatIndex::from_rows(4, Similarity::Cosine, &random_rows(20, 4, 9)).unwrap();
    check_broken_files(&|p| index.save(p).unwrap(), &FlatIndex::load);
    assert!(FlatIndex::new(0, Similarity::Cosine).is_err());
    assert!("hamming".parse::<Similarity>().is_err());
    for s in [
        Similarity::InnerProduct,
        Similarity::Cosine,
        Similarity::NegativeL2,
    ] {
        assert_eq!(s.name().parse::<Similarity>().unwrap(), s);
    }
}

/// Against a real Milvus server: `DIFF4STEER_MILVUS_URL` (e.g. `http://127.0.0.1:19530`, as
/// `.ci/run` starts one); skipped with a message when unset.
#[cfg(feature = "milvus")]
mod milvus_adapter {
    use super::*;
    use diff4steer_index::{MilvusConfig, MilvusIndex, MilvusIndexKind};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    fn server() -> Option<String> {
        let url = std::env::var("DIFF4STEER_MILVUS_URL").ok();
        if url.is_none() {
            eprintln!(
                "skipped: DIFF4STEER_MILVUS_URL is not set (no Milvus server to test against)"
            );
        }
        url
    }

    /// The collections a test made, dropped when it ends (passed or not).
    #[derive(Default)]
    struct Collections(std::sync::Mutex<Vec<MilvusConfig>>);

    impl Drop for Collections {
        fn drop(&mut self) {
            let made = self.0.lock().unwrap_or_else(|p| p.into_inner());
            for config in made.iter() {
                let _ = MilvusIndex::drop_collection(config);
            }
        }
    }

    /// A new collection per call (the conformance body makes several indexes).
    fn fresh(
        url: String,
        kind: MilvusIndexKind,
        made: &Collections,
    ) -> impl Fn(usize, Similarity) -> MilvusIndex + '_ {
        move |dim, sim| {
            let name = format!(
                "conformance_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let config = MilvusConfig::new(url.clone(), name)
                .with_index(kind)
                .with_timeout(Duration::from_secs(60));
            made.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(config.clone());
            MilvusIndex::create(config, dim, sim).unwrap()
        }
    }

    #[test]
    fn milvus_flat_conforms() {
        let Some(url) = server() else { return };
        let made = Collections::default();
        check_index(
            &fresh(url, MilvusIndexKind::Flat, &made),
            None,
            ALL,
            Truth::Exact,
        );
    }

    #[test]
    fn milvus_hnsw_conforms() {
        let Some(url) = server() else { return };
        let made = Collections::default();
        check_index(
            &fresh(url, MilvusIndexKind::HNSW, &made),
            None,
            ALL,
            Truth::Recall(0.9),
        );
    }
}
