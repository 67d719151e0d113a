//! CUDA on demand (src/model/cuda.rs): a CPU run of the Makefile's build never maps libtorch's
//! CUDA libraries, and `--device cuda` loads them and says what it found.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::common::night::tiny_model;

const BIN: &str = env!("CARGO_BIN_EXE_pulso");
/// Set when this build linked libtorch_cuda in (`LIBTORCH_USE_PYTORCH=1 cargo build`); the
/// Makefile builds against a view without it.
const CUDA_LINKED: bool = option_env!("LIBTORCH_USE_PYTORCH").is_some();

fn score(device: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["score", "--threads", "1", "--device", device, "--model"])
        .arg(tiny_model())
        .env_remove("PULSO_MODEL");
    c
}

/// The libraries of `pid` whose file name starts with one of `prefixes`.
fn mapped(pid: u32, prefixes: &[&str]) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut v: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter_map(|p| p.rsplit('/').next())
        .filter(|f| prefixes.iter().any(|p| f.starts_with(p)))
        .map(str::to_owned)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn a_cpu_run_maps_no_cuda_library() {
    // stdin stays open, so the process is alive with its scorer built (the banner is printed
    // after the device is chosen) while its memory map is read.
    let mut child = score("auto")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut banner = String::new();
    err.read_line(&mut banner).unwrap();
    assert!(banner.starts_with("pulso score: model"), "{banner}");
    let cuda = mapped(child.id(), &["libtorch_cuda", "libcublas", "libcudnn"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"great product\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let driver = pulso::model::cuda::driver_present();
    if CUDA_LINKED || driver {
        // Linked in, or device auto on a host with the NVIDIA driver: loaded at start / on demand.
        assert!(
            cuda.iter().any(|l| l.starts_with("libtorch_cuda")),
            "linked {CUDA_LINKED}, driver {driver}: {cuda:?}\n{banner}"
        );
    } else {
        assert!(
            cuda.is_empty(),
            "a CPU run without an NVIDIA driver mapped {cuda:?}\n{banner}"
        );
        assert!(banner.contains("on cpu"), "{banner}");
    }
}

#[test]
fn device_cuda_loads_the_backend_and_says_what_it_found() {
    let mut child = score("cuda")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"great product\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        // A GPU host: the one text scored on it.
        assert!(err.contains("on cuda"), "{err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    } else {
        // No GPU: the backend loaded (the venv's wheel has it) and found no device, and the
        // message says so and what to use instead.
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("CUDA backend is loaded and sees no device"),
            "{err}"
        );
        assert!(err.contains("use device auto or cpu"), "{err}");
        assert!(
            !err.contains("cannot load libtorch's CUDA library"),
            "{err}"
        );
    }
}
