//! # diff4steer-index
//!
//! Vector indexes and seed fusion for diff4steer (burn-free): the `VectorIndex` trait, an exact
//! flat index, HNSW, a faiss adapter behind a feature, and the fusion of per-seed hit lists into
//! one ranked, diverse list. Not implemented yet: this crate is a workspace member so that the
//! layout of DESIGN.md holds from the start; its contents arrive with the index issue.
