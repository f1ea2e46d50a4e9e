#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items.
//! The learned prior at the reference size (width 512, depth 4, 128-d targets, 384-d queries):
//! the denoiser forward at batch 1 … 1024 through burn's CPU backend and through the fast host
//! path, one guided sampler step, and a full guided trajectory (32 seeds, CFG w = 2) for each
//! sampler — burn's `Sampler` over the burn prior and, for the deterministic samplers, the host
//! `FastSampler`; and one layer's product for a single query's 64 rows: through `gemm` (as it
//! splits the product over the pool, and as two 32-row halves side by side, each reading the
//! whole weight) and through the host path's kernel on the weight's pre-packed column panels
//! (`column_panels::matmul_panels`, on the pool and on one thread).

use burn::tensor::{Tensor, TensorData};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use diff4steer_benches::workload::{reference_prior, unit_rows, QUERY_DIM, TARGET_DIM};
use diff4steer_benches::CpuBackend as B;
use diff4steer_core::{karras, Conditioning, Denoiser, LinearGuidance, SeededNoise};
use diff4steer_models::fast::{FastPrior, FastSampler, FastScratch, HostCondition};
use diff4steer_models::{Sampler, SamplerKind};

const SEEDS: usize = 32;

fn forward(c: &mut Criterion) {
    let prior = reference_prior::<B>(512, 4, 0);
    let fast = FastPrior::from_prior(&prior).expect("host copy");
    let query = unit_rows(1, QUERY_DIM, 1);
    let device = Default::default();
    let mut group = c.benchmark_group("denoiser_forward_512x4");
    for rows in [1usize, 8, 64, 256, 1024] {
        group.throughput(Throughput::Elements(rows as u64));
        let x = unit_rows(rows, TARGET_DIM, 2);
        // Half the rows conditional, half null (a CFG batch of one query).
        let null: Vec<bool> = (0..rows).map(|r| rows > 1 && r >= rows / 2).collect();
        let cond_rows: Vec<f32> = (0..rows).flat_map(|_| query.clone()).collect();
        let cond = Conditioning::<B>::with_null_rows(
            Tensor::from_data(TensorData::new(cond_rows, [rows, QUERY_DIM]), &device),
            null.clone(),
        )
        .expect("valid conditioning");
        let x_t =
            Tensor::<B, 2>::from_data(TensorData::new(x.clone(), [rows, TARGET_DIM]), &device);
        let sigma = Tensor::<B, 1>::from_data(TensorData::new(vec![2.0f32; rows], [rows]), &device);
        group.bench_with_input(BenchmarkId::new("burn", rows), &rows, |b, _| {
            b.iter(|| {
                prior
                    .denoise(x_t.clone(), sigma.clone(), &cond)
                    .expect("denoised")
                    .into_data()
            })
        });
        let conditions = [
            HostCondition {
                sigma: 2.0,
                query: Some(&query),
            },
            HostCondition {
                sigma: 2.0,
                query: None,
            },
        ];
        let row_condition: Vec<usize> = null.iter().map(|&n| usize::from(n)).collect();
        let mut out = vec![0.0f32; rows * TARGET_DIM];
        let mut scratch = FastScratch::default();
        group.bench_with_input(BenchmarkId::new("fast", rows), &rows, |b, _| {
            b.iter(|| fast.denoise_into(&x, &row_condition, &conditions, &mut out, &mut scratch))
        });
    }
    group.finish();
}

fn sampling(c: &mut Criterion) {
    let prior = reference_prior::<B>(512, 4, 0);
    let fast = FastPrior::from_prior(&prior).expect("host copy");
    let query = unit_rows(1, QUERY_DIM, 1);
    let device = Default::default();
    let cond = Conditioning::<B>::new(Tensor::from_data(
        TensorData::new(query.clone(), [1, QUERY_DIM]),
        &device,
    ))
    .and_then(|c| c.fit_batch(SEEDS))
    .expect("valid conditioning");
    let guided = LinearGuidance::classifier_free(&prior, 2.0).expect("valid w");
    let mut group = c.benchmark_group("trajectory_512x4_32seeds_cfg");
    for (kind, steps) in [
        (SamplerKind::Heun, 2),
        (SamplerKind::Heun, 16),
        (SamplerKind::Euler, 16),
        (SamplerKind::DpmSolverPlusPlus2M, 8),
        (SamplerKind::DpmSolverPlusPlus2M, 16),
        (SamplerKind::EulerMaruyama, 16),
        (SamplerKind::EdmStochastic(Default::default()), 16),
    ] {
        let sigmas = karras(steps, 0.002, 80.0, 7.0).expect("valid grid");
        let id = format!("{}-{steps}", kind.name());
        // Burn's sampler over the burn prior: only the 2-step Heun (one step + final denoise)
        // and the 16-step Heun, which take long.
        if kind == SamplerKind::Heun {
            let sampler = Sampler::new(kind, sigmas.clone()).expect("valid sampler");
            group.bench_function(BenchmarkId::new("burn", &id), |b| {
                b.iter(|| {
                    sampler
                        .sample(&guided, &cond, &mut SeededNoise::new(0))
                        .expect("seeds")
                        .into_data()
                })
            });
        }
        match FastSampler::new(kind, sigmas.clone(), 2.0) {
            Ok(sampler) => {
                let mut scratch = FastScratch::default();
                group.bench_function(BenchmarkId::new("fast", &id), |b| {
                    b.iter(|| {
                        sampler
                            .sample(&fast, &query, SEEDS, 0, &mut scratch)
                            .expect("seeds")
                    })
                });
            }
            Err(_) => {
                // Stochastic samplers: burn's Sampler over the host denoiser.
                let sampler = Sampler::new(kind, sigmas).expect("valid sampler");
                let guided_fast = LinearGuidance::classifier_free(&fast, 2.0).expect("valid w");
                group.bench_function(BenchmarkId::new("burn-sampler-fast-denoiser", &id), |b| {
                    b.iter(|| {
                        sampler
                            .sample(&guided_fast, &cond, &mut SeededNoise::new(0))
                            .expect("seeds")
                            .into_data()
                    })
                });
            }
        }
    }
    group.finish();

    // Many queries in flight: 64 queries' trajectories sampled together (one GEMM per layer
    // over all 64 × 32 seeds and their null twins) against the same 64 one call each.
    let queries = unit_rows(64, QUERY_DIM, 2);
    let sampler = FastSampler::new(
        SamplerKind::Heun,
        karras(16, 0.002, 80.0, 7.0).expect("valid grid"),
        2.0,
    )
    .expect("valid sampler");
    let mut scratch = FastScratch::default();
    let mut group = c.benchmark_group("trajectory_512x4_32seeds_cfg_64queries");
    group.sample_size(10);
    group.bench_function("fast-together", |b| {
        b.iter(|| {
            sampler
                .sample(&fast, &queries, SEEDS, 0, &mut scratch)
                .expect("seeds")
        })
    });
    group.bench_function("fast-one-at-a-time", |b| {
        b.iter(|| {
            for query in queries.chunks_exact(QUERY_DIM) {
                sampler
                    .sample(&fast, query, SEEDS, 0, &mut scratch)
                    .expect("seeds");
            }
        })
    });
    group.finish();
}

/// One 512×512 layer on 64 rows, cycling through eight different weights (as a forward pass
/// does, so that each is read from L3 or memory rather than L2).
fn one_query_product(c: &mut Criterion) {
    use diff4steer_index::column_panels::{matmul_panels, ColumnPanels};
    use diff4steer_index::dense::{matmul, RightLayout, Threads};
    const ROWS: usize = 64;
    const WIDTH: usize = 512;
    let weights: Vec<Vec<f32>> = (0..8)
        .map(|i| unit_rows(WIDTH, WIDTH, 10 + i as u64))
        .collect();
    let panels: Vec<ColumnPanels> = weights
        .iter()
        .map(|w| ColumnPanels::from_row_major(w, (WIDTH, WIDTH), 64).expect("square weight"))
        .collect();
    let x = unit_rows(ROWS, WIDTH, 3);
    let mut out = vec![0.0f32; ROWS * WIDTH];
    let mut group = c.benchmark_group("one_query_product_64x512x512");
    group.throughput(Throughput::Elements(8 * (2 * ROWS * WIDTH * WIDTH) as u64));
    group.bench_function("gemm-on-the-pool", |b| {
        b.iter(|| {
            for w in &weights {
                let shape = (ROWS, WIDTH, WIDTH);
                matmul(
                    &mut out,
                    &x,
                    w,
                    shape,
                    RightLayout::RowMajor,
                    false,
                    Threads::Pool,
                )
                .expect("shapes");
            }
        })
    });
    group.bench_function("row-halves-on-two-threads", |b| {
        b.iter(|| {
            let (top, bottom) = out.split_at_mut(ROWS / 2 * WIDTH);
            let (x_top, x_bottom) = x.split_at(ROWS / 2 * WIDTH);
            let half = |out: &mut [f32], x: &[f32]| {
                for w in &weights {
                    let shape = (ROWS / 2, WIDTH, WIDTH);
                    matmul(
                        out,
                        x,
                        w,
                        shape,
                        RightLayout::RowMajor,
                        false,
                        Threads::Single,
                    )
                    .expect("shapes");
                }
            };
            rayon::join(|| half(top, x_top), || half(bottom, x_bottom));
        })
    });
    for (name, threads) in [
        ("column-panels-on-the-pool", Threads::Pool),
        ("column-panels-one-thread", Threads::Single),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rayon::scope(|_| {
                    for w in &panels {
                        matmul_panels(&mut out, &x, w, None, false, threads).expect("shapes");
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    targets = forward, sampling, one_query_product
}
criterion_main!(benches);
