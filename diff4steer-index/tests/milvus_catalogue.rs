//! A whole catalogue loaded into Milvus with its preprocessor (`MilvusIndex::load_catalogue`),
//! against a real server (`DIFF4STEER_MILVUS_URL`; skipped without it): the preprocessor read
//! back by another handle is bit-identical to the one fitted, and searching the collection (FLAT,
//! exact) with seeds prepared by it gives what a local `FlatIndex` over the same prepared items
//! gives.

use std::time::Duration;

use diff4steer_index::{
    FlatIndex, IndexError, MilvusConfig, MilvusIndex, MilvusIndexKind, MilvusReads, Preprocessing,
    Preprocessor, Similarity, VectorIndex,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn server() -> Option<String> {
    let url = std::env::var("DIFF4STEER_MILVUS_URL").ok();
    if url.is_none() {
        eprintln!("skipped: DIFF4STEER_MILVUS_URL is not set (no Milvus server to test against)");
    }
    url
}

/// Off-centre, anisotropic rows: preprocessing changes the ranking.
fn rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * dim)
        .map(|i| {
            let scale = 1.0 + (i % dim) as f32 * 0.2;
            3.0 + scale * (rng.random::<f32>() * 2.0 - 1.0)
        })
        .collect()
}

/// Drops its collection when it goes out of scope, even when the test panics.
struct DropOnExit(MilvusConfig);

impl Drop for DropOnExit {
    fn drop(&mut self) {
        let _ = MilvusIndex::drop_collection(&self.0);
    }
}

#[test]
fn a_catalogue_and_its_preprocessor_come_back_from_the_server() {
    let Some(url) = server() else { return };
    // 128-d whitening stores a 128 × 128 matrix in the description: the largest case we write.
    // Two shards (insert channels), as a cluster would spread over its data nodes.
    for (kind, dim, shards) in [
        (Preprocessing::Standardise, 24, 2),
        (Preprocessing::WHITEN, 128, 1),
    ] {
        let name = format!("catalogue_{}_{}", kind.name(), std::process::id());
        let config = MilvusConfig::new(url.clone(), name)
            .with_index(MilvusIndexKind::Flat)
            .with_shards(shards)
            .with_timeout(Duration::from_secs(60));
        let _cleanup = DropOnExit(config.clone());
        let items = rows(2_000, dim, 1);
        let loaded = MilvusIndex::load_catalogue(
            config.clone(),
            &items,
            dim,
            Similarity::Cosine,
            kind,
            Duration::from_secs(120),
        )
        .unwrap();
        assert_eq!(loaded.len(), 2_000);
        let fitted = Preprocessor::fit(kind, &items, dim).unwrap();
        let reopened = MilvusIndex::open(config.clone()).unwrap();
        assert_eq!(reopened.preprocessor().unwrap(), fitted, "{kind}");

        let local =
            FlatIndex::from_rows(dim, Similarity::Cosine, &fitted.apply(&items).unwrap()).unwrap();
        let seeds = fitted.apply(&rows(16, dim, 2)).unwrap();
        let remote = reopened.search(&seeds, 10).unwrap();
        let exact = local.search(&seeds, 10).unwrap();
        for (r, e) in remote.iter().zip(&exact) {
            let shared = r.iter().filter(|h| e.iter().any(|x| x.id == h.id)).count();
            assert!(shared >= 9, "{kind}: {shared} of 10 shared: {r:?} vs {e:?}");
        }
    }
}

#[test]
fn a_collection_without_a_stored_preprocessor_has_the_identity() {
    let Some(url) = server() else { return };
    let config = MilvusConfig::new(url, format!("plain_{}", std::process::id()))
        .with_index(MilvusIndexKind::Flat)
        .with_timeout(Duration::from_secs(60));
    let _cleanup = DropOnExit(config.clone());
    let created = MilvusIndex::create(config.clone(), 8, Similarity::InnerProduct).unwrap();
    assert_eq!(created.preprocessor().unwrap(), Preprocessor::identity(8));
    let reopened = MilvusIndex::open(config).unwrap();
    assert_eq!(reopened.preprocessor().unwrap(), Preprocessor::identity(8));
}

#[test]
fn a_failed_load_leaves_no_collection() {
    let Some(url) = server() else { return };
    let config = MilvusConfig::new(url, format!("failed_{}", std::process::id()))
        .with_index(MilvusIndexKind::Flat)
        .with_timeout(Duration::from_secs(60));
    // NaN in the catalogue: refused while fitting, before anything is created.
    let mut items = rows(100, 4, 3);
    items[17] = f32::NAN;
    let error = MilvusIndex::load_catalogue(
        config.clone(),
        &items,
        4,
        Similarity::Cosine,
        Preprocessing::Centre,
        Duration::from_secs(60),
    )
    .unwrap_err();
    assert!(matches!(error, IndexError::NonFinite { .. }), "{error:?}");
    assert!(matches!(
        MilvusIndex::open(config),
        Err(IndexError::CollectionMissing { .. })
    ));
}

/// Rows inserted a moment ago (not yet consumed by the query node: a bounded-staleness search
/// right after an insert misses them, as the conformance run showed) are seen by the handle that
/// wrote them, which reads strongly after its own writes, and by any handle opened later.
#[test]
fn the_writer_sees_its_own_rows_at_once_and_later_handles_see_them_too() {
    let Some(url) = server() else { return };
    let name = format!("reads_{}", std::process::id());
    let config = MilvusConfig::new(url, name)
        .with_index(MilvusIndexKind::Flat)
        .with_timeout(Duration::from_secs(60));
    let _cleanup = DropOnExit(config.clone());
    let dim = 8;
    let items = rows(50, dim, 3);
    let mut writer = MilvusIndex::create(config.clone(), dim, Similarity::Cosine).unwrap();
    let nearest = |index: &MilvusIndex, row: usize| {
        let hits = index.search(&items[row * dim..(row + 1) * dim], 1).unwrap();
        hits[0].first().map(|hit| hit.id)
    };
    for (from, to) in [(0usize, 25usize), (25, 50)] {
        let ids: Vec<u64> = (from as u64..to as u64).collect();
        writer.add(&ids, &items[from * dim..to * dim]).unwrap();
        let newest = to - 1;
        assert_eq!(
            nearest(&writer, newest),
            Some(newest as u64),
            "the writer reads its own rows"
        );
    }
    for reads in [
        MilvusReads::Automatic,
        MilvusReads::Bounded,
        MilvusReads::Strong,
    ] {
        let reader = MilvusIndex::open(config.clone().with_reads(reads)).unwrap();
        assert_eq!(nearest(&reader, 49), Some(49), "{reads:?}");
    }
}
