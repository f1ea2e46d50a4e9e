//! Faults of a remote index, against a real Milvus server: nobody listening, a collection that
//! another handle dropped, a server killed (SIGKILL) in the middle of searches and restarted.
//! Every fault is a typed error within the configured timeout: no hang, no panic.
//!
//! `DIFF4STEER_MILVUS_URL` names a running server (the tests that need one skip without it);
//! `DIFF4STEER_MILVUS_SERVER` names the `milvus-server` launcher for the kill test, which starts
//! its own server on the default ports (so no other may run then) and skips without it.

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
    let base = MilvusConfig::new("http://127.0.0.1:9", "ok");
    for bad in [
        base.clone().with_timeout(Duration::ZERO),
        base.clone().with_shards(0),
        base.clone().with_replicas(0),
        base.clone().with_shards(65),
    ] {
        assert!(matches!(
            MilvusIndex::open(bad),
            Err(IndexError::InvalidParameter { .. })
        ));
    }
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
    /// Starts the launcher on `data` with the proxy on 19530 and waits until it answers there.
    ///
    /// The launcher binds its ports without `SO_REUSEADDR` to test them, so it moves the proxy
    /// elsewhere (or refuses) while any socket still holds 19530 — as the connections of a
    /// killed server do for a minute or two (FIN_WAIT2, TIME_WAIT). So it is started only once
    /// no socket uses the port, and started again if it does not answer on 19530.
    fn start(launcher: &str, data: &Path) -> OwnServer {
        use std::os::unix::process::CommandExt;
        let started = Instant::now();
        let limit = Duration::from_secs(300);
        let log_path = data.with_extension("log");
        loop {
            while port_in_use(19530) {
                assert!(started.elapsed() < limit, "port 19530 stayed in use");
                std::thread::sleep(Duration::from_millis(500));
            }
            let log = std::fs::File::create(&log_path).expect("log file");
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
            let mut server = OwnServer { child };
            let attempt = Instant::now();
            while attempt.elapsed() < Duration::from_secs(90) {
                if answers() {
                    return server;
                }
                if server.child.try_wait().expect("launcher status").is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            server.kill();
            assert!(
                started.elapsed() < limit,
                "milvus-server did not answer on 19530 in {limit:?} (its output: {})",
                log_path.display()
            );
            // A fresh folder for the next try: Milvus does not reopen a killed run's folder.
            let _ = std::fs::remove_dir_all(data);
            std::fs::create_dir_all(data).expect("data folder");
        }
    }

    /// SIGKILL to every process of the group (the launcher and the Milvus binary it runs).
    fn kill(&mut self) {
        let group = format!("-{}", self.child.id());
        // Quiet: the group may be gone already (killed by the test, then dropped).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether any TCP socket (listening, connected or closing) has local port `port`, from
/// `/proc/net/tcp` and `/proc/net/tcp6` (columns: slot, local address `IP:PORT` in hex, …).
fn port_in_use(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().nth(1))
            .filter_map(|local| local.rsplit_once(':'))
            .any(|(_, hex)| u16::from_str_radix(hex, 16) == Ok(port))
    })
}

/// The proxy on 127.0.0.1:19530 answers a request. (Not the HTTP health endpoint: the launcher
/// moves it off 9091 when that port cannot be bound yet, as right after a killed server.)
fn answers() -> bool {
    let probe =
        MilvusConfig::new("http://127.0.0.1:19530", "probe").with_timeout(Duration::from_secs(2));
    // Opening a collection that does not exist asks the server and changes nothing.
    matches!(
        MilvusIndex::open(probe),
        Ok(_) | Err(IndexError::CollectionMissing { .. })
    )
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
        !answers(),
        "a Milvus server already answers on 127.0.0.1:19530: stop it before this test"
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
    // The writer reads strongly after its own inserts, so its search returns once the query node
    // has consumed them; the old handle reads with bounded staleness and would not wait for that.
    assert_eq!(rebuilt.search(&queries, 10).unwrap(), expected);
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
