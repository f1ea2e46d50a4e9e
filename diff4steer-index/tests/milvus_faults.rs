//! Faults of a remote index, against a real Milvus server: nobody listening, a collection that
//! another handle dropped, a server killed (SIGKILL) in the middle of searches and restarted.
//! Every fault is a typed error within the configured timeout: no hang, no panic.
//!
//! `DIFF4STEER_MILVUS_URL` names a running server (the tests that need one skip without it);
//! `DIFF4STEER_MILVUS_SERVER` names the `milvus-server` launcher for the kill test, which starts
//! its own server on the default ports (so no other may run then) and skips without it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use diff4steer_index::{IndexError, MilvusConfig, MilvusIndex, MilvusIndexKind};
use diff4steer_index::{Similarity, VectorIndex};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIM: usize = 16;

fn random_rows(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * DIM)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect()
}

fn server() -> Option<String> {
    let url = std::env::var("DIFF4STEER_MILVUS_URL").ok();
    if url.is_none() {
        eprintln!("skipped: DIFF4STEER_MILVUS_URL is not set (no Milvus server to test against)");
    }
    url
}

fn is_connection_error(e: &IndexError) -> bool {
    matches!(
        e,
        IndexError::Unreachable { .. } | IndexError::Timeout { .. }
    )
}

#[test]
fn nobody_listening_is_a_typed_error_within_the_timeout() {
    // Port 9 (discard) has no listener here: the connection is refused.
    let config =
        MilvusConfig::new("http://127.0.0.1:9", "nothing").with_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let error = MilvusIndex::open(config.clone()).unwrap_err();
    assert!(is_connection_error(&error), "{error:?}");
    assert!(error.to_string().contains("127.0.0.1:9"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let error = MilvusIndex::create(config, DIM, Similarity::Cosine).unwrap_err();
    assert!(is_connection_error(&error), "{error:?}");
}

#[test]
fn bad_settings_are_refused_before_connecting() {
    let bad_name = MilvusConfig::new("http://127.0.0.1:9", "no-dashes");
    assert!(matches!(
        MilvusIndex::open(bad_name),
        Err(IndexError::InvalidParameter { .. })
    ));
    let zero = MilvusConfig::new("http://127.0.0.1:9", "ok").with_timeout(Duration::ZERO);
    assert!(matches!(
        MilvusIndex::open(zero),
        Err(IndexError::InvalidParameter { .. })
    ));
    for text in ["hnsw:0:10:10", "ivf:8", "annoy", "hnsw:16:x:64"] {
        assert!(MilvusIndexKind::parse(text).is_err(), "{text}");
    }
    assert_eq!(
        MilvusIndexKind::parse("ivf:64:8").unwrap(),
        MilvusIndexKind::IvfFlat {
            nlist: 64,
            nprobe: 8
        }
    );
}

#[test]
fn collections_missing_taken_or_dropped_are_typed_errors() {
    let Some(url) = server() else { return };
    let name = format!("faults_{}", std::process::id());
    let config = MilvusConfig::new(url, name.clone())
        .with_index(MilvusIndexKind::Flat)
        .with_timeout(Duration::from_secs(60));
    assert!(matches!(
        MilvusIndex::open(config.clone()),
        Err(IndexError::CollectionMissing { .. })
    ));
    let mut index = MilvusIndex::create(config.clone(), DIM, Similarity::NegativeL2).unwrap();
    assert!(matches!(
        MilvusIndex::create(config.clone(), DIM, Similarity::NegativeL2),
        Err(IndexError::CollectionExists { .. })
    ));
    let items = random_rows(200, 1);
    let ids: Vec<u64> = (0..200).collect();
    index.add(&ids, &items).unwrap();
    // A second handle sees the collection as the server describes it.
    let reopened = MilvusIndex::open(config.clone()).unwrap();
    assert_eq!(reopened.dim(), DIM);
    assert_eq!(reopened.similarity(), Similarity::NegativeL2);
    assert_eq!(reopened.len(), 200);
    assert_eq!(
        reopened.fetch_vector(7).unwrap().as_deref(),
        Some(&items[7 * DIM..8 * DIM])
    );
    assert_eq!(reopened.vector(7), Some(&items[7 * DIM..8 * DIM]));
    assert_eq!(reopened.vector(10_000), None);
    assert!(matches!(
        reopened.search(&items[..DIM - 1], 3),
        Err(IndexError::DimMismatch { .. })
    ));
    assert!(matches!(
        index.add(&[u64::MAX], &items[..DIM]),
        Err(IndexError::InvalidParameter { .. })
    ));
    // Another handle drops it: the first one's next search is a typed error.
    assert!(MilvusIndex::drop_collection(&config).unwrap());
    let error = index.search(&items[..DIM], 3).unwrap_err();
    assert!(matches!(error, IndexError::Remote { .. }), "{error:?}");
    assert!(!MilvusIndex::drop_collection(&config).unwrap());
}

/// A `milvus-server` process group on a fresh data folder, killed (SIGKILL) when dropped.
struct OwnServer {
    child: Child,
}

impl OwnServer {
    fn start(launcher: &str, data: &Path) -> OwnServer {
        use std::os::unix::process::CommandExt;
        // The launcher's output, for a failed start: beside the data folder.
        let log = std::fs::File::create(data.with_extension("log")).expect("log file");
        let child = Command::new(launcher)
            .arg("--data")
            .arg(data)
            .arg("--proxy-port")
            .arg("19530")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting milvus-server");
        let server = OwnServer { child };
        let started = Instant::now();
        while !healthy() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "milvus-server did not become healthy in 120 s (its output: {})",
                data.with_extension("log").display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        server
    }

    /// SIGKILL to every process of the group (the launcher and the Milvus binary it runs).
    fn kill(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Milvus' health endpoint answers "OK".
fn healthy() -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &"127.0.0.1:9091".parse().expect("address"),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("200 OK") && answer.trim_end().ends_with("OK")
}

#[test]
fn a_server_killed_mid_search_is_a_typed_error_and_the_handle_recovers() {
    let Ok(launcher) = std::env::var("DIFF4STEER_MILVUS_SERVER") else {
        eprintln!("skipped: DIFF4STEER_MILVUS_SERVER (the milvus-server launcher) is not set");
        return;
    };
    let timeout = Duration::from_secs(5);
    let config = MilvusConfig::new("http://127.0.0.1:19530", "killed")
        .with_index(MilvusIndexKind::Flat)
        .with_timeout(timeout);
    let items = random_rows(5_000, 2);
    let ids: Vec<u64> = (0..5_000).collect();
    let queries = random_rows(64, 3);

    assert!(
        !healthy(),
        "a Milvus server already answers on 127.0.0.1:9091: stop it before this test"
    );
    let first_data = tempfile::tempdir().unwrap();
    let mut server = OwnServer::start(&launcher, first_data.path());
    let mut loader = MilvusIndex::create(
        config.clone().with_timeout(Duration::from_secs(60)),
        DIM,
        Similarity::Cosine,
    )
    .unwrap();
    loader.add(&ids, &items).unwrap();
    loader.flush().unwrap();
    let expected = loader.search(&queries, 10).unwrap();
    // The handle under test gives every call `timeout`.
    let index = MilvusIndex::open(config.clone()).unwrap();

    // Searches run in a loop on another thread while the server is killed.
    let outcome = std::thread::scope(|scope| {
        let searching = scope.spawn(|| {
            let mut results = Vec::new();
            for _ in 0..200 {
                let started = Instant::now();
                let result = index.search(&queries, 10);
                let failed = result.is_err();
                results.push((result, started.elapsed()));
                if failed {
                    break;
                }
            }
            results
        });
        std::thread::sleep(Duration::from_millis(300));
        server.kill();
        searching.join().expect("the searching thread panicked")
    });
    let (last, took) = outcome.last().expect("searched");
    let error = last
        .as_ref()
        .expect_err("a search after the kill must fail");
    assert!(is_connection_error(error), "{error:?}");
    assert!(*took <= timeout + Duration::from_secs(2), "took {took:?}");
    // Calls while the server is down fail fast and typed too.
    let started = Instant::now();
    assert!(is_connection_error(
        &index.search(&queries, 10).unwrap_err()
    ));
    assert!(started.elapsed() <= timeout + Duration::from_secs(2));

    // Restarted (on a fresh folder: Milvus does not reopen a folder of a killed run reliably),
    // the collection is rebuilt by another handle and the old handle answers again.
    let second_data = tempfile::tempdir().unwrap();
    let _server = OwnServer::start(&launcher, second_data.path());
    let mut rebuilt = MilvusIndex::create(
        config.with_timeout(Duration::from_secs(60)),
        DIM,
        Similarity::Cosine,
    )
    .unwrap();
    rebuilt.add(&ids, &items).unwrap();
    let mut answered = None;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(hits) = index.search(&queries, 10) {
            answered = Some(hits);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        answered.expect("the old handle never answered again"),
        expected
    );
}
