//! `diff4steer index` and `retrieve --index milvus` against a real Milvus server
//! (`DIFF4STEER_MILVUS_URL`; skipped without it), and their faults: one line naming the URL and
//! the problem, a non-zero exit, no output file.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{diff4steer, ok, seeds_and_run, world_and_tiny_models};

/// Exit non-zero with exactly one line on stderr containing every word, and no `out`.
fn refused(args: &[&str], words: &[&str], out: &Path) {
    let output = diff4steer(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for word in words {
        assert!(stderr.contains(word), "{word:?} missing from {stderr}");
    }
    assert!(!out.exists(), "{} was written", out.display());
}

/// (qid, docid) pairs of a TREC run.
fn pairs(run: &Path) -> HashSet<(String, String)> {
    std::fs::read_to_string(run)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f[0].to_owned(), f[2].to_owned())
        })
        .collect()
}

#[test]
fn an_unreachable_server_is_one_line_naming_the_url_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    world_and_tiny_models(data);
    seeds_and_run(data);
    let p = |name: &str| data.join(name).to_string_lossy().into_owned();
    let out = data.join("milvus_run.txt");
    let url = "http://127.0.0.1:9";
    let search = [
        "--index",
        "milvus",
        "--milvus",
        url,
        "--collection",
        "music",
        "--milvus-timeout",
        "2",
    ];
    let seeds = p("seeds.npy");
    let mut args = vec!["retrieve", "--seeds", &seeds];
    let out_text = out.to_string_lossy().into_owned();
    args.extend(["--seeds-per-query", "4", "--k", "5", "--out", &out_text]);
    args.extend(search);
    refused(&args, &[url, "music"], &out);
    let catalog = p("catalog.npy");
    refused(
        &[
            "index",
            "--catalog",
            &catalog,
            "--milvus",
            url,
            "--collection",
            "music",
            "--timeout",
            "2",
        ],
        &[url, "music"],
        &out,
    );
    refused(
        &[
            "index",
            "--catalog",
            &p("nowhere.npy"),
            "--milvus",
            url,
            "--collection",
            "music",
        ],
        &["nowhere.npy"],
        &out,
    );
    refused(
        &[
            "index",
            "--catalog",
            &catalog,
            "--milvus",
            url,
            "--collection",
            "music",
            "--milvus-index",
            "annoy",
        ],
        &["annoy"],
        &out,
    );
}

#[test]
fn a_catalogue_indexed_in_milvus_is_searched_as_the_local_flat_index_does() {
    let Ok(url) = std::env::var("DIFF4STEER_MILVUS_URL") else {
        eprintln!("skipped: DIFF4STEER_MILVUS_URL is not set (no Milvus server to test against)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    world_and_tiny_models(data);
    seeds_and_run(data); // run.txt: the local flat index, standardised, cosine, top 20
    let p = |name: &str| data.join(name).to_string_lossy().into_owned();
    let collection = format!("cli_{}", std::process::id());
    let catalog = p("catalog.npy");
    let index_args = [
        "index",
        "--catalog",
        &catalog,
        "--milvus",
        &url,
        "--collection",
        &collection,
        "--milvus-index",
        "flat",
    ];
    let said = ok(&index_args);
    assert!(said.contains("4000 items × 64"), "{said}");
    // The name is taken now: a second load is refused, naming the server and collection.
    let out = data.join("milvus_run.txt");
    refused(&index_args, &[&url, &collection, "exists"], &out);

    let out_text = out.to_string_lossy().into_owned();
    let seeds = p("seeds.npy");
    let retrieve = |collection: &str| {
        diff4steer(&[
            "retrieve",
            "--index",
            "milvus",
            "--milvus",
            &url,
            "--collection",
            collection,
            "--seeds",
            &seeds,
            "--seeds-per-query",
            "4",
            "--k",
            "20",
            "--out",
            &out_text,
        ])
    };
    let searched = retrieve(&collection);
    let result = diff4steer_index_drop(&url, &collection);
    assert!(
        searched.status.success(),
        "{}",
        String::from_utf8_lossy(&searched.stderr)
    );
    // Exact (FLAT) search of the same preprocessed items: the same lists up to float ties.
    let local = pairs(&data.join("run.txt"));
    let remote = pairs(&out);
    let shared = local.intersection(&remote).count();
    assert!(
        shared as f64 >= 0.98 * local.len() as f64,
        "{shared} of {} (query, item) pairs shared",
        local.len()
    );
    assert!(result, "the collection could not be dropped");

    // Dropped: one line naming the server, the collection and the problem; no output.
    std::fs::remove_file(&out).unwrap();
    let missing = retrieve(&collection);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains(&collection),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// Drops the test's collection through the library; whether it existed.
fn diff4steer_index_drop(url: &str, collection: &str) -> bool {
    use diff4steer_index::{MilvusConfig, MilvusIndex};
    MilvusIndex::drop_collection(&MilvusConfig::new(url, collection)).unwrap_or(false)
}
