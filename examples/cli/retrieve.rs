//! `retrieve`: search the catalogue with every seed, fuse each query's lists, optionally
//! re-rank them by the prior, write a TREC run — the library's [`SeedSearch`] on seeds from a
//! file.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use diff4steer_eval::io::trec::write_run;
use diff4steer_models::retrieval::{load_source, SeedSearch};

use crate::options::{read_rows, run_of, SearchArgs};

/// `retrieve` options.
#[derive(clap::Args, Debug)]
pub struct RetrieveArgs {
    /// Catalogue, [items, dim] float32; document id = row. Not needed with --index milvus (the
    /// server holds the items) unless re-ranking, which scores the items' own vectors.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Seeds, [queries·K, dim] float32, query-major (as `sample` writes them).
    #[arg(long)]
    seeds: PathBuf,
    /// Seeds per query (K).
    #[arg(long)]
    seeds_per_query: usize,
    /// Results per query (also the depth searched per seed).
    #[arg(long)]
    k: usize,
    /// Output TREC run: `qid Q0 docid rank score diff4steer`, qid = query row.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    search: SearchArgs,
    /// Diffusion-prior checkpoint folder for --rerank.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Query embeddings for --rerank, [queries, query_dim] float32 (the rows given to `sample`).
    #[arg(long)]
    query: Option<PathBuf>,
}

/// Runs `retrieve`.
pub fn retrieve_command(args: &RetrieveArgs) -> Result<()> {
    let rerank = args.search.rerank()?;
    if rerank.is_some() && (args.model.is_none() || args.query.is_none()) {
        bail!("--rerank needs --model (a diffusion prior) and --query");
    }
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    if args.seeds_per_query == 0 {
        bail!("--seeds-per-query must be at least 1");
    }
    if rerank.is_some() && args.catalog.is_none() {
        bail!("--rerank needs --catalog (it scores the items' own vectors)");
    }
    let catalog = args.catalog.as_deref();
    let search: SeedSearch = args.search.search_stage(catalog)?;
    let dim = search.dim();
    let (seeds, seed_dim) = read_rows(&args.seeds, "seeds")?;
    if seed_dim != dim {
        bail!(
            "{}: seeds are {seed_dim}-d, {} is {dim}-d",
            args.seeds.display(),
            args.search.catalogue_name(catalog)
        );
    }
    let seed_rows = seeds.len() / dim;
    if !seed_rows.is_multiple_of(args.seeds_per_query) {
        bail!(
            "{}: {seed_rows} seed rows are not a multiple of --seeds-per-query {}",
            args.seeds.display(),
            args.seeds_per_query
        );
    }
    let items = search.len();
    // Each seed's list and the fused list reach the re-ranked depth N when it is deeper than k.
    let depth = args.k.max(rerank.map_or(0, |r| r.top));
    let fused = search.search(&seeds, args.seeds_per_query, depth)?;
    let queries = fused.len();
    let lists = match (&rerank, &args.model, &args.query) {
        (Some(rerank), Some(model), Some(query)) => {
            let source = load_source(model).with_context(|| format!("{}", model.display()))?;
            let Some(prior) = source.host_prior() else {
                bail!(
                    "{}: --rerank needs a diffusion-prior checkpoint, not a {}",
                    model.display(),
                    source.describe()
                );
            };
            let (rows, width) = read_rows(query, "--query")?;
            if width != prior.query_dim() || rows.len() / width != queries {
                bail!(
                    "{}: {} query rows of {width}-d, expected {queries} rows (one per query) of {}-d for {}",
                    query.display(),
                    rows.len() / width,
                    prior.query_dim(),
                    model.display()
                );
            }
            search.rerank(prior, &rows, &fused, rerank, args.k)?
        }
        _ => fused
            .into_iter()
            .map(|mut hits| {
                hits.truncate(args.k);
                hits
            })
            .collect(),
    };
    write_run(&args.out, &run_of(&lists)?, "diff4steer").context("writing the run")?;
    let reranked = rerank.map_or(String::new(), |r| {
        format!(", top {} re-ranked by the prior ({} draws)", r.top, r.draws)
    });
    println!(
        "{queries} queries × {} seeds → top {} of {items} items ({}{reranked}) → {}",
        args.seeds_per_query,
        args.k,
        args.search.describe(),
        args.out.display()
    );
    Ok(())
}
