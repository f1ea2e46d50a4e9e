//! The library bad-input matrix: every public entry point that takes user data, fed every broken
//! input of `tests/common/fixtures.rs` and every bad parameter, must return its crate's typed
//! error (the closures below name the error type) whose message contains the expected words —
//! never panic, never leave an output file.
//!
//! The table is `cases()`: one `case!` line per (entry point, bad input). To add a case, add a
//! line; to add a way a file can be broken, add it to `fixtures.rs` and every reader of that
//! kind of file is fed it.

mod common;

use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use common::fixtures::{self, Broken};
use diff4steer_core::{
    karras, Conditioning, Denoiser, GaussianMixture, LinearGuidance, SeededNoise, Sigmas,
    Similarity as SteerSimilarity, Steered, SteeringTarget,
};
use diff4steer_eval::io::npy::{read_f32_matrix, read_labels, read_nonempty_f32_matrix};
use diff4steer_eval::io::trec::{read_qrels, read_run, write_run};
use diff4steer_eval::io::tsv::Table;
use diff4steer_eval::{
    evaluate, frechet_distance, intra_list_diversity, prdc, vendi_score, JamendoMood, MusicWorld,
    MusicWorldConfig, RankingMetric, Run,
};
use diff4steer_index::{
    fuse, FlatIndex, Fusion, Hit, HnswConfig, HnswIndex, Preprocessing, Preprocessor, Similarity,
    VectorIndex,
};
use diff4steer_models::backend::{CpuAutodiff, CpuBackend as B};
use diff4steer_models::training::{
    load_prior, load_regression, train_prior, Checkpoint, PairData, TrainingConfig,
};
use diff4steer_models::{
    DiffusionPriorConfig, PriorSeeds, RegressionConfig, Sampler, SamplerKind, SeedGenerator,
};

/// One row of the matrix: a name, the words the error must contain (joined by ` & `), and the
/// call.
struct Case {
    name: String,
    needle: String,
    call: Box<dyn Fn() -> Result<(), String>>,
}

/// Wraps a call returning `Result<_, E>` with a typed error `E` into a case.
fn case<T, E: Display>(
    name: impl Into<String>,
    needle: impl Into<String>,
    call: impl Fn() -> Result<T, E> + 'static,
) -> Case {
    Case {
        name: name.into(),
        needle: needle.into(),
        call: Box::new(move || call().map(|_| ()).map_err(|e| e.to_string())),
    }
}

/// The first of `case.needle`'s words that `message` lacks.
fn missing_word<'a>(case: &'a Case, message: &str) -> Option<&'a str> {
    case.needle.split(" & ").find(|w| !message.contains(w))
}

fn tensor(rows: usize, cols: usize) -> Tensor<B, 2> {
    let m = fixtures::matrix(rows, cols);
    Tensor::from_data(
        burn::tensor::TensorData::new(m.into_raw_vec_and_offset().0, [rows, cols]),
        &Default::default(),
    )
}

fn rows(n: usize, dim: usize) -> Vec<f32> {
    fixtures::matrix(n, dim).into_raw_vec_and_offset().0
}

fn with_nan(mut v: Vec<f32>) -> Vec<f32> {
    v[1] = f32::NAN;
    v
}

/// A tiny trained prior (6-d queries → 8-d targets) in `dir`.
fn tiny_prior(dir: &Path) {
    let data = PairData::from_vecs(rows(64, 6), 6, rows(64, 8), 8).unwrap();
    let config = DiffusionPriorConfig::new(8, 6).with_network(
        diff4steer_models::ResMlpConfig::new()
            .with_width(16)
            .with_depth(1),
    );
    let training = TrainingConfig::new()
        .with_steps(3)
        .with_batch_size(8)
        .with_progress(false);
    train_prior::<CpuAutodiff>(
        &config,
        &training,
        &data,
        None,
        Some(diff4steer_models::training::Output::new(dir)),
        &Default::default(),
    )
    .unwrap();
}

/// Every case of the matrix, over fixtures written into `dir`.
fn cases(dir: &Path) -> Vec<Case> {
    let path = |name: &str| -> PathBuf { dir.join(name) };
    let npy = fixtures::broken_npy_files(dir, 6);
    let runs = fixtures::broken_runs(dir);
    let qrels = fixtures::broken_qrels(dir);
    let prior_dir = path("prior");
    tiny_prior(&prior_dir);
    let models = fixtures::broken_checkpoints(&prior_dir, dir);
    let good = path("good.npy");
    diff4steer_eval::io::npy::write_f32_matrix(&good, &fixtures::matrix(6, 6)).unwrap();
    let good8 = path("good8.npy");
    diff4steer_eval::io::npy::write_f32_matrix(&good8, &fixtures::matrix(5, 8)).unwrap();

    let mut cases = Vec::new();
    let each = |cases: &mut Vec<Case>,
                broken: &[Broken],
                entry: &str,
                call: fn(&Path) -> Result<(), String>| {
        for b in broken {
            let file = path(b.name);
            cases.push(case(
                format!("{entry}({})", b.name),
                format!("{} & {}", b.name, b.problem),
                move || call(&file),
            ));
        }
    };

    // .npy readers (eval) and the training-data reader (models).
    each(&mut cases, &npy, "read_nonempty_f32_matrix", |p| {
        read_nonempty_f32_matrix(p)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    let readable_when_empty: Vec<Broken> = npy
        .iter()
        .filter(|b| !b.name.starts_with("zero_"))
        .cloned()
        .collect();
    each(&mut cases, &readable_when_empty, "read_f32_matrix", |p| {
        read_f32_matrix(p).map(drop).map_err(|e| e.to_string())
    });
    each(&mut cases, &npy, "PairData::from_npy(query)", |p| {
        let good = p.with_file_name("good.npy");
        PairData::from_npy(p, &good)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    each(&mut cases, &npy, "PairData::from_npy(target)", |p| {
        let good = p.with_file_name("good.npy");
        PairData::from_npy(&good, p)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    for (name, problem) in [
        ("good.npy", "not uint8 or bool"),
        ("huge_shape.npy", "not uint8 or bool"),
        ("empty.npy", "empty file"),
        ("missing.npy", "No such file"),
    ] {
        let file = path(name);
        cases.push(case(format!("read_labels({name})"), problem, move || {
            read_labels(&file)
        }));
    }
    let labels = path("labels_two.npy");
    let mut bytes = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&ndarray::Array2::<u8>::from_elem((2, 2), 2), &mut bytes)
        .unwrap();
    std::fs::write(&labels, bytes).unwrap();
    cases.push(case(
        "read_labels(value 2)",
        "label 2 is not 0 or 1",
        move || read_labels(&labels),
    ));
    {
        let (good, good8) = (good.clone(), good8.clone());
        cases.push(case(
            "PairData::from_npy(rows differ)",
            "6 query rows but 5 target rows",
            move || PairData::from_npy(&good, &good8),
        ));
    }
    cases.push(case("PairData::from_vecs(ragged)", "multiple", || {
        PairData::from_vecs(rows(3, 4), 5, rows(3, 4), 4)
    }));
    cases.push(case(
        "PairData::from_vecs(NaN target)",
        "non-finite",
        || PairData::from_vecs(rows(3, 4), 4, with_nan(rows(3, 4)), 4),
    ));
    cases.push(case("PairData::split(1.0)", "validation fraction", || {
        PairData::from_vecs(rows(3, 4), 4, rows(3, 4), 4)?.split(1.0, 0)
    }));

    // TREC readers, metric names and evaluation (eval).
    each(&mut cases, &runs, "read_run", |p| {
        read_run(p).map(drop).map_err(|e| e.to_string())
    });
    each(&mut cases, &qrels, "read_qrels", |p| {
        read_qrels(p).map(drop).map_err(|e| e.to_string())
    });
    for missing in ["missing_run.txt", "missing_qrels.txt"] {
        let file = path(missing);
        cases.push(case(format!("read_run({missing})"), missing, move || {
            read_run(&file)
        }));
        let file = path(missing);
        cases.push(case(format!("read_qrels({missing})"), missing, move || {
            read_qrels(&file)
        }));
    }
    for name in [
        "ndcg@",
        "ndcg@-1",
        "ndcg@0",
        "ndcg@ten",
        "recall",
        "bleu@4",
        "",
        "ndcg@10@5",
    ] {
        cases.push(case(
            format!("RankingMetric::from_str({name:?})"),
            format!("metric `{name}`"),
            move || name.parse::<RankingMetric>(),
        ));
    }
    cases.push(case(
        "RankingMetric::parse_list(no names)",
        "no metric given",
        || RankingMetric::parse_list(" , "),
    ));
    cases.push(case("evaluate(no metrics)", "metric", || {
        evaluate(&Run::new(), &diff4steer_eval::Qrels::new(), &[])
    }));
    cases.push(case("Run::push(NaN score)", "non-finite", || {
        Run::new().push("q", "d", f64::NAN)
    }));
    {
        let under_file = path("good.npy").join("run.txt");
        cases.push(case("write_run(under a file)", "good.npy", move || {
            let mut run = Run::new();
            run.push("q", "d", 1.0).unwrap();
            write_run(&under_file, &run, "tag")
        }));
        let tagged = path("tagged_run.txt");
        cases.push(case("write_run(tag with a space)", "tag", move || {
            write_run(&tagged, &Run::new(), "two words")
        }));
    }

    // TSV tables and the real-data loader (eval).
    for (name, bytes, problem) in [
        ("table_empty.tsv", &b""[..], "empty"),
        ("table_ragged.tsv", b"a\tb\n1\t2\n3\n", "line 3"),
        ("table_non_utf8.tsv", b"a\tb\n\xff\t2\n", "not valid UTF-8"),
    ] {
        let file = path(name);
        std::fs::write(&file, bytes).unwrap();
        cases.push(case(format!("Table::read({name})"), problem, move || {
            Table::read(&file)
        }));
    }
    {
        let file = path("table_ok.tsv");
        std::fs::write(&file, "a\tb\n1\tx\n").unwrap();
        let f = file.clone();
        cases.push(case("Table::column(unknown)", "c", move || {
            Table::read(&f)?.column("c")
        }));
        cases.push(case(
            "Table::parse_column(not a number)",
            "line 2",
            move || Table::read(&file)?.parse_column::<f64>("b"),
        ));
    }
    {
        let nowhere = path("no_dataset");
        cases.push(case(
            "JamendoMood::load(missing folder)",
            "no_dataset",
            move || JamendoMood::load(&nowhere),
        ));
    }
    cases.push(case("MusicWorld::generate(no items)", "items", || {
        MusicWorld::generate(&MusicWorldConfig {
            items: 0,
            ..MusicWorldConfig::default()
        })
    }));

    // Set and distribution metrics (eval).
    cases.push(case(
        "frechet_distance(ragged)",
        "7 values are not whole rows of 3",
        || frechet_distance(&rows(4, 3), &rows(4, 2)[..7], 3),
    ));
    cases.push(case("frechet_distance(NaN)", "non-finite", || {
        frechet_distance(&with_nan(rows(4, 3)), &rows(4, 3), 3)
    }));
    cases.push(case("frechet_distance(one row)", "row", || {
        frechet_distance(&rows(1, 3), &rows(4, 3), 3)
    }));
    cases.push(case("prdc(k = 0)", "k", || {
        prdc(&rows(5, 3), &rows(5, 3), 3, 0)
    }));
    cases.push(case("prdc(k ≥ rows)", "need at least 6 rows", || {
        prdc(&rows(5, 3), &rows(5, 3), 3, 5)
    }));
    cases.push(case("vendi_score(dim 0)", "not whole rows of 0", || {
        vendi_score(&[], 0)
    }));
    cases.push(case("vendi_score(NaN)", "non-finite", || {
        vendi_score(&with_nan(rows(4, 3)), 3)
    }));
    cases.push(case(
        "intra_list_diversity(ragged)",
        "not whole rows of 3",
        || intra_list_diversity(&rows(3, 3)[..8], 3),
    ));

    // Indexes, preprocessing and fusion (index).
    type Build = fn(usize, &[f32]) -> diff4steer_index::Result<Box<dyn VectorIndex>>;
    let builders: [(&str, Build); 2] = [
        ("FlatIndex", |dim, rows| {
            Ok(Box::new(FlatIndex::from_rows(
                dim,
                Similarity::Cosine,
                rows,
            )?))
        }),
        ("HnswIndex", |dim, rows| {
            Ok(Box::new(HnswIndex::from_rows(
                dim,
                Similarity::Cosine,
                HnswConfig::default(),
                rows,
            )?))
        }),
    ];
    for (index, build) in builders {
        cases.push(case(
            format!("{index}::from_rows(dim 0)"),
            "dim",
            move || build(0, &[]),
        ));
        cases.push(case(
            format!("{index}::from_rows(ragged)"),
            "dimension mismatch",
            move || build(4, &rows(3, 4)[..10]),
        ));
        cases.push(case(
            format!("{index}::from_rows(NaN)"),
            "non-finite",
            move || build(4, &with_nan(rows(3, 4))),
        ));
        cases.push(case(
            format!("{index}::from_rows(+Inf)"),
            "non-finite",
            move || {
                let mut v = rows(3, 4);
                v[5] = f32::INFINITY;
                build(4, &v)
            },
        ));
        cases.push(case(format!("{index}::search(k = 0)"), "k", move || {
            build(4, &rows(8, 4))?.search(&rows(1, 4), 0)
        }));
        cases.push(case(
            format!("{index}::search(query dim)"),
            "dim",
            move || build(4, &rows(8, 4))?.search(&rows(1, 5), 3),
        ));
        cases.push(case(
            format!("{index}::search(NaN query)"),
            "non-finite",
            move || build(4, &rows(8, 4))?.search(&with_nan(rows(1, 4)), 3),
        ));
        cases.push(case(
            format!("{index}::add(duplicate id)"),
            "id 3 is already in the index",
            move || {
                let mut index = build(4, &rows(8, 4))?;
                index.add(&[3], &rows(1, 4))
            },
        ));
        cases.push(case(
            format!("{index}::add(ids ≠ rows)"),
            "ids",
            move || {
                let mut index = build(4, &rows(8, 4))?;
                index.add(&[100, 101], &rows(1, 4))
            },
        ));
        cases.push(case(
            format!("{index}::search_filtered(k = 0)"),
            "k",
            move || build(4, &rows(8, 4))?.search_filtered(&rows(1, 4), 0, Some(&|_| true)),
        ));
    }
    for (name, bytes) in [
        ("index_empty.bin", Vec::new()),
        (
            "index_text.bin",
            b"not an index file at all, but long enough to have a header".to_vec(),
        ),
    ] {
        std::fs::write(path(name), bytes).unwrap();
    }
    let flat_file = path("flat.index");
    FlatIndex::from_rows(4, Similarity::InnerProduct, &rows(8, 4))
        .unwrap()
        .save(&flat_file)
        .unwrap();
    let hnsw_file = path("hnsw.index");
    HnswIndex::from_rows(4, Similarity::Cosine, HnswConfig::default(), &rows(8, 4))
        .unwrap()
        .save(&hnsw_file)
        .unwrap();
    for (source, name) in [
        (&flat_file, "flat_cut.index"),
        (&hnsw_file, "hnsw_cut.index"),
    ] {
        let bytes = std::fs::read(source).unwrap();
        std::fs::write(path(name), &bytes[..bytes.len() - 9]).unwrap();
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        std::fs::write(path(&name.replace("cut", "flipped")), flipped).unwrap();
    }
    for name in [
        "index_empty.bin",
        "index_text.bin",
        "flat_cut.index",
        "flat_flipped.index",
        "hnsw_cut.index",
        "hnsw_flipped.index",
        "hnsw.index",
        "missing.index",
    ] {
        let file = path(name);
        cases.push(case(format!("FlatIndex::load({name})"), name, move || {
            FlatIndex::load(&file)
        }));
    }
    for name in [
        "index_empty.bin",
        "index_text.bin",
        "flat_cut.index",
        "hnsw_cut.index",
        "hnsw_flipped.index",
        "flat.index",
        "missing.index",
    ] {
        let file = path(name);
        cases.push(case(format!("HnswIndex::load({name})"), name, move || {
            HnswIndex::load(&file)
        }));
    }
    {
        let under_file = path("good.npy").join("flat.index");
        cases.push(case(
            "FlatIndex::save(under a file)",
            "good.npy",
            move || {
                FlatIndex::from_rows(4, Similarity::InnerProduct, &rows(8, 4))?.save(&under_file)
            },
        ));
    }
    cases.push(case("HnswIndex::new(m = 0)", "m", || {
        HnswIndex::new(
            4,
            Similarity::Cosine,
            HnswConfig {
                m: 0,
                ..HnswConfig::default()
            },
        )
    }));
    cases.push(case("Preprocessor::fit(no rows)", "no rows", || {
        Preprocessor::fit(Preprocessing::WHITEN, &[], 4)
    }));
    cases.push(case("Preprocessor::fit(NaN)", "non-finite", || {
        Preprocessor::fit(Preprocessing::Standardise, &with_nan(rows(5, 4)), 4)
    }));
    cases.push(case(
        "Preprocessor::fit(ragged)",
        "dimension mismatch",
        || Preprocessor::fit(Preprocessing::Centre, &rows(5, 4)[..9], 4),
    ));
    cases.push(case("Preprocessor::apply(other dim)", "dim", || {
        Preprocessor::fit(Preprocessing::Centre, &rows(5, 4), 4)?.apply(&rows(2, 5)[..5])
    }));
    cases.push(case("fuse(k = 0)", "k", || {
        fuse(&[vec![Hit::new(1, 0.5)]], 0, Fusion::rrf(), &|_| None)
    }));
    cases.push(case("fuse(MMR, unknown id)", "7", || {
        fuse(
            &[vec![Hit::new(7, 0.5), Hit::new(8, 0.4)]],
            2,
            "mmr".parse()?,
            &|_| None,
        )
    }));
    for (name, problem) in [
        ("borda", "borda"),
        ("rrf:-1", "rrf constant c"),
        ("rrf:x", "rrf:x"),
        ("mmr:2", "mmr lambda"),
        ("mmr:-0.5", "mmr lambda"),
        ("", "fusion"),
    ] {
        cases.push(case(
            format!("Fusion::from_str({name:?})"),
            problem,
            move || name.parse::<Fusion>(),
        ));
    }
    for name in ["manhattan", ""] {
        cases.push(case(
            format!("Similarity::from_str({name:?})"),
            name,
            move || name.parse::<Similarity>(),
        ));
    }
    cases.push(case("Preprocessing::from_str(pca)", "pca", || {
        "pca".parse::<Preprocessing>()
    }));

    // Checkpoints and the models (models).
    for b in &models {
        let folder = path(b.name);
        let problem = b.problem;
        cases.push(case(
            format!("load_prior({})", b.name),
            problem,
            move || load_prior::<B>(&folder, &Default::default()),
        ));
        // A regression loader stops at the model kind once the manifest reads.
        let kind_known = [
            "model_config_other_width",
            "model_config_huge_width",
            "model_config_max_width",
            "model_config_huge_shapes",
            "model_no_weights",
            "model_weights_cut",
            "model_weights_flipped",
        ];
        let problem = if kind_known.contains(&b.name) {
            "holds a diffusion prior"
        } else {
            problem
        };
        let folder = path(b.name);
        cases.push(case(
            format!("load_regression({})", b.name),
            problem,
            move || load_regression::<B>(&folder, &Default::default()),
        ));
    }
    {
        let folder = prior_dir.clone();
        cases.push(case(
            "load_regression(a prior)",
            "holds a diffusion prior",
            move || load_regression::<B>(&folder, &Default::default()),
        ));
        let nowhere = path("no_model");
        cases.push(case(
            "Checkpoint::open(missing folder)",
            "no_model",
            move || Checkpoint::open(&nowhere),
        ));
    }
    {
        let folder = prior_dir.clone();
        let seeds = move |queries: Tensor<B, 2>, k: usize| -> Result<(), String> {
            let (prior, _) =
                load_prior::<B>(&folder, &Default::default()).map_err(|e| e.to_string())?;
            let sampler =
                Sampler::new(SamplerKind::Euler, karras(2, 0.002, 80.0, 7.0).unwrap()).unwrap();
            PriorSeeds::new(prior, sampler)
                .seeds(queries, k, 0)
                .map(drop)
                .map_err(|e| e.to_string())
        };
        let s = seeds.clone();
        cases.push(case("PriorSeeds::seeds(query dim)", "dim", move || {
            s(tensor(2, 5), 2)
        }));
        let s = seeds.clone();
        cases.push(case("PriorSeeds::seeds(k = 0)", "k", move || {
            s(tensor(2, 6), 0)
        }));
        let s = seeds.clone();
        cases.push(case(
            "PriorSeeds::seeds(NaN query)",
            "non-finite",
            move || {
                s(
                    Tensor::from_floats([[0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0]], &Default::default()),
                    2,
                )
            },
        ));
        cases.push(case("PriorSeeds::seeds(no queries)", "empty", move || {
            seeds(tensor(0, 6), 2)
        }));
    }
    cases.push(case("RegressionModel::seeds(query dim)", "dim", || {
        let model = RegressionConfig::new(8, 6).init::<B>(&Default::default())?;
        model.seeds(tensor(2, 7), 2, 0)
    }));
    cases.push(case("SamplerKind::from_str(rk4)", "rk4", || {
        "rk4".parse::<SamplerKind>()
    }));
    cases.push(case("karras(0 steps)", "", || karras(0, 0.002, 80.0, 7.0)));
    cases.push(case("karras(σ_min > σ_max)", "sigma", || {
        karras(8, 90.0, 80.0, 7.0)
    }));
    cases.push(case("karras(NaN ρ)", "rho", || {
        karras(8, 0.002, 80.0, f64::NAN)
    }));
    cases.push(case("Sigmas::new(increasing)", "decreasing", || {
        Sigmas::new(vec![1.0, 2.0, 0.0])
    }));
    cases.push(case("Sigmas::new(not ending at 0)", "0", || {
        Sigmas::new(vec![2.0, 1.0])
    }));
    cases.push(case(
        "Conditioning::with_null_rows(mask length)",
        "",
        || Conditioning::with_null_rows(tensor(3, 4), vec![false]),
    ));
    cases.push(case("LinearGuidance::classifier_free(w < 0)", "", || {
        LinearGuidance::<B, _>::classifier_free(mixture()?, -1.0)
    }));
    cases.push(case("LinearGuidance::classifier_free(NaN)", "", || {
        LinearGuidance::<B, _>::classifier_free(mixture()?, f64::NAN)
    }));
    cases.push(case("SteeringTarget::new(NaN weight)", "", || {
        SteeringTarget::new(tensor(1, 2), f64::NAN)
    }));
    cases.push(case("Steered::new(target of another dim)", "dim", || {
        Steered::new(
            mixture()?,
            vec![SteeringTarget::new(tensor(1, 3), 0.1)?],
            SteerSimilarity::Cosine,
        )
    }));
    cases.push(case(
        "GaussianMixture::isotropic(weights ≠ means)",
        "",
        || GaussianMixture::isotropic(vec![vec![0.0, 1.0]], 0.1, vec![0.5, 0.5]),
    ));
    cases.push(case("Denoiser::denoise(x of another dim)", "dim", || {
        let cond = Conditioning::<B>::new(tensor(2, 2))?;
        let sigma = Tensor::<B, 1>::from_floats([1.0, 1.0], &Default::default());
        mixture()?.denoise(tensor(2, 3), sigma, &cond)
    }));
    cases.push(case(
        "Sampler::sample(no rows)",
        "",
        || -> Result<_, String> {
            let text = |e: &dyn Display| e.to_string();
            let sampler = Sampler::new(
                SamplerKind::Heun,
                karras(4, 0.002, 80.0, 7.0).map_err(|e| text(&e))?,
            )
            .map_err(|e| text(&e))?;
            let cond = Conditioning::<B>::new(tensor(0, 2)).map_err(|e| text(&e))?;
            sampler
                .sample(
                    &mixture().map_err(|e| text(&e))?,
                    &cond,
                    &mut SeededNoise::new(0),
                )
                .map_err(|e| text(&e))
        },
    ));
    for (field, training) in [
        ("steps", TrainingConfig::new().with_steps(0)),
        ("batch_size", TrainingConfig::new().with_batch_size(0)),
        ("cond_dropout", TrainingConfig::new().with_cond_dropout(1.5)),
        (
            "learning_rate",
            TrainingConfig::new().with_learning_rate(f64::NAN),
        ),
        ("ema_decay", TrainingConfig::new().with_ema_decay(2.0)),
    ] {
        cases.push(case(format!("train_prior({field})"), field, move || {
            let data = PairData::from_vecs(rows(8, 6), 6, rows(8, 8), 8)?;
            train_prior::<CpuAutodiff>(
                &DiffusionPriorConfig::new(8, 6),
                &training.clone().with_progress(false),
                &data,
                None,
                None,
                &Default::default(),
            )
            .map(drop)
        }));
    }
    cases.push(case("train_prior(data of another dim)", "dim", || {
        let data = PairData::from_vecs(rows(8, 5), 5, rows(8, 8), 8)?;
        let training = TrainingConfig::new().with_steps(1).with_progress(false);
        train_prior::<CpuAutodiff>(
            &DiffusionPriorConfig::new(8, 6),
            &training,
            &data,
            None,
            None,
            &Default::default(),
        )
        .map(drop)
    }));
    cases.push(case("DiffusionPriorConfig::init(width 0)", "width", || {
        DiffusionPriorConfig::new(8, 6)
            .with_network(diff4steer_models::ResMlpConfig::new().with_width(0))
            .init::<B>(&Default::default())
    }));
    cases
}

fn mixture() -> diff4steer_core::Result<GaussianMixture> {
    GaussianMixture::isotropic(vec![vec![-1.0, 0.0], vec![1.0, 0.0]], 0.1, vec![0.5, 0.5])
}

#[test]
fn every_entry_point_refuses_bad_input_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(dir.path());
    let before: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        match catch_unwind(AssertUnwindSafe(|| (case.call)())) {
            Err(_) => failures.push(format!("{}: panicked", case.name)),
            Ok(Ok(())) => failures.push(format!("{}: succeeded", case.name)),
            Ok(Err(message)) => {
                if let Some(word) = missing_word(case, &message) {
                    failures.push(format!("{}: `{message}` lacks `{word}`", case.name));
                }
            }
        }
    }
    let after: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let left: Vec<_> = after.iter().filter(|n| !before.contains(n)).collect();
    assert!(left.is_empty(), "failed calls left files behind: {left:?}");
    common::assert_matrix_passed(cases.len(), &failures);
}

/// The one "bad input" of the list that is not an error: k larger than the catalogue
/// (up to `usize::MAX`) answers every item, best first, without reserving memory for k hits.
#[test]
fn k_larger_than_the_catalogue_returns_every_item() {
    let items = rows(9, 4);
    let flat = FlatIndex::from_rows(4, Similarity::Cosine, &items).unwrap();
    let hnsw = HnswIndex::from_rows(4, Similarity::Cosine, HnswConfig::default(), &items).unwrap();
    for (name, index) in [("flat", &flat as &dyn VectorIndex), ("hnsw", &hnsw)] {
        for k in [10, 1_000_000_000, usize::MAX] {
            let lists = index.search(&rows(2, 4), k).unwrap();
            assert!(lists.iter().all(|l| l.len() == 9), "{name}, k = {k}");
            let filtered = index
                .search_filtered(&rows(2, 4), k, Some(&|id| id % 2 == 0))
                .unwrap();
            assert!(
                filtered.iter().all(|l| l.len() == 5),
                "{name}, filtered, k = {k}"
            );
            for fusion in ["rrf", "max", "mean", "round-robin", "mmr"] {
                let fused =
                    fuse(&lists, k, fusion.parse().unwrap(), &|id| index.vector(id)).unwrap();
                assert_eq!(fused.len(), 9, "{name}, {fusion}, k = {k}");
            }
        }
    }
}
