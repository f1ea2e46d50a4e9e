//! The learning-rate schedule: linear warm-up, then cosine decay.

use super::TrainingConfig;

/// Learning rate at `step` (0-based): linear warm-up to the peak over `warmup_steps`, then cosine
/// decay (Loshchilov & Hutter 2017, without restarts) to `learning_rate × final_lr_fraction` at
/// the last step.
pub fn learning_rate(config: &TrainingConfig, step: usize) -> f64 {
    let peak = config.learning_rate;
    if step < config.warmup_steps {
        return peak * (step + 1) as f64 / config.warmup_steps as f64;
    }
    let decay_steps = config.steps.saturating_sub(config.warmup_steps).max(1);
    let progress = ((step - config.warmup_steps) as f64 / decay_steps as f64).min(1.0);
    let floor = peak * config.final_lr_fraction;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_then_cosine_to_the_floor() {
        let c = TrainingConfig::new()
            .with_steps(110)
            .with_warmup_steps(10)
            .with_learning_rate(1.0)
            .with_final_lr_fraction(0.1);
        assert!((learning_rate(&c, 0) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&c, 9) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&c, 10) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&c, 60) - 0.55).abs() < 1e-12); // halfway: floor + ½(peak − floor)
        assert!((learning_rate(&c, 110) - 0.1).abs() < 1e-12);
        for s in 10..109 {
            assert!(learning_rate(&c, s + 1) <= learning_rate(&c, s));
        }
    }
}
