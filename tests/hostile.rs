//! The hostile-input corpus: every case under tests/hostile/cases/ run through the real binary.
//!
//! Each case folder holds its input files, a pipeline.toml and a case.toml saying what must come
//! out: exit code, signal count, rejects by reason, chosen signal fields, strings that must not
//! appear anywhere in the output, and message fragments. The corpus is written by
//! tests/hostile/gen.py. All cases run; the test prints how many pass and fails naming every case
//! that did not. `PULSO_HOSTILE_BIN=/path/to/pulso` runs the corpus against another build (used to
//! count how many cases the code before a fix passed).

mod common;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> PathBuf {
    std::env::var_os("PULSO_HOSTILE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pulso")))
}

fn tiny_model() -> String {
    repo()
        .join("tests/fixtures/models/tiny-bert")
        .display()
        .to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    #[serde(default = "default_command")]
    command: String,
    #[serde(default)]
    args: Vec<String>,
    exit: i32,
    signals: Option<usize>,
    rejects: Option<BTreeMap<String, usize>>,
    parquet: Option<String>,
    #[serde(default)]
    stdout_contains: Vec<String>,
    #[serde(default)]
    stderr_contains: Vec<String>,
    #[serde(default)]
    stdout_lacks: Vec<String>,
    #[serde(default)]
    stdout_once: Vec<String>,
    #[serde(default)]
    stderr_once: Vec<String>,
    stdout_lines: Option<usize>,
    #[serde(default)]
    output_lacks: Vec<String>,
    #[serde(default)]
    reject_locations: Vec<String>,
    #[serde(default)]
    signal: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

fn default_command() -> String {
    "run".into()
}

/// Copies a case into `dir`, expanding `*.tmpl` files (`{{REPEAT:text:N}}`) and building Parquet inputs.
fn stage(case_dir: &Path, dir: &Path, parquet: Option<&str>) {
    for e in std::fs::read_dir(case_dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name == "case.toml" {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        if let Some(stem) = name.strip_suffix(".tmpl") {
            let mut s = String::from_utf8(bytes).unwrap();
            while let Some(i) = s.find("{{REPEAT:") {
                let j = i + s[i..].find("}}").unwrap();
                let spec = &s[i + 9..j];
                let (text, n) = spec.rsplit_once(':').unwrap();
                let rep = text.repeat(n.parse().unwrap());
                s.replace_range(i..j + 2, &rep);
            }
            std::fs::write(dir.join(stem), s).unwrap();
        } else {
            std::fs::write(dir.join(&name), bytes).unwrap();
        }
    }
    if let Some(kind) = parquet {
        write_parquet(kind, &dir.join("input.parquet"));
    }
}

fn write_parquet(kind: &str, path: &Path) {
    use arrow::array::*;
    use arrow::datatypes::{Field, Fields, Schema};
    let s = |v: Vec<Option<&str>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let (schema, cols): (Schema, Vec<ArrayRef>) = match kind {
        "binary_text" => (
            Schema::new(vec![
                Field::new("id", DataType::Utf8, true),
                Field::new("text", DataType::Binary, true),
                Field::new("ts", DataType::Utf8, true),
            ]),
            vec![
                s(vec![Some("1"), Some("2"), Some("3")]),
                Arc::new(BinaryArray::from(vec![
                    "abc".as_bytes(),
                    "ótimo".as_bytes(),
                    &[0xff, 0xfe, 0x41][..],
                ])),
                s(vec![Some("2026-11-01"); 3]),
            ],
        ),
        "nan_timestamp" => (
            Schema::new(vec![
                Field::new("id", DataType::Utf8, true),
                Field::new("text", DataType::Utf8, true),
                Field::new("ts", DataType::Float64, true),
            ]),
            vec![
                s(vec![Some("1"), Some("2"), Some("3")]),
                s(vec![Some("a"), Some("b"), Some("c")]),
                Arc::new(Float64Array::from(vec![
                    Some(1_762_000_000.0),
                    Some(f64::NAN),
                    None,
                ])),
            ],
        ),
        "zero_rows" => (
            Schema::new(vec![
                Field::new("id", DataType::Utf8, true),
                Field::new("text", DataType::Utf8, true),
                Field::new("ts", DataType::Utf8, true),
            ]),
            vec![s(vec![]), s(vec![]), s(vec![])],
        ),
        "struct_user" => {
            let fields = Fields::from(vec![
                Field::new("handle", DataType::Utf8, true),
                Field::new("name", DataType::Utf8, true),
            ]);
            let user = StructArray::new(
                fields.clone(),
                vec![
                    s(vec![Some("@maria"), Some("@john")]),
                    s(vec![Some("Maria"), Some("John")]),
                ],
                None,
            );
            (
                Schema::new(vec![
                    Field::new("id", DataType::Utf8, true),
                    Field::new("text", DataType::Utf8, true),
                    Field::new("ts", DataType::Utf8, true),
                    Field::new("user", DataType::Struct(fields), true),
                ]),
                vec![
                    s(vec![Some("1"), Some("2")]),
                    s(vec![Some("love it"), Some("meh")]),
                    s(vec![Some("2026-11-01"); 2]),
                    Arc::new(user),
                ],
            )
        }
        "zoned_naive_ts" => {
            // 2026-11-03 14:22:00 São Paulo wall time, naive; and 17:22:00Z stored zoned.
            let naive = 1_793_715_720_000_000i64; // 2026-11-03T14:22:00 as if UTC
            let zoned = 1_793_726_520_000i64; // 2026-11-03T17:22:00Z in ms
            (
                Schema::new(vec![
                    Field::new("id", DataType::Utf8, true),
                    Field::new("text", DataType::LargeUtf8, true),
                    Field::new(
                        "local_ts",
                        DataType::Timestamp(TimeUnit::Microsecond, None),
                        true,
                    ),
                    Field::new(
                        "zoned_ts",
                        DataType::Timestamp(
                            TimeUnit::Millisecond,
                            Some("America/Sao_Paulo".into()),
                        ),
                        true,
                    ),
                ]),
                vec![
                    s(vec![Some("1")]),
                    Arc::new(LargeStringArray::from(vec![Some("bom")])),
                    Arc::new(TimestampMicrosecondArray::from(vec![naive])),
                    Arc::new(
                        TimestampMillisecondArray::from(vec![zoned])
                            .with_timezone("America/Sao_Paulo"),
                    ),
                ],
            )
        }
        "u64_likes" => (
            Schema::new(vec![
                Field::new("id", DataType::Utf8, true),
                Field::new("text", DataType::Utf8, true),
                Field::new("ts", DataType::Utf8, true),
                Field::new("likes", DataType::UInt64, true),
            ]),
            vec![
                s(vec![Some("1"), Some("2")]),
                s(vec![Some("a"), Some("b")]),
                s(vec![Some("2026-11-01"); 2]),
                Arc::new(UInt64Array::from(vec![3, u64::MAX])),
            ],
        ),
        other => panic!("unknown parquet builder {other}"),
    };
    let batch = RecordBatch::try_new(Arc::new(schema), cols).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn batches_under(dir: &Path) -> Vec<RecordBatch> {
    common::read_parquet_tree(dir)
}

/// A cell as text: strings as is, timestamps as RFC 3339 UTC, null as "".
fn cell(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return String::new();
    }
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::Int64 => a
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(i)
            .to_string(),
        DataType::Float64 => a
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(i)
            .to_string(),
        DataType::Boolean => a.as_boolean().value(i).to_string(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let us = a
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(i);
            chrono::DateTime::from_timestamp_micros(us)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())
                .unwrap_or_else(|| format!("out-of-range {us}"))
        }
        other => format!("<{other}>"),
    }
}

fn expected_string(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Runs one case; Err lists what did not hold.
fn run_case(case_dir: &Path) -> Result<(), String> {
    let c: Case = toml::from_str(&std::fs::read_to_string(case_dir.join("case.toml")).unwrap())
        .map_err(|e| format!("case.toml: {e}"))?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    stage(case_dir, dir, c.parquet.as_deref());
    let model = tiny_model();
    let mut args: Vec<String> = Vec::new();
    match c.command.as_str() {
        "run" => {
            // Each case is a handful of records, many of them rejected on purpose: the per-source
            // reject-ratio guard (tests/commit.rs covers it) would fail most runs before the
            // readers' behaviour could be checked, so it is overridden here.
            args.extend(
                [
                    "run",
                    "pipeline.toml",
                    "--no-progress",
                    "--allow-rejects",
                    "--model",
                    &model,
                ]
                .map(String::from),
            );
            if !c.args.iter().any(|a| a == "--date") {
                args.extend(["--date", "2026-11-15"].map(String::from));
            }
        }
        "run-missing" => {
            args.extend(["run", "missing.toml", "--model", &model].map(String::from));
        }
        "validate" => args.extend(["validate", "pipeline.toml"].map(String::from)),
        "score" => {
            let input = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .find(|n| n.starts_with("input."))
                .expect("score case needs an input.* file");
            args.extend(["score".to_string(), input, "--model".into(), model.clone()]);
        }
        "score-hub" => {
            // A hub id whose download fails at once (connection refused on localhost port 9).
            args.extend(["score", "input.txt", "--model", "owner/model"].map(String::from));
        }
        other => return Err(format!("unknown command {other}")),
    }
    args.extend(c.args.iter().cloned());
    let o = Command::new(bin())
        .args(&args)
        .current_dir(dir)
        .env("PULSO_PSEUDONYM_KEY", "hostile-corpus-key-0123456789")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("PULSO_CACHE", dir.join("cache"))
        .env_remove("PULSO_OFFLINE")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("PULSO_MODEL")
        .output()
        .expect("run pulso");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let mut problems = Vec::new();
    let code = o.status.code().unwrap_or(-1);
    if code != c.exit {
        problems.push(format!("exit {code}, expected {}", c.exit));
    }
    for s in &c.stdout_contains {
        if !stdout.contains(s.as_str()) {
            problems.push(format!("stdout lacks {s:?}"));
        }
    }
    for s in &c.stderr_contains {
        if !stderr.contains(s.as_str()) {
            problems.push(format!("stderr lacks {s:?}"));
        }
    }
    for s in &c.stdout_lacks {
        if stdout.contains(s.as_str()) {
            problems.push(format!("stdout has {s:?}"));
        }
    }
    for s in &c.stdout_once {
        let n = stdout.matches(s.as_str()).count();
        if n != 1 {
            problems.push(format!("stdout has {s:?} {n} times, expected once"));
        }
    }
    for s in &c.stderr_once {
        let n = stderr.matches(s.as_str()).count();
        if n != 1 {
            problems.push(format!("stderr has {s:?} {n} times, expected once"));
        }
    }
    if let Some(n) = c.stdout_lines {
        let got = stdout.lines().filter(|l| !l.trim().is_empty()).count();
        if got != n {
            problems.push(format!("stdout has {got} lines, expected {n}"));
        }
    }
    let out = dir.join("out");
    if c.signals.is_some() || c.rejects.is_some() || !c.signal.is_empty() {
        let signals = batches_under(&out.join("signals"));
        let rejects = batches_under(&out.join("rejects"));
        let n: usize = signals.iter().map(|b| b.num_rows()).sum();
        if let Some(want) = c.signals {
            if n != want {
                problems.push(format!("{n} signals, expected {want}"));
            }
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut locations = Vec::new();
        for b in &rejects {
            let r = b.column_by_name("reason").unwrap();
            let l = b.column_by_name("location").unwrap();
            for i in 0..b.num_rows() {
                *reasons.entry(cell(r.as_ref(), i)).or_default() += 1;
                locations.push(cell(l.as_ref(), i));
            }
        }
        let want_rejects = c.rejects.clone().unwrap_or_default();
        if reasons != want_rejects {
            problems.push(format!("rejects {reasons:?}, expected {want_rejects:?}"));
        }
        for loc in &c.reject_locations {
            if !locations.iter().any(|l| l.ends_with(loc.as_str())) {
                problems.push(format!("no reject at {loc} (have {locations:?})"));
            }
        }
        for (id, cols) in &c.signal {
            let mut found = false;
            for b in &signals {
                let ids = b.column_by_name("record_id").unwrap();
                for i in 0..b.num_rows() {
                    if cell(ids.as_ref(), i) != *id {
                        continue;
                    }
                    found = true;
                    for (col, want) in cols {
                        let Some(a) = b.column_by_name(col) else {
                            problems.push(format!("signals have no column {col}"));
                            continue;
                        };
                        let got = cell(a.as_ref(), i);
                        let want = expected_string(want);
                        let same = match a.data_type() {
                            DataType::Float64 => {
                                got.parse::<f64>().ok() == want.parse::<f64>().ok()
                            }
                            _ => got == want,
                        };
                        if !same {
                            problems.push(format!(
                                "signal {id} {col} = {:?}, expected {want:?}",
                                got.chars().take(120).collect::<String>()
                            ));
                        }
                    }
                }
            }
            if !found {
                problems.push(format!("no signal with record_id {id}"));
            }
        }
    }
    if !c.output_lacks.is_empty() {
        for b in batches_under(&out) {
            for (f, a) in b.schema().fields().iter().zip(b.columns()) {
                if f.data_type() != &DataType::Utf8 {
                    continue;
                }
                for i in 0..a.len() {
                    let v = cell(a.as_ref(), i);
                    for s in &c.output_lacks {
                        if v.contains(s.as_str()) {
                            problems.push(format!("output column {} holds {s:?}: {v:?}", f.name()));
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} ({})\n      {}\n      stdout: {}\n      stderr: {}",
            case_dir.file_name().unwrap().to_string_lossy(),
            c.about,
            problems.join("\n      "),
            stdout.trim().chars().take(600).collect::<String>(),
            stderr.trim().chars().take(600).collect::<String>()
        ))
    }
}

#[test]
fn hostile_corpus() {
    let root = repo().join("tests/hostile/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.toml").is_file())
        .collect();
    dirs.sort();
    if let Ok(only) = std::env::var("PULSO_HOSTILE_ONLY") {
        dirs.retain(|d| d.to_string_lossy().contains(&only));
    }
    assert!(
        dirs.len() >= 60 || std::env::var("PULSO_HOSTILE_ONLY").is_ok(),
        "corpus too small: {}",
        dirs.len()
    );
    // Cases are independent processes: run as many at once as there are cores (most of a case
    // is the process starting), failures listed in case order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let mut failures: Vec<(usize, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(d) = dirs.get(i) else { break };
                        if let Err(e) = run_case(d) {
                            failed.push((i, e));
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a case worker panicked"))
            .collect()
    });
    failures.sort();
    let failures: Vec<String> = failures.into_iter().map(|(_, e)| e).collect();
    let summary = format!(
        "hostile corpus: {}/{} cases pass (binary {})",
        dirs.len() - failures.len(),
        dirs.len(),
        bin().display()
    );
    println!("{summary}");
    if let Ok(p) = std::env::var("PULSO_HOSTILE_REPORT") {
        std::fs::write(p, format!("{summary}\n{}\n", failures.join("\n"))).unwrap();
    }
    assert!(failures.is_empty(), "{summary}\n{}", failures.join("\n"));
}
