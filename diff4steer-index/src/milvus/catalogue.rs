//! A whole catalogue in one Milvus collection, loaded once with the preprocessor fitted on it, so
//! that any later process (`diff4steer retrieve --index milvus`, a service on another machine)
//! opens the collection and prepares its seeds exactly as the items were prepared, without the
//! catalogue file.
//!
//! The fitted [`Preprocessor`] is stored in the collection's description, as
//! [`Preprocessor::to_text`] (exact bits).

use std::time::Duration;

use super::MilvusIndex;
use crate::{MilvusConfig, Preprocessing, Preprocessor, Result, Similarity, VectorIndex};

impl MilvusIndex {
    /// Loads a catalogue: fits `preprocessing` on `items` (`[n, dim]` row-major, id = row),
    /// creates the collection with the fitted preprocessor in its description, inserts the
    /// preprocessed rows (batches of [`MilvusConfig::insert_batch`]), flushes and waits for the
    /// index build ([`MilvusIndex::wait_indexed`], at most `build_limit`), after which searches
    /// go through the built index and every row is in a sealed, loaded segment (seen by handles
    /// opened afterwards, whatever their [`crate::MilvusReads`]). When a step after the creation
    /// fails, the half-loaded collection is dropped (best effort) before the error is returned.
    ///
    /// # Errors
    /// The preprocessing's errors for malformed items; those of [`MilvusIndex::create`],
    /// [`VectorIndex::add`] and [`MilvusIndex::wait_indexed`].
    pub fn load_catalogue(
        config: MilvusConfig,
        items: &[f32],
        dim: usize,
        similarity: Similarity,
        preprocessing: Preprocessing,
        build_limit: Duration,
    ) -> Result<Self> {
        let preprocessor = Preprocessor::fit(preprocessing, items, dim)?;
        let prepared = preprocessor.apply(items)?;
        let mut index =
            Self::create_described(config.clone(), dim, similarity, preprocessor.to_text())?;
        let ids: Vec<u64> = (0..(items.len() / dim) as u64).collect();
        let loaded = index
            .add(&ids, &prepared)
            .and_then(|()| index.flush())
            .and_then(|()| index.wait_indexed(build_limit));
        if let Err(error) = loaded {
            let _ = Self::drop_collection(&config);
            return Err(error);
        }
        // Every row is now in a sealed segment loaded after the index build: bounded reads see
        // them all, so this handle need not read strongly (and wait a time tick) either.
        index.last_write = None;
        Ok(index)
    }

    /// The catalogue's preprocessor, as [`MilvusIndex::load_catalogue`] stored it; the identity
    /// of the collection's width for a collection whose description holds none (one made by
    /// [`MilvusIndex::create`] or by another program).
    ///
    /// # Errors
    /// [`crate::IndexError::InvalidParameter`] when the description holds a malformed
    /// preprocessor; [`crate::IndexError::CollectionMismatch`] when its width is not the
    /// collection's.
    pub fn preprocessor(&self) -> Result<Preprocessor> {
        if !self.description.starts_with(Preprocessor::TEXT_TAG) {
            return Ok(Preprocessor::identity(self.dim));
        }
        let preprocessor = Preprocessor::from_text(&self.description)?;
        if preprocessor.dim() != self.dim {
            return Err(crate::IndexError::CollectionMismatch {
                collection: self.config.collection.clone(),
                reason: format!(
                    "its preprocessor is {}-d, its vectors {}-d",
                    preprocessor.dim(),
                    self.dim
                ),
            });
        }
        Ok(preprocessor)
    }
}
