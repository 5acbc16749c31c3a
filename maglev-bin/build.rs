//! Compiles `proto/maglev.proto` with protox (pure Rust, no system
//! `protoc`) into tonic code, and keeps its file descriptor set for server
//! reflection; records the commit and its date for `--version`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/maglev.proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_file("maglev.proto")?;
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);
    // Encoded by protox itself, which keeps custom options (each RPC's
    // `access`); prost_types would drop them as unknown fields.
    std::fs::write(
        out.join("maglev_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure().compile_fds(compiler.file_descriptor_set())?;
    println!(
        "cargo:rustc-env=MAGLEV_COMMIT={}",
        git(&["rev-parse", "--short=12", "HEAD"])
    );
    println!(
        "cargo:rustc-env=MAGLEV_BUILD_DATE={}",
        git(&["log", "-1", "--format=%cs"])
    );
    Ok(())
}

/// One line of git's output, or `unknown` (a tarball, no git).
fn git(args: &[&str]) -> String {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
