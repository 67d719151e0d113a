//! End to end on the shipped demo data (tiny fixture model): `pulso run pipelines/demo.toml`, then
//! `internal_service_weekly` recomputed from the published signals must match the table, every
//! suppression must be justified, and `pulso report` must show the internal-services section.

use arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
    StructArray,
};
use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pulso");
const K: usize = 5;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_batches(dir: &Path) -> Vec<RecordBatch> {
    crate::common::read_parquet_tree(dir)
}

fn strc<'a>(b: &'a RecordBatch, c: &str) -> &'a StringArray {
    b.column_by_name(c)
        .unwrap_or_else(|| panic!("no {c}"))
        .as_string::<i32>()
}
fn opt(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

fn run_demo(out: &Path) -> std::process::Output {
    Command::new(BIN)
        .current_dir(root())
        .args([
            "run",
            "pipelines/demo.toml",
            "--date",
            "2026-11-14",
            "--no-progress",
            "--threads",
            "2",
        ])
        .arg("--out")
        .arg(out)
        .arg("--model")
        .arg(root().join("tests/fixtures/models/tiny-bert"))
        .env("PULSO_PSEUDONYM_KEY", "demo-test-key")
        .env_remove("PULSO_MODEL")
        .output()
        .unwrap()
}

#[derive(Default, Debug)]
struct Acc {
    responses: i64,
    pos: i64,
    neg: i64,
    authors: BTreeSet<String>,
    ratings: Vec<f64>,
}

#[test]
fn demo_internal_service_weekly_recomputes_from_the_signals() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run_demo(&out);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Counts match EXPECTED.json.
    let exp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("pipelines/demo/EXPECTED.json")).unwrap(),
    )
    .unwrap();
    let signals = read_batches(&out.join("signals"));
    let n: usize = signals.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n as u64, exp["totals"]["signals"].as_u64().unwrap());

    // Recompute from the internal signals.
    let run = NaiveDate::from_ymd_opt(2026, 11, 14).unwrap();
    let mut cells: BTreeMap<(NaiveDate, String, String, String), Acc> = BTreeMap::new();
    let mut reasons = BTreeSet::new();
    let mut with_aspects = 0;
    for b in read_batches(&out.join("signals/segment=internal")) {
        let provider = strc(&b, "provider");
        let reason = strc(&b, "provider_reason");
        let dept = strc(&b, "department");
        let ct = strc(&b, "client_type");
        let author = strc(&b, "author_id");
        let text = strc(&b, "text");
        let sentiment = strc(&b, "sentiment");
        let t = b
            .column_by_name("event_time")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        let rating = b
            .column_by_name("rating")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>();
        let aspects = b
            .column_by_name("aspects")
            .unwrap()
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap();
        for i in 0..b.num_rows() {
            let Some(p) = opt(provider, i) else {
                assert!(reason.is_null(i));
                continue;
            };
            let r = opt(reason, i).unwrap();
            reasons.insert(r.split(':').next().unwrap().to_string());
            let day = chrono::DateTime::from_timestamp_micros(t.value(i))
                .unwrap()
                .date_naive();
            let w = day.iso_week();
            let monday = NaiveDate::from_isoywd_opt(w.year(), w.week(), Weekday::Mon).unwrap();
            // Sentence-level sentiment about the provider.
            let list = aspects.value(i);
            let st = list.as_any().downcast_ref::<StructArray>().unwrap();
            let ap = st.column_by_name("provider").unwrap().as_string::<i32>();
            let asent = st.column_by_name("sentiment").unwrap().as_string::<i32>();
            let sent_idx = st
                .column_by_name("sentence")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int32Type>();
            let (mut pos, mut neg, mut any) = (0, 0, false);
            for j in 0..st.len() {
                assert!(
                    sent_idx.value(j) >= 0 && (sent_idx.value(j) as usize) < text.value(i).len()
                );
                if ap.is_null(j) || ap.value(j) != p {
                    continue;
                }
                any = true;
                match asent.value(j) {
                    "positive" => pos += 1,
                    "negative" => neg += 1,
                    _ => {}
                }
            }
            if st.len() > 0 {
                with_aspects += 1;
            }
            let vote = if !any {
                sentiment.value(i).to_string()
            } else if neg > pos {
                "negative".into()
            } else if pos > neg {
                "positive".into()
            } else {
                "neutral".into()
            };
            let a = cells
                .entry((
                    monday,
                    p,
                    opt(dept, i).unwrap_or("(none)".into()),
                    ct.value(i).to_string(),
                ))
                .or_default();
            a.responses += 1;
            match vote.as_str() {
                "positive" => a.pos += 1,
                "negative" => a.neg += 1,
                _ => {}
            }
            if let Some(au) = opt(author, i) {
                a.authors.insert(au);
            }
            if !rating.is_null(i) && (1.0..=5.0).contains(&rating.value(i)) {
                a.ratings.push(rating.value(i));
            }
        }
    }
    assert!(with_aspects > 0, "aspects are filled");
    assert_eq!(
        reasons,
        ["column", "map", "text"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "the demo has providers by column, by map and by text"
    );

    let table = read_batches(&out.join("aggregates/internal_service_weekly"));
    let (mut published, mut suppressed, mut complementary, mut totals) = (0, 0, 0, 0);
    let mut weeks = BTreeSet::new();
    for b in &table {
        let ws = b
            .column_by_name("week_start")
            .unwrap()
            .as_primitive::<Date32Type>();
        let prov = strc(b, "provider");
        let dept = strc(b, "department");
        let ct = strc(b, "client_type");
        let level = strc(b, "level");
        let why = strc(b, "suppression");
        let sup = b
            .column_by_name("suppressed")
            .unwrap()
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap();
        let resp = b
            .column_by_name("responses")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let who = b
            .column_by_name("respondents")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let negs = b
            .column_by_name("negative_share")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let csat = b
            .column_by_name("csat_mean")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        for i in 0..b.num_rows() {
            let monday = NaiveDate::from_num_days_from_ce_opt(ws.value(i) + 719_163).unwrap();
            assert!(
                monday + chrono::Duration::days(7) <= run,
                "only complete weeks are published"
            );
            weeks.insert(monday);
            let p = prov.value(i).to_string();
            let acc: Acc = if level.value(i) == "provider" {
                totals += 1;
                let mut t = Acc::default();
                for ((m, pp, _, _), a) in &cells {
                    if *m == monday && *pp == p {
                        t.responses += a.responses;
                        t.pos += a.pos;
                        t.neg += a.neg;
                        t.authors.extend(a.authors.iter().cloned());
                        t.ratings.extend(&a.ratings);
                    }
                }
                t
            } else {
                let key = (
                    monday,
                    p.clone(),
                    dept.value(i).to_string(),
                    ct.value(i).to_string(),
                );
                let a = cells
                    .remove(&key)
                    .unwrap_or_else(|| panic!("row {key:?} has no signals"));
                cells.insert(key.clone(), Acc { ..a });
                let a = &cells[&key];
                Acc {
                    responses: a.responses,
                    pos: a.pos,
                    neg: a.neg,
                    authors: a.authors.clone(),
                    ratings: a.ratings.clone(),
                }
            };
            if sup.value(i) {
                suppressed += 1;
                assert!(resp.is_null(i) && who.is_null(i) && negs.is_null(i));
                match why.value(i) {
                    "min_group_size" => assert!(
                        acc.authors.len() < K,
                        "{p} {i}: {} authors",
                        acc.authors.len()
                    ),
                    "complementary" => {
                        complementary += 1;
                        assert!(acc.authors.len() >= K);
                    }
                    other => panic!("unknown suppression {other}"),
                }
                continue;
            }
            published += 1;
            assert!(acc.authors.len() >= K);
            assert_eq!(resp.value(i), acc.responses, "{p} responses");
            assert_eq!(who.value(i) as usize, acc.authors.len(), "{p} respondents");
            assert!(
                (negs.value(i) - acc.neg as f64 / acc.responses as f64).abs() < 1e-9,
                "{p} negative share"
            );
            if !csat.is_null(i) {
                let m = acc.ratings.iter().sum::<f64>() / acc.ratings.len() as f64;
                assert!((csat.value(i) - m).abs() < 1e-9, "{p} csat");
            }
        }
    }
    assert!(published > 0 && suppressed > 0 && complementary > 0 && totals > 0);
    assert_eq!(
        weeks.len(),
        3,
        "W43, W44, W45 published; W46 in progress: {weeks:?}"
    );
    // Every complete week with signals has rows; nothing was left out.
    for (m, p, _, _) in cells.keys() {
        if *m + chrono::Duration::days(7) <= run {
            assert!(weeks.contains(m), "{p} {m} missing");
        }
    }

    // The report shows the section with data, suppressed cells as suppressed.
    let html = tmp.path().join("report.html");
    let o = Command::new(BIN)
        .args(["report"])
        .arg(&out)
        .args(["--date", "2026-11-14", "--html"])
        .arg(&html)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let term = String::from_utf8_lossy(&o.stdout);
    assert!(term.contains("INTERNAL SERVICES"), "{term}");
    assert!(term.contains("suppressed"));
    let h = std::fs::read_to_string(&html).unwrap();
    assert!(h.contains("<h2>Internal services</h2>"));
    assert!(h.contains("class=\"sup\""));
    assert!(h.contains("2026-W45"));
    assert!(!h.to_lowercase().contains("<script"));
}

#[test]
fn aspects_off_keeps_record_sentiment_and_scores_fewer_texts() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(root().join("pipelines/demo.toml")).unwrap();
    let off = demo.replace(
        "name = \"demo-nightly\"",
        "name = \"demo-nightly\"\naspects = false",
    );
    assert_ne!(off, demo);
    let p = root()
        .join("pipelines")
        .join(format!(".test-aspects-off-{}.toml", std::process::id()));
    std::fs::write(&p, off).unwrap();
    let run = |pipeline: &Path, out: &Path| {
        Command::new(BIN)
            .current_dir(root())
            .arg("run")
            .arg(pipeline)
            .args([
                "--date",
                "2026-11-14",
                "--no-progress",
                "--threads",
                "2",
                "--out",
            ])
            .arg(out)
            .arg("--model")
            .arg(root().join("tests/fixtures/models/tiny-bert"))
            .env("PULSO_PSEUDONYM_KEY", "demo-test-key")
            .output()
            .unwrap()
    };
    let o_off = run(&p, &tmp.path().join("off"));
    std::fs::remove_file(&p).unwrap();
    assert_eq!(
        o_off.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o_off.stderr)
    );
    let o_on = run(&root().join("pipelines/demo.toml"), &tmp.path().join("on"));
    assert_eq!(o_on.status.code(), Some(1));
    // The manifest path is the last word of the run's summary line.
    let manifest = |o: &std::process::Output| -> serde_json::Value {
        let stdout = String::from_utf8_lossy(&o.stdout);
        let path = stdout.split_whitespace().last().unwrap().to_string();
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let (m_on, m_off) = (manifest(&o_on), manifest(&o_off));
    assert_eq!(m_off["counts"]["sentences_scored"], 0);
    assert!(m_on["counts"]["sentences_scored"].as_u64().unwrap() > 100);
    // Record-level columns are identical; aspects are null when off.
    let sig = |d: &str| {
        let mut v: Vec<(String, String, String)> = Vec::new();
        for b in read_batches(&tmp.path().join(d).join("signals")) {
            let id = strc(&b, "record_id");
            let s = strc(&b, "sentiment");
            let p = strc(&b, "provider");
            let a = b.column_by_name("aspects").unwrap();
            for i in 0..b.num_rows() {
                if d == "off" {
                    assert!(a.is_null(i));
                } else {
                    assert!(!a.is_null(i));
                }
                v.push((
                    id.value(i).into(),
                    s.value(i).into(),
                    opt(p, i).unwrap_or_default(),
                ));
            }
        }
        v.sort();
        v
    };
    assert_eq!(sig("on"), sig("off"));
}
