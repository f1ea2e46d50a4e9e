//! `eval`: ranking metrics of a TREC run against qrels.

use std::path::PathBuf;

use anyhow::{Context, Result};
use diff4steer_eval::io::trec::{read_qrels, read_run};
use diff4steer_eval::{evaluate, RankingMetric};

/// `eval` options.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// TREC run (`qid Q0 docid rank score tag`).
    #[arg(long)]
    run: PathBuf,
    /// TREC qrels (`qid 0 docid grade`).
    #[arg(long)]
    qrels: PathBuf,
    /// Comma-separated metrics: recall@K, precision@K, ndcg@K, map, map@K, mrr, mrr@K,
    /// hit_rate@K, r-precision.
    #[arg(long)]
    metrics: String,
    /// Also write the report (means and per-query values) as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `eval`.
pub fn eval_command(args: &EvalArgs) -> Result<()> {
    let metrics = RankingMetric::parse_list(&args.metrics)?;
    let run = read_run(&args.run)?;
    let qrels = read_qrels(&args.qrels)?;
    let report =
        evaluate(&run, &qrels, &metrics).with_context(|| format!("{}", args.qrels.display()))?;
    println!("{report}");
    if let Some(out) = &args.out {
        report.write_json(out)?;
        println!("report → {}", out.display());
    }
    Ok(())
}
