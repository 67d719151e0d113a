//! The model layer against reference outputs from Hugging Face transformers.
//!
//! Fixtures: `tests/fixtures/models/{tiny-bert,tiny-distilbert,tiny-xlmr}/` (made by
//! `tests/fixtures/make_tiny_models.py`), each with `expected.json` holding the HF tokenizer's
//! input ids, the truncation flag and the class probabilities of every case run alone, plus one
//! right-padded batch of all cases.

use crate::common::{floats, max_diff};
use pulso::model::{Classifier, LabelScheme, LoadOptions};
use pulso::record::Sentiment;
use pulso::score::{PrecisionChoice, ScorerConfig, Tuning};
use serde_json::Value;
use std::path::{Path, PathBuf};

const MODELS: [&str; 3] = ["tiny-bert", "tiny-distilbert", "tiny-xlmr"];

fn model_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

struct Case {
    text: String,
    ids: Vec<i64>,
    truncated: bool,
    probs: Vec<f32>,
}

struct Expected {
    max_length: usize,
    tolerance: f32,
    cases: Vec<Case>,
    batched_probs: Vec<Vec<f32>>,
}

fn expected(name: &str) -> Expected {
    let p = model_dir(name).join("expected.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let cases = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            text: c["text"].as_str().unwrap().to_string(),
            ids: c["input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect(),
            truncated: c["truncated"].as_bool().unwrap(),
            probs: floats(&c["probs"]),
        })
        .collect();
    Expected {
        max_length: v["max_length"].as_u64().unwrap() as usize,
        tolerance: v["tolerance"].as_f64().unwrap_or(1e-4) as f32,
        cases,
        batched_probs: v["batched"]["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect(),
    }
}

fn load(name: &str, max_tokens: usize) -> Classifier {
    let dir = model_dir(name);
    Classifier::load(
        dir.to_str().unwrap(),
        LoadOptions {
            max_tokens: Some(max_tokens),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |b, (i, &x)| if x > v[b] { i } else { b })
}

#[test]
fn input_ids_and_truncation_match_hf() {
    for name in MODELS {
        let exp = expected(name);
        let clf = load(name, exp.max_length);
        let texts: Vec<&str> = exp.cases.iter().map(|c| c.text.as_str()).collect();
        let enc = clf.encode(&texts).unwrap();
        assert!(
            exp.cases.iter().any(|c| c.truncated),
            "{name}: fixtures should include truncated texts"
        );
        for (c, e) in exp.cases.iter().zip(&enc) {
            assert_eq!(e.ids, c.ids, "{name}: ids of {:?}", c.text);
            assert_eq!(
                e.truncated, c.truncated,
                "{name}: truncated flag of {:?}",
                c.text
            );
            assert!(e.ids.len() <= exp.max_length);
        }
    }
}

#[test]
fn probabilities_alone_match_hf() {
    for name in MODELS {
        let exp = expected(name);
        let clf = load(name, exp.max_length);
        for c in &exp.cases {
            let p = clf.probabilities(&[c.text.as_str()]).unwrap();
            let d = max_diff(&p[0], &c.probs);
            assert!(
                d <= exp.tolerance,
                "{name}: {:?}: {:?} vs HF {:?} (diff {d})",
                c.text,
                p[0],
                c.probs
            );
        }
    }
}

#[test]
fn padded_batch_equals_alone() {
    for name in MODELS {
        let exp = expected(name);
        let clf = load(name, exp.max_length);
        let alone: Vec<Vec<f32>> = exp
            .cases
            .iter()
            .map(|c| clf.probabilities(&[c.text.as_str()]).unwrap().remove(0))
            .collect();
        // All cases in one padded batch (long truncated texts force lots of padding on the short ones).
        let texts: Vec<&str> = exp.cases.iter().map(|c| c.text.as_str()).collect();
        let batched = clf.probabilities(&texts).unwrap();
        for (i, (a, b)) in alone.iter().zip(&batched).enumerate() {
            assert!(
                max_diff(a, b) <= 1e-5,
                "{name}: case {i} alone {a:?} vs batched {b:?}"
            );
            assert!(
                max_diff(b, &exp.batched_probs[i]) <= exp.tolerance,
                "{name}: case {i} vs HF batched"
            );
        }
        // A short text between long ones, reversed order.
        let long: Vec<&str> = exp
            .cases
            .iter()
            .filter(|c| c.truncated)
            .map(|c| c.text.as_str())
            .collect();
        let short = exp.cases.iter().position(|c| c.ids.len() <= 4).unwrap_or(0);
        let mixed = [
            long[0],
            exp.cases[short].text.as_str(),
            long[long.len() - 1],
        ];
        let p = clf.probabilities(&mixed).unwrap();
        assert!(
            max_diff(&p[1], &alone[short]) <= 1e-5,
            "{name}: short text inside a long batch"
        );
    }
}

#[test]
fn label_schemes_of_the_fixtures() {
    let scheme = |name: &str| {
        let clf = load(name, 64);
        clf.spec.labels.clone()
    };
    assert_eq!(
        scheme("tiny-bert"),
        LabelScheme::ThreeClass {
            negative: 0,
            neutral: 1,
            positive: 2
        }
    );
    assert_eq!(
        scheme("tiny-distilbert"),
        LabelScheme::TwoClass {
            negative: 0,
            positive: 1
        }
    );
    assert_eq!(
        scheme("tiny-xlmr"),
        LabelScheme::Stars {
            stars: [0, 1, 2, 3, 4]
        }
    );
}

#[test]
fn scorer_maps_labels_and_keeps_order() {
    for name in MODELS {
        let exp = expected(name);
        // Many copies in shuffled-ish order, so batching reorders them internally.
        let mut texts = Vec::new();
        let mut which = Vec::new();
        for r in 0..7 {
            for (i, c) in exp.cases.iter().enumerate().rev() {
                if (i + r) % 3 != 0 {
                    texts.push(c.text.as_str());
                    which.push(i);
                }
            }
        }
        let scorer = ScorerConfig {
            model: model_dir(name).display().to_string(),
            max_tokens: Some(exp.max_length),
            threads: 2,
            precision: PrecisionChoice::Fp32,
            ..Default::default()
        }
        .build_tuned(Tuning {
            replicas: Some(2),
            token_budget: Some(256),
            max_batch: Some(8),
        })
        .unwrap();
        assert_eq!(scorer.info().replicas, 2);
        assert_eq!(scorer.info().max_tokens, exp.max_length);
        let out = scorer.score(&texts).unwrap();
        assert_eq!(out.len(), texts.len());
        for (s, &i) in out.iter().zip(&which) {
            let c = &exp.cases[i];
            let p = &c.probs;
            assert_eq!(s.truncated, c.truncated);
            let (neg, neu, pos, score) = match name {
                "tiny-bert" => (p[0], p[1], p[2], p[2] - p[0]),
                "tiny-distilbert" => (p[0], 0.0, p[1], p[1] - p[0]),
                _ => {
                    let e: f32 = p
                        .iter()
                        .enumerate()
                        .map(|(k, x)| (k as f32 + 1.0) * x)
                        .sum();
                    (p[0] + p[1], p[2], p[3] + p[4], (e - 3.0) / 2.0)
                }
            };
            let tol = 2e-4;
            assert!(
                (s.p_negative - neg).abs() < tol
                    && (s.p_neutral - neu).abs() < tol
                    && (s.p_positive - pos).abs() < tol,
                "{name}: {:?}: {s:?}",
                c.text
            );
            assert!(
                (s.sentiment_score - score).abs() < tol,
                "{name}: score {s:?} vs {score}"
            );
            assert_eq!(s.sentiment, Sentiment::ALL[argmax(&[neg, neu, pos])]);
        }
        // Workers stay alive across calls.
        let again = scorer.score(&texts[..3]).unwrap();
        for (a, b) in again.iter().zip(&out) {
            assert_eq!(a.sentiment, b.sentiment);
            assert!(
                (a.p_positive - b.p_positive).abs() < 1e-5
                    && (a.p_negative - b.p_negative).abs() < 1e-5
            );
        }
        assert!(scorer.score(&[]).unwrap().is_empty());
    }
}

#[test]
fn bf16_mostly_agrees_with_fp32() {
    for name in MODELS {
        let exp = expected(name);
        let texts: Vec<&str> = exp.cases.iter().map(|c| c.text.as_str()).collect();
        let f32c = load(name, exp.max_length);
        let bf = Classifier::load(
            model_dir(name).to_str().unwrap(),
            LoadOptions {
                bf16: true,
                max_tokens: Some(exp.max_length),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(bf.network().is_bf16());
        let a = f32c.probabilities(&texts).unwrap();
        let b = bf.probabilities(&texts).unwrap();
        let agree = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| argmax(x) == argmax(y))
            .count();
        for p in &b {
            assert!(
                (p.iter().sum::<f32>() - 1.0).abs() < 1e-4,
                "bf16 softmax is computed in fp32"
            );
        }
        assert!(
            agree * 4 >= texts.len() * 3,
            "{name}: bf16 agrees on {agree}/{} only",
            texts.len()
        );
    }
}

fn copy_dir(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let n = e.file_name().to_string_lossy().into_owned();
        if !skip.contains(&n.as_str()) {
            std::fs::copy(e.path(), to.join(&n)).unwrap();
        }
    }
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pulso-fixtures-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn vocab_txt_fallback_matches_tokenizer_json() {
    for name in ["tiny-bert", "tiny-distilbert"] {
        let exp = expected(name);
        let dir = tmp(name);
        copy_dir(&model_dir(name), &dir, &["tokenizer.json"]);
        let clf = Classifier::load(
            dir.to_str().unwrap(),
            LoadOptions {
                max_tokens: Some(exp.max_length),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(clf.spec.tokenizer.source.ends_with("vocab.txt"));
        let mut same = 0;
        for c in &exp.cases {
            let e = clf.encode(&[c.text.as_str()]).unwrap().remove(0);
            assert_eq!(e.truncated, c.truncated, "{name}: {:?}", c.text);
            if e.ids == c.ids {
                same += 1;
            } else {
                eprintln!(
                    "{name}: vocab.txt tokenization differs for {:?}:\n  {:?}\n  {:?}",
                    c.text, e.ids, c.ids
                );
            }
        }
        assert!(
            same + 1 >= exp.cases.len(),
            "{name}: only {same}/{} identical",
            exp.cases.len()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn mismatched_weights_fail_loudly() {
    // A BERT config over DistilBERT weights.
    let dir = tmp("mismatch");
    copy_dir(&model_dir("tiny-bert"), &dir, &["model.safetensors"]);
    std::fs::copy(
        model_dir("tiny-distilbert").join("model.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    let e = Classifier::load(dir.to_str().unwrap(), LoadOptions::default())
        .err()
        .expect("must fail");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("missing tensors") && msg.contains("bert.") && msg.contains("distilbert"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Unknown label set: names the labels.
    let dir = tmp("labels");
    copy_dir(&model_dir("tiny-bert"), &dir, &[]);
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let cfg = cfg
        .replace("\"negative\"", "\"joy\"")
        .replace("\"neutral\"", "\"anger\"");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let e = Classifier::load(dir.to_str().unwrap(), LoadOptions::default())
        .err()
        .expect("must fail");
    let msg = format!("{e:#}");
    assert!(msg.contains("joy") && msg.contains("supported"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn max_tokens_is_capped_and_cuts() {
    let clf = load("tiny-xlmr", 10_000);
    // max_position_embeddings 66 with pad 1 -> 64 usable positions.
    assert_eq!(clf.spec.max_tokens, 64);
    let short = load("tiny-bert", 8);
    let long = "palavra ".repeat(50);
    let e = short.encode(&[long.as_str()]).unwrap().remove(0);
    assert_eq!(e.ids.len(), 8);
    assert!(e.truncated);
    assert_eq!(e.ids[0], 2, "[CLS] kept");
    assert_eq!(*e.ids.last().unwrap(), 3, "[SEP] kept");
}

// `device = "cuda"` without a GPU: tests/it/cuda.rs, through the real binary (in this shared test
// process another test may already have asked libtorch about CUDA, which settles its CUDA hooks
// before pulso could load them; see src/model/cuda.rs).

/// Throughput of `Scorer::score` (not a correctness test; run by hand):
///
/// ```text
/// PULSO_BENCH_MODEL=models/pulso-mini PULSO_BENCH_N=2000 PULSO_BENCH_THREADS=2 \
///   cargo test --release --test it model_fixtures::bench_scorer -- --ignored --nocapture
/// ```
/// Texts: the UCI labelled sentences and SST-2 pt from `../shared/data` when present, else the fixture
/// cases repeated. Prints records/s for each replicas × threads split and precision given in
/// `PULSO_BENCH_SPLITS` (default `1x2,2x1`) and `PULSO_BENCH_PRECISIONS` (default `fp32`).
#[test]
#[ignore]
fn bench_scorer() {
    let model = std::env::var("PULSO_BENCH_MODEL")
        .unwrap_or_else(|_| model_dir("tiny-bert").display().to_string());
    let n: usize = std::env::var("PULSO_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let threads: usize = std::env::var("PULSO_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let splits =
        std::env::var("PULSO_BENCH_SPLITS").unwrap_or_else(|_| format!("1x{threads},{threads}x1"));
    let precisions = std::env::var("PULSO_BENCH_PRECISIONS").unwrap_or_else(|_| "fp32".into());
    let budget: Option<usize> = std::env::var("PULSO_TOKEN_BUDGET")
        .ok()
        .and_then(|v| v.parse().ok());
    let max_batch: Option<usize> = std::env::var("PULSO_MAX_BATCH")
        .ok()
        .and_then(|v| v.parse().ok());
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let mut files: Vec<Vec<String>> = Vec::new();
    for f in [
        "uci-sentiment-labelled-sentences-en/yelp_labelled.txt",
        "sst2-pt-plue/dev.tsv",
        "uci-sentiment-labelled-sentences-en/imdb_labelled.txt",
        "uci-sentiment-labelled-sentences-en/amazon_cells_labelled.txt",
    ] {
        if let Ok(s) = std::fs::read_to_string(shared.join(f)) {
            let skip = if f.ends_with(".tsv") { 1 } else { 0 };
            files.push(
                s.lines()
                    .skip(skip)
                    .filter_map(|l| l.split('\t').next())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    // Interleave the files so any prefix mixes short sentences and long reviews.
    let mut texts: Vec<String> = Vec::new();
    let longest = files.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for f in &files {
            if let Some(t) = f.get(i) {
                texts.push(t.clone());
            }
        }
    }
    if texts.is_empty() {
        texts = expected("tiny-bert")
            .cases
            .into_iter()
            .map(|c| c.text)
            .collect();
    }
    let texts: Vec<&str> = texts.iter().cycle().take(n).map(String::as_str).collect();
    let chars: usize = texts.iter().map(|t| t.len()).sum();
    eprintln!(
        "bench: {} texts, mean {} bytes, model {model}",
        texts.len(),
        chars / texts.len().max(1)
    );
    for prec in precisions.split(',') {
        for split in splits.split(',') {
            let (r, t) = split.split_once('x').unwrap();
            let (r, t): (usize, usize) = (r.parse().unwrap(), t.parse().unwrap());
            let scorer = ScorerConfig {
                model: model.clone(),
                threads: r * t,
                device: pulso::score::DeviceChoice::Cpu,
                precision: if prec == "bf16" {
                    PrecisionChoice::Bf16
                } else {
                    PrecisionChoice::Fp32
                },
                ..Default::default()
            }
            .build_tuned(Tuning {
                replicas: Some(r),
                token_budget: budget,
                max_batch,
            })
            .unwrap();
            scorer.score(&texts[..texts.len().min(64)]).unwrap(); // warm-up
            let t0 = std::time::Instant::now();
            for chunk in texts.chunks(2048) {
                scorer.score(chunk).unwrap();
            }
            let s = t0.elapsed().as_secs_f64();
            eprintln!("bench: stats {:?}", scorer.stats());
            eprintln!(
                "bench: {prec} {r} replicas x {t} threads: {:.1} records/s ({:.2} s) budget {budget:?}",
                texts.len() as f64 / s,
                s
            );
        }
    }
}

#[test]
fn padding_and_truncation_in_tokenizer_json_are_ignored() {
    let exp = expected("tiny-bert");
    let dir = tmp("tokpad");
    copy_dir(&model_dir("tiny-bert"), &dir, &[]);
    let p = dir.join("tokenizer.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["padding"] = serde_json::json!({"strategy": {"Fixed": 40}, "direction": "Right", "pad_to_multiple_of": null,
        "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"});
    v["truncation"] = serde_json::json!({"direction": "Right", "max_length": 10, "strategy": "LongestFirst", "stride": 0});
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    let clf = Classifier::load(
        dir.to_str().unwrap(),
        LoadOptions {
            max_tokens: Some(exp.max_length),
            ..Default::default()
        },
    )
    .unwrap();
    for c in &exp.cases {
        let e = clf.encode(&[c.text.as_str()]).unwrap().remove(0);
        assert_eq!(e.ids, c.ids, "{:?}", c.text);
        assert_eq!(e.truncated, c.truncated);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
