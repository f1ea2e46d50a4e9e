//! The residual MLP backbone shared by the diffusion prior and the regression baseline.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{activation::silu, backend::Backend, Tensor};

use super::ResBlock;
use crate::{ModelError, Result};

/// Sizes of the residual MLP. Defaults are the paper-scale "lightweight" prior: width 512,
/// depth 4, dropout 0.1, 64 Fourier frequencies, 512-d conditioning vector.
#[derive(Config, Debug, PartialEq)]
pub struct ResMlpConfig {
    /// Hidden width of every block.
    #[config(default = 512)]
    pub width: usize,
    /// Number of residual blocks.
    #[config(default = 4)]
    pub depth: usize,
    /// Dropout probability inside each block (training only).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Number of Fourier frequencies of the noise embedding (2× this many features).
    #[config(default = 64)]
    pub fourier_features: usize,
    /// Width of the conditioning vector (noise embedding + query projection) fed to FiLM.
    #[config(default = 512)]
    pub embedding_dim: usize,
}

impl ResMlpConfig {
    /// Checks that every size is positive and the dropout a probability.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("width", self.width),
            ("depth", self.depth),
            ("fourier_features", self.fourier_features),
            ("embedding_dim", self.embedding_dim),
        ] {
            if value == 0 {
                return Err(ModelError::InvalidConfig {
                    field: name,
                    reason: "must be at least 1".into(),
                });
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelError::InvalidConfig {
                field: "dropout",
                reason: format!("must be in [0, 1), got {}", self.dropout),
            });
        }
        Ok(())
    }

    /// A lower bound on the backbone's parameter count for `in_dim → out_dim` (its weight
    /// matrices alone, without biases and norms), saturating: a checkpoint loader compares it
    /// with the stored weights before allocating a model of this size.
    pub fn minimum_parameters(&self, in_dim: usize, out_dim: usize) -> u128 {
        // Every product saturates: a manifest may hold any width up to u64::MAX.
        let (w, e) = (self.width as u128, self.embedding_dim as u128);
        let block = w
            .saturating_mul(w)
            .saturating_add(e.saturating_mul(w))
            .saturating_mul(2);
        (in_dim as u128)
            .saturating_mul(w)
            .saturating_add((self.depth as u128).saturating_mul(block))
            .saturating_add(w.saturating_mul(out_dim as u128))
    }

    /// The backbone `in_dim → width → … → out_dim`, conditioned on `embedding_dim` vectors.
    pub fn init<B: Backend>(&self, in_dim: usize, out_dim: usize, device: &B::Device) -> ResMlp<B> {
        ResMlp {
            input: LinearConfig::new(in_dim, self.width).init(device),
            blocks: (0..self.depth)
                .map(|_| ResBlock::new(self.width, self.embedding_dim, self.dropout, device))
                .collect(),
            norm_out: LayerNormConfig::new(self.width).init(device),
            output: LinearConfig::new(self.width, out_dim).init(device),
        }
    }
}

/// Input projection, residual blocks with FiLM conditioning, output projection
/// (LayerNorm → SiLU → Linear).
#[derive(Module, Debug)]
pub struct ResMlp<B: Backend> {
    pub(crate) input: Linear<B>,
    pub(crate) blocks: Vec<ResBlock<B>>,
    pub(crate) norm_out: LayerNorm<B>,
    pub(crate) output: Linear<B>,
}

impl<B: Backend> ResMlp<B> {
    /// `x` is `[batch, in_dim]`, `cond` is `[batch, embedding_dim]`; returns `[batch, out_dim]`.
    pub fn forward(&self, x: Tensor<B, 2>, cond: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_with_offset(x, None, cond)
    }

    /// [`Self::forward`] with `offset` (`[batch, width]`) added to the first hidden layer.
    pub fn forward_with_offset(
        &self,
        x: Tensor<B, 2>,
        offset: Option<Tensor<B, 2>>,
        cond: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let mut h = self.input.forward(x);
        if let Some(offset) = offset {
            h = h + offset;
        }
        for block in &self.blocks {
            h = block.forward(h, cond.clone());
        }
        self.output.forward(silu(self.norm_out.forward(h)))
    }
}
