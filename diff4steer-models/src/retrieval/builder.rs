//! [`RetrieverBuilder`]: the settings of a [`GenerativeRetriever`] and their defaults.

use std::path::Path;

use diff4steer_eval::io::npy::read_nonempty_f32_matrix;
use diff4steer_index::{Fusion, Preprocessing, Similarity};

use super::{
    GenerativeRetriever, IndexChoice, RetrievalError, RetrievalRequest, SearchSettings,
    SeedSampler, SeedSearch, SeedSource,
};
use crate::{Sampler, SamplerKind};

type Result<T> = std::result::Result<T, RetrievalError>;

/// Settings of a [`GenerativeRetriever`]. Defaults: the sampler of [`SeedSampler`] (Heun, 16
/// steps), the search of [`SearchSettings`] (exact flat index, cosine, standardisation, RRF) and
/// the request of [`RetrievalRequest::new`] (32 seeds, w = 4).
pub struct RetrieverBuilder {
    source: Box<dyn SeedSource>,
    sampler: Option<Sampler>,
    search: SearchSettings,
    catalogue: Option<Vec<f32>>,
    /// The catalogue file's column count, checked against the seeds' width.
    catalogue_width: Option<usize>,
    prebuilt: Option<SeedSearch>,
    defaults: RetrievalRequest,
}

impl RetrieverBuilder {
    /// The defaults around `source`.
    pub fn new(source: Box<dyn SeedSource>) -> Self {
        Self {
            source,
            sampler: None,
            search: SearchSettings::default(),
            catalogue: None,
            catalogue_width: None,
            prebuilt: None,
            defaults: RetrievalRequest::new(),
        }
    }

    /// The catalogue, `[items, target_dim]` row-major in its own units; id = row.
    pub fn catalogue(mut self, items: Vec<f32>) -> Self {
        self.catalogue = Some(items);
        self
    }

    /// The catalogue from a `[items, dim]` float32 .npy file; id = row.
    ///
    /// # Errors
    /// [`RetrievalError::Data`] naming the file when it cannot be read or is empty.
    pub fn catalogue_npy(self, path: &Path) -> Result<Self> {
        let matrix = read_nonempty_f32_matrix(path)?;
        let width = matrix.ncols();
        let items = matrix.as_standard_layout().iter().copied().collect();
        let mut builder = self.catalogue(items);
        builder.catalogue_width = Some(width);
        Ok(builder)
    }

    /// A search stage built by the caller ([`SeedSearch::prebuilt`] over faiss or a distributed
    /// engine); it replaces the catalogue and the search settings.
    pub fn search_stage(mut self, search: SeedSearch) -> Self {
        self.prebuilt = Some(search);
        self
    }

    /// The sampler the seeds are drawn with.
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// The sampler as `kind` over `steps` Karras steps from σ 80 to 0.002 (ρ = 7, the EDM grid).
    ///
    /// # Errors
    /// [`RetrievalError::Model`] for zero steps or invalid sampler parameters.
    pub fn sampler_kind(self, kind: SamplerKind, steps: usize) -> Result<Self> {
        let sigmas = diff4steer_core::karras(steps, 0.002, 80.0, 7.0)?;
        Ok(self.sampler(Sampler::new(kind, sigmas)?))
    }

    /// All search settings at once.
    pub fn search(mut self, settings: SearchSettings) -> Self {
        self.search = settings;
        self
    }

    /// The index made of the catalogue.
    pub fn index(mut self, index: IndexChoice) -> Self {
        self.search.index = index;
        self
    }

    /// The similarity the index ranks by.
    pub fn similarity(mut self, similarity: Similarity) -> Self {
        self.search.similarity = similarity;
        self
    }

    /// The catalogue preprocessing, fitted on the catalogue and applied to items and seeds.
    pub fn preprocessing(mut self, preprocessing: Preprocessing) -> Self {
        self.search.preprocessing = preprocessing;
        self
    }

    /// How each query's per-seed lists are fused.
    pub fn fusion(mut self, fusion: Fusion) -> Self {
        self.search.fusion = fusion;
        self
    }

    /// The request [`GenerativeRetriever::retrieve`] uses.
    pub fn defaults(mut self, defaults: RetrievalRequest) -> Self {
        self.defaults = defaults;
        self
    }

    /// Fits the preprocessing and builds the index.
    ///
    /// # Errors
    /// [`RetrievalError::InvalidRequest`] without a catalogue or search stage, or when its
    /// width differs from the source's seeds; errors of the preprocessing and index (NaN,
    /// rows that are not whole).
    pub fn build(self) -> Result<GenerativeRetriever> {
        let dim = self.source.target_dim();
        if let Some(width) = self.catalogue_width.filter(|&w| w != dim) {
            return Err(RetrievalError::invalid(
                "catalogue",
                format!("the catalogue is {width}-d, the seeds are {dim}-d"),
            ));
        }
        let search = match (self.prebuilt, self.catalogue) {
            (Some(search), _) => search,
            (None, Some(items)) => SeedSearch::new(items, dim, self.search)?,
            (None, None) => {
                return Err(RetrievalError::invalid(
                    "catalogue",
                    "no catalogue or search stage was given",
                ))
            }
        };
        if search.dim() != dim {
            return Err(RetrievalError::invalid(
                "catalogue",
                format!("the catalogue is {}-d, the seeds are {dim}-d", search.dim()),
            ));
        }
        let mut seeds = SeedSampler::new(self.source)?;
        if let Some(sampler) = self.sampler {
            seeds = seeds.with_sampler(sampler);
        }
        Ok(GenerativeRetriever {
            seeds,
            search,
            defaults: self.defaults,
        })
    }
}
