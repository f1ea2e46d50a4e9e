//! A seeded "music world" with known truth: the embedded default data of the quickstart and of
//! many tests.
//!
//! Tags are directions. Each artist has a style (a few tags) and an offset; an item (a track) is
//! by one artist, carries its style's tags (now and then one dropped or one extra), and its latent
//! vector is the normalised sum of its tags' directions + the artist offset + noise. The latent
//! catalogue is then reshaped along its own principal axes to a chosen covariance spectrum
//! ([`Spectrum`], e.g. one fitted to a real MuLan-type music space), given a common mean direction,
//! and L2-normalised, as real audio embeddings are. Queries see the tags through other eyes:
//! text-like and image-like views are noisy linear maps of the tag mixture into their own
//! dimensions. A tag query's relevant set is every item carrying the tag, and it is multi-modal by
//! construction: the tag is shared by artists of different styles, and each style is a mode.

use std::collections::{BTreeMap, HashMap};

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::Array2;
use rand::seq::index::sample;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::{EvalError, Qrels, Result, Spectrum};

/// Parameters of the music world.
#[derive(Debug, Clone, PartialEq)]
pub struct MusicWorldConfig {
    /// Number of items (tracks).
    pub items: usize,
    /// Number of tags.
    pub tags: usize,
    /// Number of artists.
    pub artists: usize,
    /// Tags in an artist's style.
    pub tags_per_artist: usize,
    /// Chance that an item drops one of its style's tags (never the last).
    pub drop_tag: f64,
    /// Chance that an item carries one extra random tag.
    pub extra_tag: f64,
    /// Item (target) dimension.
    pub dim: usize,
    /// Text-view (query) dimension.
    pub text_dim: usize,
    /// Image-view (query) dimension.
    pub image_dim: usize,
    /// Length of an artist offset, relative to the unit tag mixture.
    pub artist_scale: f64,
    /// Length of an item's own noise, relative to the unit tag mixture.
    pub noise_scale: f64,
    /// Noise of the query views, relative to their signal.
    pub view_noise: f64,
    /// Covariance spectrum of the catalogue.
    pub spectrum: Spectrum,
    /// Norm of the mean of the (unit-norm) items, in [0, 1).
    pub mean_norm: f64,
    /// Seed of everything.
    pub seed: u64,
}

impl Default for MusicWorldConfig {
    /// 4,000 items by 160 artists (3 tags each) over 48 tags, item noise and artist offsets twice
    /// the tag signal (so tags are far from trivially separable); 64-d items with the MuQ-MuLan
    /// spectrum and mean norm 0.577 (as the real space); 48-d text and 32-d image views; seed 0.
    fn default() -> Self {
        Self {
            items: 4000,
            tags: 48,
            artists: 160,
            tags_per_artist: 3,
            drop_tag: 0.2,
            extra_tag: 0.1,
            dim: 64,
            text_dim: 48,
            image_dim: 32,
            artist_scale: 2.0,
            noise_scale: 2.0,
            view_noise: 0.3,
            spectrum: Spectrum::MuqMulan,
            mean_norm: 0.577,
            seed: 0,
        }
    }
}

impl MusicWorldConfig {
    /// The default world at the real space's size: 512-d items.
    pub fn muq_mulan() -> Self {
        Self {
            dim: 512,
            ..Self::default()
        }
    }

    fn check(&self) -> Result<()> {
        let invalid = |name: &'static str, reason: &str| {
            Err(EvalError::InvalidParameter {
                name,
                reason: reason.to_owned(),
            })
        };
        if self.items == 0 || self.tags == 0 || self.artists == 0 {
            return invalid("music world", "items, tags and artists must be positive");
        }
        if self.dim == 0 || self.text_dim == 0 || self.image_dim == 0 {
            return invalid("music world", "dimensions must be positive");
        }
        if self.tags_per_artist == 0 || self.tags_per_artist > self.tags {
            return invalid(
                "tags_per_artist",
                "must be between 1 and the number of tags",
            );
        }
        let probability = |p: f64| (0.0..=1.0).contains(&p);
        if !probability(self.drop_tag) || !probability(self.extra_tag) {
            return invalid("drop_tag / extra_tag", "must be probabilities");
        }
        let scales = [self.artist_scale, self.noise_scale, self.view_noise];
        if scales.iter().any(|s| !s.is_finite() || *s < 0.0) {
            return invalid("scales", "must be finite and ≥ 0");
        }
        if !(0.0..1.0).contains(&self.mean_norm) {
            return invalid("mean_norm", "must be in [0, 1)");
        }
        Ok(())
    }
}

/// One evaluation query of the world: its tags, its two views, and its known relevant set.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticQuery {
    /// The tags asked for (one, or a pair).
    pub tags: Vec<usize>,
    /// Text-like view, `text_dim` wide.
    pub text: Vec<f32>,
    /// Image-like view, `image_dim` wide.
    pub image: Vec<f32>,
    /// Items carrying every tag of the query, ascending.
    pub relevant: Vec<usize>,
    /// The mode (artist style) of each relevant item, parallel to `relevant`.
    pub modes: Vec<usize>,
}

impl SyntheticQuery {
    /// Relevant item → mode, for [`crate::mode_coverage_at_k`].
    pub fn mode_map(&self) -> HashMap<u64, usize> {
        self.relevant
            .iter()
            .zip(&self.modes)
            .map(|(&i, &m)| (i as u64, m))
            .collect()
    }

    /// Number of distinct modes of the relevant set.
    pub fn mode_count(&self) -> usize {
        let mut modes = self.modes.clone();
        modes.sort_unstable();
        modes.dedup();
        modes.len()
    }
}

/// The generated world.
#[derive(Debug, Clone, PartialEq)]
pub struct MusicWorld {
    config: MusicWorldConfig,
    items: Array2<f32>,
    text_views: Array2<f32>,
    image_views: Array2<f32>,
    item_tags: Vec<Vec<usize>>,
    item_artists: Vec<usize>,
    artist_styles: Vec<usize>,
    text_map: Vec<f32>,
    image_map: Vec<f32>,
}

fn normal_vec(rng: &mut impl Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

fn normalise(v: &mut [f64]) {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

impl MusicWorld {
    /// Generates the world of `config` (the same config gives the same world).
    ///
    /// # Errors
    /// [`EvalError::InvalidParameter`] for an invalid config or spectrum.
    pub fn generate(config: &MusicWorldConfig) -> Result<Self> {
        config.check()?;
        let eigenvalues = config.spectrum.eigenvalues(config.dim)?;
        let (d, n) = (config.dim, config.items);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let tag_directions: Vec<Vec<f64>> = (0..config.tags)
            .map(|_| {
                let mut g = normal_vec(&mut rng, d, 1.0);
                normalise(&mut g);
                g
            })
            .collect();
        let mut styles: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
        let mut artist_tags = Vec::with_capacity(config.artists);
        let mut artist_styles = Vec::with_capacity(config.artists);
        let mut artist_offsets = Vec::with_capacity(config.artists);
        for _ in 0..config.artists {
            let mut tags = sample(&mut rng, config.tags, config.tags_per_artist).into_vec();
            tags.sort_unstable();
            let next = styles.len();
            artist_styles.push(*styles.entry(tags.clone()).or_insert(next));
            artist_tags.push(tags);
            artist_offsets.push(normal_vec(
                &mut rng,
                d,
                config.artist_scale / (d as f64).sqrt(),
            ));
        }
        let mut item_tags = Vec::with_capacity(n);
        let mut item_artists = Vec::with_capacity(n);
        let mut latent = DMatrix::<f64>::zeros(n, d);
        for i in 0..n {
            let artist = rng.random_range(0..config.artists);
            let mut tags = artist_tags[artist].clone();
            if tags.len() > 1 && rng.random::<f64>() < config.drop_tag {
                tags.remove(rng.random_range(0..tags.len()));
            }
            if rng.random::<f64>() < config.extra_tag {
                tags.push(rng.random_range(0..config.tags));
            }
            tags.sort_unstable();
            tags.dedup();
            let mut mixture = vec![0.0; d];
            for &t in &tags {
                mixture
                    .iter_mut()
                    .zip(&tag_directions[t])
                    .for_each(|(m, g)| *m += g);
            }
            normalise(&mut mixture);
            let noise = normal_vec(&mut rng, d, config.noise_scale / (d as f64).sqrt());
            for j in 0..d {
                latent[(i, j)] = mixture[j] + artist_offsets[artist][j] + noise[j];
            }
            item_tags.push(tags);
            item_artists.push(artist);
        }
        let mut mean_direction = normal_vec(&mut rng, d, 1.0);
        normalise(&mut mean_direction);
        let items = shape_catalogue(&latent, &eigenvalues, &mean_direction, config.mean_norm);
        let text_map: Vec<f32> = normal_vec(&mut rng, config.text_dim * config.tags, 1.0)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let image_map: Vec<f32> = normal_vec(&mut rng, config.image_dim * config.tags, 1.0)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let mut world = Self {
            config: config.clone(),
            items,
            text_views: Array2::zeros((0, config.text_dim)),
            image_views: Array2::zeros((0, config.image_dim)),
            item_tags,
            item_artists,
            artist_styles,
            text_map,
            image_map,
        };
        let mut view_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x7669_6577);
        let (text, image): (Vec<Vec<f32>>, Vec<Vec<f32>>) = world
            .item_tags
            .iter()
            .map(|tags| world.views(tags, &mut view_rng))
            .unzip();
        world.text_views = Array2::from_shape_vec((n, config.text_dim), text.concat())
            .expect("text views are n × text_dim");
        world.image_views = Array2::from_shape_vec((n, config.image_dim), image.concat())
            .expect("image views are n × image_dim");
        Ok(world)
    }

    /// The configuration.
    pub fn config(&self) -> &MusicWorldConfig {
        &self.config
    }

    /// The items, `[items, dim]`, unit rows.
    pub fn items(&self) -> &Array2<f32> {
        &self.items
    }

    /// Each item's text view, `[items, text_dim]`: the query side of training pairs.
    pub fn text_views(&self) -> &Array2<f32> {
        &self.text_views
    }

    /// Each item's image view, `[items, image_dim]`.
    pub fn image_views(&self) -> &Array2<f32> {
        &self.image_views
    }

    /// Each item's tags, ascending.
    pub fn item_tags(&self) -> &[Vec<usize>] {
        &self.item_tags
    }

    /// Each item's artist.
    pub fn item_artists(&self) -> &[usize] {
        &self.item_artists
    }

    /// Each item's mode: the style (tag set) of its artist, numbered.
    pub fn item_mode(&self, item: usize) -> usize {
        self.artist_styles[self.item_artists[item]]
    }

    /// The text and image views of a tag set: unit-normalised A·w + noise, with w the tag
    /// mixture (multi-hot / count) and A a fixed random map per view.
    fn views(&self, tags: &[usize], rng: &mut impl Rng) -> (Vec<f32>, Vec<f32>) {
        let view = |map: &[f32], width: usize, rng: &mut dyn rand::Rng| -> Vec<f32> {
            let weight = 1.0 / tags.len().max(1) as f64;
            let mut v: Vec<f64> = (0..width)
                .map(|r| {
                    tags.iter()
                        .map(|&t| f64::from(map[r * self.config.tags + t]) * weight)
                        .sum::<f64>()
                })
                .collect();
            normalise(&mut v);
            let noise = self.config.view_noise / (width as f64).sqrt();
            v.iter_mut()
                .for_each(|x| *x += noise * rng.sample::<f64, _>(StandardNormal));
            normalise(&mut v);
            v.into_iter().map(|x| x as f32).collect()
        };
        let text = view(&self.text_map, self.config.text_dim, rng);
        let image = view(&self.image_map, self.config.image_dim, rng);
        (text, image)
    }

    /// Evaluation queries: every single tag, and (with `pairs`) every pair of tags carried
    /// together, that has at least `min_relevant` relevant items; views drawn with `seed`.
    pub fn queries(&self, pairs: bool, min_relevant: usize, seed: u64) -> Vec<SyntheticQuery> {
        let mut asked: Vec<Vec<usize>> = (0..self.config.tags).map(|t| vec![t]).collect();
        if pairs {
            for a in 0..self.config.tags {
                for b in a + 1..self.config.tags {
                    asked.push(vec![a, b]);
                }
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        asked
            .into_iter()
            .filter_map(|tags| {
                let relevant: Vec<usize> = (0..self.items.nrows())
                    .filter(|&i| tags.iter().all(|t| self.item_tags[i].contains(t)))
                    .collect();
                (relevant.len() >= min_relevant.max(1)).then(|| {
                    let (text, image) = self.views(&tags, &mut rng);
                    let modes = relevant.iter().map(|&i| self.item_mode(i)).collect();
                    SyntheticQuery {
                        tags,
                        text,
                        image,
                        relevant,
                        modes,
                    }
                })
            })
            .collect()
    }
}

/// Binary qrels of `queries` (query id = position in the slice, document id = item row).
pub fn qrels_of(queries: &[SyntheticQuery]) -> Qrels {
    let sets: Vec<Vec<usize>> = queries.iter().map(|q| q.relevant.clone()).collect();
    Qrels::from_relevant_sets(&sets)
}

/// Reshapes the latent catalogue along its principal axes to `eigenvalues` (which sum to 1: total
/// variance 1), adds `mean_direction` scaled so that unit-normalised items have a mean of norm
/// ≈ `mean_norm`, and normalises every row.
fn shape_catalogue(
    latent: &DMatrix<f64>,
    eigenvalues: &[f64],
    mean_direction: &[f64],
    mean_norm: f64,
) -> Array2<f32> {
    let (n, d) = (latent.nrows(), latent.ncols());
    let mean: Vec<f64> = (0..d).map(|j| latent.column(j).mean()).collect();
    let centred = DMatrix::from_fn(n, d, |i, j| latent[(i, j)] - mean[j]);
    let covariance = (centred.transpose() * &centred) / n as f64;
    let eigen = SymmetricEigen::new(covariance);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    // Map: x = V diag(√λ_target / √λ_latent) Vᵀ (s − mean), axes matched by rank.
    let scaled = DMatrix::from_fn(d, d, |row, rank| {
        let axis = order[rank];
        let gain = (eigenvalues[rank] / eigen.eigenvalues[axis].max(1e-12)).sqrt();
        eigen.eigenvectors[(row, axis)] * gain
    });
    let sorted = DMatrix::from_fn(d, d, |row, rank| eigen.eigenvectors[(row, order[rank])]);
    let map = scaled * sorted.transpose();
    let shaped = centred * map; // rows: (V diag Vᵀ)(s − mean), the map is symmetric
    let offset = mean_norm / (1.0 - mean_norm * mean_norm).sqrt();
    let mut items = Array2::<f32>::zeros((n, d));
    for i in 0..n {
        let mut row: Vec<f64> = (0..d)
            .map(|j| shaped[(i, j)] + offset * mean_direction[j])
            .collect();
        normalise(&mut row);
        for j in 0..d {
            items[(i, j)] = row[j] as f32;
        }
    }
    items
}
