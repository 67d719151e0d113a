//! CUDA on demand: pulso links libtorch's CPU library only and loads `libtorch_cuda.so` when a run
//! may use a GPU, so a CPU host does not map the CUDA libraries at every start.
//!
//! Linked at build time (what torch-sys does when it finds `libtorch_cuda.so` beside
//! `libtorch_cpu.so`), the CUDA build of libtorch makes *every* `pulso` process load about 2 GB of
//! CUDA libraries and run their static initialisers before `main`: measured on a 2-vCPU AMD EPYC,
//! `pulso --version` takes 1.0 s that way and 0.5 s without them. The Makefile therefore builds
//! against a view of the wheel's `torch/lib` without `libtorch_cuda.so` (`scripts/libtorch_view.sh`),
//! and [`ensure`] `dlopen`s it (`RTLD_GLOBAL`, so its kernels and CUDA hooks register with the
//! dispatcher exactly as if it had been linked) the first time a scorer is built for
//! `device = "cuda"`, or for `device = "auto"` on a host that has the NVIDIA driver
//! (`libcuda.so.1`). A binary built with CUDA linked in (plain `LIBTORCH_USE_PYTORCH=1 cargo
//! build`) is recognised and left alone.
//!
//! It must happen before anything asks libtorch about CUDA: libtorch settles its CUDA hooks at the
//! first such question (`at::detail::getCUDAHooks`, once per process), so a later load would not be
//! seen; `crate::score` resolves the device first thing when it builds a scorer.
//!
//! The library is looked up like any other: through the binary's RUNPATH (the venv's `torch/lib`
//! in a build tree, `$ORIGIN/../lib` in an install), then `LD_LIBRARY_PATH` and the system paths.

use std::ffi::{CStr, CString};
use std::sync::OnceLock;

/// What [`ensure`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cuda {
    /// libtorch's CUDA backend is present: linked into the binary, or loaded by [`ensure`].
    Ready {
        /// `true` when [`ensure`] loaded it (the usual case); `false` when it was linked in.
        loaded: bool,
    },
    /// `device = "auto"` on a host without the NVIDIA driver: nothing was loaded.
    NoDriver,
}

/// Why libtorch's CUDA backend could not be made available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CudaError {
    /// `dlopen` failed: the library (or one of the CUDA libraries it needs) is not there.
    #[error(
        "cannot load libtorch's CUDA library ({library}): {reason}. This pulso has no usable CUDA \
         libraries beside libtorch (a `make install INSTALL_TORCH=cpu` folder, or a torch wheel \
         without its nvidia-* packages); install the full variant, or use device cpu"
    )]
    Load { library: String, reason: String },
    /// The library loaded but libtorch still reports no CUDA runtime.
    #[error(
        "{library} loaded but libtorch reports no CUDA runtime: it is the stand-in of a CPU-only \
         install, or belongs to another torch build, or (a program using pulso as a library) libtorch \
         was asked about CUDA before pulso loaded it (call pulso::model::cuda::ensure first); \
         install the full variant (or rebuild pulso against the same torch wheel), or use device cpu"
    )]
    NotRegistered { library: String },
}

/// The library [`ensure`] loads.
pub const LIBRARY: &str = "libtorch_cuda.so";
/// The NVIDIA driver's user-space library: without it no GPU can be used.
const DRIVER: &str = "libcuda.so.1";

/// True when `libtorch_cuda.so` is already in this process (linked in, or loaded before).
/// Asks the dynamic loader (`RTLD_NOLOAD`), not libtorch: libtorch picks its CUDA hooks once, at
/// the first question about CUDA, and would keep answering "no CUDA" after a later load.
pub fn library_loaded() -> bool {
    dlopen(LIBRARY, libc::RTLD_NOW | libc::RTLD_NOLOAD).is_ok()
}

/// True when the NVIDIA driver library can be loaded on this host (cheap; loads nothing of torch).
pub fn driver_present() -> bool {
    dlopen(DRIVER, libc::RTLD_LAZY | libc::RTLD_LOCAL).is_ok()
}

/// Makes libtorch's CUDA backend available once per process; call it before anything asks
/// libtorch about CUDA (`tch::Cuda::is_available`, a CUDA device, seeding every device). With `required == false` (device
/// auto) a host without the NVIDIA driver gets [`Cuda::NoDriver`] and nothing is loaded; with
/// `required == true` (device cuda) the library is loaded regardless, so the error a user sees
/// says what is missing.
pub fn ensure(required: bool) -> Result<Cuda, CudaError> {
    static LOADED: OnceLock<Result<Cuda, CudaError>> = OnceLock::new();
    if let Some(done) = LOADED.get() {
        return done.clone();
    }
    if library_loaded() {
        return Ok(Cuda::Ready { loaded: false });
    }
    if !required && !driver_present() {
        return Ok(Cuda::NoDriver);
    }
    LOADED.get_or_init(load).clone()
}

fn load() -> Result<Cuda, CudaError> {
    dlopen(LIBRARY, libc::RTLD_NOW | libc::RTLD_GLOBAL).map_err(|reason| CudaError::Load {
        library: LIBRARY.into(),
        reason,
    })?;
    // The first CUDA question libtorch is asked in this process, so its hooks are the ones the
    // library just registered (see `library_loaded`).
    if !tch::utils::has_cudart() {
        return Err(CudaError::NotRegistered {
            library: LIBRARY.into(),
        });
    }
    Ok(Cuda::Ready { loaded: true })
}

/// `dlopen(name, flags)`; the handle is kept for the life of the process (never `dlclose`d).
fn dlopen(name: &str, flags: libc::c_int) -> Result<(), String> {
    let c = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: `c` is a valid NUL-terminated string; dlopen has no other preconditions. The
    // returned handle is deliberately leaked (unloading libtorch_cuda is not supported).
    let handle = unsafe { libc::dlopen(c.as_ptr(), flags) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local message or null right after a failed dlopen.
        let msg = unsafe { libc::dlerror() };
        return Err(if msg.is_null() {
            "dlopen failed".into()
        } else {
            unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .into_owned()
        });
    }
    Ok(())
}
