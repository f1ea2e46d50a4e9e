//! Scatter plots of 2-D samples as SVG (plotters' SVG backend: no system fonts needed).

use anyhow::{anyhow, Result};
use plotters::prelude::*;

/// One panel of a scatter grid: a title and groups of points, one colour per group.
pub struct Panel {
    /// Panel title.
    pub title: String,
    /// (legend label, points) per group.
    pub groups: Vec<(String, Vec<(f64, f64)>)>,
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Renders panels in a grid of `columns` columns, all with the same axis ranges, to an SVG string.
///
/// # Errors
/// When plotters fails to lay out or draw the chart.
pub fn render_svg(
    panels: &[Panel],
    columns: usize,
    x_range: (f64, f64),
    y_range: (f64, f64),
) -> Result<String> {
    let columns = columns.max(1);
    let rows = panels.len().div_ceil(columns).max(1);
    let (width, height) = (360 * columns as u32, 340 * rows as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        let areas = root.split_evenly((rows, columns));
        for (panel, area) in panels.iter().zip(areas) {
            let mut chart = ChartBuilder::on(&area)
                .caption(&panel.title, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(24)
                .y_label_area_size(30)
                .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
                .map_err(|e| anyhow!("{e:?}"))?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .draw()
                .map_err(|e| anyhow!("{e:?}"))?;
            for (i, (label, points)) in panel.groups.iter().enumerate() {
                let colour = COLOURS[i % COLOURS.len()];
                chart
                    .draw_series(
                        points
                            .iter()
                            .map(|&(x, y)| Circle::new((x, y), 1, colour.mix(0.5).filled())),
                    )
                    .map_err(|e| anyhow!("{e:?}"))?
                    .label(label.as_str())
                    .legend(move |(x, y)| Circle::new((x, y), 3, colour.filled()));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow!("{e:?}"))?;
        }
        root.present().map_err(|e| anyhow!("{e:?}"))?;
    }
    Ok(svg)
}
