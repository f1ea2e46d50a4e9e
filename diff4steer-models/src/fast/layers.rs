//! Host copies of burn's `Linear` and `LayerNorm` parameters, and their forward passes on
//! row-major slices.

use burn::nn::{LayerNorm, Linear};
use burn::tensor::backend::Backend;
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_index::dense::{matmul, RightLayout, Threads};

use pulp::Arch;

use super::kernels::{for_row_chunks, FewRowsProduct, LayerNormKernel};
use crate::Result;

/// burn's `LayerNormConfig` default ε, which every norm of the prior uses.
pub(crate) const LAYER_NORM_EPSILON: f32 = 1e-5;

/// Batches of at most this many rows skip the GEMM (see [`FewRowsProduct`]).
const FEW_ROWS: usize = 4;

/// y = x·W + b with W `[d_in, d_out]` row-major (burn's layout).
#[derive(Debug, Clone)]
pub(crate) struct HostLinear {
    pub d_in: usize,
    pub d_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl HostLinear {
    /// Copies a burn layer's parameters to the host.
    pub fn from_burn<B: Backend>(layer: &Linear<B>) -> Result<Self> {
        let [d_in, d_out] = layer.weight.dims();
        let weight = to_host_f32(layer.weight.val())?;
        let bias = match &layer.bias {
            Some(bias) => to_host_f32(bias.val())?,
            None => vec![0.0; d_out],
        };
        Ok(Self {
            d_in,
            d_out,
            weight,
            bias,
        })
    }

    /// `out` ← x·W + b for `x` `[rows, d_in]`, `out` `[rows, d_out]`; with `accumulate`,
    /// `out` ← out + x·W + b (a residual connection fused into the product).
    pub fn forward(&self, x: &[f32], out: &mut [f32], accumulate: bool, threads: Threads) {
        let rows = x.len() / self.d_in;
        for row in out.chunks_exact_mut(self.d_out) {
            if accumulate {
                row.iter_mut().zip(&self.bias).for_each(|(o, b)| *o += b);
            } else {
                row.copy_from_slice(&self.bias);
            }
        }
        if rows <= FEW_ROWS {
            Arch::new().dispatch(FewRowsProduct {
                out,
                x,
                weight: &self.weight,
                d_in: self.d_in,
            });
            return;
        }
        matmul(
            out,
            x,
            &self.weight,
            (rows, self.d_in, self.d_out),
            RightLayout::RowMajor,
            true,
            threads,
        )
        .expect("layer shapes are fixed when the prior is copied");
    }
}

/// γ and β of a layer norm.
#[derive(Debug, Clone)]
pub(crate) struct HostLayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

impl HostLayerNorm {
    /// Copies a burn layer norm's parameters to the host.
    pub fn from_burn<B: Backend>(norm: &LayerNorm<B>) -> Result<Self> {
        let gamma = to_host_f32(norm.gamma.val())?;
        let beta = match &norm.beta {
            Some(beta) => to_host_f32(beta.val())?,
            None => vec![0.0; gamma.len()],
        };
        Ok(Self { gamma, beta })
    }

    /// Normalises each row of `values` (`[rows, width]`) in place, then SiLU when `then_silu`.
    pub fn forward(&self, values: &mut [f32], then_silu: bool, threads: Threads) {
        for_row_chunks(values, self.gamma.len(), threads, |_, chunk| {
            LayerNormKernel {
                values: chunk,
                gamma: &self.gamma,
                beta: &self.beta,
                then_silu,
            }
        });
    }
}
