//! A residual MLP of the size of the paper's prior (width 512, depth 4; 128-d in and out), used to
//! compare CPU backends before the real denoiser exists. It has the same layer mix (linear layers,
//! layer norms, SiLU, residual adds) and so the same balance of GEMM and element-wise work.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{activation::silu, backend::Backend, Tensor};

/// One residual block: x + Linear(SiLU(LN(Linear(SiLU(LN(x)))))).
#[derive(Module, Debug)]
pub struct ResidualBlock<B: Backend> {
    norm_in: LayerNorm<B>,
    linear_in: Linear<B>,
    norm_out: LayerNorm<B>,
    linear_out: Linear<B>,
}

/// Input projection, `depth` residual blocks, output projection.
#[derive(Module, Debug)]
pub struct ReferenceMlp<B: Backend> {
    input: Linear<B>,
    blocks: Vec<ResidualBlock<B>>,
    output: Linear<B>,
}

impl<B: Backend> ReferenceMlp<B> {
    /// A randomly initialised network `dim → width → … → dim`.
    pub fn new(dim: usize, width: usize, depth: usize, device: &B::Device) -> Self {
        let blocks = (0..depth)
            .map(|_| ResidualBlock {
                norm_in: LayerNormConfig::new(width).init(device),
                linear_in: LinearConfig::new(width, width).init(device),
                norm_out: LayerNormConfig::new(width).init(device),
                linear_out: LinearConfig::new(width, width).init(device),
            })
            .collect();
        Self {
            input: LinearConfig::new(dim, width).init(device),
            blocks,
            output: LinearConfig::new(width, dim).init(device),
        }
    }

    /// Forward pass, `[batch, dim] → [batch, dim]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = self.input.forward(x);
        for block in &self.blocks {
            let inner = block
                .linear_in
                .forward(silu(block.norm_in.forward(h.clone())));
            h = h + block
                .linear_out
                .forward(silu(block.norm_out.forward(inner)));
        }
        self.output.forward(h)
    }
}
