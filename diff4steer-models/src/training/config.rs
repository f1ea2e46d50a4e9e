//! Training hyper-parameters.

use burn::config::Config;

use crate::{ModelError, Result};

/// Everything that shapes a training run; defaults are documented per field. The same seed and
/// config give the same run, interrupted and resumed or not.
#[derive(Config, Debug, PartialEq)]
pub struct TrainingConfig {
    /// Optimiser steps.
    #[config(default = 10000)]
    pub steps: usize,
    /// Pairs per step (drawn uniformly with replacement).
    #[config(default = 256)]
    pub batch_size: usize,
    /// Peak learning rate of AdamW.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay (Loshchilov & Hutter 2019).
    #[config(default = 1e-4)]
    pub weight_decay: f64,
    /// Linear warm-up steps from 0 to the peak learning rate.
    #[config(default = 200)]
    pub warmup_steps: usize,
    /// The cosine decay ends at `learning_rate × final_lr_fraction`.
    #[config(default = 0.01)]
    pub final_lr_fraction: f64,
    /// Global gradient-norm clipping threshold (Pascanu et al. 2013); 0 disables it.
    #[config(default = 1.0)]
    pub grad_clip_norm: f64,
    /// EMA decay of the weights used for sampling (with the usual warm-up
    /// min(decay, (1 + t)/(10 + t))).
    #[config(default = 0.999)]
    pub ema_decay: f64,
    /// Probability that a pair's query is replaced by the null condition (classifier-free
    /// guidance training, Ho & Salimans 2022). Ignored by the regression baseline.
    #[config(default = 0.1)]
    pub cond_dropout: f64,
    /// Mean of ln σ during training (EDM P_mean). EDM's −1.2 (σ ≈ 0.3, for images with σ_d =
    /// 0.5) spends most steps where a 128-d embedding is still identifiable from its noisy copy,
    /// so the query barely matters there; on MusicCaps/VGGish (standardised targets, σ_d = 1) a
    /// prior trained with −1.2 ignored its caption, while 1.0 (σ ≈ 2.7) learned it (caption
    /// Recall@10 0.07 → 0.28 at 6,000 steps; results/musiccaps). Low-dimensional targets with
    /// sharp modes need the small-σ regime and EDM's value.
    #[config(default = 1.0)]
    pub p_mean: f64,
    /// Standard deviation of ln σ during training (EDM P_std; EDM uses 1.2).
    #[config(default = 1.0)]
    pub p_std: f64,
    /// Evaluate the validation loss (with the EMA weights) every this many steps; 0 = only at
    /// the end.
    #[config(default = 500)]
    pub validate_every: usize,
    /// With validation data: keep the EMA weights of the validation with the lowest loss as the
    /// trained model (returned, and stored as `best.mpk` beside each checkpoint, which sampling
    /// loads). The prior overfits small pair sets: on MusicCaps (2,663 pairs, 256×3) its
    /// validation loss is lowest near 2,000 steps and rises after, and caption Recall@10 follows
    /// it (0.297 at 2,000 steps, 0.276 at 4,000, 0.246 at 20,000; BENCHMARKS.md).
    #[config(default = true)]
    pub keep_best: bool,
    /// With validation data: stop after this many validations in a row without a new lowest
    /// loss (0 = never stop early).
    #[config(default = 0)]
    pub patience: usize,
    /// Write a checkpoint every this many steps (and at the end) when training into a folder;
    /// 0 = only at the end.
    #[config(default = 1000)]
    pub checkpoint_every: usize,
    /// Seed of initialisation, batches, noise and dropout.
    #[config(default = 0)]
    pub seed: u64,
    /// Show a progress bar on standard error.
    #[config(default = true)]
    pub progress: bool,
    /// Compute the prior's gradients on the host ([`crate::fast::PriorGradients`]: a
    /// hand-written backward pass, 2–3× burn's autodiff on its CPU backends, BENCHMARKS.md)
    /// when training on a CPU backend (burn-flex or burn-ndarray); GPU backends and the
    /// regression baseline always use burn's autodiff. Dropout masks then come from the step's
    /// seed instead of burn's RNG, so the two paths give statistically equal, not identical,
    /// runs with dropout on (identical ones without it).
    #[config(default = true)]
    pub host_gradients: bool,
}

impl TrainingConfig {
    /// Checks every value.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |field: &'static str, reason: String| Err(ModelError::InvalidConfig { field, reason });
        if self.steps == 0 {
            return bad("steps", "must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        for (field, v) in [("learning_rate", self.learning_rate), ("p_std", self.p_std)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(field, format!("must be finite and positive, got {v}"));
            }
        }
        for (field, v) in [
            ("weight_decay", self.weight_decay),
            ("grad_clip_norm", self.grad_clip_norm),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, format!("must be finite and non-negative, got {v}"));
            }
        }
        for (field, v) in [
            ("final_lr_fraction", self.final_lr_fraction),
            ("ema_decay", self.ema_decay),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, format!("must be in [0, 1], got {v}"));
            }
        }
        if !(0.0..1.0).contains(&self.cond_dropout) {
            return bad(
                "cond_dropout",
                format!("must be in [0, 1), got {}", self.cond_dropout),
            );
        }
        if !self.p_mean.is_finite() {
            return bad("p_mean", format!("must be finite, got {}", self.p_mean));
        }
        Ok(())
    }
}
