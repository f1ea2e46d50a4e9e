//! [`FastSeeds`]: the host path behind the [`SeedGenerator`] interface retrieval consumes.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use diff4steer_core::tensor_util::{ensure_dim, to_host_f32};

use super::prior::{FastPrior, FastScratch};
use super::sampler::FastSampler;
use crate::{Result, SeedGenerator};

/// K seeds per query from a [`FastPrior`] with a [`FastSampler`] (classifier-free guidance
/// included): a drop-in for [`crate::PriorSeeds`] over the burn prior with
/// `LinearGuidance::classifier_free`, giving the same seeds up to rounding.
#[derive(Debug, Clone)]
pub struct FastSeeds {
    prior: FastPrior,
    sampler: FastSampler,
}

impl FastSeeds {
    /// Seeds from `prior` with `sampler`.
    pub fn new(prior: FastPrior, sampler: FastSampler) -> Self {
        Self { prior, sampler }
    }

    /// The host prior.
    pub fn prior(&self) -> &FastPrior {
        &self.prior
    }

    /// The host sampler.
    pub fn sampler(&self) -> &FastSampler {
        &self.sampler
    }

    /// [`FastSampler::sample`] on host rows with a fresh scratch: `[n·k, target_dim]`.
    ///
    /// # Errors
    /// As [`FastSampler::sample`].
    pub fn seeds_host(&self, queries: &[f32], k: usize, seed: u64) -> Result<Vec<f32>> {
        self.sampler
            .sample(&self.prior, queries, k, seed, &mut FastScratch::default())
    }
}

impl<B: Backend> SeedGenerator<B> for FastSeeds {
    fn query_dim(&self) -> usize {
        self.prior.query_dim()
    }

    fn target_dim(&self) -> usize {
        self.prior.target_dim()
    }

    fn seeds(&self, queries: Tensor<B, 2>, k: usize, seed: u64) -> Result<Tensor<B, 2>> {
        ensure_dim(&queries, self.prior.query_dim(), "query embedding")?;
        let device = queries.device();
        let n = queries.dims()[0];
        let seeds = self.seeds_host(&to_host_f32(queries)?, k, seed)?;
        Ok(Tensor::from_data(
            TensorData::new(seeds, [n * k, self.prior.target_dim()]),
            &device,
        ))
    }
}
