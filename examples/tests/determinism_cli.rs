//! Same seed → bit-identical files across processes: the synthetic world, sampled seeds, runs
//! and reports are byte-for-byte the same in two processes, with one thread or all of them,
//! and a query's seeds do not depend on which other queries share its batch.

mod common;

use std::path::Path;

use common::{diff4steer_with_env, ok};

/// Runs the program with `args` and `RAYON_NUM_THREADS=threads`; it must succeed.
fn ok_with_threads(args: &[String], threads: usize) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = diff4steer_with_env(&args, &[("RAYON_NUM_THREADS", &threads.to_string())]);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first `n` rows of a matrix.
fn first_rows(m: &ndarray::Array2<f32>, n: usize) -> ndarray::ArrayView2<'_, f32> {
    m.slice_axis(ndarray::Axis(0), ndarray::Slice::from(..n))
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the command once per thread count, writing `out_name` with the thread count in its
/// name, and asserts all outputs are byte-identical. Returns the bytes.
fn identical_across_threads(dir: &Path, args: &[&str], out_name: &str) -> Vec<u8> {
    let outputs: Vec<Vec<u8>> = [1, 2, 1]
        .iter()
        .enumerate()
        .map(|(run, &threads)| {
            let out = dir.join(format!("{run}-{threads}t-{out_name}"));
            let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            full.extend(["--out".into(), out.to_string_lossy().into_owned()]);
            ok_with_threads(&full, threads);
            bytes(&out)
        })
        .collect();
    for (run, output) in outputs.iter().enumerate().skip(1) {
        assert!(
            *output == outputs[0],
            "{args:?}: run {run} differs from run 0 (1 thread, 2 threads, 1 thread)"
        );
    }
    outputs[0].clone()
}

#[test]
fn same_seed_gives_identical_files_across_processes_threads_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::world_and_tiny_models(&data);
    let p = |name: &str| data.join(name).to_string_lossy().into_owned();

    // The synthetic world: a second process writes the same bytes.
    let again = dir.path().join("again");
    ok(&["synthetic", "--out", &again.to_string_lossy()]);
    for file in [
        "catalog.npy",
        "train_query.npy",
        "train_target.npy",
        "queries.npy",
        "qrels.txt",
    ] {
        assert!(
            bytes(&data.join(file)) == bytes(&again.join(file)),
            "synthetic {file} differs"
        );
    }

    // Seeds from every sampler, with guidance, a negative condition and steering, from a prior
    // wide enough (256) that the backend's matrix products split work across threads.
    ok(&[
        "train",
        "--query",
        &p("train_query.npy"),
        "--target",
        &p("train_target.npy"),
        "--out",
        &p("wide_prior"),
        "--steps",
        "3",
        "--width",
        "256",
        "--depth",
        "2",
        "--batch",
        "64",
    ]);
    let (prior, queries) = (p("wide_prior"), p("queries.npy"));
    let common_sample = [
        "sample", "--model", &prior, "--seeds", "3", "--steps", "6", "--seed", "11",
    ];
    for sampler in ["heun", "sde", "dpmpp2m"] {
        let mut args = common_sample.to_vec();
        args.extend(["--query", &queries, "--sampler", sampler, "--guidance", "2"]);
        identical_across_threads(dir.path(), &args, &format!("seeds-{sampler}.npy"));
    }
    let catalog = p("catalog.npy");
    let steer = dir.path().join("steer.npy");
    let items = diff4steer_eval::io::npy::read_f32_matrix(Path::new(&catalog)).unwrap();
    diff4steer_eval::io::npy::write_f32_matrix(&steer, &first_rows(&items, 1).to_owned()).unwrap();
    let steer = steer.to_string_lossy();
    let mut steered = common_sample.to_vec();
    steered.extend([
        "--query",
        &queries,
        "--negative",
        &queries,
        "--steer",
        &steer,
        "--steer-scale",
        "0.05",
    ]);
    let seeds = identical_across_threads(dir.path(), &steered, "seeds-steered.npy");

    // Batch independence: the first 5 queries alone get the first 5 × 3 seed rows.
    let all = diff4steer_eval::io::npy::parse_f32_matrix(Path::new("seeds"), &seeds).unwrap();
    let first = diff4steer_eval::io::npy::read_f32_matrix(Path::new(&queries)).unwrap();
    let five = dir.path().join("five.npy");
    let five_negative = dir.path().join("five_negative.npy");
    let rows = first_rows(&first, 5).to_owned();
    diff4steer_eval::io::npy::write_f32_matrix(&five, &rows).unwrap();
    diff4steer_eval::io::npy::write_f32_matrix(&five_negative, &rows).unwrap();
    let (five, five_negative) = (five.to_string_lossy(), five_negative.to_string_lossy());
    let mut alone = common_sample.to_vec();
    alone.extend([
        "--query",
        &five,
        "--negative",
        &five_negative,
        "--steer",
        &steer,
        "--steer-scale",
        "0.05",
    ]);
    let alone = identical_across_threads(dir.path(), &alone, "seeds-five.npy");
    let alone = diff4steer_eval::io::npy::parse_f32_matrix(Path::new("five"), &alone).unwrap();
    let bits = |m: ndarray::ArrayView2<f32>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert!(
        bits(alone.view()) == bits(first_rows(&all, 15)),
        "the first five queries' seeds depend on the batch they are sampled in"
    );

    // Runs (flat and HNSW, every fusion) and reports.
    let seeds_file = dir.path().join("0-1t-seeds-heun.npy");
    let seeds_file = seeds_file.to_string_lossy();
    for (index, fusion) in [
        ("flat", "rrf"),
        ("hnsw", "mmr"),
        ("flat", "round-robin"),
        ("hnsw", "max"),
    ] {
        let args = [
            "retrieve",
            "--catalog",
            &catalog,
            "--seeds",
            &seeds_file,
            "--seeds-per-query",
            "3",
            "--k",
            "20",
            "--index",
            index,
            "--fusion",
            fusion,
            "--preprocess",
            "whiten",
        ];
        identical_across_threads(dir.path(), &args, &format!("run-{index}-{fusion}.txt"));
    }
    // `retrieve` with its defaults on the heun seeds (compared with `query` below).
    let args = [
        "retrieve",
        "--catalog",
        &catalog,
        "--seeds",
        &seeds_file,
        "--seeds-per-query",
        "3",
        "--k",
        "20",
    ];
    identical_across_threads(dir.path(), &args, "run-flat-rrf-default.txt");
    // Re-ranking by the prior's implicit classifier: the same run whatever the thread count.
    let args = [
        "retrieve",
        "--catalog",
        &catalog,
        "--seeds",
        &seeds_file,
        "--seeds-per-query",
        "3",
        "--k",
        "20",
        "--rerank",
        "implicit:30:4",
        "--model",
        &prior,
        "--query",
        &queries,
    ];
    identical_across_threads(dir.path(), &args, "run-rerank.txt");
    // The whole path in one call: the same run whatever the thread count, and the same run as
    // `sample` then `retrieve` with the same settings.
    let args = [
        "query",
        "--model",
        &prior,
        "--catalog",
        &catalog,
        "--query",
        &queries,
        "--k",
        "20",
        "--seeds",
        "3",
        "--steps",
        "6",
        "--seed",
        "11",
        "--guidance",
        "2",
    ];
    let whole = identical_across_threads(dir.path(), &args, "run-query.txt");
    let two_steps = bytes(&dir.path().join("0-1t-run-flat-rrf-default.txt"));
    assert!(whole == two_steps, "query differs from sample + retrieve");
    let run = dir.path().join("0-1t-run-flat-rrf.txt");
    let (run, qrels) = (run.to_string_lossy(), p("qrels.txt"));
    let args = [
        "eval",
        "--run",
        &run,
        "--qrels",
        &qrels,
        "--metrics",
        "ndcg@10,recall@20,map,mrr",
    ];
    identical_across_threads(dir.path(), &args, "report.json");
}
