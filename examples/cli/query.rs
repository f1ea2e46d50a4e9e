//! `query`: the whole path in one call — queries → seeds → search → fusion (→ re-ranking) →
//! TREC run, through the library's [`GenerativeRetriever`].

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use diff4steer_eval::io::trec::write_run;
use diff4steer_models::retrieval::{load_source, GenerativeRetriever};

use crate::options::{read_rows, run_of, SamplingArgs, SearchArgs};

/// `query` options.
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// Checkpoint folder written by `train` (a prior) or `train-regression`.
    #[arg(long)]
    model: PathBuf,
    /// Catalogue, [items, dim] float32; document id = row. Not needed with --index milvus (the
    /// server holds the items) unless re-ranking, which scores the items' own vectors.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Query embeddings, [n, query_dim] float32.
    #[arg(long)]
    query: PathBuf,
    /// Results per query.
    #[arg(long)]
    k: usize,
    /// Output TREC run: `qid Q0 docid rank score diff4steer`, qid = query row.
    #[arg(long)]
    out: PathBuf,
    /// Seeds per query (K); a regression model searches its one point.
    #[arg(long, default_value_t = 32)]
    seeds: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    search: SearchArgs,
}

/// Runs `query`.
pub fn query_command(args: &QueryArgs) -> Result<()> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let (queries, query_dim) = read_rows(&args.query, "queries")?;
    let catalog = args.catalog.as_deref();
    let rerank = args.search.rerank()?;
    if rerank.is_some() && catalog.is_none() {
        bail!("--rerank needs --catalog (it scores the items' own vectors)");
    }
    let search = args.search.search_stage(catalog)?;
    let dim = search.dim();
    let source = load_source(&args.model).with_context(|| format!("{}", args.model.display()))?;
    if query_dim != source.query_dim() {
        bail!(
            "{}: queries are {query_dim}-d, the model in {} expects {}",
            args.query.display(),
            args.model.display(),
            source.query_dim()
        );
    }
    if dim != source.target_dim() {
        bail!(
            "{} is {dim}-d, the model in {} samples {}-d seeds",
            args.search.catalogue_name(catalog),
            args.model.display(),
            source.target_dim()
        );
    }
    let n = queries.len() / query_dim;
    let mut request = args.sampling.request(args.seeds, n, query_dim, dim)?;
    if let Some(rerank) = rerank {
        request = request.rerank(rerank);
    }
    let items = search.len();
    let retriever = GenerativeRetriever::builder(source)
        .sampler(args.sampling.sampler()?)
        .search_stage(search)
        .defaults(request)
        .build()?;
    let lists = retriever
        .retrieve(&queries, args.k)
        .with_context(|| format!("retrieving with {}", args.model.display()))?;
    write_run(&args.out, &run_of(&lists)?, "diff4steer").context("writing the run")?;
    println!(
        "{n} queries × {} seeds ({}) → top {} of {items} items ({}) → {}",
        args.seeds,
        retriever.seed_sampler().source().describe(),
        args.k,
        args.search.describe(),
        args.out.display()
    );
    Ok(())
}
