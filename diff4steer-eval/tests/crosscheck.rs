//! Our metrics against independent implementations: ranx and trec_eval (through pytrec_eval) for
//! the ranking metrics, vendi-score for the Vendi score, scipy's `sqrtm` for the Fréchet distance.
//! The reference values are committed in `tests/crosscheck/expected.json`; rerun
//! `tests/crosscheck/crosscheck.sh` to recompute them from PyPI.

use std::path::PathBuf;

use diff4steer_eval::io::npy::read_f32_matrix;
use diff4steer_eval::io::trec::{read_qrels, read_run};
use diff4steer_eval::{evaluate, frechet_distance, vendi_score, RankingMetric};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/crosscheck")
        .join(name)
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

#[test]
fn ranking_metrics_equal_ranx_and_trec_eval() {
    let expected = expected();
    let per_query = expected["ranking"].as_object().unwrap();
    let run = read_run(&fixture("run.txt")).unwrap();
    let qrels = read_qrels(&fixture("qrels.txt")).unwrap();
    let names: Vec<&String> = per_query
        .values()
        .next()
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let metrics: Vec<RankingMetric> = names.iter().map(|n| n.parse().unwrap()).collect();
    let report = evaluate(&run, &qrels, &metrics).unwrap();
    assert_eq!(report.per_query.len(), per_query.len());
    let mut compared = 0;
    for (query, values) in per_query {
        for (metric, value) in values.as_object().unwrap() {
            let ours = report.per_query[query][metric];
            let theirs = value.as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-6,
                "{query} {metric}: ours {ours}, reference {theirs}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 30 * 13);
}

#[test]
fn vendi_and_frechet_equal_the_reference_packages() {
    let expected = expected();
    let vectors = read_f32_matrix(&fixture("vectors.npy")).unwrap();
    let dim = vectors.ncols();
    let flat = vectors.as_slice().unwrap();
    let set = |i: usize| &flat[i * 12 * dim..(i + 1) * 12 * dim];
    for (i, v) in expected["vendi_sets_of_12"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let ours = vendi_score(set(i), dim).unwrap();
        let theirs = v.as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 1e-6 * theirs.max(1.0),
            "set {i}: {ours} vs {theirs}"
        );
    }
    for (i, v) in expected["frechet_consecutive_sets"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let ours = frechet_distance(set(i), set(i + 1), dim).unwrap();
        let theirs = v.as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 1e-6 * theirs.max(1.0),
            "pair {i}: {ours} vs {theirs}"
        );
    }
}
