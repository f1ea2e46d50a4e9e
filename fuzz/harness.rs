//! What each fuzz target does with its input, in one file shared by the fuzz targets
//! (`fuzz_targets/*.rs`, run by `cargo fuzz`) and by the regression test that replays the
//! committed inputs in CI (`examples/tests/fuzz_regressions.rs` includes this file).
//!
//! Every function takes arbitrary bytes and must return without panicking, whatever they are:
//! bad input is an `Err`, which is fine. Properties beyond "no panic" are asserted (a metric
//! name that parses prints back to a name that parses to the same metric).

use std::path::Path;
use std::sync::OnceLock;

use diff4steer_eval::io::npy::{parse_f32_matrix, parse_labels};
use diff4steer_eval::io::trec::{parse_qrels, parse_run};
use diff4steer_eval::RankingMetric;
use diff4steer_models::backend::{CpuAutodiff, CpuBackend};
use diff4steer_models::training::{
    load_prior, load_regression, train_prior, Checkpoint, Output, PairData, TrainingConfig,
};
use diff4steer_models::{DiffusionPriorConfig, ResMlpConfig};

/// The .npy readers: float32 matrices and 0/1 labels.
pub fn npy(data: &[u8]) {
    let path = Path::new("fuzz.npy");
    if let Ok(matrix) = parse_f32_matrix(path, data) {
        assert!(
            matrix.iter().all(|v| v.is_finite()),
            "a NaN/Inf value got through"
        );
    }
    if let Ok(labels) = parse_labels(path, data) {
        assert!(
            labels.iter().all(|&v| v <= 1),
            "a label other than 0/1 got through"
        );
    }
}

/// The TREC run and qrels parsers.
pub fn trec(data: &[u8]) {
    let path = Path::new("fuzz.txt");
    if let Ok(run) = parse_run(path, data) {
        for query in run.queries() {
            let list = run.ranking(query).expect("a listed query has a ranking");
            assert!(
                list.iter().all(|(_, s)| s.is_finite()),
                "a non-finite score got through"
            );
        }
    }
    let _ = parse_qrels(path, data);
}

/// The metric-name parser: whatever parses prints as a name that parses to the same metric.
pub fn metric_name(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(metric) = text.parse::<RankingMetric>() {
        let printed = metric.to_string();
        let again: RankingMetric = printed
            .parse()
            .unwrap_or_else(|e| panic!("`{text}` parses, but its name `{printed}` does not: {e}"));
        assert_eq!(again, metric, "`{text}` → `{printed}` → another metric");
    }
    let _ = RankingMetric::parse_list(text);
}

/// A small trained prior checkpoint, written once per process: the base the checkpoint target
/// damages.
fn base_checkpoint() -> &'static Path {
    static BASE: OnceLock<tempfile::TempDir> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let values = |n: usize| (0..n).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5).collect();
        let data = PairData::from_vecs(values(32 * 3), 3, values(32 * 4), 4).expect("pairs");
        let config = DiffusionPriorConfig::new(4, 3)
            .with_network(ResMlpConfig::new().with_width(8).with_depth(1));
        let training = TrainingConfig::new()
            .with_steps(1)
            .with_batch_size(4)
            .with_progress(false);
        train_prior::<CpuAutodiff>(
            &config,
            &training,
            &data,
            None,
            Some(Output::new(dir.path())),
            &Default::default(),
        )
        .expect("the base checkpoint trains");
        dir
    })
    .path()
}

/// The step folder `latest` names.
fn step_folder(checkpoint: &Path) -> std::path::PathBuf {
    let name = std::fs::read_to_string(checkpoint.join("latest")).expect("latest");
    checkpoint.join(name.trim())
}

/// Which file of the checkpoint an input replaces, by its first byte.
pub const CHECKPOINT_FILES: [&str; 3] = ["config.json", "model.mpk", "latest"];

/// The checkpoint loader: the first byte picks the file of a valid checkpoint that the rest
/// replaces (`config.json`, `model.mpk` or `latest`). A replaced `model.mpk` gets its size and
/// SHA-256 written into the manifest, so that the weights decoder sees the bytes instead of the
/// checksum rejecting them.
pub fn checkpoint(data: &[u8]) {
    let Some((&which, content)) = data.split_first() else {
        return;
    };
    let file = CHECKPOINT_FILES[usize::from(which) % CHECKPOINT_FILES.len()];
    let scratch = tempfile::tempdir().expect("a temporary folder");
    let base = base_checkpoint();
    let step = step_folder(base);
    let step_name = step.file_name().expect("a step folder");
    let copy = scratch.path().join(step_name);
    std::fs::create_dir_all(&copy).expect("folder");
    // Read and write rather than `fs::copy`: libFuzzer's timer signal interrupts the kernel's
    // file-copy call, which `fs::copy` does not retry.
    let copy_file = |from: &Path, to: &Path| {
        std::fs::write(to, std::fs::read(from).expect("readable")).expect("copied");
    };
    for entry in std::fs::read_dir(&step).expect("readable").flatten() {
        copy_file(&entry.path(), &copy.join(entry.file_name()));
    }
    copy_file(&base.join("latest"), &scratch.path().join("latest"));
    match file {
        "latest" => std::fs::write(scratch.path().join("latest"), content),
        "model.mpk" => {
            let manifest = copy.join("config.json");
            let mut json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&manifest).expect("manifest"))
                    .expect("a valid manifest");
            let entry = &mut json["files"]["model.mpk"];
            entry["bytes"] = content.len().into();
            entry["sha256"] = sha256_hex(content).into();
            std::fs::write(&manifest, serde_json::to_vec(&json).expect("json"))
                .and_then(|()| std::fs::write(copy.join("model.mpk"), content))
        }
        _ => std::fs::write(copy.join(file), content),
    }
    .expect("fuzz input written");
    let _ = Checkpoint::open(scratch.path());
    let _ = load_prior::<CpuBackend>(scratch.path(), &Default::default());
    let _ = load_regression::<CpuBackend>(scratch.path(), &Default::default());
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Seed inputs for the checkpoint target: each file of a valid checkpoint, with its selector.
pub fn checkpoint_seeds() -> Vec<Vec<u8>> {
    let step = step_folder(base_checkpoint());
    CHECKPOINT_FILES
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let path = if *file == "latest" {
                base_checkpoint().join(file)
            } else {
                step.join(file)
            };
            let mut seed = vec![i as u8];
            seed.extend(std::fs::read(path).expect("a checkpoint file"));
            seed
        })
        .collect()
}
