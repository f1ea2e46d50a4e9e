//! The network pieces of the prior and the regression baseline: a residual MLP backbone with FiLM
//! conditioning and a Fourier-feature embedding of the noise level.

mod block;
mod fourier;
mod resmlp;

pub use block::ResBlock;
pub(crate) use fourier::angular_frequencies;
pub use fourier::fourier_features;
pub use resmlp::{ResMlp, ResMlpConfig};
