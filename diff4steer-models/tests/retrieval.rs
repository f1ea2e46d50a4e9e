//! The front door, `GenerativeRetriever`, against a second implementation of its path (host
//! sampler → preprocessing → exact index → fusion, wired by hand), and its promises: a query's
//! hits do not depend on its batch or on threads, one retriever serves many threads, a
//! checkpoint folder and a catalogue file open in one call, and bad input is a typed error.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use diff4steer_core::karras;
use diff4steer_index::{
    fuse, FlatIndex, Fusion, Preprocessing, Preprocessor, Similarity, VectorIndex,
};
use diff4steer_models::backend::{CpuAutodiff, CpuBackend as B};
use diff4steer_models::fast::{FastPrior, FastSampler, FastScratch, ImplicitClassifier};
use diff4steer_models::retrieval::{
    GenerativeRetriever, HostPrior, IndexChoice, Regression, Rerank, RetrievalError,
    RetrievalRequest, SearchSettings, SeedSampler, SeedSearch,
};
use diff4steer_models::training::{
    train_prior, train_regression, Output, PairData, TrainingConfig,
};
use diff4steer_models::{
    DiffusionPrior, DiffusionPriorConfig, RegressionConfig, ResMlpConfig, Sampler, SamplerKind,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

const TARGET: usize = 16;
const QUERY: usize = 12;
const ITEMS: usize = 300;

/// Adds N(0, 0.3²) to every parameter so that no block is the identity.
struct Perturb(ChaCha8Rng);

impl ModuleMapper<B> for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let normal = Normal::new(0.0f32, 0.3).unwrap();
        let noise: Vec<f32> = (0..shape.num_elements())
            .map(|_| normal.sample(&mut self.0))
            .collect();
        let noise = Tensor::from_data(TensorData::new(noise, shape), &tensor.device());
        Param::from_mapped_value(id, tensor + noise, mapper)
    }
}

fn prior() -> DiffusionPrior<B> {
    DiffusionPriorConfig::new(TARGET, QUERY)
        .with_network(
            ResMlpConfig::new()
                .with_width(40)
                .with_depth(2)
                .with_fourier_features(8)
                .with_embedding_dim(24),
        )
        .init::<B>(&Default::default())
        .unwrap()
        .map(&mut Perturb(ChaCha8Rng::seed_from_u64(5)))
}

fn values(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, scale).unwrap();
    (0..len).map(|_| normal.sample(&mut rng)).collect()
}

/// A catalogue with an offset, as real embeddings have.
fn catalogue() -> Vec<f32> {
    values(ITEMS * TARGET, 21, 1.0)
        .into_iter()
        .enumerate()
        .map(|(i, v)| v + (i % TARGET) as f32 * 0.1)
        .collect()
}

fn retriever(fast: &FastPrior, settings: SearchSettings) -> GenerativeRetriever {
    GenerativeRetriever::builder(Box::new(HostPrior::new(fast.clone())))
        .sampler_kind(SamplerKind::Heun, 6)
        .unwrap()
        .search(settings)
        .catalogue(catalogue())
        .defaults(
            RetrievalRequest::new()
                .seeds_per_query(8)
                .guidance(2.0)
                .seed(3),
        )
        .build()
        .unwrap()
}

#[test]
fn retrieve_equals_the_path_wired_by_hand() {
    let fast = FastPrior::from_prior(&prior()).unwrap();
    let queries = values(5 * QUERY, 7, 1.0);
    for fusion in [Fusion::rrf(), Fusion::MaxScore, Fusion::Mmr { lambda: 0.5 }] {
        let settings = SearchSettings {
            fusion,
            ..SearchSettings::default()
        };
        let hits = retriever(&fast, settings).retrieve(&queries, 10).unwrap();

        // By hand: host sampler, standardisation fitted on the catalogue, exact cosine, fusion.
        let sampler =
            FastSampler::new(SamplerKind::Heun, karras(6, 0.002, 80.0, 7.0).unwrap(), 2.0).unwrap();
        let seeds = sampler
            .sample(&fast, &queries, 8, 3, &mut FastScratch::default())
            .unwrap();
        let items = catalogue();
        let prep = Preprocessor::fit(Preprocessing::Standardise, &items, TARGET).unwrap();
        let index =
            FlatIndex::from_rows(TARGET, Similarity::Cosine, &prep.apply(&items).unwrap()).unwrap();
        let lists = index.search(&prep.apply(&seeds).unwrap(), 10).unwrap();
        for (q, query_lists) in lists.chunks(8).enumerate() {
            let fused = fuse(query_lists, 10, fusion, &|id| index.vector(id)).unwrap();
            assert_eq!(hits[q], fused, "{fusion}: query {q}");
        }
        assert_eq!(hits.len(), 5);
        assert!(hits.iter().all(|h| h.len() == 10));
    }
}

#[test]
fn a_query_gets_the_same_hits_alone_in_a_batch_and_from_many_threads() {
    let fast = FastPrior::from_prior(&prior()).unwrap();
    let retriever = std::sync::Arc::new(retriever(&fast, SearchSettings::default()));
    let queries = values(6 * QUERY, 8, 1.0);
    let batch = retriever.retrieve(&queries, 12).unwrap();
    // Query 0 alone draws the same noise streams as in the batch.
    let alone = retriever.retrieve(&queries[..QUERY], 12).unwrap();
    assert_eq!(alone[0], batch[0]);
    // Four threads at once through one shared retriever: the same lists as the batch.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (retriever, queries) = (retriever.clone(), queries.clone());
            std::thread::spawn(move || retriever.retrieve(&queries, 12).unwrap())
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), batch);
    }
    // Another noise seed gives other seeds (and here other lists).
    let other = retriever
        .retrieve_with(&queries, 12, &retriever.defaults().clone().seed(99))
        .unwrap();
    assert_ne!(other, batch);
}

#[test]
fn reranking_through_the_front_door_equals_the_classifier_on_the_fused_lists() {
    let fast = FastPrior::from_prior(&prior()).unwrap();
    let retriever = retriever(&fast, SearchSettings::default());
    let queries = values(3 * QUERY, 9, 1.0);
    let rerank = Rerank::implicit(20, 4).with_seed(2);
    let request = retriever.defaults().clone().rerank(rerank);
    let hits = retriever.retrieve_with(&queries, 5, &request).unwrap();
    // By hand: the fused top 20, re-ordered by the classifier.
    let fused = retriever
        .seed_search()
        .search(&retriever.seeds(&queries, &request).unwrap(), 8, 20)
        .unwrap();
    let ids: Vec<Vec<u64>> = fused
        .iter()
        .map(|l| l.iter().map(|h| h.id).collect())
        .collect();
    let classifier = ImplicitClassifier::new(4, 0.2, 20.0, rerank.weighting, 2).unwrap();
    let expected = classifier
        .rerank_lists(&fast, &queries, &ids, &catalogue(), 20, rerank.order)
        .unwrap();
    for (q, list) in hits.iter().enumerate() {
        let got: Vec<u64> = list.iter().map(|h| h.id).collect();
        assert_eq!(got, expected[q][..5], "query {q}");
        assert_eq!(list[0].score, 1.0);
        assert_eq!(list[1].score, 0.5);
    }
}

#[test]
fn hnsw_and_other_searches_return_real_catalogue_rows() {
    let fast = FastPrior::from_prior(&prior()).unwrap();
    let queries = values(2 * QUERY, 10, 1.0);
    let exact = retriever(&fast, SearchSettings::default())
        .retrieve(&queries, 10)
        .unwrap();
    let hnsw = retriever(
        &fast,
        SearchSettings {
            index: IndexChoice::Hnsw(Default::default()),
            ..SearchSettings::default()
        },
    )
    .retrieve(&queries, 10)
    .unwrap();
    // 300 items and ef 64: the graph search finds the exact lists' first items.
    for (e, h) in exact.iter().zip(&hnsw) {
        assert_eq!(e[0].id, h[0].id);
        assert!(h.iter().all(|hit| (hit.id as usize) < ITEMS));
    }
}

#[test]
fn a_checkpoint_folder_and_a_catalogue_file_open_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let (queries, targets) = (values(64 * QUERY, 11, 1.0), values(64 * TARGET, 12, 1.0));
    let data = PairData::from_vecs(queries.clone(), QUERY, targets, TARGET).unwrap();
    let network = ResMlpConfig::new()
        .with_width(32)
        .with_depth(1)
        .with_embedding_dim(16);
    let training = TrainingConfig::new()
        .with_steps(5)
        .with_batch_size(16)
        .with_progress(false);
    let prior_dir = dir.path().join("prior");
    train_prior::<CpuAutodiff>(
        &DiffusionPriorConfig::new(TARGET, QUERY).with_network(network.clone()),
        &training,
        &data,
        None,
        Some(Output::new(&prior_dir)),
        &Default::default(),
    )
    .unwrap();
    let reg_dir = dir.path().join("reg");
    let (regression, _) = train_regression::<CpuAutodiff>(
        &RegressionConfig::new(TARGET, QUERY).with_network(network),
        &training,
        &data,
        None,
        Some(Output::new(&reg_dir)),
        &Default::default(),
    )
    .unwrap();
    let catalogue_file = dir.path().join("items.npy");
    let items = ndarray::Array2::from_shape_vec((ITEMS, TARGET), catalogue()).unwrap();
    ndarray_npy::write_npy(&catalogue_file, &items).unwrap();

    let prior = GenerativeRetriever::open(&prior_dir, &catalogue_file).unwrap();
    assert_eq!((prior.query_dim(), prior.target_dim()), (QUERY, TARGET));
    let hits = prior.retrieve(&queries[..3 * QUERY], 7).unwrap();
    assert!(hits.len() == 3 && hits.iter().all(|h| h.len() == 7));
    assert!(prior.seed_sampler().source().host_prior().is_some());

    // The regression searches its one point: the same list as searching its prediction once.
    let reg = GenerativeRetriever::open(&reg_dir, &catalogue_file).unwrap();
    let reg_hits = reg.retrieve(&queries[..3 * QUERY], 7).unwrap();
    let q = diff4steer_core::tensor_util::matrix_from_host::<B>(
        queries[..3 * QUERY].to_vec(),
        3,
        QUERY,
        &Default::default(),
    )
    .unwrap();
    let point = diff4steer_core::tensor_util::to_host_f32(regression.predict(q)).unwrap();
    let expected = reg.seed_search().search(&point, 1, 7).unwrap();
    assert_eq!(reg_hits, expected);
    assert!(reg.seed_sampler().source().deterministic());

    // Typed errors: a catalogue of another width, a missing folder, a broken catalogue file.
    let narrow = dir.path().join("narrow.npy");
    ndarray_npy::write_npy(&narrow, &ndarray::Array2::<f32>::zeros((4, TARGET - 1))).unwrap();
    let err = GenerativeRetriever::open(&prior_dir, &narrow).unwrap_err();
    assert!(err.to_string().contains("15-d"), "{err}");
    let err = GenerativeRetriever::open(&dir.path().join("nowhere"), &catalogue_file).unwrap_err();
    assert!(matches!(err, RetrievalError::Model(_)), "{err}");
    std::fs::write(dir.path().join("broken.npy"), b"not npy").unwrap();
    let err = GenerativeRetriever::open(&prior_dir, &dir.path().join("broken.npy")).unwrap_err();
    assert!(matches!(err, RetrievalError::Data(_)), "{err}");
}

#[test]
fn bad_requests_are_typed_errors_naming_the_option() {
    let fast = FastPrior::from_prior(&prior()).unwrap();
    let retriever = retriever(&fast, SearchSettings::default());
    let queries = values(2 * QUERY, 13, 1.0);
    let d = retriever.defaults().clone();
    let cases: Vec<(Vec<f32>, usize, RetrievalRequest, &str)> = vec![
        (queries.clone(), 0, d.clone(), "k"),
        (vec![], 5, d.clone(), "queries"),
        (queries[..QUERY + 1].to_vec(), 5, d.clone(), "queries"),
        (vec![f32::NAN; QUERY], 5, d.clone(), "NaN"),
        (
            queries.clone(),
            5,
            d.clone().seeds_per_query(0),
            "seeds_per_query",
        ),
        (queries.clone(), 5, d.clone().guidance(-1.0), "guidance"),
        (queries.clone(), 5, d.clone().guidance(f64::NAN), "guidance"),
        (
            queries.clone(),
            5,
            d.clone().negative(vec![0.0; QUERY + 2]),
            "negative",
        ),
        (
            queries.clone(),
            5,
            d.clone().negative(vec![0.0; 3 * QUERY]),
            "3 rows for 2 queries",
        ),
        (
            queries.clone(),
            5,
            d.clone().steer(vec![0.0; TARGET - 1], 0.1),
            "steer",
        ),
        (
            queries.clone(),
            5,
            d.clone().steer(vec![1.0; TARGET], f64::NAN),
            "steer",
        ),
        (
            queries.clone(),
            5,
            d.clone().rerank(Rerank::implicit(0, 4)),
            "N must be at least 1",
        ),
        (
            queries.clone(),
            5,
            d.clone().rerank(Rerank::implicit(10, 0)),
            "draws",
        ),
    ];
    for (queries, k, request, words) in cases {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            retriever.retrieve_with(&queries, k, &request)
        }))
        .expect("bad input must not panic");
        let err = result.unwrap_err().to_string();
        assert!(err.contains(words), "expected `{words}` in: {err}");
    }
    // Options a regression cannot honour.
    let regression = Regression::new(
        RegressionConfig::new(TARGET, QUERY)
            .with_network(ResMlpConfig::new().with_width(16).with_depth(1))
            .init::<B>(&Default::default())
            .unwrap(),
        Default::default(),
    );
    let reg = GenerativeRetriever::builder(Box::new(regression))
        .catalogue(catalogue())
        .build()
        .unwrap();
    for request in [
        d.clone().negative(vec![0.0; QUERY]),
        d.clone().steer(vec![1.0; TARGET], 0.1),
    ] {
        let err = reg.retrieve_with(&queries, 5, &request).unwrap_err();
        assert!(err.to_string().contains("diffusion prior"), "{err}");
    }
    let err = reg
        .retrieve_with(&queries, 5, &d.clone().rerank(Rerank::implicit(5, 2)))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("re-ranking needs a diffusion prior"),
        "{err}"
    );
    // Building without a catalogue, or with one of another width.
    let source = || Box::new(HostPrior::new(fast.clone()));
    let err = GenerativeRetriever::builder(source()).build().unwrap_err();
    assert!(err.to_string().contains("no catalogue"), "{err}");
    let wrong = SeedSearch::new(
        vec![0.5; 10 * (TARGET + 1)],
        TARGET + 1,
        SearchSettings::default(),
    )
    .unwrap();
    let err = GenerativeRetriever::builder(source())
        .search_stage(wrong)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("17-d"), "{err}");
}

#[test]
fn stochastic_samplers_run_through_burn_over_the_host_denoiser() {
    let fast = FastPrior::from_prior(&prior()).unwrap();
    let queries = values(2 * QUERY, 14, 1.0);
    for kind in ["edm", "sde"] {
        let sampler =
            Sampler::new(kind.parse().unwrap(), karras(5, 0.002, 80.0, 7.0).unwrap()).unwrap();
        let seeds = SeedSampler::new(Box::new(HostPrior::new(fast.clone())))
            .unwrap()
            .with_sampler(sampler);
        let request = RetrievalRequest::new().seeds_per_query(3).seed(4);
        let a = seeds.seeds(&queries, &request).unwrap();
        assert_eq!(a.len(), 2 * 3 * TARGET);
        assert!(a.iter().all(|v| v.is_finite()));
        assert_eq!(a, seeds.seeds(&queries, &request).unwrap(), "{kind}");
    }
}
