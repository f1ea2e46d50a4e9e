//! Crash safety: a training run killed (SIGKILL) at random moments while it writes checkpoints
//! leaves its newest complete checkpoint loadable and intact, and `--resume` carries on from it;
//! a run restarted afresh in the same folder (every third round) re-saves steps that exist
//! there and must not break the checkpoint `latest` names meanwhile.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diff4steer_models::backend::CpuBackend;
use diff4steer_models::training::{load_prior, Checkpoint};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Whether the kill caught the process in the middle of a checkpoint write: a staging folder
/// or a temporary file is left behind.
fn interrupted_a_write(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(".staging") || name.ends_with(".tmp")
        })
    })
}

#[test]
fn training_killed_during_checkpoint_writes_leaves_a_loadable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    common::ok(&["synthetic", "--out", &p("")]);
    let out = dir.path().join("prior");
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let (mut kills, mut mid_write, mut last_step) = (0, 0, 0);
    let mut resumed_steps = 0;
    while kills < 40 && (kills < 12 || mid_write < 3) {
        // A checkpoint at every step: the run spends much of its time writing them.
        let resume = kills % 3 != 2;
        let (query, target, folder) = (p("train_query.npy"), p("train_target.npy"), p("prior"));
        let mut args = vec![
            "train",
            "--query",
            &query,
            "--target",
            &target,
            "--out",
            &folder,
            "--steps",
            "100000",
            "--width",
            "128",
            "--depth",
            "2",
            "--batch",
            "16",
            "--checkpoint-every",
            "1",
        ];
        if resume {
            args.push("--resume");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_diff4steer"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until this run has written a checkpoint of its own (it is past loading), then
        // kill it at a random moment.
        let latest = || std::fs::read_to_string(out.join("latest")).ok();
        let before = latest();
        let started = Instant::now();
        while latest() == before && started.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(30..400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        mid_write += usize::from(interrupted_a_write(&out));

        let checkpoint = Checkpoint::open(&out)
            .unwrap_or_else(|e| panic!("kill {kills}: the checkpoint does not open: {e}"));
        assert!(
            !resume || checkpoint.step() >= last_step,
            "kill {kills}: step {} after step {last_step}: --resume went backwards",
            checkpoint.step()
        );
        if resume {
            resumed_steps = resumed_steps.max(checkpoint.step());
        }
        last_step = checkpoint.step();
        load_prior::<CpuBackend>(&out, &Default::default())
            .unwrap_or_else(|e| panic!("kill {kills}: the checkpoint does not load: {e}"));
    }
    println!("{kills} kills, {mid_write} during a checkpoint write, resumed runs reached step {resumed_steps}");
    assert!(mid_write >= 1, "no kill landed during a checkpoint write");
    assert!(resumed_steps > 0);
}
