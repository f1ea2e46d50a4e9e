//! Gradient clipping by the global norm of all parameters' gradients.

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{backend::AutodiffBackend, Tensor};

/// Scales every gradient by min(1, max_norm / ‖g‖), ‖g‖ the norm of all gradients together
/// (Pascanu et al. 2013). burn's own clipping acts per parameter tensor; this acts on the whole
/// model, the usual choice for diffusion training. Returns ‖g‖ before clipping, or `None` when
/// clipping is off (`max_norm` = 0), in which case nothing is computed.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Option<f64> {
    if max_norm <= 0.0 {
        return None;
    }
    let mut ids = IdCollector::default();
    module.visit(&mut ids);
    // One device-to-host read for the whole model.
    let squared = ids
        .params
        .iter()
        .filter_map(|(id, dims)| grad_flat::<B>(grads, *id, *dims))
        .map(|g| g.square().sum())
        .reduce(|a, b| a + b);
    let norm = squared.map_or(0.0, |s| s.into_scalar().into_f64_lossy().sqrt());
    if norm > max_norm {
        let scale = max_norm / norm;
        for (id, dims) in &ids.params {
            rescale::<B>(grads, *id, *dims, scale);
        }
    }
    Some(norm)
}

/// Parameter ids and ranks in visit order.
#[derive(Default)]
struct IdCollector {
    params: Vec<(ParamId, usize)>,
}

impl<B: burn::tensor::backend::Backend> ModuleVisitor<B> for IdCollector {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.params.push((param.id, D));
    }
}

fn grad_flat<B: AutodiffBackend>(
    grads: &GradientsParams,
    id: ParamId,
    rank: usize,
) -> Option<Tensor<B::InnerBackend, 1>> {
    match rank {
        1 => grads.get::<B::InnerBackend, 1>(id),
        2 => grads.get::<B::InnerBackend, 2>(id).map(|t| t.flatten(0, 1)),
        _ => None,
    }
}

fn rescale<B: AutodiffBackend>(grads: &mut GradientsParams, id: ParamId, rank: usize, scale: f64) {
    match rank {
        1 => {
            if let Some(g) = grads.remove::<B::InnerBackend, 1>(id) {
                grads.register(id, g.mul_scalar(scale));
            }
        }
        2 => {
            if let Some(g) = grads.remove::<B::InnerBackend, 2>(id) {
                grads.register(id, g.mul_scalar(scale));
            }
        }
        _ => {}
    }
}

trait IntoF64Lossy {
    fn into_f64_lossy(self) -> f64;
}

impl<E: burn::tensor::ElementConversion> IntoF64Lossy for E {
    fn into_f64_lossy(self) -> f64 {
        self.elem::<f64>()
    }
}
