//! The default CPU forward pass (`packed`: no padding) scores a text bit for bit the same whatever
//! texts share its batch, and every forward pass pulso has agrees with rust-bert's modules.
//!
//! Shards of a night are compared with one process row for row (tests/it/shards.rs); that only holds
//! if a text's probabilities cannot move with its batch mates, thread split or batch order.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pulso");

fn model(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match name {
        "tiny" => root.join("tests/fixtures/models/tiny-bert"),
        _ => root.join("models").join(name),
    }
}

/// Texts of many lengths (1 to ~120 tokens) in pt/es/en, a fixed mix.
fn texts() -> Vec<String> {
    let parts = [
        "O atendimento foi ótimo e a entrega chegou antes do prazo.",
        "No está mal, pero el soporte tardó tres días en responder.",
        "The new release broke the export and nobody answered my ticket.",
        "Me sinto valorizado pelo meu gestor.",
        "Pésimo.",
        "great",
        "La oficina de RRHH nunca contesta los correos de los contratistas.",
        "não tenho do que reclamar da Acme",
    ];
    (0..90)
        .map(|i| {
            let n = 1 + (i * 7) % 13;
            (0..n)
                .map(|k| parts[(i + k * 3) % parts.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// `pulso score` on `lines`; returns each line's (label, [p_negative, p_neutral, p_positive]) and
/// the stderr banner.
fn score(
    model: &Path,
    lines: &[String],
    threads: &str,
    forward: Option<&str>,
) -> (Vec<(String, Vec<f64>)>, String) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let mut c = Command::new(BIN);
    c.arg("score")
        .arg(&input)
        .arg("--model")
        .arg(model)
        .args(["--threads", threads, "--precision", "fp32"])
        .env_remove("PULSO_MODEL")
        .env_remove("PULSO_FORWARD");
    if let Some(f) = forward {
        c.env("PULSO_FORWARD", f);
    }
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "pulso score failed: {stderr}");
    let rows: Vec<(String, Vec<f64>)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let p = ["p_negative", "p_neutral", "p_positive"]
                .iter()
                .map(|k| v[k].as_f64().unwrap())
                .collect();
            (v["sentiment"].as_str().unwrap().to_string(), p)
        })
        .collect();
    assert_eq!(rows.len(), lines.len(), "one output row per input line");
    (rows, stderr)
}

fn batch_mates_do_not_move_scores(name: &str) {
    let all = texts();
    let (full, banner) = score(&model(name), &all, "2", None);
    assert!(
        banner.contains("forward packed"),
        "the CPU default forward is packed: {banner}"
    );
    // Every 5th text, in reverse order, one thread: other batch mates, other batch sizes, other
    // lengths next to each text, another thread split.
    let idx: Vec<usize> = (0..all.len()).step_by(5).rev().collect();
    let sub: Vec<String> = idx.iter().map(|&i| all[i].clone()).collect();
    let (part, _) = score(&model(name), &sub, "1", None);
    for (k, &i) in idx.iter().enumerate() {
        assert_eq!(
            part[k], full[i],
            "{name}: text {i} ({:?}) scored differently alone among other batch mates",
            all[i]
        );
    }
    // Each of three texts entirely alone.
    for &i in &[0usize, 17, 44] {
        let (one, _) = score(&model(name), &all[i..=i], "1", None);
        assert_eq!(one[0], full[i], "{name}: text {i} alone");
    }
}

#[test]
fn packed_forward_scores_a_text_the_same_whatever_its_batch_mates_tiny() {
    batch_mates_do_not_move_scores("tiny");
}

#[test]
fn packed_forward_scores_a_text_the_same_whatever_its_batch_mates_shipped() {
    batch_mates_do_not_move_scores("pulso-multi");
}

#[test]
fn every_forward_agrees_with_rust_berts_modules() {
    let all = texts();
    for name in ["tiny", "pulso-multi"] {
        let (reference, banner) = score(&model(name), &all, "2", Some("rust-bert"));
        assert!(banner.contains("forward rust-bert"), "{banner}");
        for fw in ["packed", "fused", "explicit"] {
            let (got, banner) = score(&model(name), &all, "2", Some(fw));
            assert!(banner.contains(&format!("forward {fw}")), "{banner}");
            let mut worst = 0f64;
            for (i, (a, b)) in got.iter().zip(&reference).enumerate() {
                assert_eq!(a.0, b.0, "{name} {fw}: label of text {i} ({:?})", all[i]);
                for (x, y) in a.1.iter().zip(&b.1) {
                    worst = worst.max((x - y).abs());
                }
            }
            assert!(
                worst < 2e-5,
                "{name} {fw}: probabilities differ from rust-bert's by {worst}"
            );
        }
    }
}
