//! Host copies of burn's `Linear` and `LayerNorm` parameters, and their forward passes on
//! row-major slices.

use burn::nn::{LayerNorm, Linear};
use burn::tensor::backend::Backend;
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_index::column_panels::{matmul_panels, ColumnPanels};
use diff4steer_index::dense::Threads;

use pulp::Arch;

use super::kernels::LayerNormSiluKernel;
use crate::Result;

/// burn's `LayerNormConfig` default ε, which every norm of the prior uses.
pub(crate) const LAYER_NORM_EPSILON: f32 = 1e-5;

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
}

/// Columns per weight panel of a [`PackedLinear`]: a layer of width 512 has 8 panels that the
/// threads of a one-query product share (a layer of width 256, 4). (A row's result does not
/// depend on the panel width or the thread count; the width only sets how finely a product can
/// be shared.) Panels of 64–256 columns ran within noise of each other on 64-row tiles on the
/// development machine (BENCHMARKS.md); narrower ones give more threads work on one tile.
const PANEL_COLUMNS: usize = 64;

/// A linear layer of the host prior: [`HostLinear`]'s parameters with the weight also packed as
/// [`ColumnPanels`], so that its products need no packing per call and can be split by output
/// columns over threads (each reads only its panels of W). Every row's result is its own sums in
/// a fixed order, so it is the same bits whatever the other rows of the call, the split and the
/// number of threads (`diff4steer_index::column_panels`).
#[derive(Debug, Clone)]
pub(crate) struct PackedLinear {
    pub linear: HostLinear,
    panels: ColumnPanels,
}

impl PackedLinear {
    /// Copies a burn layer's parameters to the host and packs the weight.
    pub fn from_burn<B: Backend>(layer: &Linear<B>) -> Result<Self> {
        Self::from_host(HostLinear::from_burn(layer)?)
    }

    fn from_host(linear: HostLinear) -> Result<Self> {
        let panels = ColumnPanels::from_row_major(
            &linear.weight,
            (linear.d_in, linear.d_out),
            PANEL_COLUMNS,
        )
        .map_err(|e| crate::ModelError::InvalidConfig {
            field: "linear layer weight",
            reason: e.to_string(),
        })?;
        Ok(Self { linear, panels })
    }

    /// `out` ← x·W + b for `x` `[rows, d_in]`, `out` `[rows, d_out]`; with `accumulate`,
    /// `out` ← out + x·W + b (a residual connection fused into the product). The column panels
    /// run on rayon's pool with [`Threads::Pool`], else on the calling thread.
    pub fn forward(&self, x: &[f32], out: &mut [f32], accumulate: bool, threads: Threads) {
        matmul_panels(
            out,
            x,
            &self.panels,
            Some(&self.linear.bias),
            accumulate,
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

    /// `output` ← SiLU(LN(`input`)) row by row (both `[rows, width]`).
    pub fn forward_then_silu(&self, input: &[f32], output: &mut [f32]) {
        Arch::new().dispatch(LayerNormSiluKernel {
            input,
            output,
            gamma: &self.gamma,
            beta: &self.beta,
        });
    }
}

/// One residual block's parameters on the host (see [`crate::network::ResBlock`]).
#[derive(Debug, Clone)]
pub(crate) struct HostBlock {
    pub norm_in: HostLayerNorm,
    pub linear_in: HostLinear,
    pub norm_out: HostLayerNorm,
    pub film: HostLinear,
    pub linear_out: HostLinear,
}

impl HostBlock {
    /// Copies every residual block of `backbone` to the host.
    pub fn all_from_burn<B: Backend>(backbone: &crate::network::ResMlp<B>) -> Result<Vec<Self>> {
        backbone
            .blocks
            .iter()
            .map(|b| {
                Ok(Self {
                    norm_in: HostLayerNorm::from_burn(&b.norm_in)?,
                    linear_in: HostLinear::from_burn(&b.linear_in)?,
                    norm_out: HostLayerNorm::from_burn(&b.norm_out)?,
                    film: HostLinear::from_burn(&b.film)?,
                    linear_out: HostLinear::from_burn(&b.linear_out)?,
                })
            })
            .collect()
    }
}

/// One residual block of the host inference path: [`HostBlock`]'s parameters with its linear
/// layers packed ([`PackedLinear`]).
#[derive(Debug, Clone)]
pub(crate) struct TileBlock {
    pub norm_in: HostLayerNorm,
    pub linear_in: PackedLinear,
    pub norm_out: HostLayerNorm,
    pub film: PackedLinear,
    pub linear_out: PackedLinear,
}

impl TileBlock {
    /// Every residual block of `backbone`, on the host.
    pub fn all_from_burn<B: Backend>(backbone: &crate::network::ResMlp<B>) -> Result<Vec<Self>> {
        HostBlock::all_from_burn(backbone)?
            .into_iter()
            .map(|b| {
                Ok(Self {
                    norm_in: b.norm_in,
                    linear_in: PackedLinear::from_host(b.linear_in)?,
                    norm_out: b.norm_out,
                    film: PackedLinear::from_host(b.film)?,
                    linear_out: PackedLinear::from_host(b.linear_out)?,
                })
            })
            .collect()
    }
}
