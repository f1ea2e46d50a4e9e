//! `synthetic`: writes the embedded synthetic music world as .npy/TREC files, so every other
//! subcommand can be tried without data of one's own.

use std::path::PathBuf;

use anyhow::{Context, Result};
use diff4steer_eval::io::npy::write_f32_matrix;
use diff4steer_eval::io::trec::write_qrels;
use diff4steer_eval::{qrels_of, MusicWorld, MusicWorldConfig};
use ndarray::Array2;

/// `synthetic` options.
#[derive(clap::Args, Debug)]
pub struct SyntheticArgs {
    /// Output folder: catalog.npy, train_query.npy, train_target.npy, queries.npy, qrels.txt.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the world.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `synthetic`.
pub fn synthetic_command(args: &SyntheticArgs) -> Result<()> {
    let world = MusicWorld::generate(&MusicWorldConfig {
        seed: args.seed,
        ..MusicWorldConfig::default()
    })?;
    let queries = world.queries(false, 20, args.seed + 1);
    let text_dim = world.text_views().ncols();
    let query_rows: Vec<f32> = queries.iter().flat_map(|q| q.text.clone()).collect();
    let files = [
        ("catalog.npy", world.items().clone()),
        ("train_query.npy", world.text_views().clone()),
        ("train_target.npy", world.items().clone()),
        (
            "queries.npy",
            Array2::from_shape_vec((queries.len(), text_dim), query_rows)?,
        ),
    ];
    for (name, matrix) in &files {
        write_f32_matrix(&args.out.join(name), matrix)
            .with_context(|| format!("writing {name}"))?;
    }
    write_qrels(&args.out.join("qrels.txt"), &qrels_of(&queries))?;
    println!(
        "synthetic music world → {}: catalog.npy {:?}, train_query.npy {:?} / train_target.npy (pairs), queries.npy {:?} ({} single-tag queries), qrels.txt",
        args.out.display(),
        world.items().dim(),
        world.text_views().dim(),
        (queries.len(), text_dim),
        queries.len()
    );
    Ok(())
}
