//! One residual block with FiLM conditioning.

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::{activation::silu, backend::Backend, Tensor};

/// A residual block (the paper's lightweight ResNet block; FiLM of Perez et al. 2018):
///
/// y = Linear₁(SiLU(LN₁(h)));  y = LN₂(y)·(1 + γ(c)) + β(c);  out = h + Linear₂(Dropout(SiLU(y)))
///
/// where [γ, β] = Linear_film(SiLU(c)) comes from the conditioning vector c. Linear₂ starts at
/// zero, so every block starts as the identity (a common choice for stable early training).
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    pub(crate) norm_in: LayerNorm<B>,
    pub(crate) linear_in: Linear<B>,
    pub(crate) norm_out: LayerNorm<B>,
    pub(crate) film: Linear<B>,
    pub(crate) dropout: Dropout,
    pub(crate) linear_out: Linear<B>,
    pub(crate) width: usize,
}

impl<B: Backend> ResBlock<B> {
    /// A block of `width` features conditioned on a vector of `embedding_dim`.
    pub fn new(width: usize, embedding_dim: usize, dropout: f64, device: &B::Device) -> Self {
        Self {
            norm_in: LayerNormConfig::new(width).init(device),
            linear_in: LinearConfig::new(width, width).init(device),
            norm_out: LayerNormConfig::new(width).init(device),
            film: LinearConfig::new(embedding_dim, 2 * width).init(device),
            dropout: DropoutConfig::new(dropout).init(),
            linear_out: LinearConfig::new(width, width)
                .with_initializer(Initializer::Zeros)
                .init(device),
            width,
        }
    }

    /// `h` is `[batch, width]`, `cond` is `[batch, embedding_dim]`.
    pub fn forward(&self, h: Tensor<B, 2>, cond: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = self
            .linear_in
            .forward(silu(self.norm_in.forward(h.clone())));
        let y = self.norm_out.forward(y);
        let film = self.film.forward(silu(cond));
        let scale = film.clone().narrow(1, 0, self.width);
        let shift = film.narrow(1, self.width, self.width);
        let y = y.clone() * scale.add_scalar(1.0) + shift;
        h + self.linear_out.forward(self.dropout.forward(silu(y)))
    }
}
