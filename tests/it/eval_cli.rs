//! `pulso eval` and `pulso score` helpers end to end on the tiny fixture models.

use pulso::eval::{evaluate, write_report, EvalArgs};
use pulso::record::Sentiment;
use pulso::score::{
    score_stream, score_stream_with, PrecisionChoice, Scorer, ScorerConfig, StreamOptions,
};
use std::path::{Path, PathBuf};

fn model_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn scorer(name: &str) -> Scorer {
    ScorerConfig {
        model: model_dir(name).display().to_string(),
        threads: 2,
        precision: PrecisionChoice::Fp32,
        ..Default::default()
    }
    .build()
    .unwrap()
}

fn fixture_texts() -> Vec<String> {
    let p = model_dir("tiny-bert").join("expected.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect()
}

fn tmp_file(name: &str, body: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pulso-eval-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn eval_against_own_predictions_is_perfect_and_flipped_is_zero() {
    let sc = scorer("tiny-bert");
    let texts = fixture_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let pred = sc.score(&refs).unwrap();
    let mut csv = String::from("id,text,label\n");
    let mut flipped = String::new();
    for (i, (t, s)) in texts.iter().zip(&pred).enumerate() {
        csv.push_str(&format!(
            "{i},\"{}\",{}\n",
            t.replace('"', "\"\""),
            s.sentiment.as_str().to_uppercase()
        ));
        let other = match s.sentiment {
            Sentiment::Negative => "positive",
            _ => "negative",
        };
        flipped.push_str(&format!(
            "{}\n",
            serde_json::json!({"text": t, "label": other})
        ));
    }
    let args = EvalArgs {
        input: tmp_file("own.csv", &csv),
        ..Default::default()
    };
    let r = evaluate(&args, &sc).unwrap();
    assert_eq!(r.n, texts.len());
    assert_eq!(r.accuracy, 1.0);
    assert_eq!(
        r.confusion
            .matrix
            .iter()
            .map(|row| row.iter().sum::<usize>())
            .sum::<usize>(),
        texts.len()
    );

    let args = EvalArgs {
        input: tmp_file("flipped.jsonl", &flipped),
        json: true,
        ..Default::default()
    };
    let r = evaluate(&args, &sc).unwrap();
    assert_eq!(r.accuracy, 0.0);
    let mut out = Vec::new();
    write_report(&r, true, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["n"], texts.len());
    assert!(v["accuracy"].is_number() && v["macro_f1"].is_number());
    assert!(v["per_class"].is_array() && v["confusion"]["matrix"].is_array());
    let mut table = Vec::new();
    write_report(&r, false, &mut table).unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains("macro-F1") && table.contains("confusion"),
        "{table}"
    );
}

#[test]
fn eval_binary_file_scores_negative_vs_positive() {
    let sc = scorer("tiny-bert");
    let texts = fixture_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let pred = sc.score(&refs).unwrap();
    // UCI layout: text<TAB>0|1, no header.
    let mut tsv = String::new();
    for (t, s) in texts.iter().zip(&pred) {
        tsv.push_str(&format!(
            "{}\t{}\n",
            t,
            if s.p_positive > s.p_negative { 1 } else { 0 }
        ));
    }
    let r = evaluate(
        &EvalArgs {
            input: tmp_file("uci.txt", &tsv),
            ..Default::default()
        },
        &sc,
    )
    .unwrap();
    assert!(r.binary);
    assert_eq!(r.accuracy, 1.0);
    assert_eq!(r.per_class.len(), 2);
}

#[test]
fn score_stream_plain_and_json_lines() {
    let sc = std::sync::Arc::new(scorer("tiny-xlmr"));
    let input = "Adorei!!! 😍🔥👍\n\n{\"id\": \"a-1\", \"text\": \"ok\"}\nEl pago no funciona\n";
    let mut out = Vec::new();
    let n = score_stream(
        &sc,
        Box::new(std::io::Cursor::new(input.as_bytes().to_vec())),
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 3);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["id"], "a-1");
    assert_eq!(lines[1]["text"], "ok");
    assert!(lines[0].get("id").is_none());
    for l in &lines {
        for k in [
            "sentiment",
            "p_negative",
            "p_neutral",
            "p_positive",
            "sentiment_score",
            "language",
            "truncated",
        ] {
            assert!(l.get(k).is_some(), "{k} missing in {l}");
        }
        let s = l["sentiment_score"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&s));
    }
}

/// A bad line fails the stream with its line number, after the chunks before it are written
/// (they were scored; the batch queue holds several chunks when the reader meets the bad line).
#[test]
fn bad_line_writes_what_came_before_then_fails() {
    let sc = std::sync::Arc::new(scorer("tiny-xlmr"));
    let input = "uno\ndos\ntres\n{\"id\": 4}\ncinco\n";
    let mut out = Vec::new();
    let err = score_stream_with(
        &sc,
        Box::new(std::io::Cursor::new(input.as_bytes().to_vec())),
        &mut out,
        &StreamOptions {
            chunk: 1,
            include_text: true,
        },
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("input line 4"), "{msg}");
    assert!(msg.contains("\"text\""), "{msg}");
    let texts: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts, ["uno", "dos", "tres"]);
}

/// A writer that fails like a closed pipe.
struct ClosedPipe;
impl std::io::Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn broken_pipe_is_not_an_error() {
    let sc = std::sync::Arc::new(scorer("tiny-distilbert"));
    let n = score_stream(
        &sc,
        Box::new(std::io::Cursor::new(b"a\nb\n".to_vec())),
        &mut ClosedPipe,
    )
    .unwrap();
    assert_eq!(n, 0);
}

/// Runs `pulso eval` on a real file by hand (not part of the suite):
///
/// ```text
/// PULSO_EVAL_MODEL=models/pulso-mini PULSO_EVAL_FILE=build/eval/xlmt_en_val.jsonl \
///   cargo test --release --test it eval_cli::eval_file -- --ignored --nocapture
/// ```
#[test]
#[ignore]
fn eval_file() {
    let (Ok(model), Ok(file)) = (
        std::env::var("PULSO_EVAL_MODEL"),
        std::env::var("PULSO_EVAL_FILE"),
    ) else {
        eprintln!("set PULSO_EVAL_MODEL and PULSO_EVAL_FILE");
        return;
    };
    let args = EvalArgs {
        model: Some(model),
        input: PathBuf::from(file),
        ..Default::default()
    };
    let sc = args.scorer_config().unwrap().build().unwrap();
    let r = evaluate(&args, &sc).unwrap();
    let mut out = Vec::new();
    write_report(&r, false, &mut out).unwrap();
    eprintln!("{}", String::from_utf8(out).unwrap());
}
