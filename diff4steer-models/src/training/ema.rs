//! Exponential moving average of model weights.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor};

/// θ_ema ← d·θ_ema + (1 − d)·θ with d = min(decay, (1 + t)/(10 + t)) at update t (the warm-up of
/// Polyak averaging used by most diffusion code bases), applied parameter by parameter in visit
/// order. The averaged copy is what sampling uses.
#[derive(Debug, Clone)]
pub struct ExponentialMovingAverage<M> {
    average: M,
    decay: f64,
    updates: u64,
}

impl<M> ExponentialMovingAverage<M> {
    /// Starts the average at `initial` (usually a copy of the freshly initialised model).
    pub fn new(initial: M, decay: f64) -> Self {
        Self::resume(initial, decay, 0)
    }

    /// Continues an average that has already seen `updates` updates.
    pub fn resume(average: M, decay: f64, updates: u64) -> Self {
        Self {
            average,
            decay,
            updates,
        }
    }

    /// The averaged model.
    pub fn average(&self) -> &M {
        &self.average
    }

    /// Takes the averaged model.
    pub fn into_average(self) -> M {
        self.average
    }

    /// Number of updates so far.
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// Updates applied so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The decay used at the next update.
    pub fn current_decay(&self) -> f64 {
        let t = self.updates as f64;
        self.decay.min((1.0 + t) / (10.0 + t))
    }

    /// Folds the current weights `model` (same architecture) into the average.
    pub fn update<B: Backend>(&mut self, model: &M)
    where
        M: Module<B> + Clone,
    {
        let decay = self.current_decay();
        let mut collector = FlatCollector::<B>::default();
        model.visit(&mut collector);
        let mut mapper = Blend {
            current: collector.tensors.into_iter(),
            decay,
        };
        self.average = self.average.clone().map(&mut mapper);
        self.updates += 1;
    }
}

struct FlatCollector<B: Backend> {
    tensors: Vec<Tensor<B, 1>>,
}

impl<B: Backend> Default for FlatCollector<B> {
    fn default() -> Self {
        Self {
            tensors: Vec::new(),
        }
    }
}

impl<B: Backend> ModuleVisitor<B> for FlatCollector<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.tensors.push(value.reshape([n]));
    }
}

struct Blend<B: Backend, I: Iterator<Item = Tensor<B, 1>>> {
    current: I,
    decay: f64,
}

impl<B: Backend, I: Iterator<Item = Tensor<B, 1>>> ModuleMapper<B> for Blend<B, I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let decay = self.decay;
        let current = self.current.next();
        param.map(|average| match current {
            Some(current) => {
                let dims = average.dims();
                average.mul_scalar(decay) + current.reshape(dims).mul_scalar(1.0 - decay)
            }
            None => average,
        })
    }
}
