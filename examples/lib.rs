//! Shared helpers of the diff4steer examples.
