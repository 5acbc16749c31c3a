//! Applying a plan placeholder.
