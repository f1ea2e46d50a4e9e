//! `diff4steer`: the whole pipeline from the command line, on .npy files, without writing Rust.
//!
//! ```text
//! diff4steer train            --query Q.npy --target T.npy --out DIR [--steps N] [--batch B] [--width W] [--depth D] [--cond-dropout P] [--seed S]
//! diff4steer train-regression --query Q.npy --target T.npy --out DIR [--steps N] [--batch B] [--width W] [--depth D] [--seed S]
//! diff4steer sample   --model DIR --query Q.npy --seeds K --out SEEDS.npy [--steps S] [--sampler euler|heun|edm|sde|dpmpp2m] [--guidance W] [--steer E.npy --steer-scale G] [--negative N.npy] [--seed S]
//! diff4steer retrieve --catalog ITEMS.npy --seeds SEEDS.npy --seeds-per-query K --k N --out RUN.tsv [--index flat|hnsw|faiss] [--fusion max|mean|rrf|round-robin|mmr] [--similarity cosine|dot|l2]
//! diff4steer query    --model DIR --catalog ITEMS.npy --query Q.npy --k N --out RUN.tsv [--seeds K] [sample's and retrieve's options]
//! diff4steer index    --catalog ITEMS.npy --milvus URL --collection NAME [--milvus-index hnsw|flat|ivf:NLIST:NPROBE] [--shards N] [--replicas N] [--similarity] [--preprocess]   # --features milvus
//! diff4steer retrieve --index milvus --milvus URL --collection NAME --seeds SEEDS.npy ...   (query likewise: no --catalog needed)
//! diff4steer eval     --run RUN.tsv --qrels QRELS.tsv --metrics ndcg@10,recall@50,... [--out REPORT.json]
//! diff4steer synthetic --out DIR [--seed S]     # example data: the synthetic music world
//! ```
//!
//! Files: .npy float32 row-major; ids are row indices; runs and qrels in TREC format. Every
//! output is written to a temporary file and renamed, so a failure leaves no partial file; an
//! error is one line naming the file and the problem, with a non-zero exit.
//!
//! `cargo run --release --bin diff4steer -- --help` (or `cargo install --path examples`).

#![forbid(unsafe_code)]

mod benchmark;
mod eval_cmd;
mod index;
mod options;
mod query;
mod retrieve;
mod sample;
mod synthetic;
mod tradeoff;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Generative retrieval with a steerable diffusion prior.
#[derive(Parser, Debug)]
#[command(name = "diff4steer", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a diffusion prior on (query, target) pairs.
    Train(train::PriorArgs),
    /// Train the regression baseline (one point per query) on (query, target) pairs.
    TrainRegression(train::RegressionArgs),
    /// Sample K seeds per query from a trained model.
    Sample(sample::SampleArgs),
    /// Retrieve catalogue items for each query's seeds and fuse them into one TREC run.
    Retrieve(retrieve::RetrieveArgs),
    /// Load a catalogue once into a Milvus collection (needs --features milvus).
    Index(index::IndexArgs),
    /// The whole path in one call: queries → seeds → search → fusion → TREC run.
    Query(query::QueryArgs),
    /// Evaluate a TREC run against qrels.
    Eval(eval_cmd::EvalArgs),
    /// Run a benchmark on real data (jamendo-mood) and write a report.
    Benchmark(benchmark::BenchmarkArgs),
    /// Quality against sampler cost for the real-time path (jamendo-mood).
    Tradeoff(tradeoff::TradeoffArgs),
    /// Write the synthetic music world (catalogue, training pairs, queries, qrels) to try the rest.
    Synthetic(synthetic::SyntheticArgs),
}

/// Parses the command line; a usage error is one line on stderr (clap's message without the
/// usage block, and a pointer to --help) with exit code 2, like every other error of the program.
fn parse() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    Cli::try_parse().map_err(|error| match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => error.exit(),
        _ => {
            let message = error.render().to_string();
            let words: Vec<&str> = message
                .lines()
                .take_while(|line| !line.starts_with("Usage:"))
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect();
            eprintln!("{} (see --help)", words.join(" "));
            ExitCode::from(2)
        }
    })
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Train(args) => train::train_prior_command(&args),
        Command::TrainRegression(args) => train::train_regression_command(&args),
        Command::Sample(args) => sample::sample_command(&args),
        Command::Retrieve(args) => retrieve::retrieve_command(&args),
        Command::Index(args) => index::index_command(&args),
        Command::Query(args) => query::query_command(&args),
        Command::Eval(args) => eval_cmd::eval_command(&args),
        Command::Benchmark(args) => benchmark::benchmark_command(&args),
        Command::Tradeoff(args) => tradeoff::tradeoff_command(&args),
        Command::Synthetic(args) => synthetic::synthetic_command(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the context chain ("file: problem: cause").
            eprintln!("error: {}", format!("{error:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
