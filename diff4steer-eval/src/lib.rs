//! # diff4steer-eval
//!
//! Evaluation for diff4steer (burn-free): ranking metrics, coverage and diversity of result lists,
//! distribution metrics of seeds, dataset loaders and a synthetic catalogue with known truth. Not
//! implemented yet: this crate is a workspace member so that the layout of DESIGN.md holds from
//! the start; its contents arrive with the evaluation issue.
