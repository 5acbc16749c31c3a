//! The pure core of maglev: the vocabulary every other crate speaks.
#![forbid(unsafe_code)]
