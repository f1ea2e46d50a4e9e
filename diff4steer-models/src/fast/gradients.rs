//! [`PriorGradients`]: the diffusion prior's training loss and its gradient with respect to every
//! parameter, computed on host buffers by a hand-written backward pass — the CPU training path.
//!
//! burn's autodiff on a CPU backend runs every tensor operation as its own kernel with its own
//! allocation (a training step of the 512×4 prior spends about a third of its time in matrix
//! products, the rest in element-wise kernels, the dropout RNG and bookkeeping; BENCHMARKS.md).
//! Here the forward pass keeps what the backward pass needs, each linear layer is one GEMM
//! forward and two backward (dX = dY·Wᵀ, dW = Xᵀ·dY), and layer norm, FiLM, SiLU and the EDM
//! weighting are fused loops. The model stays a burn `Module`: its weights are read from it,
//! the gradients go back as burn's [`GradientsParams`] for its optimiser, so checkpoints, resume
//! and the optimiser are unchanged (tests/host_gradients.rs checks the gradients against burn's
//! autodiff).
//!
//! A batch of 64 rows or more is cut into two fixed halves computed side by side, each on its own
//! buffers with its products and element-wise loops on its own rows, and their gradients summed:
//! one fork and join per step instead of one per operation, which is what lets a second core
//! nearly double a step's speed (a GEMM of 256 rows split by `gemm` itself gains 1.1–1.5×). The
//! halves read their dropout masks from the seed's stream at their own rows, so the result is
//! that of the whole batch, and the same bits on any number of threads.
//!
//! The loss is EDM's (Karras et al. 2022, Eq. 2 with the weighting λ(σ) of Table 1):
//! L = mean over rows i and dimensions j of λ(σ_i)·(D(x_i + σ_i·ε_i; σ_i, q_i) − x_i)², with D the
//! preconditioned network of [`DiffusionPrior`] (METHOD.md).

use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use diff4steer_index::dense::{matmul_layouts, LeftLayout, RightLayout, Threads};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::kernels::{exp, lane_dot, lane_sum, vectorised};
use super::layers::{HostBlock, HostLayerNorm, HostLinear, LAYER_NORM_EPSILON};
use crate::network::angular_frequencies;
use crate::prior::DiffusionPrior;
use crate::training::HostBatch;
use crate::{ModelError, Result};

/// One residual block's parameters (or their gradients).
type Block = HostBlock;

/// Every parameter of a prior on the host, in burn's layouts (linear weights `[d_in, d_out]`);
/// the same structure holds their gradients.
#[derive(Debug, Clone)]
struct Params {
    input: HostLinear,
    blocks: Vec<Block>,
    norm_out: HostLayerNorm,
    output: HostLinear,
    noise_in: HostLinear,
    noise_out: HostLinear,
    query_projection: HostLinear,
    query_input: Option<HostLinear>,
    null_query: Vec<f32>,
}

fn zeros_like_linear(l: &HostLinear) -> HostLinear {
    HostLinear {
        d_in: l.d_in,
        d_out: l.d_out,
        weight: vec![0.0; l.weight.len()],
        bias: vec![0.0; l.bias.len()],
    }
}

fn zeros_like_norm(n: &HostLayerNorm) -> HostLayerNorm {
    HostLayerNorm {
        gamma: vec![0.0; n.gamma.len()],
        beta: vec![0.0; n.beta.len()],
    }
}

impl Params {
    /// Every parameter tensor in a fixed order: per linear layer its weight then bias (no bias
    /// for the query's input path, which has none), per layer norm γ then β — the order of
    /// `training::host`'s parameter ids.
    fn tensors(&self) -> Vec<&[f32]> {
        let mut out: Vec<&[f32]> = Vec::new();
        fn lin2<'a>(l: &'a HostLinear, bias: bool, out: &mut Vec<&'a [f32]>) {
            out.push(&l.weight);
            if bias {
                out.push(&l.bias);
            }
        }
        fn norm2<'a>(n: &'a HostLayerNorm, out: &mut Vec<&'a [f32]>) {
            out.push(&n.gamma);
            out.push(&n.beta);
        }
        lin2(&self.input, true, &mut out);
        for b in &self.blocks {
            norm2(&b.norm_in, &mut out);
            lin2(&b.linear_in, true, &mut out);
            norm2(&b.norm_out, &mut out);
            lin2(&b.film, true, &mut out);
            lin2(&b.linear_out, true, &mut out);
        }
        norm2(&self.norm_out, &mut out);
        lin2(&self.output, true, &mut out);
        lin2(&self.noise_in, true, &mut out);
        lin2(&self.noise_out, true, &mut out);
        lin2(&self.query_projection, true, &mut out);
        if let Some(q) = &self.query_input {
            lin2(q, false, &mut out);
        }
        out.push(&self.null_query);
        out
    }

    /// [`Params::tensors`], mutable.
    fn tensors_mut(&mut self) -> Vec<&mut [f32]> {
        fn lin2<'a>(l: &'a mut HostLinear, bias: bool, out: &mut Vec<&'a mut [f32]>) {
            out.push(&mut l.weight);
            if bias {
                out.push(&mut l.bias);
            }
        }
        fn norm2<'a>(n: &'a mut HostLayerNorm, out: &mut Vec<&'a mut [f32]>) {
            out.push(&mut n.gamma);
            out.push(&mut n.beta);
        }
        let mut out: Vec<&mut [f32]> = Vec::new();
        lin2(&mut self.input, true, &mut out);
        for b in &mut self.blocks {
            norm2(&mut b.norm_in, &mut out);
            lin2(&mut b.linear_in, true, &mut out);
            norm2(&mut b.norm_out, &mut out);
            lin2(&mut b.film, true, &mut out);
            lin2(&mut b.linear_out, true, &mut out);
        }
        norm2(&mut self.norm_out, &mut out);
        lin2(&mut self.output, true, &mut out);
        lin2(&mut self.noise_in, true, &mut out);
        lin2(&mut self.noise_out, true, &mut out);
        lin2(&mut self.query_projection, true, &mut out);
        if let Some(q) = &mut self.query_input {
            lin2(q, false, &mut out);
        }
        out.push(&mut self.null_query);
        out
    }

    fn zeros_like(&self) -> Self {
        Self {
            input: zeros_like_linear(&self.input),
            blocks: self
                .blocks
                .iter()
                .map(|b| Block {
                    norm_in: zeros_like_norm(&b.norm_in),
                    linear_in: zeros_like_linear(&b.linear_in),
                    norm_out: zeros_like_norm(&b.norm_out),
                    film: zeros_like_linear(&b.film),
                    linear_out: zeros_like_linear(&b.linear_out),
                })
                .collect(),
            norm_out: zeros_like_norm(&self.norm_out),
            output: zeros_like_linear(&self.output),
            noise_in: zeros_like_linear(&self.noise_in),
            noise_out: zeros_like_linear(&self.noise_out),
            query_projection: zeros_like_linear(&self.query_projection),
            query_input: self.query_input.as_ref().map(zeros_like_linear),
            null_query: vec![0.0; self.null_query.len()],
        }
    }
}

/// Buffers kept from one call to the next, so that a training step allocates nothing large:
/// fresh multi-megabyte vectors cost page faults and, when freed, TLB shootdowns across cores.
#[derive(Debug, Default)]
struct Pool {
    free: Vec<Vec<f32>>,
    grads: Option<Params>,
}

impl Pool {
    /// A zeroed buffer of `len` values.
    fn take(&mut self, len: usize) -> Vec<f32> {
        let mut buffer = match self.free.iter().position(|b| b.capacity() >= len) {
            Some(i) => self.free.swap_remove(i),
            None => Vec::with_capacity(len),
        };
        buffer.clear();
        buffer.resize(len, 0.0);
        buffer
    }

    fn give(&mut self, buffers: impl IntoIterator<Item = Vec<f32>>) {
        self.free.extend(buffers);
    }
}

/// The gradient of the training loss with respect to every parameter of a prior, in the
/// prior's structure; [`HostGradients::register`] hands it to burn's optimiser.
#[derive(Debug, Clone)]
pub struct HostGradients {
    params: Params,
}

/// The prior's loss and gradients on the host (see the module docs): built from a
/// [`DiffusionPrior`] of any backend (its current weights), then
/// [`loss_and_gradients`](Self::loss_and_gradients) for a [`HostBatch`].
#[derive(Debug)]
pub struct PriorGradients {
    params: Params,
    /// One pool per shard of a batch (see [`SHARDS`]), reused from step to step.
    pools: std::sync::Mutex<Vec<Pool>>,
    target_dim: usize,
    query_dim: usize,
    width: usize,
    embedding_dim: usize,
    sigma_data: f32,
    frequencies: Vec<f32>,
    dropout: f64,
}

/// What the backward pass needs of one block's forward pass.
struct BlockCache {
    /// LN₁(h) before its affine map, and 1/σ per row.
    ln1_hat: Vec<f32>,
    ln1_rstd: Vec<f32>,
    /// LN₁(h)·γ + β (SiLU's input), and SiLU of it (Linear₁'s input).
    ln1_out: Vec<f32>,
    silu1: Vec<f32>,
    /// LN₂(Linear₁(…)) before its affine map, and 1/σ per row.
    ln2_hat: Vec<f32>,
    ln2_rstd: Vec<f32>,
    /// FiLM's [scale, shift] per row.
    film: Vec<f32>,
    /// SiLU's input y = LN₂(…)·(1 + scale) + shift.
    pre_silu: Vec<f32>,
    /// Linear₂'s input: SiLU(y) with dropout applied.
    dropped: Vec<f32>,
    /// The dropout mask scaled by 1/(1 − p) (empty without dropout).
    mask: Vec<f32>,
}

/// σ(x) = 1/(1 + e^{−x}).
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// d SiLU(x)/dx = σ(x)·(1 + x·(1 − σ(x))).
#[inline(always)]
fn silu_derivative(x: f32) -> f32 {
    let s = sigmoid(x);
    s * (1.0 + x * (1.0 - s))
}

/// y = x·W + b (with `accumulate`, y += x·W + b) for `x` `[n, d_in]`.
fn linear(l: &HostLinear, x: &[f32], y: &mut [f32], accumulate: bool) {
    let n = x.len() / l.d_in;
    for row in y.chunks_exact_mut(l.d_out) {
        if accumulate {
            row.iter_mut().zip(&l.bias).for_each(|(o, b)| *o += b);
        } else {
            row.copy_from_slice(&l.bias);
        }
    }
    matmul_layouts(
        y,
        x,
        &l.weight,
        (n, l.d_in, l.d_out),
        (LeftLayout::RowMajor, RightLayout::RowMajor),
        true,
        Threads::Pool,
    )
    .expect("shapes follow the layer");
}

/// The backward pass of [`linear`]: dW += xᵀ·dy, db += Σ_rows dy (when `bias`), and
/// dx = dy·Wᵀ (added to `dx` with `accumulate`).
fn linear_backward(
    l: &HostLinear,
    grad: &mut HostLinear,
    x: &[f32],
    dy: &[f32],
    dx: Option<(&mut [f32], bool)>,
    bias: bool,
) {
    let n = dy.len() / l.d_out;
    matmul_layouts(
        &mut grad.weight,
        x,
        dy,
        (l.d_in, n, l.d_out),
        (LeftLayout::Transposed, RightLayout::RowMajor),
        true,
        Threads::Pool,
    )
    .expect("shapes follow the layer");
    if bias {
        for row in dy.chunks_exact(l.d_out) {
            grad.bias.iter_mut().zip(row).for_each(|(g, d)| *g += d);
        }
    }
    if let Some((dx, accumulate)) = dx {
        matmul_layouts(
            dx,
            dy,
            &l.weight,
            (n, l.d_out, l.d_in),
            (LeftLayout::RowMajor, RightLayout::Transposed),
            accumulate,
            Threads::Pool,
        )
        .expect("shapes follow the layer");
    }
}

/// Shards a training batch is cut into, computed side by side (each shard's products and
/// element-wise passes on its own rows, one join per step instead of one per operation); fixed,
/// so the bits do not depend on the thread count.
const SHARDS: usize = 2;

/// Batches of fewer than [`SHARDS`] × this many rows are not cut.
const MIN_SHARD_ROWS: usize = 32;

/// Rows per rayon task in the element-wise passes: a fixed grouping, so that nothing depends on
/// the thread count.
const ROWS_PER_TASK: usize = 16;

/// Row-wise layer norm of `x` (`[n, w]`): x̂ and 1/√(var + ε) per row, and x̂·γ + β; with
/// `silu`, also SiLU(x̂·γ + β). Rows in parallel.
fn layer_norm(
    norm: &HostLayerNorm,
    x: &[f32],
    hat: &mut [f32],
    rstd: &mut [f32],
    out: &mut [f32],
    silu: Option<&mut [f32]>,
) {
    let w = norm.gamma.len();
    let chunk = ROWS_PER_TASK * w;
    let mut no_silu = Vec::new();
    let silu_out: &mut [f32] = match silu {
        Some(s) => s,
        None => &mut no_silu,
    };
    let with_silu = !silu_out.is_empty();
    let silu_chunks: Vec<&mut [f32]> = if with_silu {
        silu_out.chunks_mut(chunk).collect()
    } else {
        (0..x.len().div_ceil(chunk))
            .map(|_| <&mut [f32]>::default())
            .collect()
    };
    x.par_chunks(chunk)
        .zip(hat.par_chunks_mut(chunk))
        .zip(rstd.par_chunks_mut(ROWS_PER_TASK))
        .zip(out.par_chunks_mut(chunk))
        .zip(silu_chunks.into_par_iter())
        .for_each(|((((x, hat), rstd), out), silu)| {
            vectorised(|| {
                for (i, ((row, h), o)) in x
                    .chunks_exact(w)
                    .zip(hat.chunks_exact_mut(w))
                    .zip(out.chunks_exact_mut(w))
                    .enumerate()
                {
                    let mean = lane_sum(row, |v| v) / w as f32;
                    let var = lane_sum(row, |v| (v - mean) * (v - mean)) / w as f32;
                    let r = 1.0 / (var + LAYER_NORM_EPSILON).sqrt();
                    rstd[i] = r;
                    for (((hv, ov), &xv), (g, b)) in h
                        .iter_mut()
                        .zip(o.iter_mut())
                        .zip(row)
                        .zip(norm.gamma.iter().zip(&norm.beta))
                    {
                        *hv = (xv - mean) * r;
                        *ov = *hv * g + b;
                    }
                    if with_silu {
                        for (sv, &ov) in silu[i * w..(i + 1) * w].iter_mut().zip(o.iter()) {
                            *sv = ov * sigmoid(ov);
                        }
                    }
                }
            })
        });
}

/// The backward pass of [`layer_norm`]: dγ += Σ dy·x̂, dβ += Σ dy (rows in order), and, rows in
/// parallel, dx = rstd·(d x̂ − mean(d x̂) − x̂·mean(d x̂·x̂)) with d x̂ = dy·γ (added to `dx`
/// with `accumulate`).
fn layer_norm_backward(
    norm: &HostLayerNorm,
    grad: &mut HostLayerNorm,
    hat: &[f32],
    rstd: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    accumulate: bool,
) {
    let w = norm.gamma.len();
    for (h, d) in hat.chunks_exact(w).zip(dy.chunks_exact(w)) {
        for ((gg, gb), (&hv, &dv)) in grad
            .gamma
            .iter_mut()
            .zip(grad.beta.iter_mut())
            .zip(h.iter().zip(d))
        {
            *gg += dv * hv;
            *gb += dv;
        }
    }
    let chunk = ROWS_PER_TASK * w;
    hat.par_chunks(chunk)
        .zip(rstd.par_chunks(ROWS_PER_TASK))
        .zip(dy.par_chunks(chunk))
        .zip(dx.par_chunks_mut(chunk))
        .for_each(|(((hat, rstd), dy), dx)| {
            vectorised(|| {
                let mut dhat = vec![0.0f32; w];
                for (((h, &r), d), out) in hat
                    .chunks_exact(w)
                    .zip(rstd)
                    .zip(dy.chunks_exact(w))
                    .zip(dx.chunks_exact_mut(w))
                {
                    for ((dh, &dv), &g) in dhat.iter_mut().zip(d).zip(&norm.gamma) {
                        *dh = dv * g;
                    }
                    let m1 = lane_sum(&dhat, |v| v) / w as f32;
                    let m2 = lane_dot(&dhat, h) / w as f32;
                    for ((o, &dh), &hv) in out.iter_mut().zip(&dhat).zip(h) {
                        let v = r * (dh - m1 - hv * m2);
                        if accumulate {
                            *o += v;
                        } else {
                            *o = v;
                        }
                    }
                }
            })
        });
}

impl Clone for PriorGradients {
    fn clone(&self) -> Self {
        Self {
            params: self.params.clone(),
            pools: Default::default(),
            target_dim: self.target_dim,
            query_dim: self.query_dim,
            width: self.width,
            embedding_dim: self.embedding_dim,
            sigma_data: self.sigma_data,
            frequencies: self.frequencies.clone(),
            dropout: self.dropout,
        }
    }
}

impl PriorGradients {
    /// Copies `prior`'s current weights to the host.
    ///
    /// # Errors
    /// [`ModelError::Core`] when a tensor cannot be read back.
    pub fn from_prior<B: Backend>(prior: &DiffusionPrior<B>) -> Result<Self> {
        let backbone = &prior.backbone;
        let blocks = HostBlock::all_from_burn(backbone)?;
        let dropout = backbone.blocks.first().map_or(0.0, |b| b.dropout.prob);
        let params = Params {
            input: HostLinear::from_burn(&backbone.input)?,
            blocks,
            norm_out: HostLayerNorm::from_burn(&backbone.norm_out)?,
            output: HostLinear::from_burn(&backbone.output)?,
            noise_in: HostLinear::from_burn(&prior.noise_in)?,
            noise_out: HostLinear::from_burn(&prior.noise_out)?,
            query_projection: HostLinear::from_burn(&prior.query_projection)?,
            query_input: prior
                .query_input
                .as_ref()
                .map(HostLinear::from_burn)
                .transpose()?,
            null_query: diff4steer_core::tensor_util::to_host_f32(prior.null_query.val())?,
        };
        Ok(Self {
            width: params.input.d_out,
            embedding_dim: params.noise_out.d_out,
            params,
            pools: Default::default(),
            target_dim: prior.target_dim,
            query_dim: prior.query_dim,
            sigma_data: prior.sigma_data as f32,
            frequencies: angular_frequencies(prior.fourier_features),
            dropout,
        })
    }

    /// The dropout probability inside the blocks (burn's `Dropout` of the prior).
    pub fn dropout(&self) -> f64 {
        self.dropout
    }

    /// Hands a step's gradients back for reuse by the next call (saves a model-sized
    /// allocation per step).
    pub fn recycle(&self, gradients: HostGradients) {
        self.recycle_params(0, gradients.params);
    }

    /// Hands shard `shard`'s gradient buffer back to that shard's pool.
    fn recycle_params(&self, shard: usize, params: Params) {
        self.pool_slot(shard, |pool| pool.grads = Some(params));
    }

    /// Runs `f` on shard `shard`'s pool (created empty the first time).
    fn pool_slot<R>(&self, shard: usize, f: impl FnOnce(&mut Pool) -> R) -> R {
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if pools.len() <= shard {
            pools.resize_with(shard + 1, Pool::default);
        }
        f(&mut pools[shard])
    }

    /// Every weight tensor, flat, in a fixed order (per linear layer its weight then bias, per
    /// layer norm γ then β, backbone first, then the conditioning path and the null query).
    pub fn parameters(&self) -> Vec<&[f32]> {
        self.params.tensors()
    }

    /// [`Self::parameters`], to update in place (the host optimiser).
    pub fn parameters_mut(&mut self) -> Vec<&mut [f32]> {
        self.params.tensors_mut()
    }

    /// The loss of `batch` (targets in the prior's own units, as training draws them) and its
    /// gradient. Dropout masks (inside the residual blocks, as training does) are drawn from
    /// `dropout_seed`: the same seed gives the same masks, whatever the thread count.
    ///
    /// # Errors
    /// [`ModelError::Data`] when the batch's widths differ from the prior's.
    pub fn loss_and_gradients(
        &self,
        batch: &HostBatch,
        dropout_seed: u64,
    ) -> Result<(f64, HostGradients)> {
        let (t, q) = (self.target_dim, self.query_dim);
        if batch.target_dim != t || batch.query_dim != q {
            return Err(ModelError::Data {
                source_name: "training batch".into(),
                reason: format!(
                    "{}-d queries and {}-d targets, the prior takes {q} and {t}",
                    batch.query_dim, batch.target_dim
                ),
            });
        }
        let rows = batch.rows();
        if rows < SHARDS * MIN_SHARD_ROWS {
            let (loss, params) = self.shard_loss_and_gradients(0, batch, 0, rows, dropout_seed);
            return Ok((loss, HostGradients { params }));
        }
        // Two halves side by side, each with its own buffers; then the gradients summed.
        let middle = rows / SHARDS;
        let (first, second) = (batch.rows_slice(0..middle), batch.rows_slice(middle..rows));
        let ((loss_1, mut g), (loss_2, g_2)) = rayon::join(
            || self.shard_loss_and_gradients(0, &first, 0, rows, dropout_seed),
            || self.shard_loss_and_gradients(1, &second, middle, rows, dropout_seed),
        );
        g.tensors_mut()
            .into_iter()
            .zip(g_2.tensors())
            .flat_map(|(a, b)| a.chunks_mut(1 << 14).zip(b.chunks(1 << 14)))
            .collect::<Vec<_>>()
            .into_par_iter()
            .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, y)| *x += y));
        self.recycle_params(1, g_2);
        Ok((loss_1 + loss_2, HostGradients { params: g }))
    }

    /// The share of rows `first_row ..` (those of `batch`) of a batch of `total_rows` in the
    /// loss, and their gradient: the loss and the gradient of the whole batch are the sums over
    /// its shards. Dropout masks are read from the stream of `dropout_seed` at the shard's rows,
    /// so they are those of the whole batch. Buffers come from shard `shard`'s pool.
    fn shard_loss_and_gradients(
        &self,
        shard: usize,
        batch: &HostBatch,
        first_row: usize,
        total_rows: usize,
        dropout_seed: u64,
    ) -> (f64, Params) {
        let (t, q, w, e) = (
            self.target_dim,
            self.query_dim,
            self.width,
            self.embedding_dim,
        );
        let n = batch.rows();
        let p = &self.params;
        let mut pool = self.pool_slot(shard, std::mem::take);
        let mut g = match pool.grads.take() {
            Some(mut g) => {
                g.tensors_mut()
                    .into_iter()
                    .flat_map(|t| t.chunks_mut(1 << 14))
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .for_each(|t| t.fill(0.0));
                g
            }
            None => p.zeros_like(),
        };
        let sd = self.sigma_data;
        let sd2 = sd * sd;

        // Preconditioning and the noisy input.
        let mut x_noisy = pool.take(n * t);
        let mut x_in = pool.take(n * t);
        let mut c_skip = pool.take(n);
        let mut c_out = pool.take(n);
        let mut weight = pool.take(n);
        for i in 0..n {
            let s = batch.sigma[i];
            let total = s * s + sd2;
            let c_in = 1.0 / total.sqrt();
            c_skip[i] = sd2 / total;
            c_out[i] = s * sd / total.sqrt();
            weight[i] = total / (s * s * sd2);
            for j in 0..t {
                let v = batch.targets[i * t + j] + batch.noise[i * t + j] * s;
                x_noisy[i * t + j] = v;
                x_in[i * t + j] = v * c_in;
            }
        }
        // The effective query: the learned null query on null rows.
        let mut query = batch.queries.clone();
        for (row, &null) in query.chunks_exact_mut(q).zip(&batch.null_rows) {
            if null {
                row.copy_from_slice(&p.null_query);
            }
        }
        // The conditioning vector c = MLP(Fourier(¼ ln σ)) + W_q·q, and SiLU(c) for FiLM.
        let count = self.frequencies.len();
        let mut features = pool.take(n * 2 * count);
        for (row, &s) in features.chunks_exact_mut(2 * count).zip(&batch.sigma) {
            let c_noise = s.ln() * 0.25;
            for (k, &f) in self.frequencies.iter().enumerate() {
                let angle = c_noise * f;
                row[k] = angle.sin();
                row[count + k] = angle.cos();
            }
        }
        let mut noise_hidden = pool.take(n * e);
        linear(&p.noise_in, &features, &mut noise_hidden, false);
        let mut noise_act = pool.take(n * e);
        for (a, &v) in noise_act.iter_mut().zip(&noise_hidden) {
            *a = v * sigmoid(v);
        }
        let mut cond = pool.take(n * e);
        linear(&p.noise_out, &noise_act, &mut cond, false);
        linear(&p.query_projection, &query, &mut cond, true);
        let mut cond_act = pool.take(n * e);
        for (a, &v) in cond_act.iter_mut().zip(&cond) {
            *a = v * sigmoid(v);
        }

        // The backbone.
        let mut h = pool.take(n * w);
        linear(&p.input, &x_in, &mut h, false);
        if let Some(qi) = &p.query_input {
            linear(qi, &query, &mut h, true);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(dropout_seed);
        let keep = 1.0 - self.dropout as f32;
        let mut caches = Vec::with_capacity(p.blocks.len());
        let mut u = pool.take(n * w);
        let mut ln2 = pool.take(n * w);
        for block in &p.blocks {
            let mut c = BlockCache {
                ln1_hat: pool.take(n * w),
                ln1_rstd: pool.take(n),
                ln1_out: pool.take(n * w),
                silu1: pool.take(n * w),
                ln2_hat: pool.take(n * w),
                ln2_rstd: pool.take(n),
                film: pool.take(n * 2 * w),
                pre_silu: pool.take(n * w),
                dropped: pool.take(n * w),
                mask: Vec::new(),
            };
            layer_norm(
                &block.norm_in,
                &h,
                &mut c.ln1_hat,
                &mut c.ln1_rstd,
                &mut c.ln1_out,
                Some(&mut c.silu1),
            );
            linear(&block.linear_in, &c.silu1, &mut u, false);
            layer_norm(
                &block.norm_out,
                &u,
                &mut c.ln2_hat,
                &mut c.ln2_rstd,
                &mut ln2,
                None,
            );
            linear(&block.film, &cond_act, &mut c.film, false);
            if self.dropout > 0.0 {
                c.mask = pool.take(n * w);
                // Block b's masks are words b·N·w … of the stream (N rows in the whole batch).
                rng.set_word_pos(((caches.len() * total_rows + first_row) * w) as u128);
                for m in c.mask.iter_mut() {
                    *m = if rng.random::<f32>() < keep {
                        1.0 / keep
                    } else {
                        0.0
                    };
                }
            }
            // y = LN₂(u)·(1 + scale) + shift, z = SiLU(y), then dropout; rows in parallel.
            let mask = &c.mask;
            ln2.par_chunks(w)
                .zip(c.film.par_chunks(2 * w))
                .zip(c.pre_silu.par_chunks_mut(w))
                .zip(c.dropped.par_chunks_mut(w))
                .enumerate()
                .for_each(|(i, (((ln2, film), pre), dropped))| {
                    vectorised(|| {
                        let (scale, shift) = film.split_at(w);
                        for j in 0..w {
                            let y = ln2[j] * (1.0 + scale[j]) + shift[j];
                            pre[j] = y;
                            dropped[j] = y * sigmoid(y);
                        }
                        if !mask.is_empty() {
                            for (z, m) in dropped.iter_mut().zip(&mask[i * w..(i + 1) * w]) {
                                *z *= m;
                            }
                        }
                    })
                });
            linear(&block.linear_out, &c.dropped, &mut h, true);
            caches.push(c);
        }
        // The head: F = W_o·SiLU(LN(h)) + b_o, D = c_skip·x + c_out·F.
        let mut out_hat = pool.take(n * w);
        let mut out_rstd = pool.take(n);
        let mut out_ln = pool.take(n * w);
        let mut out_act = pool.take(n * w);
        layer_norm(
            &p.norm_out,
            &h,
            &mut out_hat,
            &mut out_rstd,
            &mut out_ln,
            Some(&mut out_act),
        );
        let mut f = pool.take(n * t);
        linear(&p.output, &out_act, &mut f, false);

        // Loss and dL/dF.
        let scale = 2.0 / (total_rows * t) as f32;
        let mut loss = 0.0f64;
        let mut df = pool.take(n * t);
        for i in 0..n {
            for j in 0..t {
                let k = i * t + j;
                let r = c_skip[i] * x_noisy[k] + c_out[i] * f[k] - batch.targets[k];
                loss += f64::from(weight[i] * r * r);
                df[k] = scale * weight[i] * r * c_out[i];
            }
        }
        loss /= (total_rows * t) as f64;

        // Backward through the head.
        let mut d_act = pool.take(n * w);
        linear_backward(
            &p.output,
            &mut g.output,
            &out_act,
            &df,
            Some((&mut d_act, false)),
            true,
        );
        d_act
            .par_chunks_mut(w)
            .zip(out_ln.par_chunks(w))
            .for_each(|(d, v)| {
                vectorised(|| {
                    for (dv, &x) in d.iter_mut().zip(v) {
                        *dv *= silu_derivative(x);
                    }
                })
            });
        let mut dh = pool.take(n * w);
        layer_norm_backward(
            &p.norm_out,
            &mut g.norm_out,
            &out_hat,
            &out_rstd,
            &d_act,
            &mut dh,
            false,
        );

        // Backward through the blocks, last first; dh is the gradient of the block's output.
        let mut d_cond_act = pool.take(n * e);
        let mut du = pool.take(n * w);
        let mut d_ln1 = pool.take(n * w);
        let mut d_film = pool.take(n * 2 * w);
        let mut dz = pool.take(n * w);
        let mut dln2 = pool.take(n * w);
        let mut ds = pool.take(n * w);
        for (b, block) in p.blocks.iter().enumerate().rev() {
            let c = &caches[b];
            let gb = &mut g.blocks[b];
            // h_out = h_in + Linear₂(dropout(SiLU(y))).
            linear_backward(
                &block.linear_out,
                &mut gb.linear_out,
                &c.dropped,
                &dh,
                Some((&mut dz, false)),
                true,
            );
            if !c.mask.is_empty() {
                dz.iter_mut().zip(&c.mask).for_each(|(d, m)| *d *= m);
            }
            let (ng, nb) = (&block.norm_out.gamma, &block.norm_out.beta);
            dz.par_chunks(w)
                .zip(c.pre_silu.par_chunks(w))
                .zip(c.ln2_hat.par_chunks(w))
                .zip(c.film.par_chunks(2 * w))
                .zip(d_film.par_chunks_mut(2 * w))
                .zip(dln2.par_chunks_mut(w))
                .for_each(|(((((dz, pre), hat), film), d_film), dln2)| {
                    vectorised(|| {
                        let scale = &film[..w];
                        let (d_scale, d_shift) = d_film.split_at_mut(w);
                        for j in 0..w {
                            let dy = dz[j] * silu_derivative(pre[j]);
                            d_scale[j] = dy * (hat[j] * ng[j] + nb[j]);
                            d_shift[j] = dy;
                            dln2[j] = dy * (1.0 + scale[j]);
                        }
                    })
                });
            linear_backward(
                &block.film,
                &mut gb.film,
                &cond_act,
                &d_film,
                Some((&mut d_cond_act, true)),
                true,
            );
            layer_norm_backward(
                &block.norm_out,
                &mut gb.norm_out,
                &c.ln2_hat,
                &c.ln2_rstd,
                &dln2,
                &mut du,
                false,
            );
            linear_backward(
                &block.linear_in,
                &mut gb.linear_in,
                &c.silu1,
                &du,
                Some((&mut ds, false)),
                true,
            );
            d_ln1
                .par_chunks_mut(w)
                .zip(ds.par_chunks(w))
                .zip(c.ln1_out.par_chunks(w))
                .for_each(|((d, s), a)| {
                    vectorised(|| {
                        for ((dv, &sv), &av) in d.iter_mut().zip(s).zip(a) {
                            *dv = sv * silu_derivative(av);
                        }
                    })
                });
            // dh_in = dh_out (the residual) + LN₁'s backward.
            layer_norm_backward(
                &block.norm_in,
                &mut gb.norm_in,
                &c.ln1_hat,
                &c.ln1_rstd,
                &d_ln1,
                &mut dh,
                true,
            );
        }

        // Backward through the input layers.
        let mut d_query = pool.take(n * q);
        linear_backward(&p.input, &mut g.input, &x_in, &dh, None, true);
        if let (Some(qi), Some(gqi)) = (&p.query_input, &mut g.query_input) {
            linear_backward(qi, gqi, &query, &dh, Some((&mut d_query, true)), false);
        }
        // Backward through the conditioning path.
        let mut d_cond = d_cond_act;
        for (d, &v) in d_cond.iter_mut().zip(&cond) {
            *d *= silu_derivative(v);
        }
        linear_backward(
            &p.query_projection,
            &mut g.query_projection,
            &query,
            &d_cond,
            Some((&mut d_query, true)),
            true,
        );
        let mut d_noise_act = pool.take(n * e);
        linear_backward(
            &p.noise_out,
            &mut g.noise_out,
            &noise_act,
            &d_cond,
            Some((&mut d_noise_act, false)),
            true,
        );
        for (d, &v) in d_noise_act.iter_mut().zip(&noise_hidden) {
            *d *= silu_derivative(v);
        }
        linear_backward(
            &p.noise_in,
            &mut g.noise_in,
            &features,
            &d_noise_act,
            None,
            true,
        );
        for (row, &null) in d_query.chunks_exact(q).zip(&batch.null_rows) {
            if null {
                g.null_query
                    .iter_mut()
                    .zip(row)
                    .for_each(|(gv, d)| *gv += d);
            }
        }
        for c in caches {
            pool.give([
                c.ln1_hat, c.ln1_rstd, c.ln1_out, c.silu1, c.ln2_hat, c.ln2_rstd, c.film,
                c.pre_silu, c.dropped, c.mask,
            ]);
        }
        pool.give([
            x_noisy,
            x_in,
            c_skip,
            c_out,
            weight,
            features,
            noise_hidden,
            noise_act,
            cond,
            d_cond,
            h,
            u,
            ln2,
            out_hat,
            out_rstd,
            out_ln,
            out_act,
            f,
            df,
            d_act,
            dh,
            du,
            d_ln1,
            d_film,
            dz,
            dln2,
            ds,
            d_query,
            d_noise_act,
            query,
        ]);
        self.pool_slot(shard, |slot| *slot = pool);
        (loss, g)
    }
}

impl HostGradients {
    /// The gradients in the order of [`PriorGradients::parameters`].
    pub fn into_parameters(self) -> Vec<Vec<f32>> {
        self.params
            .tensors()
            .into_iter()
            .map(<[f32]>::to_vec)
            .collect()
    }

    /// The gradients in the order of [`PriorGradients::parameters`], to scale in place.
    pub fn parameters_mut(&mut self) -> Vec<&mut [f32]> {
        self.params.tensors_mut()
    }

    /// Registers every gradient for the matching parameter of `prior` (the model the gradients
    /// were computed for) in `grads`, as tensors on `device` — what burn's optimiser takes.
    pub fn register<B: burn::tensor::backend::AutodiffBackend>(
        &self,
        prior: &DiffusionPrior<B>,
        grads: &mut GradientsParams,
        device: &B::Device,
    ) {
        fn matrix<B: Backend>(
            values: &[f32],
            rows: usize,
            cols: usize,
            device: &B::Device,
        ) -> Tensor<B, 2> {
            Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), device)
        }
        fn vector<B: Backend>(values: &[f32], device: &B::Device) -> Tensor<B, 1> {
            Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
        }
        fn lin<B: burn::tensor::backend::AutodiffBackend>(
            layer: &burn::nn::Linear<B>,
            g: &HostLinear,
            grads: &mut GradientsParams,
            device: &B::Device,
        ) {
            grads.register::<B::InnerBackend, 2>(
                layer.weight.id,
                matrix(&g.weight, g.d_in, g.d_out, device),
            );
            if let Some(bias) = &layer.bias {
                grads.register::<B::InnerBackend, 1>(bias.id, vector(&g.bias, device));
            }
        }
        fn norm<B: burn::tensor::backend::AutodiffBackend>(
            layer: &burn::nn::LayerNorm<B>,
            g: &HostLayerNorm,
            grads: &mut GradientsParams,
            device: &B::Device,
        ) {
            grads.register::<B::InnerBackend, 1>(layer.gamma.id, vector(&g.gamma, device));
            if let Some(beta) = &layer.beta {
                grads.register::<B::InnerBackend, 1>(beta.id, vector(&g.beta, device));
            }
        }
        let g = &self.params;
        let backbone = &prior.backbone;
        lin(&backbone.input, &g.input, grads, device);
        for (block, gb) in backbone.blocks.iter().zip(&g.blocks) {
            norm(&block.norm_in, &gb.norm_in, grads, device);
            lin(&block.linear_in, &gb.linear_in, grads, device);
            norm(&block.norm_out, &gb.norm_out, grads, device);
            lin(&block.film, &gb.film, grads, device);
            lin(&block.linear_out, &gb.linear_out, grads, device);
        }
        norm(&backbone.norm_out, &g.norm_out, grads, device);
        lin(&backbone.output, &g.output, grads, device);
        lin(&prior.noise_in, &g.noise_in, grads, device);
        lin(&prior.noise_out, &g.noise_out, grads, device);
        lin(&prior.query_projection, &g.query_projection, grads, device);
        if let (Some(layer), Some(gq)) = (&prior.query_input, &g.query_input) {
            lin(layer, gq, grads, device);
        }
        grads.register::<B::InnerBackend, 2>(
            prior.null_query.id,
            matrix(&g.null_query, 1, g.null_query.len(), device),
        );
    }

    /// Every gradient as (name, values), in a fixed order (for tests and diagnostics).
    pub fn named(&self) -> Vec<(String, &[f32])> {
        let g = &self.params;
        let mut out: Vec<(String, &[f32])> = Vec::new();
        fn push<'a>(out: &mut Vec<(String, &'a [f32])>, name: String, values: &'a [f32]) {
            out.push((name, values));
        }
        push(&mut out, "input.weight".into(), &g.input.weight);
        push(&mut out, "input.bias".into(), &g.input.bias);
        for (i, b) in g.blocks.iter().enumerate() {
            push(
                &mut out,
                format!("blocks.{i}.norm_in.gamma"),
                &b.norm_in.gamma,
            );
            push(
                &mut out,
                format!("blocks.{i}.norm_in.beta"),
                &b.norm_in.beta,
            );
            push(
                &mut out,
                format!("blocks.{i}.linear_in.weight"),
                &b.linear_in.weight,
            );
            push(
                &mut out,
                format!("blocks.{i}.linear_in.bias"),
                &b.linear_in.bias,
            );
            push(
                &mut out,
                format!("blocks.{i}.norm_out.gamma"),
                &b.norm_out.gamma,
            );
            push(
                &mut out,
                format!("blocks.{i}.norm_out.beta"),
                &b.norm_out.beta,
            );
            push(&mut out, format!("blocks.{i}.film.weight"), &b.film.weight);
            push(&mut out, format!("blocks.{i}.film.bias"), &b.film.bias);
            push(
                &mut out,
                format!("blocks.{i}.linear_out.weight"),
                &b.linear_out.weight,
            );
            push(
                &mut out,
                format!("blocks.{i}.linear_out.bias"),
                &b.linear_out.bias,
            );
        }
        push(&mut out, "norm_out.gamma".into(), &g.norm_out.gamma);
        push(&mut out, "norm_out.beta".into(), &g.norm_out.beta);
        push(&mut out, "output.weight".into(), &g.output.weight);
        push(&mut out, "output.bias".into(), &g.output.bias);
        push(&mut out, "noise_in.weight".into(), &g.noise_in.weight);
        push(&mut out, "noise_in.bias".into(), &g.noise_in.bias);
        push(&mut out, "noise_out.weight".into(), &g.noise_out.weight);
        push(&mut out, "noise_out.bias".into(), &g.noise_out.bias);
        push(
            &mut out,
            "query_projection.weight".into(),
            &g.query_projection.weight,
        );
        push(
            &mut out,
            "query_projection.bias".into(),
            &g.query_projection.bias,
        );
        if let Some(qi) = &g.query_input {
            push(&mut out, "query_input.weight".into(), &qi.weight);
        }
        push(&mut out, "null_query".into(), &g.null_query);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::{DiffusionPriorConfig, ResMlpConfig};

    /// A batch of `rows` rows with every field drawn from `seed` (a few null rows).
    fn batch(target: usize, query: usize, rows: usize, seed: u64) -> HostBatch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect() };
        HostBatch {
            queries: values(rows * query),
            targets: values(rows * target),
            null_rows: (0..rows).map(|r| r % 5 == 0).collect(),
            sigma: values(rows).iter().map(|v| (2.0 * v).exp()).collect(),
            noise: values(rows * target),
            query_dim: query,
            target_dim: target,
        }
    }

    /// The two halves side by side give the loss and gradients of the batch in one piece, with
    /// the same dropout masks (a mask read from the wrong place in the stream changes the loss
    /// by far more than the tolerance).
    #[test]
    fn a_batch_cut_in_two_shards_gives_the_loss_and_gradients_of_the_whole() {
        let prior = DiffusionPriorConfig::new(6, 5)
            .with_network(
                ResMlpConfig::new()
                    .with_width(24)
                    .with_depth(2)
                    .with_embedding_dim(10)
                    .with_fourier_features(4)
                    .with_dropout(0.3),
            )
            .init::<CpuBackend>(&Default::default())
            .unwrap();
        let mut path = PriorGradients::from_prior(&prior).unwrap();
        // A fresh prior's output layers are zero (each block the identity, dropout invisible).
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for tensor in path.parameters_mut() {
            tensor
                .iter_mut()
                .for_each(|v| *v += 0.6 * (rng.random::<f32>() - 0.5));
        }
        for rows in [SHARDS * MIN_SHARD_ROWS, 97] {
            let batch = batch(6, 5, rows, rows as u64);
            let (sharded_loss, sharded) = path.loss_and_gradients(&batch, 9).unwrap();
            let (whole_loss, whole) = path.shard_loss_and_gradients(0, &batch, 0, rows, 9);
            assert!(
                (sharded_loss - whole_loss).abs() <= 1e-6 * whole_loss.abs(),
                "{rows} rows: loss {sharded_loss} in shards, {whole_loss} whole"
            );
            for (a, b) in sharded.params.tensors().iter().zip(whole.tensors()) {
                for (x, y) in a.iter().zip(b) {
                    assert!((x - y).abs() <= 1e-5 * y.abs().max(1e-2), "{x} vs {y}");
                }
            }
            // Another dropout seed: other masks, a loss further off than the tolerance above.
            let (other, _) = path.loss_and_gradients(&batch, 10).unwrap();
            assert!(
                (other - sharded_loss).abs() > 1e-5 * sharded_loss.abs(),
                "{rows} rows: {other} vs {sharded_loss}"
            );
        }
    }
}
