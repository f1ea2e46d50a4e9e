//! Helpers shared by the diff4steer example programs: scatter plots.

pub mod scatter;
