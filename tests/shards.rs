//! Sharded runs with the real binary: N `pulso run --shard I/N` processes plus `pulso commit`
//! publish, row for row, what one `pulso run` publishes (demo data and a fixture with duplicate
//! ids across files, N = 1, 3, 7); `--shard auto` from JOB_COMPLETION_INDEX with one shard killed
//! by SIGKILL and retried; a missing shard and a shard with another configuration exit 2 naming
//! the shard and publish nothing.

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::night::{ok, rows_of as rows, text, tiny_model};

/// Each row as `col=value|…`, every column.
fn row_strings(b: &RecordBatch) -> Vec<String> {
    common::night::row_strings_without(b, &[])
}

/// Waits until `p` exists (the fault point was reached) or the child exits.
fn wait_for(p: &Path, child: &mut std::process::Child) {
    common::night::wait_until_exists(p, child, Duration::from_secs(120));
}

const BIN: &str = env!("CARGO_BIN_EXE_pulso");
const DATE: &str = "2026-11-14";
const RUN: &str = "night-20261114";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `pulso ARGS` in `dir` with a clean, fixed environment.
fn pulso(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(dir)
        .env("PULSO_PSEUDONYM_KEY", "shard-test-key-0123456789")
        .env_remove("PULSO_MODEL")
        .env_remove("PULSO_FAULT")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("PULSO_SHARD_COUNT");
    c
}

/// Common flags of `run` and `commit`.
fn flags(out: &Path) -> Vec<String> {
    vec![
        "--date".into(),
        DATE.into(),
        "--out".into(),
        out.display().to_string(),
        "--model".into(),
        tiny_model().display().to_string(),
        "--run-id".into(),
        RUN.into(),
    ]
}

fn run_args(pipeline: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "run".to_string(),
        pipeline.display().to_string(),
        "--no-progress".into(),
        "--threads".into(),
        "1".into(),
    ];
    a.extend(flags(out));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn exec(dir: &Path, args: &[String]) -> Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    pulso(dir, &a).output().expect("run pulso")
}

fn commit(dir: &Path, pipeline: &Path, out: &Path) -> Output {
    let mut a = vec!["commit".to_string(), pipeline.display().to_string()];
    a.extend(flags(out));
    exec(dir, &a)
}

/// One `pulso run` of the night into `out`.
fn single(dir: &Path, pipeline: &Path, out: &Path) {
    let o = exec(dir, &run_args(pipeline, out, &[]));
    ok(&o);
}

/// N shards one after the other, then the commit.
fn sharded(dir: &Path, pipeline: &Path, out: &Path, n: u32) -> Output {
    for i in 0..n {
        let spec = format!("{i}/{n}");
        let o = exec(dir, &run_args(pipeline, out, &["--shard", &spec]));
        assert_eq!(o.status.code(), Some(0), "shard {spec}: {}", text(&o));
        assert!(
            !out.join("_pulso/current").exists(),
            "a shard published something"
        );
    }
    commit(dir, pipeline, out)
}

/// Partition folder (relative to the output root) → its rows: sorted for signals and rejects
/// (shards write their own part files), in file order for the aggregate tables.
fn published(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for table in ["signals", "rejects", "aggregates"] {
        let mut stack = vec![out.join(table)];
        while let Some(d) = stack.pop() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "parquet") {
                    let rel = p
                        .parent()
                        .unwrap()
                        .strip_prefix(out)
                        .unwrap()
                        .display()
                        .to_string();
                    let f = std::fs::File::open(&p).unwrap();
                    let rows = m.entry(rel).or_default();
                    for b in ParquetRecordBatchReaderBuilder::try_new(f)
                        .unwrap()
                        .build()
                        .unwrap()
                    {
                        rows.extend(row_strings(&b.unwrap()));
                    }
                }
            }
        }
    }
    for (rel, rows) in m.iter_mut() {
        if !rel.starts_with("aggregates") {
            rows.sort();
        }
    }
    m
}

fn assert_same(
    got: &BTreeMap<String, Vec<String>>,
    want: &BTreeMap<String, Vec<String>>,
    what: &str,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: partitions differ"
    );
    for (k, w) in want {
        let g = &got[k];
        assert_eq!(g.len(), w.len(), "{what}: {k}: row counts differ");
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert_eq!(a, b, "{what}: {k}: row {i} differs");
        }
    }
}

fn manifest(out: &Path) -> serde_json::Value {
    let c = std::fs::read_link(out.join("_pulso/current")).unwrap();
    let run = c.file_name().unwrap().to_string_lossy().to_string();
    serde_json::from_slice(&std::fs::read(out.join("runs").join(format!("{run}.json"))).unwrap())
        .unwrap()
}

#[test]
fn demo_night_in_1_3_and_7_shards_equals_one_process_row_for_row() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = root().join("pipelines/demo.toml");
    let one = tmp.path().join("single");
    single(&root(), &pipeline, &one);
    let want = published(&one);
    assert!(rows(&want, "signals") > 700, "{:?}", want.keys());
    assert!(rows(&want, "rejects") > 0);
    assert!(rows(&want, "aggregates/brand_daily") > 0);
    assert!(rows(&want, "aggregates/engagement_weekly") > 0);
    assert!(rows(&want, "aggregates/internal_service_weekly") > 0);
    let want_counts = manifest(&one)["counts"].clone();
    for n in [1u32, 3, 7] {
        let out = tmp.path().join(format!("shards-{n}"));
        let o = sharded(&root(), &pipeline, &out, n);
        ok(&o);
        assert_same(&published(&out), &want, &format!("{n} shards"));
        let m = manifest(&out);
        assert_eq!(m["counts"], want_counts, "{n} shards: manifest counts");
        assert_eq!(m["shards"]["count"], n);
        assert!(
            !out.join("_pulso/staging").join(RUN).exists(),
            "staging is removed after the commit"
        );
        // A commit retried after it succeeded changes nothing.
        let again = commit(&root(), &pipeline, &out);
        assert_eq!(again.status.code(), Some(0), "{}", text(&again));
        assert!(String::from_utf8_lossy(&again.stdout).contains("already"));
        assert_same(
            &published(&out),
            &want,
            &format!("{n} shards, commit again"),
        );
    }
}

const DUP_PIPELINE: &str = r#"
[pipeline]
name = "dups"
output = "out"

[model]
path = "MODEL"

[organization]
internal_domains = ["acme.com"]
brands = ["Acme"]
competitors = ["Globex"]
min_group_size = 2

[[source]]
name = "mentions"
path = "data/mentions_*.jsonl"
format = "jsonl"
segment = "external"
client_type = "consumer"
[source.columns]
id = "id"
text = "text"
timestamp = "ts"
author = "user"
brand = "brand"
channel = "platform"
likes = "likes"

[[source]]
name = "survey"
path = "data/survey_*.csv"
format = "csv"
segment = "internal"
client_type = "employee"
[source.columns]
text = "comment"
timestamp = "at"
author = "email"
department = "dept"
score = "enps"
"#;

const WORDS: [&str; 12] = [
    "great", "slow", "delivery", "price", "support", "love", "hate", "Acme", "late", "manager",
    "ótimo", "Globex",
];

fn words(i: usize) -> String {
    let mut x = (i as u64 + 7) * 2654435761;
    (0..(3 + i % 6))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            WORDS[(x % 12) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Three mention files where ids repeat within and across files (with other texts, so which
/// copy is kept shows), a few broken rows; two survey files without an id column.
fn dup_fixture() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("pipeline.toml"),
        DUP_PIPELINE.replace("MODEL", &tiny_model().display().to_string()),
    )
    .unwrap();
    let data = d.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for f in 0..3usize {
        let mut m = String::new();
        for r in 0..120usize {
            let i = f * 120 + r;
            // Every 4th row reuses an id of the previous file (or of this file, in file 0).
            let id = if r % 4 == 1 { (i + 97) % 200 } else { i };
            match i % 41 {
                5 => m.push_str("{not json\n"),
                9 => m.push_str(&format!("{{\"text\": \"no id {i}\"}}\n")),
                _ => m.push_str(&format!(
                    "{{\"id\": \"m{id}\", \"ts\": \"2026-11-{:02}T10:{:02}:00Z\", \"user\": \"@u{}\", \"brand\": {}, \"platform\": \"p{}\", \"likes\": {}, \"text\": {:?}}}\n",
                    8 + i % 7,
                    i % 60,
                    i % 23,
                    if i % 3 == 0 { "\"Acme\"".to_string() } else { "null".into() },
                    i % 3,
                    i % 11,
                    format!("{} {i}", words(i))
                )),
            }
        }
        std::fs::write(data.join(format!("mentions_{f}.jsonl")), m).unwrap();
    }
    for f in 0..2usize {
        let mut s = String::from("at,email,dept,enps,comment\n");
        for r in 0..90usize {
            let i = f * 90 + r;
            let text = if i % 29 == 3 {
                String::new()
            } else {
                words(i + 1000)
            };
            s.push_str(&format!(
                "2026-11-{:02}T09:00:00Z,p{}@acme.com,D{},{},{text}\n",
                9 + i % 5,
                i % 9,
                i % 3,
                i % 11
            ));
        }
        std::fs::write(data.join(format!("survey_{f}.csv")), s).unwrap();
    }
    d
}

#[test]
fn duplicates_across_files_stay_exact_in_3_and_7_shards() {
    let d = dup_fixture();
    let pipeline = d.path().join("pipeline.toml");
    let one = d.path().join("single");
    single(d.path(), &pipeline, &one);
    let want = published(&one);
    let m = manifest(&one);
    let dups = m["counts"]["reject_reasons"]["duplicate"]
        .as_u64()
        .unwrap_or(0);
    assert!(dups >= 60, "the fixture has duplicates: {}", m["counts"]);
    for n in [3u32, 7] {
        let out = d.path().join(format!("shards-{n}"));
        let o = sharded(d.path(), &pipeline, &out, n);
        ok(&o);
        assert_same(&published(&out), &want, &format!("{n} shards"));
        assert_eq!(manifest(&out)["counts"], m["counts"], "{n} shards");
    }
}

fn auto_shard(dir: &Path, pipeline: &Path, out: &Path, index: u32, n: u32) -> Command {
    let a = run_args(pipeline, out, &["--shard", "auto"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut c = pulso(dir, &a);
    c.env("JOB_COMPLETION_INDEX", index.to_string())
        .env("PULSO_SHARD_COUNT", n.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn auto_shards_started_together_one_killed_and_retried() {
    let d = dup_fixture();
    let pipeline = d.path().join("pipeline.toml");
    let one = d.path().join("single");
    single(d.path(), &pipeline, &one);
    let want = published(&one);

    let out = d.path().join("out");
    let n = 3;
    let ready = d.path().join("shard1.ready");
    let mut children = Vec::new();
    for i in 0..n {
        let mut c = auto_shard(d.path(), &pipeline, &out, i, n);
        if i == 1 {
            // Everything written but the manifest: the worst moment to die.
            c.env("PULSO_FAULT", "shard:manifest:pause")
                .env("PULSO_FAULT_READY", &ready);
        }
        children.push(c.spawn().unwrap());
    }
    wait_for(&ready, &mut children[1]);
    children[1].kill().unwrap(); // SIGKILL
    let killed = children.remove(1).wait_with_output().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed.status),
        Some(9)
    );
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    // The killed shard left an attempt without a manifest: the commit refuses, naming it.
    let shard1 = out
        .join("_pulso/staging")
        .join(RUN)
        .join("shard-0001-of-0003");
    assert_eq!(std::fs::read_dir(&shard1).unwrap().count(), 1);
    let o = commit(d.path(), &pipeline, &out);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("shard 1/3") && err.contains("--shard 1/3"),
        "{err}"
    );
    assert!(!out.join("_pulso/current").exists(), "nothing is published");

    // Kubernetes retries the pod: same index, new attempt; the commit takes it.
    let o = auto_shard(d.path(), &pipeline, &out, 1, n)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_dir(&shard1).unwrap().count(),
        1,
        "the retry replaced the killed attempt"
    );
    // And a pod that ran twice to the end (both attempts complete) is not counted twice.
    let o = auto_shard(d.path(), &pipeline, &out, 2, n)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = commit(d.path(), &pipeline, &out);
    ok(&o);
    assert_same(
        &published(&out),
        &want,
        "3 auto shards, one killed and retried",
    );
}

#[test]
fn a_missing_shard_exits_2_naming_it_and_publishes_nothing() {
    let d = dup_fixture();
    let pipeline = d.path().join("pipeline.toml");
    let out = d.path().join("out");
    let o = commit(d.path(), &pipeline, &out);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no shard of run"));
    for i in [0, 2] {
        let spec = format!("{i}/3");
        let o = exec(d.path(), &run_args(&pipeline, &out, &["--shard", &spec]));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let o = commit(d.path(), &pipeline, &out);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("shard 1/3") && err.contains("Nothing was published"),
        "{err}"
    );
    assert!(!out.join("_pulso/current").exists() && !out.join("signals").exists());
    // The staged shards are kept, so running the missing one is enough.
    let o = exec(d.path(), &run_args(&pipeline, &out, &["--shard", "1/3"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    ok(&commit(d.path(), &pipeline, &out));
    assert!(out.join("_pulso/current").exists());
}

#[test]
fn a_shard_with_another_configuration_exits_2_naming_it() {
    let d = dup_fixture();
    let pipeline = d.path().join("pipeline.toml");
    let other = d.path().join("pipeline-edited.toml");
    let mut body = std::fs::read_to_string(&pipeline).unwrap();
    body.push_str("\n# edited between shards\n");
    std::fs::write(&other, body).unwrap();
    let out = d.path().join("out");
    for (i, p) in [(0, &pipeline), (1, &pipeline), (2, &other)] {
        let spec = format!("{i}/3");
        let o = exec(d.path(), &run_args(p, &out, &["--shard", &spec]));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let o = commit(d.path(), &pipeline, &out);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("shard 2/3") && err.contains("config hash"),
        "{err}"
    );
    assert!(!out.join("_pulso/current").exists());
}

#[test]
fn shard_flags_are_validated_before_any_work() {
    let d = dup_fixture();
    let pipeline = d.path().join("pipeline.toml");
    let out = d.path().join("out");
    let p = pipeline.display().to_string();
    for (args, needle) in [
        (vec!["run", &p, "--shard", "0/3"], "--run-id"),
        (
            vec!["run", &p, "--shard", "3/3", "--run-id", "x"],
            "expected I/N",
        ),
        (
            vec!["run", &p, "--shard", "auto", "--run-id", "x"],
            "JOB_COMPLETION_INDEX",
        ),
        (vec!["run", &p, "--run-id", "../x"], "--run-id"),
    ] {
        let o = pulso(d.path(), &args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(needle),
            "{args:?}: {}",
            text(&o)
        );
    }
    let o = pulso(d.path(), &["run", &p, "--shard", "auto", "--run-id", "x"])
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("PULSO_SHARD_COUNT"));
    assert!(!out.exists(), "nothing was written");
}

/// A text's scores do not depend on the other texts of the call (the reason a shard scores each
/// record bit for bit like the whole night): `pulso score` on many texts and on a subset agree
/// exactly on the shared ones.
#[test]
fn scores_do_not_depend_on_the_other_texts_of_a_call() {
    let d = tempfile::tempdir().unwrap();
    let all: Vec<String> = (0..600)
        .map(|i| words(i * 7 + 3).repeat(1 + i % 9))
        .collect();
    let subset: Vec<String> = all.iter().step_by(7).cloned().collect();
    std::fs::write(d.path().join("all.txt"), all.join("\n") + "\n").unwrap();
    std::fs::write(d.path().join("sub.txt"), subset.join("\n") + "\n").unwrap();
    let score = |f: &str| {
        let o = pulso(d.path(), &["score", f, "--threads", "2", "--model"])
            .arg(tiny_model())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["text"].as_str().unwrap().to_string(), v.to_string())
            })
            .collect::<BTreeMap<_, _>>()
    };
    let (a, s) = (score("all.txt"), score("sub.txt"));
    assert_eq!(s.len(), subset.len());
    for (t, line) in &s {
        assert_eq!(line, &a[t], "{t}");
    }
}

#[test]
fn the_last_shard_to_finish_commits_with_commit_when_complete() {
    let d = dup_fixture();
    let pipeline = d.path().join("pipeline.toml");
    let one = d.path().join("single");
    single(d.path(), &pipeline, &one);
    let out = d.path().join("out");
    for i in [2, 0, 1] {
        let spec = format!("{i}/3");
        let o = exec(
            d.path(),
            &run_args(
                &pipeline,
                &out,
                &["--shard", &spec, "--commit-when-complete"],
            ),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        // Published only once the third shard finished.
        assert_eq!(
            out.join("_pulso/current").exists(),
            i == 1,
            "after shard {spec}"
        );
    }
    assert_same(
        &published(&out),
        &published(&one),
        "auto-committed by the last shard",
    );
}

#[test]
fn guard_rails_apply_to_the_whole_night_at_the_commit() {
    let d = dup_fixture();
    // The survey's timestamp mapped to the department column: every survey row is rejected.
    let bad = d.path().join("pipeline-typo.toml");
    let body = std::fs::read_to_string(d.path().join("pipeline.toml"))
        .unwrap()
        .replace("timestamp = \"at\"", "timestamp = \"dept\"");
    std::fs::write(&bad, body).unwrap();
    let out = d.path().join("out");
    for i in 0..3 {
        let spec = format!("{i}/3");
        let o = exec(d.path(), &run_args(&bad, &out, &["--shard", &spec]));
        assert_eq!(
            o.status.code(),
            Some(0),
            "a shard stages, the commit judges: {}",
            text(&o)
        );
    }
    let o = commit(d.path(), &bad, &out);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("source 'survey'") && err.contains("max_reject_ratio"),
        "{err}"
    );
    assert!(!out.join("_pulso/current").exists(), "nothing is published");
}
