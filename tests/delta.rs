//! `[output] format = "delta"` with real processes: two nights and a re-run of one date, read back
//! with pulso's own reader, the Python `deltalake` package, Polars and DuckDB's delta extension
//! (latest and time travel), compared with the plain Parquet run of the same inputs; and
//! `pulso run` killed with SIGKILL at each step of the Delta commit sequence.

use arrow::array::RecordBatch;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::night::{assert_same, batches, copy_dir, ok, text, write_inputs, Content};

/// Each row as `col=value|…`, without `run_id` (differs between runs) and `segment` (a partition
/// column: in the path of a Delta file, in both the path and the file of a plain one).
fn row_strings(b: &RecordBatch) -> Vec<String> {
    common::night::row_strings_without(b, &["run_id", "segment"])
}

const BIN: &str = env!("CARGO_BIN_EXE_pulso");
const D0: &str = "2026-11-13";
const D1: &str = "2026-11-14";

/// A temp dir with the pipeline, writing Delta tables (`delta`) or plain Parquet.
fn fixture(delta: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let mut p = common::night::pipeline("commit-fixture", "out", "data");
    if delta {
        p.push_str("\n[output]\nformat = \"delta\"\n");
    }
    std::fs::write(d.path().join("pipeline.toml"), p).unwrap();
    d
}

fn run(dir: &Path, date: &str, fault: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.args([
        "run",
        "pipeline.toml",
        "--date",
        date,
        "--no-progress",
        "--threads",
        "1",
    ])
    .current_dir(dir)
    .env("PULSO_PSEUDONYM_KEY", "test-key")
    .env_remove("PULSO_MODEL")
    .env_remove("PULSO_FAULT");
    if let Some(f) = fault {
        c.env("PULSO_FAULT", f);
    }
    c.output().expect("run pulso")
}

fn add_rows(c: &mut Content, key: String, file: &Path) {
    let e = c.entry(key).or_default();
    for b in batches(file) {
        e.extend(row_strings(&b));
    }
    e.sort();
}

/// A plain output's rows per partition folder (`signals/segment=external/date=D`), read through
/// the entry symlinks.
fn plain_content(out: &Path) -> Content {
    let mut c = Content::new();
    let mut stack = vec![(out.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            if rel.is_empty() && (name == "_pulso" || name == "runs") {
                continue;
            }
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let p = e.path();
            if p.is_dir() {
                stack.push((p, r));
            } else if r.ends_with(".parquet") {
                add_rows(&mut c, rel.clone(), &p);
            }
        }
    }
    c
}

/// Run manifest `n` of a Delta output (None: the last one) and its number.
fn manifest(out: &Path, n: Option<u64>) -> (u64, Value) {
    let log = out.join("_pulso/log");
    let n = n.unwrap_or_else(|| {
        std::fs::read_dir(&log)
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().to_string();
                n.strip_suffix(".json")?.parse::<u64>().ok()
            })
            .max()
            .expect("a run manifest")
    });
    let p = log.join(format!("{n:020}.json"));
    (
        n,
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap(),
    )
}

/// table → Delta version recorded by a run manifest.
fn versions(m: &Value) -> BTreeMap<String, i64> {
    m["commit"]["tables"]
        .as_object()
        .expect("commit.tables")
        .iter()
        .map(|(t, v)| (t.clone(), v["delta_version"].as_i64().unwrap()))
        .collect()
}

/// The live files of each table at the versions a run manifest records (absolute paths).
fn live(out: &Path, m: &Value) -> BTreeSet<PathBuf> {
    let mut all = BTreeSet::new();
    for (t, v) in versions(m) {
        all.extend(pulso::publish::delta::live_files(&out.join(t), Some(v)).unwrap());
    }
    all
}

/// A Delta output's rows per partition folder, at the versions of run manifest `m`.
fn delta_content(out: &Path, m: &Value) -> Content {
    let mut c = Content::new();
    for f in live(out, m) {
        let rel = f.parent().unwrap().strip_prefix(out).unwrap();
        add_rows(&mut c, rel.to_string_lossy().to_string(), &f);
    }
    c
}

/// The bytes of every file a reader of manifest `m`'s versions reads, plus the manifest itself.
fn delta_bytes(out: &Path, m: &Value) -> BTreeMap<PathBuf, Vec<u8>> {
    live(out, m)
        .into_iter()
        .map(|f| {
            let b = std::fs::read(&f).unwrap();
            (f.strip_prefix(out).unwrap().to_path_buf(), b)
        })
        .collect()
}

/// Rows per table and partition as the Python readers key them (`external/D`, `D`), empty
/// partitions left out (a reader cannot see a partition without rows).
fn reader_counts(c: &Content) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut m: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (k, rows) in c {
        if rows.is_empty() {
            continue;
        }
        let (table, parts) = pulso::publish::delta::split_partition(k);
        let key = parts
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join("/");
        *m.entry(table).or_default().entry(key).or_default() += rows.len() as u64;
    }
    m
}

/// The Python with `deltalake`, Polars and DuckDB's delta extension (`make test` installs them
/// into build/delta-readers).
fn readers_python() -> PathBuf {
    std::env::var_os("PULSO_DELTA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("build/delta-readers/bin/python")
        })
}

fn report(dir: &Path, date: &str) -> String {
    let o = Command::new(BIN)
        .args(["report", "out", "--date", date])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "report failed\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn two_nights_and_a_rerun_match_plain_parquet_and_time_travel() {
    let plain = fixture(false);
    let delta = fixture(true);
    let (pout, dout) = (plain.path().join("out"), delta.path().join("out"));
    let mut after = Vec::new();
    for (night, date, files, rows) in [(0, D0, 1, 40), (1, D1, 1, 60), (2, D1, 2, 150)] {
        for d in [plain.path(), delta.path()] {
            write_inputs(d, night, files, rows);
            ok(&run(d, date, None));
        }
        let (n, m) = manifest(&dout, None);
        assert_eq!(n, night as u64 + 1, "one run manifest per run");
        let want = plain_content(&pout);
        assert_same(&delta_content(&dout, &m), &want, &format!("night {night}"));
        after.push((m, want));
    }
    // The re-run of D1 replaced its partitions in one commit per table: removes and adds together.
    let (m3, c3) = &after[2];
    let (m2, c2) = &after[1];
    for (t, v) in m3["commit"]["tables"].as_object().unwrap() {
        let Some(prev) = v["previous_delta_version"].as_i64() else {
            continue;
        };
        assert_eq!(
            v["delta_version"].as_i64().unwrap(),
            prev + 1,
            "{t}: one Delta commit per table per run"
        );
    }
    for t in ["signals", "rejects"] {
        let v = &m3["commit"]["tables"][t];
        assert!(v["removed_files"].as_u64().unwrap() > 0, "{t}: {v}");
        assert!(v["added_files"].as_u64().unwrap() > 0, "{t}: {v}");
    }
    let d1_signals: usize = c3
        .iter()
        .filter(|(k, _)| k.starts_with("signals/") && k.ends_with(D1))
        .map(|(_, r)| r.len())
        .sum();
    // Two files of 150 rows per source, two sources: 600 records, less the rejects; a duplicated
    // (appended) re-run would hold night 1's rows too.
    let d1_rejects: usize = c3
        .iter()
        .filter(|(k, _)| k.starts_with("rejects/") && k.ends_with(D1))
        .map(|(_, r)| r.len())
        .sum();
    assert_eq!(d1_signals + d1_rejects, 600, "{d1_signals} + {d1_rejects}");
    // Time travel: the previous manifest's versions read back last night's rows.
    assert_same(&delta_content(&dout, m2), c2, "time travel to run 2");
    // `pulso report` reads the Delta output like the plain one.
    assert_eq!(report(delta.path(), D1), report(plain.path(), D1));
    assert_eq!(report(delta.path(), D0), report(plain.path(), D0));

    // The readers a data team uses.
    let labels = serde_json::json!({"latest": versions(m3), "previous": versions(m2)});
    let py = readers_python();
    let o = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/read_delta.py"))
        .arg(&dout)
        .arg(labels.to_string())
        .output();
    let o = match o {
        Ok(o) if o.status.success() => o,
        // Only a missing reader venv is a skip; a reader script that runs and fails is a failure.
        Ok(o) => panic!(
            "{} tests/py/read_delta.py failed:\n{}",
            py.display(),
            text(&o)
        ),
        Err(e) => {
            eprintln!(
                "SKIPPED Delta readers: {} cannot be started ({e}); `make test` installs deltalake, polars and duckdb-ext-delta",
                py.display()
            );
            return;
        }
    };
    let got: Value = serde_json::from_slice(&o.stdout).unwrap();
    for (tool, why) in got["missing"].as_object().unwrap() {
        eprintln!("SKIPPED Delta reader {tool}: {why}");
    }
    let (want_latest, want_prev) = (reader_counts(c3), reader_counts(c2));
    let mut checked = vec![];
    for tool in ["deltalake", "polars", "duckdb"] {
        if got[tool].is_null() {
            continue;
        }
        for (label, want) in [("latest", &want_latest), ("previous", &want_prev)] {
            let mut seen: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
            for (t, parts) in got[tool][label].as_object().unwrap() {
                if t.starts_with('@') {
                    continue;
                }
                let parts: BTreeMap<String, u64> = serde_json::from_value(parts.clone()).unwrap();
                let parts: BTreeMap<String, u64> =
                    parts.into_iter().filter(|(_, n)| *n > 0).collect();
                if !parts.is_empty() {
                    seen.insert(t.clone(), parts);
                }
            }
            assert_eq!(&seen, want, "{tool} {label}");
        }
        checked.push(tool);
    }
    assert!(
        !checked.is_empty() || got["missing"].as_object().unwrap().len() == 3,
        "no reader checked"
    );
    eprintln!(
        "Delta readers checked: {checked:?}: {}",
        String::from_utf8_lossy(&o.stdout).trim()
    );
}

/// Kill points in the Delta commit (and a few before it); `true`: the run is complete after the
/// kill (its manifest was written).
const KILL_POINTS: [(&str, bool); 12] = [
    ("write:batch@2", false),
    ("write:file-closed@2", false),
    ("aggregate:done", false),
    ("delta:start", false),
    ("delta:planned", false),
    ("delta:file-moved@2", false),
    ("delta:moved", false),
    ("delta:table-committed", false),
    ("delta:table-committed@2", false),
    ("delta:table-committed@3", false),
    ("delta:manifest", true),
    ("delta:done", true),
];

#[test]
fn sigkill_in_the_delta_commit_keeps_the_previous_run_and_the_next_run_completes() {
    let base = fixture(true);
    write_inputs(base.path(), 0, 1, 40);
    ok(&run(base.path(), D0, None));
    write_inputs(base.path(), 1, 1, 60);
    ok(&run(base.path(), D1, None));
    write_inputs(base.path(), 2, 2, 150);
    let out = |d: &Path| d.join("out");
    let (prev_n, prev_m) = manifest(&out(base.path()), None);
    let prev_bytes = delta_bytes(&out(base.path()), &prev_m);
    let prev_content = delta_content(&out(base.path()), &prev_m);

    // The uninterrupted run, on a copy.
    let refdir = tempfile::tempdir().unwrap();
    copy_dir(base.path(), &refdir.path().join("r"));
    let r = refdir.path().join("r");
    ok(&run(&r, D1, None));
    let want = delta_content(&out(&r), &manifest(&out(&r), None).1);
    assert_ne!(want, prev_content, "the run under test changes the output");

    let mut killed = 0;
    for (point, complete) in KILL_POINTS {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("k");
        copy_dir(base.path(), &d);
        let o = run(&d, D1, Some(point));
        assert_eq!(
            o.status.signal(),
            Some(9),
            "{point}: not killed\n{}",
            text(&o)
        );
        killed += 1;
        let (n, m) = manifest(&out(&d), None);
        if complete {
            assert_eq!(n, prev_n + 1, "{point}");
            assert_same(&delta_content(&out(&d), &m), &want, point);
        } else {
            assert_eq!(n, prev_n, "{point}: no new run manifest");
            assert_eq!(
                delta_bytes(&out(&d), &prev_m),
                prev_bytes,
                "{point}: the previous run reads back byte-identical"
            );
        }
        // The next run settles the killed one and produces what an uninterrupted run produces.
        let o = run(&d, D1, None);
        ok(&o);
        let (n2, m2) = manifest(&out(&d), None);
        assert!(n2 > n, "{point}");
        assert_same(&delta_content(&out(&d), &m2), &want, point);
        assert!(
            !out(&d).join("_pulso/delta-pending.json").exists(),
            "{point}"
        );
        assert_eq!(
            std::fs::read_dir(out(&d).join("_pulso/runs"))
                .unwrap()
                .count(),
            0,
            "{point}: run folders left"
        );
        // Every data file on disk belongs to some committed version (nothing orphaned).
        let mut known = BTreeSet::new();
        for (t, v) in versions(&m2) {
            for ver in 0..=v {
                known.extend(
                    pulso::publish::delta::live_files(&out(&d).join(&t), Some(ver)).unwrap(),
                );
            }
        }
        let mut stack = vec![out(&d)];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() && !p.ends_with("_pulso") && !p.ends_with("_delta_log") {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "parquet") {
                    assert!(known.contains(&p), "{point}: orphan file {}", p.display());
                }
            }
        }
    }
    eprintln!("Delta kill points: {killed} killed runs, each recovered by the next run");
}

#[test]
fn a_wrong_format_and_a_format_switch_fail_clearly() {
    let d = fixture(false);
    write_inputs(d.path(), 0, 1, 10);
    let p = d.path().join("pipeline.toml");
    let body = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, format!("{body}\n[output]\nformat = \"deltalake\"\n")).unwrap();
    let o = run(d.path(), D0, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("\"deltalake\"") && err.contains("format = \"delta\""),
        "{err}"
    );
    // Plain output first, then the same folder as Delta: refused, plain output untouched.
    std::fs::write(&p, &body).unwrap();
    ok(&run(d.path(), D0, None));
    let before = plain_content(&d.path().join("out"));
    std::fs::write(&p, format!("{body}\n[output]\nformat = \"delta\"\n")).unwrap();
    let o = run(d.path(), D0, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("plain Parquet"),
        "{}",
        text(&o)
    );
    assert_eq!(plain_content(&d.path().join("out")), before);
    // And a Delta output run as plain Parquet.
    let e = fixture(true);
    write_inputs(e.path(), 0, 1, 10);
    ok(&run(e.path(), D0, None));
    let p = e.path().join("pipeline.toml");
    let body = std::fs::read_to_string(&p)
        .unwrap()
        .replace("format = \"delta\"", "");
    std::fs::write(&p, body).unwrap();
    let o = run(e.path(), D0, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Delta tables"),
        "{}",
        text(&o)
    );
}
