//! Helpers shared by the example programs' tests.
#![allow(dead_code)] // each test binary uses its own part

pub mod fixtures;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `diff4steer` program with `args` (and extra environment variables).
pub fn diff4steer_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diff4steer"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the program runs")
}

/// Runs the `diff4steer` program with `args`.
pub fn diff4steer(args: &[&str]) -> Output {
    diff4steer_with_env(args, &[])
}

/// Runs a command that must succeed and returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = diff4steer(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes the synthetic world into `data` and trains the tiny models the tests use: `prior/`
/// and `reg/` (48-d queries → 64-d targets) and `other_prior/` (64-d → 48-d).
pub fn world_and_tiny_models(data: &Path) {
    let p = |name: &str| data.join(name).to_string_lossy().into_owned();
    ok(&["synthetic", "--out", &p("")]);
    let tiny = [
        "--steps", "20", "--width", "32", "--depth", "1", "--batch", "64",
    ];
    let train = |cmd: &str, query: &str, target: &str, out: &str| {
        let (query, target, out) = (p(query), p(target), p(out));
        let mut args = vec![cmd, "--query", &query, "--target", &target, "--out", &out];
        args.extend(tiny);
        ok(&args)
    };
    assert!(
        train("train", "train_query.npy", "train_target.npy", "prior").contains("diffusion prior")
    );
    assert!(train(
        "train-regression",
        "train_query.npy",
        "train_target.npy",
        "reg"
    )
    .contains("regression"));
    train(
        "train",
        "train_target.npy",
        "train_query.npy",
        "other_prior",
    );
}

/// After [`world_and_tiny_models`]: samples 4 seeds per query from `prior/` (4 Heun steps) into
/// `seeds.npy` and retrieves the top 20 per query into the TREC run `run.txt`.
pub fn seeds_and_run(data: &Path) {
    let p = |name: &str| data.join(name).to_string_lossy().into_owned();
    ok(&[
        "sample",
        "--model",
        &p("prior"),
        "--query",
        &p("queries.npy"),
        "--seeds",
        "4",
        "--steps",
        "4",
        "--out",
        &p("seeds.npy"),
    ]);
    ok(&[
        "retrieve",
        "--catalog",
        &p("catalog.npy"),
        "--seeds",
        &p("seeds.npy"),
        "--seeds-per-query",
        "4",
        "--k",
        "20",
        "--out",
        &p("run.txt"),
    ]);
}

/// Fails with every failure of a bad-input matrix of `cases` cases, listed one per line.
pub fn assert_matrix_passed(cases: usize, failures: &[String]) {
    println!("{cases} cases checked");
    assert!(cases > 150, "the matrix shrank to {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
