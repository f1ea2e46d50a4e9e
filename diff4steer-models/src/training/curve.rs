//! The loss curve: CSV for tools, SVG for people.

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::io::write_atomic;
use crate::{ModelError, Result};

/// One logged training step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// 1-based step count after the update.
    pub step: usize,
    /// Training loss of the step's batch.
    pub train_loss: f64,
    /// Learning rate used at the step.
    pub learning_rate: f64,
    /// Validation loss (EMA weights), where evaluated.
    pub valid_loss: Option<f64>,
}

/// Writes `step,train_loss,learning_rate,valid_loss` (empty where not evaluated), atomically.
///
/// # Errors
/// [`ModelError::Io`] naming the file.
pub fn write_loss_csv(path: &Path, points: &[LossPoint]) -> Result<()> {
    let mut text = String::from("step,train_loss,learning_rate,valid_loss\n");
    for p in points {
        let valid = p.valid_loss.map(|v| v.to_string()).unwrap_or_default();
        text.push_str(&format!(
            "{},{},{},{}\n",
            p.step, p.train_loss, p.learning_rate, valid
        ));
    }
    write_atomic(path, text.as_bytes())
}

/// Plots training (thin, smoothed over 1% of the run) and validation loss against the step, log
/// scale, as SVG, atomically.
///
/// # Errors
/// [`ModelError::Io`] when drawing or writing fails.
pub fn write_loss_plot(path: &Path, points: &[LossPoint]) -> Result<()> {
    let fail = |e: String| ModelError::Io {
        path: path.display().to_string(),
        reason: e,
    };
    if points.is_empty() {
        return Err(fail("no loss values to plot".into()));
    }
    let window = (points.len() / 100).max(1);
    let smoothed: Vec<(f64, f64)> = points
        .windows(window)
        .map(|w| {
            let mean = w.iter().map(|p| p.train_loss).sum::<f64>() / w.len() as f64;
            (w[w.len() - 1].step as f64, mean.max(1e-12))
        })
        .collect();
    let valid: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.valid_loss.map(|v| (p.step as f64, v.max(1e-12))))
        .collect();
    let all = smoothed.iter().chain(&valid).map(|p| p.1);
    let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let last_step = points[points.len() - 1].step.max(2) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(format!("{e:?}")))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("training loss", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..last_step, (lo * 0.9..hi * 1.1).log_scale())
            .map_err(|e| fail(format!("{e:?}")))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .draw()
            .map_err(|e| fail(format!("{e:?}")))?;
        chart
            .draw_series(LineSeries::new(smoothed, BLUE))
            .map_err(|e| fail(format!("{e:?}")))?
            .label("train (smoothed)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
        if !valid.is_empty() {
            chart
                .draw_series(LineSeries::new(valid.clone(), RED).point_size(3))
                .map_err(|e| fail(format!("{e:?}")))?
                .label("validation (EMA)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(format!("{e:?}")))?;
        root.present().map_err(|e| fail(format!("{e:?}")))?;
    }
    write_atomic(path, svg.as_bytes())
}
