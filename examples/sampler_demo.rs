//! Sampler demo: draw from a 2-D conditional Gaussian mixture with every sampler and write a
//! scatter plot per sampler next to exact samples.
//!
//! ```text
//! cargo run --release --example sampler_demo -- --out out/sampler_demo --guidance 0
//! ```
//!
//! The mixture has four modes; each of two queries is a weight vector over them (the analytic
//! denoiser's condition), so the exact conditional distribution is known and the printed table
//! compares each sampler's share of samples per mode with the exact weights.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::{Tensor, TensorData};
use clap::Parser;
use diff4steer_core::tensor_util::to_host_f32;
use diff4steer_core::{karras, Conditioning, GaussianMixture, LinearGuidance, SeededNoise};
use diff4steer_examples::scatter::{render_svg, Panel};
use diff4steer_models::io::write_atomic;
use diff4steer_models::{Sampler, SamplerKind};

type B = diff4steer_models::backend::CpuBackend;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Sample a 2-D conditional mixture with every sampler and plot the samples")]
struct Args {
    /// Output folder (receives samplers.svg).
    #[arg(long, default_value = "out/sampler_demo")]
    out: PathBuf,
    /// Samples per query.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Sampler steps (Karras schedule, σ from 80 to 0.002, ρ = 7).
    #[arg(long, default_value_t = 32)]
    steps: usize,
    /// Classifier-free guidance strength w (0 = plain conditional sampling).
    #[arg(long, default_value_t = 0.0)]
    guidance: f64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

const QUERIES: [(&str, [f64; 4]); 2] = [
    ("query A", [0.6, 0.3, 0.1, 0.0]),
    ("query B", [0.0, 0.1, 0.3, 0.6]),
];

fn main() -> Result<()> {
    let args = Args::parse();
    let device = Default::default();
    let mixture = GaussianMixture::new(
        vec![
            vec![-3.0, 3.0],
            vec![3.0, 3.0],
            vec![-3.0, -3.0],
            vec![3.0, -3.0],
        ],
        vec![
            vec![0.5, 0.2],
            vec![0.2, 0.5],
            vec![0.4, 0.4],
            vec![0.8, 0.1],
        ],
        vec![1.0; 4],
    )?;
    let guided = LinearGuidance::classifier_free(mixture.clone(), args.guidance)?;
    let sigmas = karras(args.steps, 0.002, 80.0, 7.0)?;

    let mut panels = vec![Panel {
        title: "exact p(x | query)".into(),
        groups: QUERIES
            .iter()
            .enumerate()
            .map(|(q, (name, w))| {
                let points = mixture.sample(args.samples, args.seed + q as u64, Some(w))?;
                Ok((
                    name.to_string(),
                    points.iter().map(|p| (p[0], p[1])).collect(),
                ))
            })
            .collect::<Result<_>>()?,
    }];
    println!(
        "{} samples per query, {} steps, guidance w = {}",
        args.samples, args.steps, args.guidance
    );
    println!(
        "{:<9} {:<8} {:>34}  {:>8}",
        "sampler", "query", "share per mode (exact weights)", "time"
    );
    for kind in SamplerKind::ALL {
        let sampler = Sampler::new(kind, sigmas.clone())?;
        let mut groups = Vec::new();
        for (q, (name, weights)) in QUERIES.iter().enumerate() {
            let row: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
            let cond =
                Conditioning::<B>::new(Tensor::from_data(TensorData::new(row, [1, 4]), &device))?
                    .fit_batch(args.samples)?;
            // One noise stream per sample: query q's samples are global samples q·n … q·n + n − 1.
            let mut noise = SeededNoise::starting_at(args.seed, (q * args.samples) as u64);
            let start = Instant::now();
            let x = sampler.sample(&guided, &cond, &mut noise)?;
            let elapsed = start.elapsed();
            let values = to_host_f32(x)?;
            let points: Vec<(f64, f64)> = values
                .chunks(2)
                .map(|p| (p[0] as f64, p[1] as f64))
                .collect();
            let mut counts = [0usize; 4];
            for &(a, b) in &points {
                counts[mixture.component_of(&[a, b])?] += 1;
            }
            let shares: Vec<String> = counts
                .iter()
                .zip(weights)
                .map(|(&c, w)| format!("{:.2}({:.1})", c as f64 / args.samples as f64, w))
                .collect();
            println!(
                "{:<9} {:<8} {:>34}  {:>6.0}ms",
                kind.name(),
                name,
                shares.join(" "),
                elapsed.as_secs_f64() * 1e3
            );
            groups.push((name.to_string(), points));
        }
        panels.push(Panel {
            title: format!(
                "{} ({} evaluations)",
                kind.name(),
                kind.evaluations(args.steps)
            ),
            groups,
        });
    }
    let svg = render_svg(&panels, 3, (-6.5, 6.5), (-6.5, 6.5))?;
    let path = args.out.join("samplers.svg");
    write_atomic(&path, svg.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}
