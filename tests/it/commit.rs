//! The one-commit-point promise, with real processes: `pulso run` killed with SIGKILL at named
//! fault points (`PULSO_FAULT`, see src/publish/fault.rs) and at timed moments, two concurrent
//! runs, a full disk (tmpfs where mounting works, an injected ENOSPC always), a reader panic and a
//! source gone bad. After each, what readers see must be byte-identical to the previous version,
//! and the next run must produce what an uninterrupted run produces.

use arrow::array::RecordBatch;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::night::{
    assert_same, batches, copy_dir, ok, rows_of, text, tiny_model, write_inputs,
};

/// Each row as `col=value|…`, without `run_id` (differs between runs).
fn row_strings(b: &RecordBatch) -> Vec<String> {
    crate::common::night::row_strings_without(b, &["run_id"])
}

fn wait_for(p: &Path, child: &mut std::process::Child) {
    crate::common::night::wait_until_exists(p, child, Duration::from_secs(120));
}

const BIN: &str = env!("CARGO_BIN_EXE_pulso");
const D0: &str = "2026-11-13";
const D1: &str = "2026-11-14";

/// A temp dir with the pipeline and night 0's small inputs.
fn fixture() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("pipeline.toml"),
        crate::common::night::pipeline("commit-fixture", "out", "data"),
    )
    .unwrap();
    d
}

fn cmd(dir: &Path, date: &str, extra: &[&str]) -> Command {
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
    .args(extra)
    .current_dir(dir)
    .env("PULSO_PSEUDONYM_KEY", "test-key")
    .env_remove("PULSO_MODEL")
    .env_remove("PULSO_FAULT");
    c
}

fn run(dir: &Path, date: &str, fault: Option<&str>) -> Output {
    let mut c = cmd(dir, date, &[]);
    if let Some(f) = fault {
        c.env("PULSO_FAULT", f);
    }
    c.output().expect("run pulso")
}

/// Night 0 for D0, then night 1's inputs for D1: the "previous output" every test starts from.
/// Then night 2's (bigger) inputs are put in place for the run under test, which replaces D1.
fn previous_state(d: &Path) {
    write_inputs(d, 0, 1, 40);
    ok(&run(d, D0, None));
    write_inputs(d, 1, 1, 60);
    ok(&run(d, D1, None));
    write_inputs(d, 2, 3, 800);
}

/// Everything a reader can see under `out`, byte for byte: every file reached through the entry
/// points (following symlinks), plus which version is current and its manifest.
fn visible(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![(out.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            if rel.is_empty() && (name == "_pulso" || name == ".pulso.lock") {
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
            } else if p.is_file() {
                m.insert(r, std::fs::read(&p).unwrap());
            }
        }
    }
    if let Ok(t) = std::fs::read_link(out.join("_pulso/current")) {
        m.insert("@current".into(), t.to_string_lossy().as_bytes().to_vec());
    }
    if let Some(c) = pulso::publish::committed(out).unwrap() {
        m.insert("@manifest".into(), std::fs::read(&c.manifest).unwrap());
    }
    m
}

/// What a run produced, minus what differs between two runs of the same inputs (run ids, times):
/// every Parquet file's rows as sorted JSON without `run_id`, and the names of the other files.
fn content(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut c = BTreeMap::new();
    for rel in visible(out).into_keys() {
        if rel.starts_with('@') {
            continue;
        }
        if !rel.ends_with(".parquet") {
            // Manifests and _SUCCESS hold run ids and times; `runs_of` counts the manifests.
            continue;
        }
        let mut rows = Vec::new();
        for b in batches(&out.join(&rel)) {
            rows.extend(row_strings(&b));
        }
        rows.sort();
        c.insert(rel, rows);
    }
    c
}

/// Committed runs listed under `OUT/runs/`.
fn runs_of(out: &Path) -> usize {
    std::fs::read_dir(out.join("runs"))
        .map(|r| r.count())
        .unwrap_or(0)
}

/// No leftovers of dead runs once a run has committed: at most the current and previous trees,
/// no claimed-but-unpublished manifests.
fn assert_clean(out: &Path) {
    let runs = std::fs::read_dir(out.join("_pulso/runs")).unwrap().count();
    assert!(runs <= 2, "{runs} trees kept");
    let c = pulso::publish::committed(out).unwrap().unwrap();
    for e in std::fs::read_dir(out.join("_pulso/log")).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().to_string();
        let v: u64 = n.trim_end_matches(".json").parse().unwrap();
        assert!(v <= c.version, "orphan manifest {n}");
    }
}

/// Kill points before `commit:renamed` must leave the previous version; from it on, the new one.
const KILL_POINTS: [(&str, bool); 22] = [
    ("read:open", false),
    ("read:open@4", false),
    ("read:chunk", false),
    ("score:chunk", false),
    ("score:chunk@2", false),
    ("write:batch", false),
    ("write:batch@4", false),
    ("write:file-closed", false),
    ("write:file-closed@4", false),
    ("aggregate:done", false),
    ("commit:start", false),
    ("commit:link", false),
    ("commit:link@4", false),
    ("commit:success-written", false),
    ("commit:synced", false),
    ("commit:claimed", false),
    ("commit:manifest-linked", false),
    ("commit:entries", false),
    ("commit:next-link", false),
    ("commit:renamed", true),
    ("commit:published", true),
    ("commit:gc", true),
];

#[test]
fn sigkill_at_every_step_leaves_previous_or_new_version_and_rerun_matches() {
    let base = fixture();
    previous_state(base.path());
    let prev_out = base.path().join("out");
    let before = visible(&prev_out);
    let before_content = content(&prev_out);

    // The reference: the same run, uninterrupted, on a copy.
    let reference = tempfile::tempdir().unwrap();
    copy_dir(base.path(), &reference.path().join("w"));
    let rw = reference.path().join("w");
    let o = run(&rw, D1, None);
    ok(&o);
    let want = content(&rw.join("out"));
    let want_runs = runs_of(&rw.join("out"));
    assert_eq!(want_runs, 3);
    assert_ne!(
        want, before_content,
        "the run under test must change the output"
    );
    assert!(rows_of(&want, "signals/") > 4000, "{:?}", want.keys());
    assert!(rows_of(&want, &format!("signals/segment=external/date={D0}")) > 0);

    let mut killed = 0;
    for (point, published) in KILL_POINTS {
        let t = tempfile::tempdir().unwrap();
        let w = t.path().join("w");
        copy_dir(base.path(), &w);
        let o = run(&w, D1, Some(point));
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGKILL),
            "{point} was not reached\n{}",
            text(&o)
        );
        killed += 1;
        let out = w.join("out");
        if published {
            assert_same(
                &content(&out),
                &want,
                &format!("killed at {point}: the new version is complete"),
            );
        } else {
            assert!(
                visible(&out) == before,
                "killed at {point}: readers must still see the previous version, byte for byte"
            );
        }
        let o = run(&w, D1, None);
        ok(&o);
        assert_same(
            &content(&out),
            &want,
            &format!("re-run after a kill at {point}"),
        );
        assert_eq!(
            runs_of(&out),
            want_runs + usize::from(published),
            "{point}: one manifest per committed run"
        );
        assert_clean(&out);
    }
    assert!(killed >= 20);

    // Timed kills, wherever the run happens to be.
    let mut timed = 0;
    let mut timed_before = 0;
    for ms in [100u64, 600, 1200, 1800, 2400, 3000, 3600] {
        let t = tempfile::tempdir().unwrap();
        let w = t.path().join("w");
        copy_dir(base.path(), &w);
        let mut child = cmd(&w, D1, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let out = w.join("out");
        if status.signal() == Some(libc::SIGKILL) {
            timed += 1;
            let now = visible(&out);
            assert!(
                now == before || content(&out) == want,
                "kill after {ms} ms left a mix"
            );
            if now == before {
                timed_before += 1;
            }
        }
        ok(&run(&w, D1, None));
        assert_same(
            &content(&out),
            &want,
            &format!("re-run after a kill at {ms} ms"),
        );
        assert_clean(&out);
    }
    eprintln!(
        "kill points: {killed} named; {timed} timed kills landed mid-run ({timed_before} before the commit point)"
    );
}

#[test]
fn a_second_concurrent_run_fails_clearly_and_changes_nothing() {
    let d = fixture();
    previous_state(d.path());
    let out = d.path().join("out");
    let before = visible(&out);
    for point in ["write:batch@2", "commit:claimed"] {
        let ready = d.path().join("paused");
        let _ = std::fs::remove_file(&ready);
        let mut a = cmd(d.path(), D1, &[])
            .env("PULSO_FAULT", format!("{point}:pause"))
            .env("PULSO_FAULT_READY", &ready)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&ready, &mut a);
        let b = run(d.path(), D1, None);
        assert_eq!(b.status.code(), Some(2), "{}", text(&b));
        let e = String::from_utf8_lossy(&b.stderr);
        assert!(
            e.contains("locked by another pulso run") && e.contains(&format!("pid {}", a.id())),
            "{e}"
        );
        assert!(visible(&out) == before, "paused at {point}");
        a.kill().unwrap();
        a.wait().unwrap();
        assert!(visible(&out) == before, "killed at {point}");
    }
    ok(&run(d.path(), D1, None));
    assert!(visible(&out) != before);
    assert_clean(&out);
}

#[test]
fn injected_failures_publish_nothing_and_exit_2() {
    let d = fixture();
    previous_state(d.path());
    let out = d.path().join("out");
    let before = visible(&out);
    for (fault, says) in [
        ("write:batch@3:error", "no space left on device"),
        ("write:file-closed@2:error", "no space left on device"),
        ("commit:link@2:error", "no space left on device"),
        ("commit:claimed:error", "no space left on device"),
        ("read:chunk:panic", "reader thread panicked"),
        ("read:open@3:error", "source 'survey'"),
    ] {
        let o = run(d.path(), D1, Some(fault));
        assert_eq!(o.status.code(), Some(2), "{fault}\n{}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(says), "{fault}: wanted {says:?}\n{e}");
        assert!(visible(&out) == before, "{fault}");
        let runs = std::fs::read_dir(out.join("_pulso/runs")).unwrap().count();
        assert_eq!(runs, 2, "{fault}: the failed run's folder is removed");
    }
    ok(&run(d.path(), D1, None));
    let c = pulso::publish::committed(&out).unwrap().unwrap();
    assert_eq!(c.version, 3, "failed runs claim no version");
}

struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_on_a_small_tmpfs() {
    let d = fixture();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let m = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&out)
        .output();
    let mounted = matches!(&m, Ok(o) if o.status.success());
    if !mounted {
        // The injected ENOSPC of `injected_failures_publish_nothing_and_exit_2` covers this case.
        eprintln!(
            "SKIPPED disk_full_on_a_small_tmpfs: cannot mount a tmpfs here ({:?})",
            m.map(|o| String::from_utf8_lossy(&o.stderr).to_string())
        );
        return;
    }
    let _guard = Mount(out.clone());
    previous_state(d.path());
    let before = visible(&out);
    // Fill the file system, then free a little: the run fails while writing Parquet.
    let filler = out.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![7u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(96 << 10)).unwrap();
    }
    let o = run(d.path(), D1, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("No space left") || e.contains("no space left"),
        "{e}"
    );
    std::fs::remove_file(&filler).unwrap();
    assert!(visible(&out) == before);
    ok(&run(d.path(), D1, None));
    assert!(visible(&out) != before);
    assert_clean(&out);
}

#[test]
fn a_source_gone_bad_fails_the_run_and_keeps_last_nights_data() {
    let d = fixture();
    previous_state(d.path());
    let out = d.path().join("out");
    let before = visible(&out);
    let p = d.path().join("pipeline.toml");
    let good = std::fs::read_to_string(&p).unwrap();

    // A JSON path typo in one source: every mention is rejected.
    std::fs::write(&p, good.replace("text = \"text\"", "text = \"txt\"")).unwrap();
    let o = run(d.path(), D1, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    for want in [
        "source 'mentions'",
        "missing_field:text",
        "\"txt\"",
        "mentions_0.jsonl:1",
        "the row has fields",
        "text",
        "--allow-rejects",
    ] {
        assert!(e.contains(want), "wanted {want:?}\n{e}");
    }
    assert!(visible(&out) == before);

    // A CSV column typo: the header is checked when the file is opened.
    std::fs::write(&p, good.replace("text = \"comment\"", "text = \"coment\"")).unwrap();
    let o = run(d.path(), D1, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    for want in ["source 'survey'", "coment", "comment", "survey_0.csv"] {
        assert!(e.contains(want), "wanted {want:?}\n{e}");
    }
    assert!(visible(&out) == before);

    // A feed that went empty while the previous run had signals from it.
    std::fs::write(&p, &good).unwrap();
    for f in std::fs::read_dir(d.path().join("data")).unwrap() {
        let f = f.unwrap().path();
        if f.to_string_lossy().contains("mentions_") {
            std::fs::write(&f, "").unwrap();
        }
    }
    let o = run(d.path(), D1, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("source 'mentions' yielded no signals") && e.contains("previous run"),
        "{e}"
    );
    assert!(visible(&out) == before);

    // --allow-rejects lets this one run through.
    let o = cmd(d.path(), D1, &["--allow-rejects"]).output().unwrap();
    ok(&o);
    let c = content(&out);
    assert_eq!(
        rows_of(&c, &format!("signals/segment=external/date={D1}")),
        0
    );
    let m = pulso::publish::committed_manifest(&out).unwrap();
    assert_eq!(m["allow_rejects"], true);
}

#[test]
fn manifest_records_lineage_and_commit() {
    let d = fixture();
    write_inputs(d.path(), 0, 1, 30);
    ok(&run(d.path(), D0, None));
    let out = d.path().join("out");
    let m = pulso::publish::committed_manifest(&out).unwrap();
    let sha = |p: &Path| pulso::publish::lineage::sha256_file(p).unwrap();
    assert_eq!(
        m["lineage"]["pipeline_file"]["sha256"],
        sha(&d.path().join("pipeline.toml"))
    );
    let files = m["lineage"]["model"]["files"].as_array().unwrap();
    let w = files
        .iter()
        .find(|f| f["file"] == "model.safetensors")
        .expect("weights hashed");
    assert_eq!(w["sha256"], sha(&tiny_model().join("model.safetensors")));
    assert!(m["lineage"]["model"]["hub"].is_null());
    assert_eq!(
        m["lineage"]["topics"]["path"],
        "built-in pipelines/topics.toml"
    );
    assert_eq!(m["commit"]["version"], 1);
    assert_eq!(
        m["commit"]["manifest"],
        "_pulso/log/00000000000000000001.json"
    );
    // The same manifest is what `OUT/runs/RUN_ID.json` shows.
    let run_id = m["run_id"].as_str().unwrap();
    let in_tree = std::fs::read(out.join("runs").join(format!("{run_id}.json"))).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&in_tree).unwrap(),
        m
    );
    // And `pulso report` reads the committed version.
    let o = Command::new(BIN)
        .args(["report", "out", "--date", D0])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// The Python that has DuckDB, pyarrow and Polars (`make test` installs them into `.venv`).
fn readers_python() -> PathBuf {
    std::env::var_os("PULSO_READERS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

#[test]
fn plain_readers_see_the_committed_hive_layout() {
    let d = fixture();
    write_inputs(d.path(), 0, 1, 40);
    ok(&run(d.path(), D0, None));
    write_inputs(d.path(), 1, 2, 30);
    ok(&run(d.path(), D1, None));
    let out = d.path().join("out");
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (k, rows) in content(&out) {
        if let Some(rest) = k.strip_prefix("signals/segment=") {
            let mut p = rest.split('/');
            let seg = p.next().unwrap();
            let date = p.next().unwrap().trim_start_matches("date=");
            *want.entry(format!("{seg}/{date}")).or_default() += rows.len() as u64;
        }
    }
    assert_eq!(want.len(), 4, "{want:?}");
    let py = readers_python();
    let o = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/read_plain.py"))
        .arg(&out)
        .output();
    let o = match o {
        Ok(o) if o.status.success() => o,
        other => {
            eprintln!("SKIPPED plain readers: {} did not run ({other:?}); `make test` installs duckdb, pyarrow and polars", py.display());
            return;
        }
    };
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let missing = got["missing"].as_array().unwrap();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED plain readers {missing:?}: not installed for {}",
            py.display()
        );
    }
    let mut checked = 0;
    for tool in ["duckdb", "pyarrow", "polars"] {
        if got[tool].is_null() {
            continue;
        }
        let seen: BTreeMap<String, u64> = serde_json::from_value(got[tool].clone()).unwrap();
        assert_eq!(
            seen, want,
            "{tool} reads the Hive layout through the commit symlinks"
        );
        checked += 1;
    }
    eprintln!(
        "plain readers checked: {checked} ({})",
        String::from_utf8_lossy(&o.stdout).trim()
    );
}

/// The scoring stream (batch queue + replicas, `src/batch/`): a panic or an error in a replica or
/// in the queue thread fails the run with exit 2 and publishes nothing (no hang, no partial output).
#[test]
fn a_panic_or_error_in_the_scoring_stream_fails_the_run_and_publishes_nothing() {
    let d = fixture();
    previous_state(d.path());
    let out = d.path().join("out");
    let before = visible(&out);
    for (fault, says) in [
        ("score:batch@3:panic", "scorer replica panicked"),
        ("score:batch@2:error", "no space left on device"),
        ("score:queue@2:panic", "batch queue thread panicked"),
        ("score:queue@4:error", "no space left on device"),
    ] {
        let o = run(d.path(), D1, Some(fault));
        assert_eq!(o.status.code(), Some(2), "{fault}\n{}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(says), "{fault}: wanted {says:?}\n{e}");
        assert!(e.contains("nothing was published"), "{fault}\n{e}");
        assert!(visible(&out) == before, "{fault}");
        let runs = std::fs::read_dir(out.join("_pulso/runs")).unwrap().count();
        assert_eq!(runs, 2, "{fault}: the failed run's folder is removed");
    }
}
