//! The `diff4steer` program end to end on the synthetic world (tiny models), and its refusals:
//! one-line errors naming the problem, non-zero exit, no output file.

use std::path::Path;
use std::process::{Command, Output};

fn diff4steer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diff4steer"))
        .args(args)
        .output()
        .expect("the program runs")
}

fn ok(args: &[&str]) -> String {
    let out = diff4steer(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail: non-zero exit, one line on stderr containing `needle`, and
/// no file at `out`.
fn refused(args: &[&str], needle: &str, out: &Path) {
    let result = diff4steer(args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: `{stderr}` lacks `{needle}`"
    );
    assert!(!out.exists(), "{args:?} left {}", out.display());
}

#[test]
fn the_whole_pipeline_and_its_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    ok(&["synthetic", "--out", &p("")]);
    let tiny = [
        "--steps", "20", "--width", "32", "--depth", "1", "--batch", "64",
    ];
    let train = |cmd: &str, out: &str| {
        let (query, target) = (p("train_query.npy"), p("train_target.npy"));
        let mut args = vec![cmd, "--query", &query, "--target", &target, "--out", out];
        args.extend(tiny);
        ok(&args)
    };
    assert!(train("train", &p("prior")).contains("diffusion prior"));
    assert!(train("train-regression", &p("reg")).contains("regression"));
    ok(&[
        "sample",
        "--model",
        &p("prior"),
        "--query",
        &p("queries.npy"),
        "--seeds",
        "4",
        "--out",
        &p("seeds.npy"),
        "--steps",
        "4",
    ]);
    let seeds = diff4steer_eval::io::npy::read_f32_matrix(Path::new(&p("seeds.npy"))).unwrap();
    assert_eq!(seeds.dim(), (48 * 4, 64));
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
    let run = diff4steer_eval::io::trec::read_run(Path::new(&p("run.txt"))).unwrap();
    assert_eq!(run.len(), 48);
    let report = ok(&[
        "eval",
        "--run",
        &p("run.txt"),
        "--qrels",
        &p("qrels.txt"),
        "--metrics",
        "ndcg@10,recall@20",
        "--out",
        &p("report.json"),
    ]);
    assert!(report.contains("ndcg@10") && Path::new(&p("report.json")).exists());
    ok(&[
        "sample",
        "--model",
        &p("reg"),
        "--query",
        &p("queries.npy"),
        "--seeds",
        "2",
        "--out",
        &p("reg_seeds.npy"),
    ]);

    let never = p("never");
    let never_path = Path::new(&never);
    refused(
        &[
            "retrieve",
            "--catalog",
            &p("missing.npy"),
            "--seeds",
            &p("seeds.npy"),
            "--seeds-per-query",
            "4",
            "--k",
            "5",
            "--out",
            &never,
        ],
        "missing.npy",
        never_path,
    );
    refused(
        &[
            "retrieve",
            "--catalog",
            &p("catalog.npy"),
            "--seeds",
            &p("queries.npy"),
            "--seeds-per-query",
            "4",
            "--k",
            "5",
            "--out",
            &never,
        ],
        "48-d",
        never_path,
    );
    refused(
        &[
            "retrieve",
            "--catalog",
            &p("catalog.npy"),
            "--seeds",
            &p("seeds.npy"),
            "--seeds-per-query",
            "4",
            "--k",
            "0",
            "--out",
            &never,
        ],
        "--k",
        never_path,
    );
    refused(
        &[
            "retrieve",
            "--catalog",
            &p("catalog.npy"),
            "--seeds",
            &p("seeds.npy"),
            "--seeds-per-query",
            "5",
            "--k",
            "5",
            "--out",
            &never,
        ],
        "multiple",
        never_path,
    );
    refused(
        &[
            "retrieve",
            "--catalog",
            &p("catalog.npy"),
            "--seeds",
            &p("seeds.npy"),
            "--seeds-per-query",
            "4",
            "--k",
            "5",
            "--out",
            &never,
            "--fusion",
            "borda",
        ],
        "borda",
        never_path,
    );
    refused(
        &[
            "sample",
            "--model",
            &p("prior"),
            "--query",
            &p("catalog.npy"),
            "--seeds",
            "2",
            "--out",
            &never,
        ],
        "expects 48",
        never_path,
    );
    refused(
        &[
            "sample",
            "--model",
            &p("nowhere"),
            "--query",
            &p("queries.npy"),
            "--seeds",
            "2",
            "--out",
            &never,
        ],
        "nowhere",
        never_path,
    );
    refused(
        &[
            "sample",
            "--model",
            &p("prior"),
            "--query",
            &p("queries.npy"),
            "--seeds",
            "2",
            "--out",
            &never,
            "--sampler",
            "rk4",
        ],
        "rk4",
        never_path,
    );
    refused(
        &[
            "sample",
            "--model",
            &p("reg"),
            "--query",
            &p("queries.npy"),
            "--seeds",
            "2",
            "--out",
            &never,
            "--negative",
            &p("queries.npy"),
        ],
        "regression",
        never_path,
    );
    refused(
        &[
            "eval",
            "--run",
            &p("run.txt"),
            "--qrels",
            &p("qrels.txt"),
            "--metrics",
            "ndcg@",
            "--out",
            &never,
        ],
        "ndcg@",
        never_path,
    );
    refused(
        &[
            "train",
            "--query",
            &p("queries.npy"),
            "--target",
            &p("catalog.npy"),
            "--out",
            &never,
        ],
        "rows",
        never_path,
    );
    std::fs::write(p("nan.npy"), b"not an npy file").unwrap();
    refused(
        &[
            "eval",
            "--run",
            &p("nan.npy"),
            "--qrels",
            &p("qrels.txt"),
            "--metrics",
            "mrr",
        ],
        "nan.npy",
        never_path,
    );
}
