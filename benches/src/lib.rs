//! Shared fixtures for maglev's criterion benchmarks (see `benches/`).
//!
//! The benchmarks themselves live in `benches/benches/*.rs`; run them with
//! `cargo bench -p maglev-benches`. Their figures are written down in
//! `docs/performance.md` together with the command that produced them.
