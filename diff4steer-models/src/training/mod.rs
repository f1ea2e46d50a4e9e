//! Training of the diffusion prior and the regression baseline: data, objectives, the optimiser
//! schedule, gradient clipping, EMA, checkpoints and the loss curve.

mod checkpoint;
mod clip;
mod config;
mod curve;
mod data;
mod ema;
mod host;
mod objective;
mod pair_mix;
mod schedule;
mod trainer;

pub use checkpoint::{load_prior, load_regression, Checkpoint, ModelSpec};
pub use clip::clip_global_norm;
pub use config::TrainingConfig;
pub use curve::{write_loss_csv, write_loss_plot, LossPoint};
pub use data::PairData;
pub use ema::ExponentialMovingAverage;
pub use objective::{Batch, HostBatch, TrainableModel};
pub use pair_mix::{musiccaps_pairs, PairMix};
pub use schedule::learning_rate;
pub use trainer::{train_prior, train_regression, Output, TrainingReport};
