//! Compiles `proto/maglev.proto` with protox (pure Rust, no system
//! `protoc`) into tonic code, and keeps its file descriptor set for server
//! reflection; embeds the dashboard's files (`src/web/assets/`); records
//! the commit and its date for `--version`.

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
    embed_assets(&out)?;
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

/// Writes `web_assets.rs`: every file of `src/web/assets/` as
/// `(name, bytes)`, sorted by name, for the dashboard to serve.
fn embed_assets(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("no manifest dir")?)
        .join("src/web/assets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.is_file());
    files.sort();
    let mut code = String::from("&[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("an asset name that is not UTF-8")?;
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}) as &[u8]),\n",
            path.display().to_string()
        ));
    }
    code.push(']');
    std::fs::write(out.join("web_assets.rs"), code)?;
    Ok(())
}
