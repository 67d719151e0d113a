//! Embeds an rpath to libtorch so `pulso` runs without LD_LIBRARY_PATH.
//!
//! libtorch comes from the PyPI torch wheel in `.venv` (the Makefile points LIBTORCH at a view of it
//! without libtorch_cuda.so, see scripts/libtorch_view.sh; LIBTORCH_USE_PYTORCH=1 also works); its
//! folder is taken from PULSO_TORCH_LIB, else the real folder behind LIBTORCH/lib, else
//! `.venv/lib/python3*/site-packages/torch/lib`.

use std::path::PathBuf;

fn torch_lib() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PULSO_TORCH_LIB") {
        return Some(PathBuf::from(p));
    }
    if let Ok(p) = std::env::var("LIBTORCH") {
        // The Makefile's LIBTORCH is a view of symlinks (scripts/libtorch_view.sh): embed the
        // folder the libraries really live in, so the binary outlives `make clean`.
        let lib = PathBuf::from(p).join("lib");
        return Some(
            std::fs::canonicalize(lib.join("libtorch_cpu.so"))
                .ok()
                .and_then(|f| f.parent().map(PathBuf::from))
                .unwrap_or(lib),
        );
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
