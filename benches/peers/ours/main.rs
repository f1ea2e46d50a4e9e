//! `diff4steer-peers`: the Rust side of the side-by-side comparison in benches/peers.
//!
//! - `export --dir D`: writes the reference workload (weights, queries, noise, catalogue) and our
//!   reference outputs as .npy + manifest.json, for the Python peers to load;
//! - `serve --dir D`: reads that workload back, then answers timing commands on stdin, one JSON
//!   line each, so the peer script can alternate ours and theirs in one run;
//! - `latency`: end-to-end query latency (seeds → flat search → fusion), p50/p99;
//! - `train-speed`, `sample-speed`, `backend-check`: training and sampling speed on a backend
//!   (CPU, CUDA, wgpu) and a GPU backend's agreement with the CPU (benches/gpu/run.sh).

#![forbid(unsafe_code)]

mod backends;
mod export;
mod latency;
mod serve;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Command line.
#[derive(Parser, Debug)]
#[command(name = "diff4steer-peers", about = "Rust side of benches/peers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the reference workload and our outputs to a folder.
    Export(export::ExportArgs),
    /// Answer timing commands on stdin over an exported workload.
    Serve(serve::ServeArgs),
    /// End-to-end query latency of the real-time path.
    Latency(latency::LatencyArgs),
    /// Training steps/s on a backend (cpu, cuda, wgpu).
    TrainSpeed(backends::BackendArgs),
    /// The reference sampling trajectory on a backend (cpu, host, cuda, wgpu).
    SampleSpeed(backends::BackendArgs),
    /// A backend's seeds and training losses against the CPU.
    BackendCheck(backends::BackendArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Export(args) => export::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Latency(args) => latency::run(&args),
        Command::TrainSpeed(args) => backends::train_speed(&args),
        Command::SampleSpeed(args) => backends::sample_speed(&args),
        Command::BackendCheck(args) => backends::backend_check(&args),
    }
}
