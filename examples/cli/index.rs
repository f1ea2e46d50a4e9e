//! `index`: loads a catalogue once into a Milvus collection (standalone or cluster), with the
//! preprocessing fitted on it, so that `retrieve` / `query --index milvus` search it without the
//! catalogue file — `MilvusIndex::load_catalogue` (feature `milvus`) of the library.

use std::path::PathBuf;

use anyhow::Result;

/// `index` options.
#[derive(clap::Args, Debug)]
#[cfg_attr(not(feature = "milvus"), allow(dead_code))]
pub struct IndexArgs {
    /// Catalogue, [items, dim] float32; document id = row.
    #[arg(long)]
    catalog: PathBuf,
    /// The Milvus server's URL (its proxy), e.g. http://127.0.0.1:19530.
    #[arg(long)]
    milvus: String,
    /// The collection to create (letters, digits, underscores); it must not exist yet.
    #[arg(long)]
    collection: String,
    /// The Milvus index: hnsw (M 16, efConstruction 200, ef 128), hnsw:M:EF_CONSTRUCTION:EF,
    /// ivf:NLIST:NPROBE or flat (exact).
    #[arg(long, default_value = "hnsw")]
    milvus_index: String,
    /// Similarity: cosine, dot or l2.
    #[arg(long, default_value = "cosine")]
    similarity: String,
    /// Catalogue preprocessing fitted here and stored with the collection (none, centre,
    /// standardise or whiten); `retrieve` applies it to the seeds.
    #[arg(long, default_value = "standardise")]
    preprocess: String,
    /// Shards of the collection (insert channels, spread over a cluster's data nodes).
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// In-memory replicas it is loaded with (each on its own query nodes of a cluster; a
    /// standalone server holds 1).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Seconds each call to the server may take (a bulk insert of 5,000 rows is one call); the
    /// index build may take up to 60 times this.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

/// Runs `index`.
#[cfg(feature = "milvus")]
pub fn index_command(args: &IndexArgs) -> Result<()> {
    use std::time::Instant;

    use anyhow::Context;
    use diff4steer_index::{MilvusIndex, MilvusIndexKind, Preprocessing, Similarity, VectorIndex};

    use crate::options::{milvus_config, read_rows};

    let kind = MilvusIndexKind::parse(&args.milvus_index)?;
    let similarity: Similarity = args.similarity.parse()?;
    let preprocessing: Preprocessing = args.preprocess.parse()?;
    let (items, dim) = read_rows(&args.catalog, "the catalogue")?;
    let config = milvus_config(&args.milvus, &args.collection, args.timeout)?
        .with_index(kind)
        .with_shards(args.shards)
        .with_replicas(args.replicas);
    let build_limit = config.timeout * 60;
    let started = Instant::now();
    let index =
        MilvusIndex::load_catalogue(config, &items, dim, similarity, preprocessing, build_limit)
            .with_context(|| format!("{}, collection {}", args.milvus, args.collection))?;
    println!(
        "{} items × {dim} ({}) → collection {} at {} ({}, {similarity}, {preprocessing}) in {:.1} s",
        index.len(),
        args.catalog.display(),
        args.collection,
        args.milvus,
        kind.milvus_name(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `index`: without the `milvus` feature, a clear refusal.
#[cfg(not(feature = "milvus"))]
pub fn index_command(args: &IndexArgs) -> Result<()> {
    anyhow::bail!(
        "`index` (a catalogue in Milvus at {}) needs the program built with --features milvus",
        args.milvus
    )
}
