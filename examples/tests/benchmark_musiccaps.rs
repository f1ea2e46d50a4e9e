//! A smoke run of `diff4steer benchmark musiccaps` on the real data (a few queries, tiny models,
//! every section including steering and re-ranking): it finishes, writes its report, plots and
//! results, and the results hold every system on both protocols. Skipped with a message where
//! ../shared/data is absent.

mod common;

use common::ok;
use diff4steer_eval::shared_data_dir;

#[test]
fn the_musiccaps_benchmark_runs_end_to_end_on_a_few_queries() {
    let Some(data) = shared_data_dir() else {
        eprintln!(
            "skipping: ../shared/data is not present (real data lives only beside the project)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let (data, out_arg) = (
        data.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
    );
    ok(&[
        "benchmark",
        "musiccaps",
        "--data",
        &data,
        "--out",
        &out_arg,
        "--limit",
        "6",
        "--steps",
        "30",
        "--regression-steps",
        "30",
        "--width",
        "32",
        "--depth",
        "1",
        "--guidance",
        "0,2",
        "--rerank-top",
        "8",
        "--rerank-draws",
        "2",
    ]);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for section in [
        "## Caption → clip, catalogue: split",
        "## Aspect → clips, catalogue: split + distractors",
        "## Catalogue preprocessing `whiten`",
        "## Samplers",
        "## Steering",
    ] {
        assert!(report.contains(section), "no `{section}` in the report");
    }
    for name in ["cfg_tradeoff.svg", "steering.svg"] {
        assert!(out.join(name).exists(), "{name} missing");
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let rows = results["rows"].as_array().unwrap();
    let has = |system: &str, protocol: &str| {
        rows.iter().any(|r| {
            r["system"].as_str().is_some_and(|s| s.starts_with(system)) && !r[protocol].is_null()
        })
    };
    for system in [
        "prior w=2 seeds=32 rrf",
        "regression (MSE)",
        "regression (cosine)",
        "ridge (captions)",
        "nearest training caption",
    ] {
        assert!(has(system, "caption") && has(system, "aspect"), "{system}");
    }
    assert!(has("aspect centroid", "aspect") && has("all training clips", "aspect"));
    assert!(rows
        .iter()
        .any(|r| r["system"].as_str().unwrap().contains("implicit rerank")));
    // Six queries each: scores are fractions of 6.
    let recall = rows[0]["caption"]["recall_10"].as_f64().unwrap();
    assert!((recall * 6.0 - (recall * 6.0).round()).abs() < 1e-9);
    assert!(!results["steering"].as_array().unwrap().is_empty());
}
