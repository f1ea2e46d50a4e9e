//! Replays the committed fuzz inputs through the fuzz targets' own code (fuzz/harness.rs): the
//! inputs that once found a bug (`fuzz/regressions/<target>/`) and the seed corpus
//! (`fuzz/seeds/<target>/`). CI runs this; the fuzzers themselves run by hand (fuzz/README.md).

mod common;
#[path = "../../fuzz/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::{Path, PathBuf};

/// What a fuzz target does with one input.
type Target = fn(&[u8]);

/// The fuzz targets by name.
const TARGETS: [(&str, Target); 4] = [
    ("npy", harness::npy),
    ("trec", harness::trec),
    ("metric_name", harness::metric_name),
    ("checkpoint", harness::checkpoint),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn committed_fuzz_inputs_do_not_panic() {
    let mut replayed = 0;
    for (target, run) in TARGETS {
        let regressions = inputs("regressions", target);
        let seeds = inputs("seeds", target);
        assert!(!seeds.is_empty(), "fuzz/seeds/{target}/ is empty");
        for file in regressions.iter().chain(&seeds) {
            let data = std::fs::read(file).unwrap();
            // A panic here names the input through the test's output.
            println!("{target}: {}", file.display());
            run(&data);
            replayed += 1;
        }
    }
    println!("{replayed} fuzz inputs replayed");
}

/// Writes the seed corpus (`fuzz/seeds/`): the broken fixtures of the bad-input matrices and
/// valid files of each kind. `cargo test -p diff4steer-examples --test fuzz_regressions -- --ignored`
#[test]
#[ignore = "writes fuzz/seeds; run by hand when the fixtures change"]
fn write_seed_corpus() {
    let scratch = tempfile::tempdir().unwrap();
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for broken in common::fixtures::broken_npy_files(scratch.path(), 3) {
        if let Ok(bytes) = std::fs::read(scratch.path().join(broken.name)) {
            write("npy", broken.name, &bytes);
        }
    }
    let good = scratch.path().join("good.npy");
    diff4steer_eval::io::npy::write_f32_matrix(&good, &common::fixtures::matrix(3, 4)).unwrap();
    write("npy", "good.npy", &std::fs::read(&good).unwrap());
    let labels = scratch.path().join("labels.npy");
    diff4steer_eval::io::npy::write_labels(&labels, &ndarray::Array2::from_elem((2, 3), 1))
        .unwrap();
    write("npy", "labels.npy", &std::fs::read(&labels).unwrap());
    for broken in common::fixtures::broken_runs(scratch.path())
        .into_iter()
        .chain(common::fixtures::broken_qrels(scratch.path()))
    {
        write(
            "trec",
            broken.name,
            &std::fs::read(scratch.path().join(broken.name)).unwrap(),
        );
    }
    write(
        "trec",
        "run.txt",
        b"q1 Q0 d1 1 0.9 tag\nq1 Q0 d2 2 0.5 tag\nq2 Q0 d1 1 -1e3 tag\n",
    );
    write("trec", "qrels.txt", b"q1 0 d1 1\nq1 0 d3 2\nq2 0 d9 0\n");
    for (i, name) in [
        "ndcg@10",
        "recall@50",
        "map",
        "map@100",
        "mrr@10",
        "hit_rate@5",
        "r-precision",
        "p@5",
        "ndcg@10,recall@50,mrr",
    ]
    .iter()
    .enumerate()
    {
        write("metric_name", &format!("name{i}"), name.as_bytes());
    }
    for (seed, file) in harness::checkpoint_seeds()
        .iter()
        .zip(harness::CHECKPOINT_FILES)
    {
        write("checkpoint", file, seed);
    }
}
