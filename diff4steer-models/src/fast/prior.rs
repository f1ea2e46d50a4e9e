//! [`FastPrior`]: the trained diffusion prior's forward pass on the host, with one GEMM per layer
//! over the whole batch and the conditioning path computed once per distinct condition.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use burn::tensor::backend::Backend;
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::TargetScaling;
use diff4steer_index::dense::Threads;

use pulp::Arch;

use super::kernels::{silu_in_place, FilmKernel};
use super::layers::{HostLayerNorm, PackedLinear, TileBlock};
use crate::network::angular_frequencies;
use crate::prior::DiffusionPrior;
use crate::Result;

/// One condition a batch row is denoised under: its noise level and its query (`None` = the
/// learned null query ∅ of classifier-free guidance).
#[derive(Debug, Clone, Copy)]
pub struct HostCondition<'a> {
    /// σ of the rows under this condition.
    pub sigma: f32,
    /// The query embedding (`query_dim` values), or `None` for ∅.
    pub query: Option<&'a [f32]>,
}

/// One parameter of a [`FastPrior`] by name (see [`FastPrior::named_tensors`]).
#[derive(Debug, Clone)]
pub struct NamedTensor<'a> {
    /// Dotted name, e.g. `blocks.0.film.weight`.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: &'a [f32],
}

impl<'a> NamedTensor<'a> {
    fn new(name: String, shape: Vec<usize>, values: &'a [f32]) -> Self {
        Self {
            name,
            shape,
            values,
        }
    }
}

/// Rows of the batch that go through the network together, layer by layer (the last tile of a
/// batch may be shorter). Every product of the forward pass computes each row's sums in a fixed
/// order whatever the rows around it (`diff4steer_index::column_panels`), so a row's result is
/// the same bits alone, in any batch and with any number of threads (tests/fast_prior.rs): the
/// tile is only the unit of work and of cache blocking. With at least as many tiles as threads,
/// tiles are spread over rayon's pool; with fewer (one query: 32 seeds with guidance are one
/// 64-row tile), each product of a tile is split by the weight's column panels over the threads
/// instead ([`PackedLinear`]), so each core streams only its share of the weights. 64 rows keep
/// a tile's activations (3 × 128 KB at width 512) in L2 and, against 32-row tiles, halve how
/// often each weight is read per row: on the development machine a 64×512×512 product split by
/// panels over two cores ran ≈ 1.4× faster than two 32-row tiles side by side (criterion group
/// `one_query_product_64x512x512`, BENCHMARKS.md).
pub(crate) const ROW_TILE: usize = 64;

/// Most tiles one thread takes through the network layer by layer: each layer runs for every
/// tile of the group before the next layer starts, so a layer's weight (1 MB at width 512), read
/// from L3 or memory for the group's first tile, is still in L2 for the others (where L2 holds
/// it), instead of being read again for every tile. A row's products do not depend on the
/// rows computed with it, so grouping changes no bits. On 4,096 rows at 512×4 on the
/// development machine (then with 32-row tiles), groups of 8–64 tiles ran 1.03–1.23× faster than
/// tile by tile (alternating calls in one process, BENCHMARKS.md).
const TILE_GROUP: usize = 16;

/// Reusable buffers of one forward pass; they grow to the largest batch seen and are then reused,
/// so a sampler allocates nothing per step.
#[derive(Debug, Default, Clone)]
pub struct FastScratch {
    x_in: Vec<f32>,
    condition: Vec<f32>,
    condition_tmp: Vec<f32>,
    /// The conditioning vectors of [`FastPrior::denoise_into`]'s own conditions.
    table: ConditionTable,
    tiles: Vec<TileScratch>,
}

/// The conditioning path's output for a list of [`HostCondition`]s: each condition's σ, every
/// block's FiLM [γ, β] and, for priors with a query input path, V·q. It depends only on the
/// conditions, so a sampler that knows its σ grid computes it once for the whole trajectory
/// ([`FastPrior::condition_table`]) and every network evaluation only indexes into it
/// ([`FastPrior::denoise_with_table`]): the FiLM weights (8 MB at width 512, depth 4) are then
/// streamed once per trajectory instead of once per evaluation.
#[derive(Debug, Default, Clone)]
pub struct ConditionTable {
    /// σ per condition.
    sigmas: Vec<f32>,
    /// Per block, `[conditions, 2·width]`.
    film: Vec<Vec<f32>>,
    /// V·q_eff per condition (`[conditions, width]`), for priors with `query_to_input`.
    input_offset: Vec<f32>,
}

impl ConditionTable {
    /// Number of conditions it holds.
    pub fn len(&self) -> usize {
        self.sigmas.len()
    }

    /// Whether it holds no condition.
    pub fn is_empty(&self) -> bool {
        self.sigmas.is_empty()
    }
}

/// The activations of one tile (at most [`ROW_TILE`] rows).
#[derive(Debug, Default, Clone)]
struct TileScratch {
    x_in: Vec<f32>,
    row_condition: Vec<usize>,
    hidden: Vec<f32>,
    inner: Vec<f32>,
    branch: Vec<f32>,
    output: Vec<f32>,
}

/// A group of tiles' output rows, input rows, row conditions and scratch.
type GroupWork<'a> = (
    ((&'a mut [f32], &'a [f32]), &'a [usize]),
    &'a mut [TileScratch],
);

/// Runs `f(first_row, rows)` over `values` (`[rows, width]`): on the calling thread in one call
/// with [`Threads::Single`], or in about one chunk of whole rows per thread of rayon's pool with
/// [`Threads::Pool`]. For row-wise passes, whose result for a row does not depend on the chunk.
fn for_rows(
    values: &mut [f32],
    width: usize,
    threads: Threads,
    f: impl Fn(usize, &mut [f32]) + Sync,
) {
    use rayon::prelude::*;
    match threads {
        Threads::Single => f(0, values),
        Threads::Pool => {
            let rows = values.len() / width;
            let chunk = rows.div_ceil(rayon::current_num_threads()).max(1);
            values
                .par_chunks_mut(chunk * width)
                .enumerate()
                .for_each(|(i, rows)| f(i * chunk, rows));
        }
    }
}

/// `branch` ← SiLU(LN(`hidden`)) row by row (the residual stream is kept; `width` values per row),
/// split by rows as [`for_rows`] does.
fn norm_then_silu(
    norm: &HostLayerNorm,
    hidden: &[f32],
    branch: &mut [f32],
    width: usize,
    threads: Threads,
) {
    for_rows(branch, width, threads, |first, rows| {
        norm.forward_then_silu(&hidden[first * width..first * width + rows.len()], rows);
    });
}

/// Resizes `buffer` to `len` (contents are overwritten by the caller).
fn sized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buffer.resize(len, 0.0);
    &mut buffer[..len]
}

/// The Diff4Steer prior D_θ(z̃, σ, q) = c_skip·z̃ + c_out·F_θ(c_in·z̃, c_noise, q) (METHOD.md; EDM
/// preconditioning, Karras et al. 2022, Table 1) evaluated on the host from a copy of a
/// [`DiffusionPrior`]'s weights: the same arithmetic in f32, organised for CPU inference.
///
/// - Every layer is one product over tiles of up to 64 rows of the batch, through a
///   register-blocked kernel on the weight packed once (`diff4steer_index::column_panels`), with
///   biases and residual additions fused into the product. Threads come from
///   rayon's pool unless [`FastPrior::with_threads`] says otherwise: a large batch spreads its
///   tiles over them; a small one (a single query's 64 rows) splits each product by the weight's
///   column panels instead, so each core streams only its share of the weights.
/// - The conditioning path — Fourier features of c_noise, the noise MLP, the query projection and
///   every block's FiLM layer — depends only on (σ, q), so it runs once per *distinct* condition
///   ([`HostCondition`]) and is shared by every row under it: with classifier-free guidance, 32
///   seeds of one query at one σ need two conditioning vectors, not 64. At the reference size this
///   removes more than half of the multiply–adds of a batch. A sampler that knows its σ grid
///   computes the whole trajectory's conditioning at once ([`ConditionTable`]).
/// - Buffers live in a [`FastScratch`] that samplers keep across steps.
/// - Concurrent callers: while at least as many calls are in progress on a prior (and its clones)
///   as the pool has threads, each call runs on its calling thread instead of splitting its
///   products. Each caller then keeps one thread busy, where splitting had a thread that waits
///   inside one caller's split pick up another caller's whole evaluation (rayon steals while
///   joining), so that some callers waited several times as long as the others. The bits are the
///   same either way.
///
/// It agrees with the burn model to 1e-5 (tests/fast_prior.rs) and implements
/// [`Denoiser`](diff4steer_core::Denoiser) for every backend, so samplers, guidance and steering
/// wrappers use it unchanged; [`FastSampler`](super::FastSampler) runs whole trajectories on the host.
#[derive(Debug, Clone)]
pub struct FastPrior {
    target_dim: usize,
    query_dim: usize,
    width: usize,
    embedding_dim: usize,
    sigma_data: f32,
    frequencies: Vec<f32>,
    input: PackedLinear,
    blocks: Vec<TileBlock>,
    norm_out: HostLayerNorm,
    output: PackedLinear,
    noise_in: PackedLinear,
    noise_out: PackedLinear,
    query_projection: PackedLinear,
    query_input: Option<PackedLinear>,
    null_query: Vec<f32>,
    target_scaling: Option<TargetScaling>,
    threads: Threads,
    /// Calls in progress (trajectories of [`FastSampler`](super::FastSampler), evaluations through
    /// the [`Denoiser`](diff4steer_core::Denoiser) trait, scorer calls), shared by clones.
    in_flight: Arc<AtomicUsize>,
}

/// One call on a [`FastPrior`] in progress (see [`FastPrior::enter_call`]): counted while it
/// lives.
pub(crate) struct CallInFlight<'a> {
    counter: &'a AtomicUsize,
}

impl Drop for CallInFlight<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

impl FastPrior {
    /// Copies a prior's weights to the host (a few MB at the reference size, once).
    ///
    /// # Errors
    /// [`crate::ModelError::Core`] when a tensor cannot be read back from the device.
    pub fn from_prior<B: Backend>(prior: &DiffusionPrior<B>) -> Result<Self> {
        let backbone = &prior.backbone;
        let blocks = TileBlock::all_from_burn(backbone)?;
        let input = PackedLinear::from_burn(&backbone.input)?;
        let noise_out = PackedLinear::from_burn(&prior.noise_out)?;
        Ok(Self {
            target_dim: prior.target_dim,
            query_dim: prior.query_dim,
            width: input.linear.d_out,
            embedding_dim: noise_out.linear.d_out,
            sigma_data: prior.sigma_data as f32,
            frequencies: angular_frequencies(prior.fourier_features),
            input,
            blocks,
            norm_out: HostLayerNorm::from_burn(&backbone.norm_out)?,
            output: PackedLinear::from_burn(&backbone.output)?,
            noise_in: PackedLinear::from_burn(&prior.noise_in)?,
            noise_out,
            query_projection: PackedLinear::from_burn(&prior.query_projection)?,
            query_input: prior
                .query_input
                .as_ref()
                .map(PackedLinear::from_burn)
                .transpose()?,
            null_query: to_host_f32(prior.null_query.val())?,
            target_scaling: prior.target_scaling.clone(),
            threads: Threads::Pool,
            in_flight: Arc::default(),
        })
    }

    /// The map from the prior's own (standardised) space to catalogue units, if it has one.
    pub fn scaling(&self) -> Option<&TargetScaling> {
        self.target_scaling.as_ref()
    }

    /// Whether the GEMMs may use rayon's pool ([`Threads::Pool`], the default) or run on the
    /// calling thread ([`Threads::Single`], for callers that parallelise over queries).
    pub fn with_threads(mut self, threads: Threads) -> Self {
        self.threads = threads;
        self
    }

    /// Counts a caller's use of the prior — a whole trajectory, one evaluation or one scoring —
    /// until the returned guard is dropped (see [`threads_now`](Self::threads_now)).
    pub(crate) fn enter_call(&self) -> CallInFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CallInFlight {
            counter: &self.in_flight,
        }
    }

    /// The threads the next pass may use: [`FastPrior::with_threads`]'s choice, except that while
    /// there is a call in progress for every thread of the pool, each keeps to its own thread.
    fn threads_now(&self) -> Threads {
        if self.in_flight.load(Ordering::Relaxed) < rayon::current_num_threads() {
            self.threads
        } else {
            Threads::Single
        }
    }

    /// Every parameter with a stable name and its shape, in the layout the forward pass uses
    /// (linear weights `[d_in, d_out]`, so y = x·W + b), plus `frequencies` (the angular
    /// frequencies 2π·f_k of the Fourier features): what another framework needs to run the same
    /// network (benches/peers exports them as .npy).
    pub fn named_tensors(&self) -> Vec<NamedTensor<'_>> {
        fn norm<'a>(name: &str, n: &'a HostLayerNorm, out: &mut Vec<NamedTensor<'a>>) {
            out.push(NamedTensor::new(
                format!("{name}.gamma"),
                vec![n.gamma.len()],
                &n.gamma,
            ));
            out.push(NamedTensor::new(
                format!("{name}.beta"),
                vec![n.beta.len()],
                &n.beta,
            ));
        }
        fn lin<'a>(name: &str, l: &'a PackedLinear, out: &mut Vec<NamedTensor<'a>>) {
            let l = &l.linear;
            out.push(NamedTensor::new(
                format!("{name}.weight"),
                vec![l.d_in, l.d_out],
                &l.weight,
            ));
            out.push(NamedTensor::new(
                format!("{name}.bias"),
                vec![l.d_out],
                &l.bias,
            ));
        }
        let mut out = Vec::new();
        lin("input", &self.input, &mut out);
        for (i, b) in self.blocks.iter().enumerate() {
            norm(&format!("blocks.{i}.norm_in"), &b.norm_in, &mut out);
            lin(&format!("blocks.{i}.linear_in"), &b.linear_in, &mut out);
            norm(&format!("blocks.{i}.norm_out"), &b.norm_out, &mut out);
            lin(&format!("blocks.{i}.film"), &b.film, &mut out);
            lin(&format!("blocks.{i}.linear_out"), &b.linear_out, &mut out);
        }
        norm("norm_out", &self.norm_out, &mut out);
        lin("output", &self.output, &mut out);
        lin("noise_in", &self.noise_in, &mut out);
        lin("noise_out", &self.noise_out, &mut out);
        lin("query_projection", &self.query_projection, &mut out);
        if let Some(query_input) = &self.query_input {
            lin("query_input", query_input, &mut out);
        }
        out.push(NamedTensor::new(
            "null_query".into(),
            vec![self.query_dim],
            &self.null_query,
        ));
        out.push(NamedTensor::new(
            "frequencies".into(),
            vec![self.frequencies.len()],
            &self.frequencies,
        ));
        out
    }

    /// Number of residual blocks.
    pub fn depth(&self) -> usize {
        self.blocks.len()
    }

    /// σ_d, the data standard deviation of the preconditioning.
    pub fn sigma_data(&self) -> f32 {
        self.sigma_data
    }

    /// Width of a target embedding (rows of x).
    pub fn target_dim(&self) -> usize {
        self.target_dim
    }

    /// Width of a query embedding.
    pub fn query_dim(&self) -> usize {
        self.query_dim
    }

    /// D(x, σ, q) for a batch: row r of `x` (`[rows, target_dim]`) is denoised under
    /// `conditions[row_condition[r]]`; the result goes to `out` (`[rows, target_dim]`).
    ///
    /// Shapes are the caller's contract (the [`Denoiser`](diff4steer_core::Denoiser) impl and
    /// [`FastSampler`](super::FastSampler) check them first).
    ///
    /// # Panics
    /// When `x`, `out` and `row_condition` disagree on the number of rows, a condition index is
    /// out of range, or a query is not `query_dim` wide.
    pub fn denoise_into(
        &self,
        x: &[f32],
        row_condition: &[usize],
        conditions: &[HostCondition<'_>],
        out: &mut [f32],
        scratch: &mut FastScratch,
    ) {
        let mut table = std::mem::take(&mut scratch.table);
        self.fill_condition_table(conditions, &mut table, scratch);
        self.denoise_with_table(x, row_condition, &table, out, scratch);
        scratch.table = table;
    }

    /// The conditioning path for `conditions` (see [`ConditionTable`]). Each condition's vectors
    /// are the same bits whatever the other conditions in the list, so a table computed for a
    /// whole σ grid gives the same denoised rows as one computed at each evaluation.
    ///
    /// # Panics
    /// When a query is not `query_dim` wide.
    pub fn condition_table(
        &self,
        conditions: &[HostCondition<'_>],
        scratch: &mut FastScratch,
    ) -> ConditionTable {
        let mut table = ConditionTable::default();
        self.fill_condition_table(conditions, &mut table, scratch);
        table
    }

    /// As [`denoise_into`](Self::denoise_into) with the conditions' vectors taken from `table`:
    /// row r is denoised under condition `row_condition[r]` of the table.
    ///
    /// # Panics
    /// When `x`, `out` and `row_condition` disagree on the number of rows, or a condition index
    /// is out of the table's range.
    pub fn denoise_with_table(
        &self,
        x: &[f32],
        row_condition: &[usize],
        table: &ConditionTable,
        out: &mut [f32],
        scratch: &mut FastScratch,
    ) {
        use rayon::prelude::*;
        let t = self.target_dim;
        let rows = row_condition.len();
        assert!(x.len() == rows * t && out.len() == rows * t, "batch shape");
        assert!(
            row_condition.iter().all(|&c| c < table.len()),
            "condition index out of range"
        );
        let tiles = rows.div_ceil(ROW_TILE);
        if scratch.tiles.len() < tiles {
            scratch.tiles.resize_with(tiles, TileScratch::default);
        }
        let tiles_scratch = &mut scratch.tiles[..tiles];
        let pool = self.threads_now() == Threads::Pool;
        if pool && tiles < rayon::current_num_threads() {
            // Too few tiles to keep every thread busy: every product of the tiles is split by
            // the weight's column panels, and every element-wise pass by rows, over the pool.
            // The pass runs on one of the pool's threads (`scope` moves it there when the caller
            // is not one), so that its ~20 splits hand work to a sibling thread instead of each
            // waking the pool from outside and putting the caller to sleep.
            rayon::scope(|_| {
                self.forward_group(x, row_condition, table, tiles_scratch, out, Threads::Pool)
            });
            return;
        }
        let run = |(((out, x), row_condition), tiles): GroupWork<'_>| {
            self.forward_group(x, row_condition, table, tiles, out, Threads::Single)
        };
        // On the pool, enough groups to keep every thread busy; at most TILE_GROUP tiles each.
        let group = if pool {
            tiles.div_ceil(rayon::current_num_threads()).min(TILE_GROUP)
        } else {
            TILE_GROUP
        };
        let (rows, values) = (group * ROW_TILE, group * ROW_TILE * t);
        if pool {
            out.par_chunks_mut(values)
                .zip(x.par_chunks(values))
                .zip(row_condition.par_chunks(rows))
                .zip(tiles_scratch.par_chunks_mut(group))
                .for_each(run);
        } else {
            out.chunks_mut(values)
                .zip(x.chunks(values))
                .zip(row_condition.chunks(rows))
                .zip(tiles_scratch.chunks_mut(group))
                .for_each(run);
        }
    }

    /// D(x, σ, q) for the rows of consecutive tiles (one [`TileScratch`] per [`ROW_TILE`] rows,
    /// the last one possibly short), layer by layer: each layer runs for every tile before the
    /// next one starts (see [`TILE_GROUP`]). With [`Threads::Single`] everything runs on the
    /// calling thread; with [`Threads::Pool`] each product is split by column panels and each
    /// element-wise pass by rows over rayon's pool. A tile's computation is the same as it would
    /// be alone, on any number of threads.
    fn forward_group(
        &self,
        x: &[f32],
        row_condition: &[usize],
        table: &ConditionTable,
        tiles: &mut [TileScratch],
        out: &mut [f32],
        threads: Threads,
    ) {
        let t = self.target_dim;
        for ((tile, x), row_condition) in tiles
            .iter_mut()
            .zip(x.chunks(ROW_TILE * t))
            .zip(row_condition.chunks(ROW_TILE))
        {
            self.tile_input(x, row_condition, table, tile, threads);
        }
        for (block, film) in self.blocks.iter().zip(&table.film) {
            for tile in tiles.iter_mut() {
                self.tile_block(block, film, tile, threads);
            }
        }
        for (((tile, out), x), row_condition) in tiles
            .iter_mut()
            .zip(out.chunks_mut(ROW_TILE * t))
            .zip(x.chunks(ROW_TILE * t))
            .zip(row_condition.chunks(ROW_TILE))
        {
            self.tile_output(x, row_condition, table, tile, out, threads);
        }
    }

    /// The network's input for a tile's rows (at most [`ROW_TILE`]):
    /// `tile.hidden` = Linear(c_in·x) (+ V·q_eff with a query input path).
    fn tile_input(
        &self,
        x: &[f32],
        row_condition: &[usize],
        table: &ConditionTable,
        tile: &mut TileScratch,
        threads: Threads,
    ) {
        let (t, w) = (self.target_dim, self.width);
        let rows = row_condition.len();
        tile.row_condition.clear();
        tile.row_condition.extend_from_slice(row_condition);

        // x_in = c_in(σ)·x, c_in = 1/√(σ² + σ_d²).
        let sd2 = self.sigma_data * self.sigma_data;
        let x_in = sized(&mut tile.x_in, rows * t);
        for ((dst, src), &c) in x_in
            .chunks_exact_mut(t)
            .zip(x.chunks_exact(t))
            .zip(row_condition)
        {
            let sigma = table.sigmas[c];
            let c_in = 1.0 / (sigma * sigma + sd2).sqrt();
            dst.iter_mut().zip(src).for_each(|(d, s)| *d = s * c_in);
        }

        let hidden = sized(&mut tile.hidden, rows * w);
        self.input.forward(&tile.x_in, hidden, false, threads);
        if self.query_input.is_some() {
            // + V·q_eff, computed once per condition.
            for (row, &c) in hidden.chunks_exact_mut(w).zip(&tile.row_condition) {
                let offset = &table.input_offset[c * w..(c + 1) * w];
                row.iter_mut().zip(offset).for_each(|(h, o)| *h += o);
            }
        }
    }

    /// One residual block on a tile (METHOD.md, the prior's backbone): inner =
    /// LN₂(Linear₁(SiLU(LN₁(h)))), then FiLM with the row's condition and SiLU;
    /// h += Linear₂(inner).
    fn tile_block(
        &self,
        block: &TileBlock,
        film: &[f32],
        tile: &mut TileScratch,
        threads: Threads,
    ) {
        let w = self.width;
        let TileScratch {
            hidden,
            branch,
            inner,
            row_condition,
            ..
        } = tile;
        let rows = row_condition.len();
        let branch = sized(branch, rows * w);
        norm_then_silu(&block.norm_in, hidden, branch, w, threads);
        let inner = sized(inner, rows * w);
        block.linear_in.forward(branch, inner, false, threads);
        for_rows(inner, w, threads, |first, rows| {
            let row_condition = &row_condition[first..first + rows.len() / w];
            Arch::new().dispatch(FilmKernel {
                values: rows,
                gamma: &block.norm_out.gamma,
                beta: &block.norm_out.beta,
                film,
                row_condition,
            })
        });
        block.linear_out.forward(inner, hidden, true, threads);
    }

    /// The network's output for the tile, and D = c_skip·x + c_out·F into `out` (its rows only).
    fn tile_output(
        &self,
        x: &[f32],
        row_condition: &[usize],
        table: &ConditionTable,
        tile: &mut TileScratch,
        out: &mut [f32],
        threads: Threads,
    ) {
        let (t, w) = (self.target_dim, self.width);
        let sd2 = self.sigma_data * self.sigma_data;
        let rows = row_condition.len();
        let branch = sized(&mut tile.branch, rows * w);
        norm_then_silu(&self.norm_out, &tile.hidden, branch, w, threads);
        let output = sized(&mut tile.output, rows * t);
        self.output.forward(branch, output, false, threads);

        // D = c_skip·x + c_out·F, c_skip = σ_d²/(σ² + σ_d²), c_out = σ·σ_d/√(σ² + σ_d²).
        for (((dst, src), f), &c) in out
            .chunks_exact_mut(t)
            .zip(x.chunks_exact(t))
            .zip(output.chunks_exact(t))
            .zip(row_condition)
        {
            let sigma = table.sigmas[c];
            let total = sigma * sigma + sd2;
            let c_skip = sd2 / total;
            let c_out = sigma * self.sigma_data / total.sqrt();
            for ((d, s), v) in dst.iter_mut().zip(src).zip(f) {
                *d = s * c_skip + v * c_out;
            }
        }
    }

    /// Every block's FiLM [γ, β] for each condition, into `table.film[block]`
    /// (`[conditions, 2·width]`): MLP(Fourier(¼·ln σ)) + W·q, SiLU, then each block's FiLM layer;
    /// and, with a query input path, V·q into `table.input_offset`. Every product is row-wise
    /// ([`PackedLinear`]), so a condition's vectors do not depend on the others.
    fn fill_condition_table(
        &self,
        conditions: &[HostCondition<'_>],
        table: &mut ConditionTable,
        scratch: &mut FastScratch,
    ) {
        table.sigmas.clear();
        table.sigmas.extend(conditions.iter().map(|c| c.sigma));
        let (e, n) = (self.embedding_dim, conditions.len());
        let count = self.frequencies.len();
        let features = sized(&mut scratch.x_in, n * 2 * count);
        for (row, c) in features.chunks_exact_mut(2 * count).zip(conditions) {
            let c_noise = c.sigma.ln() * 0.25;
            for (k, &f) in self.frequencies.iter().enumerate() {
                let angle = c_noise * f;
                row[k] = angle.sin();
                row[count + k] = angle.cos();
            }
        }
        let tmp = sized(&mut scratch.condition_tmp, n * e);
        self.noise_in.forward(features, tmp, false, Threads::Single);
        silu_in_place(tmp);
        let vector = sized(&mut scratch.condition, n * e);
        self.noise_out.forward(tmp, vector, false, Threads::Single);
        let queries = sized(&mut scratch.x_in, n * self.query_dim);
        for (row, c) in queries.chunks_exact_mut(self.query_dim).zip(conditions) {
            row.copy_from_slice(c.query.unwrap_or(&self.null_query));
        }
        self.query_projection
            .forward(queries, vector, true, Threads::Single);
        if let Some(query_input) = &self.query_input {
            let offset = sized(&mut table.input_offset, n * self.width);
            query_input.forward(queries, offset, false, Threads::Single);
        }
        silu_in_place(vector);
        let threads = self.threads_now();
        table.film.resize(self.blocks.len(), Vec::new());
        for (block, film) in self.blocks.iter().zip(table.film.iter_mut()) {
            let film = sized(film, n * 2 * self.width);
            block.film.forward(&scratch.condition, film, false, threads);
        }
    }
}
