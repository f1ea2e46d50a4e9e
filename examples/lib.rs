//! Helpers shared by the diff4steer example programs: scatter and line plots.

#![forbid(unsafe_code)]

pub mod line_plot;
pub mod scatter;
