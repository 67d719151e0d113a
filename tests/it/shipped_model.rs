//! The shipped models as users get them: the default `models/pulso-multi` (multilingual, XLM-R
//! SentencePiece vocabulary) and the English-vocabulary `models/pulso-mini`.
//!
//! * pulso's probabilities equal Hugging Face transformers' to 1e-4, text by text and in one padded
//!   batch (reference: `tests/fixtures/<model>_expected.json`, written by
//!   `models/train/export_model.py` each time the model is exported);
//! * the `tokenizers` crate gives the same ids as Python's tokenizer on a few hundred validation and
//!   unusual texts (for pulso-multi this checks the Metaspace pre-tokenizer and the Precompiled
//!   normaliser read the same way in Rust);
//! * `pulso score` and `pulso eval` with no `--model` find the default from any working directory.

use crate::common::{floats, max_diff};
use pulso::model::{Classifier, LoadOptions};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_pulso");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn expected(model: &str) -> Value {
    let p = repo().join(format!(
        "tests/fixtures/{}_expected.json",
        model.replace('-', "_")
    ));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

#[test]
fn pulso_multi_probabilities_match_transformers() {
    probabilities_match_transformers("pulso-multi");
}

#[test]
fn pulso_mini_probabilities_match_transformers() {
    probabilities_match_transformers("pulso-mini");
}

#[test]
fn pulso_multi_token_ids_match_python() {
    token_ids_match_python("pulso-multi");
}

#[test]
fn pulso_mini_token_ids_match_python() {
    token_ids_match_python("pulso-mini");
}

fn token_ids_match_python(model: &str) {
    let exp = expected(model);
    let dir = repo().join("models").join(model);
    let config = pulso::model::ModelConfig::from_file(&dir.join("config.json")).unwrap();
    let tok = pulso::model::TextTokenizer::load(&dir, &config).unwrap();
    let cases = exp["tokens"]
        .as_array()
        .expect("reference has no token cases");
    assert!(cases.len() >= 300, "{}", cases.len());
    let mut bad = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want: Vec<i64> = c["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let got = tok.encode(text, 128).unwrap();
        if got.ids != want {
            bad.push(format!("{text:?}: rust {:?} python {want:?}", got.ids));
        }
    }
    assert!(
        bad.is_empty(),
        "{model}: {} of {} texts tokenised differently, e.g. {}",
        bad.len(),
        cases.len(),
        bad[0]
    );
}

fn probabilities_match_transformers(model: &str) {
    let exp = expected(model);
    let dir = repo().join("models").join(model);
    let model_bytes = std::fs::metadata(dir.join("model.safetensors"))
        .unwrap()
        .len();
    assert_eq!(
        model_bytes,
        exp["model_safetensors_bytes"].as_u64().unwrap(),
        "models/{model} changed since the reference was written: re-run models/train/export_model.py --reference-only --out models/{model}"
    );
    assert!(model_bytes <= 100 * 1000 * 1000, "weights over 100 MB");
    let clf = Classifier::load(dir.to_str().unwrap(), LoadOptions::default()).unwrap();
    let cases = exp["cases"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    assert!(texts.len() >= 10);
    let tol = 1e-4;
    for (t, c) in texts.iter().zip(cases) {
        let alone = clf.probabilities(&[t]).unwrap();
        let d = max_diff(&alone[0], &floats(&c["probs"]));
        assert!(
            d <= tol,
            "{t:?}: pulso {:?} vs transformers {} (diff {d})",
            alone[0],
            c["probs"]
        );
    }
    let batch = clf.probabilities(&texts).unwrap();
    for ((t, p), c) in texts.iter().zip(&batch).zip(cases) {
        let d = max_diff(p, &floats(&c["probs"]));
        assert!(d <= tol, "{t:?} in a padded batch: diff {d}");
    }
}

/// A temp dir outside the repository, so the model can only be found through the binary's location.
fn elsewhere() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    assert!(!d.path().starts_with(repo()));
    d
}

#[test]
fn score_without_model_uses_pulso_multi_from_any_directory() {
    let d = elsewhere();
    let mut child = Command::new(BIN)
        .args(["score", "--threads", "1"])
        .current_dir(d.path())
        .env_remove("PULSO_MODEL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            "Péssimo atendimento, nunca mais compro\nMe encanta, excelente servicio\n".as_bytes(),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["sentiment"], "negative", "{}", lines[0]);
    assert_eq!(lines[1]["sentiment"], "positive", "{}", lines[1]);
}

#[test]
fn eval_without_model_uses_pulso_multi_and_env_overrides() {
    let d = elsewhere();
    let file = d.path().join("gold.tsv");
    std::fs::write(
        &file,
        "text\tlabel\nAmei, tudo perfeito!\tpositive\nHorrible, no funciona\tnegative\nWorst support ever\tnegative\n",
    )
    .unwrap();
    let run = |env_model: Option<&Path>| {
        let mut c = Command::new(BIN);
        c.args(["eval", "--input", "gold.tsv", "--json", "--threads", "1"])
            .current_dir(d.path());
        match env_model {
            Some(m) => c.env("PULSO_MODEL", m),
            None => c.env_remove("PULSO_MODEL"),
        };
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let shipped = run(None);
    assert_eq!(shipped["n"], 3);
    assert_eq!(shipped["model"], "pulso-multi", "{shipped}");
    assert_eq!(shipped["accuracy"], 1.0, "{shipped}");
    let tiny = repo().join("tests/fixtures/models/tiny-bert");
    let other = run(Some(&tiny));
    assert_eq!(other["n"], 3);
    assert_eq!(
        other["model"], "tiny-bert",
        "PULSO_MODEL is not honoured: {other}"
    );
}
