//! Fourier features of a scalar (the noise level c_noise).

use burn::tensor::{backend::Backend, Tensor, TensorData};

/// Lowest and highest frequency, in cycles per unit of the input; c_noise = ¼·ln σ spans about
/// [−1.6, 1.1] for σ ∈ [0.002, 80], so these resolve both the whole range and fine differences.
const MIN_FREQUENCY: f64 = 0.5;
const MAX_FREQUENCY: f64 = 64.0;

/// [sin(2π f_k t), cos(2π f_k t)] for `count` frequencies f_k log-spaced from 0.5 to 64
/// (deterministic Fourier features as in Tancik et al. 2020 and the positional embeddings of
/// EDM/DDPM). `t` is `[batch, 1]`; the result is `[batch, 2·count]`.
pub fn fourier_features<B: Backend>(t: Tensor<B, 2>, count: usize) -> Tensor<B, 2> {
    let frequencies = Tensor::<B, 2>::from_data(
        TensorData::new(angular_frequencies(count), [1, count]),
        &t.device(),
    );
    let angles = t * frequencies;
    Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1)
}

/// The angular frequencies 2π·f_k of [`fourier_features`], as f32 (shared with the host path).
pub(crate) fn angular_frequencies(count: usize) -> Vec<f32> {
    (0..count)
        .map(|k| {
            let frac = if count == 1 {
                0.0
            } else {
                k as f64 / (count - 1) as f64
            };
            let f = MIN_FREQUENCY * (MAX_FREQUENCY / MIN_FREQUENCY).powf(frac);
            (2.0 * std::f64::consts::PI * f) as f32
        })
        .collect()
}
