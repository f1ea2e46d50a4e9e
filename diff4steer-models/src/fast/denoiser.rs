//! [`FastPrior`] as a [`Denoiser`] on any backend: tensors go to the host, through the host
//! forward pass, and back.

use std::collections::HashMap;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::{check_denoiser_inputs, Conditioning, Denoiser, TargetScaling};

use super::prior::{FastPrior, FastScratch, HostCondition};

impl<B: Backend> Denoiser<B> for FastPrior {
    fn dim(&self) -> usize {
        self.target_dim()
    }

    fn cond_dim(&self) -> usize {
        self.query_dim()
    }

    fn target_scaling(&self) -> Option<&TargetScaling> {
        self.scaling()
    }

    /// The same denoised estimate as the [`DiffusionPrior`](crate::DiffusionPrior) it was copied
    /// from. Rows with equal σ and equal query (or both null) share one conditioning vector.
    fn denoise(
        &self,
        x: Tensor<B, 2>,
        sigma: Tensor<B, 1>,
        cond: &Conditioning<B>,
    ) -> diff4steer_core::Result<Tensor<B, 2>> {
        check_denoiser_inputs(self, &x, &sigma, cond)?;
        let [rows, dim] = x.dims();
        let device = x.device();
        let x = to_host_f32(x)?;
        let sigma = to_host_f32(sigma)?;
        let queries = to_host_f32(cond.embeddings().clone())?;
        let query_dim = self.query_dim();

        // Distinct (σ, query) pairs, keyed by their bit patterns.
        let mut index: HashMap<(u32, Option<Vec<u32>>), usize> = HashMap::new();
        let mut keys = Vec::new();
        let row_condition: Vec<usize> = (0..rows)
            .map(|r| {
                let query = (!cond.null_rows()[r]).then_some(r);
                let bits = query.map(|r| {
                    queries[r * query_dim..(r + 1) * query_dim]
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                });
                *index.entry((sigma[r].to_bits(), bits)).or_insert_with(|| {
                    keys.push((sigma[r], query));
                    keys.len() - 1
                })
            })
            .collect();
        let conditions: Vec<HostCondition<'_>> = keys
            .iter()
            .map(|&(sigma, query)| HostCondition {
                sigma,
                query: query.map(|r| &queries[r * query_dim..(r + 1) * query_dim]),
            })
            .collect();

        let mut out = vec![0.0f32; rows * dim];
        let _call = self.enter_call();
        self.denoise_into(
            &x,
            &row_condition,
            &conditions,
            &mut out,
            &mut FastScratch::default(),
        );
        Ok(Tensor::from_data(
            TensorData::new(out, [rows, dim]),
            &device,
        ))
    }
}
