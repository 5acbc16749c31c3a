//! maglevd, the maglev daemon.
fn main() {}
