//! Embeds an rpath to libtorch so `pulso` runs without LD_LIBRARY_PATH.
//!
//! libtorch comes from the PyPI torch wheel in `.venv` (LIBTORCH_USE_PYTORCH=1); its folder is
//! taken from PULSO_TORCH_LIB, else LIBTORCH/lib, else `.venv/lib/python3*/site-packages/torch/lib`.

use std::path::PathBuf;

fn torch_lib() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PULSO_TORCH_LIB") {
        return Some(PathBuf::from(p));
    }
    if let Ok(p) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(p).join("lib"));
    }
    let venv = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").ok()?).join(".venv/lib");
    std::fs::read_dir(venv)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/torch/lib"))
        .find(|p| p.is_dir())
}

fn main() {
    println!("cargo:rerun-if-env-changed=PULSO_TORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Some(lib) = torch_lib() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
