//! Helpers shared by the diff4steer example programs: atomic file output and scatter plots.

pub mod atomic;
pub mod scatter;
