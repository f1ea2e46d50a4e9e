//! Seeded Gaussian noise with one random stream per sample.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// A source of standard normal noise for samplers: the initial x ~ N(0, σ_max² I) and the fresh
/// noise of stochastic samplers.
pub trait NoiseSource<B: Backend> {
    /// Draws a `[rows, dim]` tensor of independent N(0, 1) values.
    fn normal(&mut self, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2>;
}

/// Seeded noise in which row `i` of every draw comes from its own ChaCha8 stream, keyed by
/// (`seed`, `first_sample + i`). Sample `j` therefore sees the same numbers whether it is drawn in a
/// batch of 1 or of 10 000, or as row 7 of the third batch: results do not depend on batch size.
///
/// Determinism: the same seed gives bit-identical noise on every platform (ChaCha8 and
/// `rand_distr`'s ziggurat `StandardNormal` are platform independent).
#[derive(Debug, Clone)]
pub struct SeededNoise {
    seed: u64,
    first_sample: u64,
    streams: Vec<ChaCha8Rng>,
}

impl SeededNoise {
    /// Noise for samples 0, 1, 2, … under `seed`.
    pub fn new(seed: u64) -> Self {
        Self::starting_at(seed, 0)
    }

    /// Noise whose row 0 is global sample `first_sample` (for processing samples in batches).
    pub fn starting_at(seed: u64, first_sample: u64) -> Self {
        Self {
            seed,
            first_sample,
            streams: Vec::new(),
        }
    }

    fn stream(&mut self, row: usize) -> &mut ChaCha8Rng {
        while self.streams.len() <= row {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(self.first_sample + self.streams.len() as u64);
            self.streams.push(rng);
        }
        &mut self.streams[row]
    }

    /// Draws `[rows, dim]` standard normal values on the host, row `i` from stream `i`.
    pub fn normal_host(&mut self, rows: usize, dim: usize) -> Vec<f32> {
        let mut values = Vec::with_capacity(rows * dim);
        for row in 0..rows {
            let rng = self.stream(row);
            values.extend((0..dim).map(|_| rng.sample::<f64, _>(StandardNormal) as f32));
        }
        values
    }
}

impl<B: Backend> NoiseSource<B> for SeededNoise {
    fn normal(&mut self, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
        let values = self.normal_host(shape[0], shape[1]);
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_noise_and_batch_independent() {
        let whole = SeededNoise::new(7).normal_host(6, 3);
        assert_eq!(whole, SeededNoise::new(7).normal_host(6, 3));
        // Rows 4..6 drawn as their own batch equal rows 4..6 of the whole batch.
        let tail = SeededNoise::starting_at(7, 4).normal_host(2, 3);
        assert_eq!(&whole[12..], &tail[..]);
        // A different seed differs.
        assert_ne!(whole, SeededNoise::new(8).normal_host(6, 3));
    }

    #[test]
    fn successive_draws_continue_each_stream() {
        let mut a = SeededNoise::new(1);
        let first = a.normal_host(2, 2);
        let second = a.normal_host(2, 2);
        let both = SeededNoise::new(1).normal_host(2, 4);
        assert_eq!(&both[0..2], &first[0..2]);
        assert_eq!(&both[2..4], &second[0..2]);
    }

    #[test]
    fn moments_are_standard_normal() {
        let v = SeededNoise::new(3).normal_host(200, 100);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
    }
}
