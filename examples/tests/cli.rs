//! The `diff4steer` program end to end on the synthetic world (tiny models). Its refusals are
//! the bad-input matrix of `bad_input_cli.rs`.

mod common;

use std::path::Path;

use common::ok;

#[test]
fn the_whole_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    common::world_and_tiny_models(dir.path());
    common::seeds_and_run(dir.path());
    let seeds = diff4steer_eval::io::npy::read_f32_matrix(Path::new(&p("seeds.npy"))).unwrap();
    assert_eq!(seeds.dim(), (48 * 4, 64));
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
}
