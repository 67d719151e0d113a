//! `precision = auto` decides from what the CPU gives the process (CPUID), as libtorch does, and not
//! from `/proc/cpuinfo`: under `benches/avx2only` (CPUID faulting hides AVX-512, AMX and VNNI) pulso must
//! not run bf16, which is emulated there and ~80× slower than fp32 (it runs int8 with the guard). The precision a run used is printed
//! by `pulso score` on stderr and by `pulso eval` in its report.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pulso");

fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert")
}

fn cpu_flags() -> Vec<String> {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// `pulso eval --json --precision auto` on two texts; returns (report precision, score stderr line).
fn auto_precision(preload: Option<&Path>) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("e.jsonl");
    std::fs::write(
        &input,
        "{\"text\":\"great service\",\"label\":\"positive\"}\n{\"text\":\"awful\",\"label\":\"negative\"}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--model")
            .arg(tiny_model())
            .args(["--threads", "1"])
            .env_remove("PULSO_MODEL")
            .env_remove("ONEDNN_MAX_CPU_ISA")
            .env_remove("DNNL_MAX_CPU_ISA")
            .env_remove("ATEN_CPU_CAPABILITY");
        if let Some(so) = preload {
            c.env("LD_PRELOAD", so);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "pulso {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let input_s = input.to_str().unwrap();
    let eval = run(&["eval", "--json", "--input", input_s]);
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    let score = run(&["score", input_s]);
    let stderr = String::from_utf8_lossy(&score.stderr).to_string();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pulso score: model"))
        .unwrap_or_else(|| panic!("no precision line on stderr: {stderr}"))
        .to_string();
    (report["precision"].as_str().unwrap().to_string(), line)
}

#[test]
fn auto_precision_follows_cpuid() {
    let flags = cpu_flags();
    let has = |f: &str| flags.iter().any(|x| x == f);
    let (plain, line) = auto_precision(None);
    assert!(line.contains(&format!("precision {plain}")), "{line}");
    // Where the CPU has no fast bf16 (the users' AVX2 machines), auto is int8 with the guard when the
    // probe agrees (it does on the fixture model, a BERT); where it has, auto is bf16 when the probe
    // agrees.
    let expected = if has("avx512_bf16") { "bf16" } else { "int8" };
    assert_eq!(plain, expected, "flags {flags:?}");

    if !has("cpuid_fault") {
        // Nothing to hide CPUID with on this host: the assertion above is the whole check here.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let so = dir.path().join("avx2only.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/avx2only/avx2only.c");
    let cc = Command::new("cc")
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .status()
        .expect("cc (build-essential) is needed to build benches/avx2only for this test");
    assert!(cc.success(), "cc failed on {}", src.display());
    let (hidden, line) = auto_precision(Some(&so));
    assert_eq!(
        hidden, "int8",
        "under an AVX2 view of the CPU auto must pick int8, not {hidden} (bf16 is emulated there) ({line})"
    );
    assert!(line.contains("precision int8"), "{line}");
}
