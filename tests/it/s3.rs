//! Object-storage outputs and inputs against a real S3-compatible server: `moto_server` (PyPI
//! `moto[server]`, installed into `.venv` by `make test`) started on 127.0.0.1 with a free port.
//! The real `pulso` binary reads its inputs from `s3://` and commits to `s3://`; runs are killed
//! with SIGKILL at fault points (`PULSO_FAULT`, see src/publish/fault.rs) from reading to after
//! the commit, two writers race for one version, and pyarrow / Polars / DuckDB read the result
//! from S3. No moto server is a test failure, unless PULSO_ALLOW_NO_S3 is set (then skipped, saying so).

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pulso::storage::{self, Remote};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::night::{assert_same, night_files, ok, rows_of, text};

/// Each row as `col=value|…`, without `run_id` (differs between runs).
fn row_strings(b: &RecordBatch) -> Vec<String> {
    crate::common::night::row_strings_without(b, &["run_id"])
}

fn wait_for(p: &Path, child: &mut Child) {
    crate::common::night::wait_until_exists(p, child, Duration::from_secs(180));
}

/// Night 2's run for D1 on `out`, killed with SIGKILL at fault point `point` (which it must reach).
fn killed_at(dir: &Path, out: &str, point: &str) {
    let o = cmd(dir, 2, D1, out)
        .env("PULSO_FAULT", point)
        .output()
        .unwrap();
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGKILL),
        "{point} was not reached\n{}",
        text(&o)
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_pulso");
const D0: &str = "2026-11-13";
const D1: &str = "2026-11-14";

// ---- the moto server ---------------------------------------------------------------------------

struct Moto {
    endpoint: String,
    child: std::sync::Mutex<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let mut c = self.child.lock().unwrap();
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn moto_bin() -> PathBuf {
    std::env::var_os("PULSO_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"))
}

fn start_moto() -> Result<Moto, String> {
    let bin = moto_bin();
    if !bin.is_file() {
        return Err(format!("{} not found", bin.display()));
    }
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| e.to_string())?
            .local_addr()
            .unwrap()
            .port();
        let log = std::env::temp_dir().join(format!("pulso-moto-{port}.log"));
        let stderr = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        // Spawned from a thread that lives as long as this process, with PR_SET_PDEATHSIG: the
        // server dies with the test binary (statics are never dropped).
        let (tx, rx) = std::sync::mpsc::channel();
        let b = bin.clone();
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut c = Command::new(&b);
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(stderr);
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                c.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let _ = tx.send(c.spawn());
            loop {
                std::thread::park();
            }
        });
        let child = rx
            .recv()
            .unwrap()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Moto {
            endpoint: endpoint.clone(),
            child: std::sync::Mutex::new(child),
        };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            if let Some(s) = moto.child.lock().unwrap().try_wait().unwrap() {
                eprintln!("moto exited ({s}); log {}", log.display());
                break;
            }
            if ureq::get(&format!("{endpoint}/moto-api/")).call().is_ok() {
                return Ok(moto);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Err("moto_server did not answer".into())
}

/// The one server of this test binary, with the environment every `pulso` (and this process's
/// own object_store client) uses to reach it. None only with PULSO_ALLOW_NO_S3 set (skipped, with
/// the reason printed); otherwise a server that cannot start fails the test.
fn moto() -> Option<&'static Moto> {
    static M: OnceLock<Result<Moto, String>> = OnceLock::new();
    let m = M.get_or_init(|| {
        let m = start_moto()?;
        for (k, v) in env_of(&m.endpoint) {
            std::env::set_var(k, v);
        }
        Ok(m)
    });
    match m {
        Ok(m) => Some(m),
        // A missing server is a failure (`make test` installs moto[server]); skipping is an
        // explicit choice for machines without it.
        Err(e) if std::env::var_os("PULSO_ALLOW_NO_S3").is_some() => {
            eprintln!("SKIPPED (PULSO_ALLOW_NO_S3 is set): no S3 server for this test ({e})");
            None
        }
        Err(e) => panic!(
            "no S3 server for this test ({e}): run `make test` (it installs moto[server] into \
             .venv), or set PULSO_ALLOW_NO_S3=1 to skip the object-storage tests"
        ),
    }
}

fn env_of(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

fn bucket(m: &Moto, name: &str) -> String {
    ureq::put(&format!("{}/{name}", m.endpoint))
        .call()
        .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
    format!("s3://{name}")
}

fn remote(url: &str) -> Remote {
    storage::remote(url).unwrap()
}

// ---- inputs (the night of tests/it/common/night.rs) -------------------------------------------

/// Uploads night `night`'s inputs under `prefix` (`files` files per source, `rows` rows each).
fn upload_inputs(prefix: &str, night: usize, files: usize, rows: usize) {
    let r = remote(prefix);
    let tmp = tempfile::tempdir().unwrap();
    for (name, body) in night_files(night, files, rows) {
        let p = tmp.path().join(&name);
        std::fs::write(&p, body).unwrap();
        r.upload(&p, &r.path(&name)).unwrap();
    }
}

/// A local folder with one pipeline file per night (`pN.toml`), reading `BUCKET/in/nN/`.
fn pipelines(bucket: &str, out: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for night in 0..3 {
        std::fs::write(
            d.path().join(format!("p{night}.toml")),
            crate::common::night::pipeline("s3-fixture", out, &format!("{bucket}/in/n{night}")),
        )
        .unwrap();
    }
    d
}

fn cmd(dir: &Path, night: usize, date: &str, out: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["run", &format!("p{night}.toml"), "--date", date])
        .args(["--no-progress", "--threads", "1", "--out", out])
        .current_dir(dir)
        .env("PULSO_PSEUDONYM_KEY", "test-key")
        .env_remove("PULSO_MODEL")
        .env_remove("PULSO_FAULT")
        .env_remove("PULSO_GC_GRACE_S");
    c
}

// ---- what readers see --------------------------------------------------------------------------

/// Everything a reader resolving `out` sees, byte for byte: the current version's log entry and
/// every object of its tree.
fn visible(out: &str) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    let Some(v) = pulso::publish::remote::committed(out).unwrap() else {
        return m;
    };
    let r = remote(out);
    m.insert(
        "@manifest".into(),
        r.get(&storage::remote(&v.manifest_url).unwrap().prefix)
            .unwrap()
            .to_vec(),
    );
    let t = remote(&v.tree_url);
    for o in t.list("").unwrap() {
        let rel = t.rel(&o.location).unwrap();
        m.insert(rel, t.get(&o.location).unwrap().to_vec());
    }
    m
}

/// The current version's Parquet files as sorted rows without run ids (what two runs of the same
/// inputs agree on).
fn content(out: &str) -> BTreeMap<String, Vec<String>> {
    let mut c = BTreeMap::new();
    for (rel, bytes) in visible(out) {
        if !rel.ends_with(".parquet") {
            continue;
        }
        let mut rows = Vec::new();
        for b in ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap()
        {
            rows.extend(row_strings(&b.unwrap()));
        }
        rows.sort();
        c.insert(rel, rows);
    }
    c
}

/// Committed runs listed in the current tree's `runs/`.
fn runs_of(out: &str) -> usize {
    visible(out)
        .keys()
        .filter(|k| k.starts_with("runs/") && k.ends_with(".json"))
        .count()
}

/// Version trees stored under `OUT/_pulso/runs/`.
fn trees(out: &str) -> Vec<String> {
    remote(out).list_dirs("_pulso/runs").unwrap()
}

/// Server-side copy of every object under `from` to `to`.
fn copy_prefix(from: &str, to: &str) {
    let (a, b) = (remote(from), remote(to));
    for o in a.list("").unwrap() {
        let rel = a.rel(&o.location).unwrap();
        a.copy(&o.location, &b.path(&rel)).unwrap();
    }
}

/// Two nights on `out` (D0, then D1); night 2's bigger inputs are the run under test (D1 again).
fn previous_state(dir: &Path, out: &str) {
    ok(&cmd(dir, 0, D0, out).output().unwrap());
    ok(&cmd(dir, 1, D1, out).output().unwrap());
}

fn inputs_once(b: &str) {
    upload_inputs(&format!("{b}/in/n0"), 0, 1, 40);
    upload_inputs(&format!("{b}/in/n1"), 1, 1, 60);
    upload_inputs(&format!("{b}/in/n2"), 2, 3, 800);
}

/// Kill points before `commit:claimed` (the create-if-absent of the log entry) must leave the
/// previous version; from it on, the new one.
const KILL_POINTS: [(&str, bool); 18] = [
    ("read:open", false),
    ("read:chunk", false),
    ("score:chunk", false),
    ("score:chunk@2", false),
    ("write:batch", false),
    ("write:file-closed@3", false),
    ("aggregate:done", false),
    ("commit:start", false),
    ("commit:upload", false),
    ("commit:upload@5", false),
    ("commit:link", false),
    ("commit:link@3", false),
    ("commit:success-written", false),
    ("commit:manifest-linked", false),
    ("commit:synced", false),
    ("commit:claimed", true),
    ("commit:published", true),
    ("commit:gc", true),
];

#[test]
fn s3_sigkill_at_every_step_leaves_previous_or_new_version_and_rerun_matches() {
    let Some(m) = moto() else { return };
    let b = bucket(m, "kills");
    inputs_once(&b);
    let base = format!("{b}/base");
    let dir = pipelines(&b, &base);
    previous_state(dir.path(), &base);
    let before = visible(&base);
    assert!(
        before.keys().any(|k| k.ends_with(".parquet")),
        "{:?}",
        before.keys()
    );
    let v = pulso::publish::remote::committed(&base).unwrap().unwrap();
    assert_eq!(v.version, 2);

    // The reference: the same run, uninterrupted, on a copy.
    let reference = format!("{b}/reference");
    copy_prefix(&base, &reference);
    assert!(
        visible(&reference) == before,
        "a copied output is the same output"
    );
    ok(&cmd(dir.path(), 2, D1, &reference).output().unwrap());
    let want = content(&reference);
    let want_runs = runs_of(&reference);
    assert_eq!(want_runs, 3);
    assert!(rows_of(&want, "signals/") > 4000, "{:?}", want.keys());
    assert!(rows_of(&want, &format!("signals/segment=external/date={D0}")) > 0);
    assert_ne!(want, content(&base));

    let mut killed = 0;
    for (i, (point, published)) in KILL_POINTS.into_iter().enumerate() {
        let out = format!("{b}/k{i}");
        copy_prefix(&base, &out);
        killed_at(dir.path(), &out, point);
        killed += 1;
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
        // The next run (collecting the dead run's tree at once) produces the reference output.
        let o = cmd(dir.path(), 2, D1, &out)
            .env("PULSO_GC_GRACE_S", "0")
            .output()
            .unwrap();
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
        let t = trees(&out);
        assert!(t.len() <= 2, "{point}: trees left {t:?}");
    }
    assert_eq!(killed, KILL_POINTS.len());
    eprintln!("s3 kill points: {killed} named, each followed by a matching re-run");
}

#[test]
fn s3_two_concurrent_writers_one_loses_with_the_conflict_error() {
    let Some(m) = moto() else { return };
    let b = bucket(m, "race");
    inputs_once(&b);
    let out = format!("{b}/out");
    let dir = pipelines(&b, &out);
    previous_state(dir.path(), &out);
    // A stops right before its commit (tree uploaded) or before reading its first file; B runs
    // start to end meanwhile and commits version 3; then A goes on and must lose.
    for (k, point) in ["commit:synced", "read:open"].into_iter().enumerate() {
        let ready = dir.path().join(format!("ready-{k}"));
        let mut a = cmd(dir.path(), 2, D1, &out)
            .env("PULSO_FAULT", format!("{point}:wait"))
            .env("PULSO_FAULT_READY", &ready)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(&ready, &mut a);
        let base_version = pulso::publish::remote::committed(&out)
            .unwrap()
            .unwrap()
            .version;
        let o = cmd(dir.path(), 1, D1, &out).output().unwrap();
        ok(&o);
        let after_b = pulso::publish::remote::committed(&out).unwrap().unwrap();
        assert_eq!(after_b.version, base_version + 1);
        let seen_b = visible(&out);
        std::fs::remove_file(&ready).unwrap();
        let o = a.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{point}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(&format!(
                "version {} of {out} was committed by another writer",
                base_version + 1
            )) && e.contains(&after_b.run_id)
                && e.contains("nothing was published"),
            "{point}: {e}"
        );
        // Readers see B's version, untouched; A's tree is gone.
        assert!(visible(&out) == seen_b, "{point}: B's version changed");
        let t = trees(&out);
        assert!(t.len() <= 2, "{point}: {t:?}");
        assert!(t.contains(&after_b.run_id), "{t:?}");
    }
    // And the loser simply runs again.
    ok(&cmd(dir.path(), 2, D1, &out).output().unwrap());
    assert_eq!(
        pulso::publish::remote::committed(&out)
            .unwrap()
            .unwrap()
            .version,
        5
    );
}

#[test]
fn s3_report_current_and_plain_readers() {
    let Some(m) = moto() else { return };
    let b = bucket(m, "readers");
    upload_inputs(&format!("{b}/in/n0"), 0, 1, 40);
    upload_inputs(&format!("{b}/in/n1"), 1, 2, 30);
    let out = format!("{b}/out");
    let dir = pipelines(&b, &out);
    previous_state(dir.path(), &out);

    // `pulso current` prints the tree a reader opens.
    let o = Command::new(BIN)
        .args(["current", &out, "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let cur: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = pulso::publish::remote::committed(&out).unwrap().unwrap();
    assert_eq!(cur["version"], 2);
    assert_eq!(cur["tree"], v.tree_url.as_str());
    assert!(v.tree_url.starts_with(&format!("{out}/_pulso/runs/")));
    let m = &v.manifest;
    assert_eq!(m["commit"]["store"], "s3");
    assert!(m["inputs"][0]["file"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{b}/in/n1/")));

    // `pulso report` reads the object-store output.
    let o = Command::new(BIN)
        .args(["report", &out, "--date", D1])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r = String::from_utf8_lossy(&o.stdout);
    assert!(r.contains("Acme"), "{r}");
    let local = tempfile::tempdir().unwrap();
    let html = local.path().join("r.html");
    let o = Command::new(BIN)
        .args(["report", &out])
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read_to_string(&html).unwrap().contains("Acme"));

    // Row counts per segment/date as the readers must see them.
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
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let o = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/read_s3.py"))
        .arg(cur["tree"].as_str().unwrap())
        .arg(m_endpoint())
        .output();
    let o = match o {
        Ok(o) if o.status.success() => o,
        other => {
            eprintln!(
                "SKIPPED S3 readers: {} did not run ({other:?})",
                py.display()
            );
            return;
        }
    };
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut checked = Vec::new();
    for tool in ["pyarrow", "polars", "duckdb"] {
        if got[tool].is_null() {
            continue;
        }
        let seen: BTreeMap<String, u64> = serde_json::from_value(got[tool].clone()).unwrap();
        assert_eq!(seen, want, "{tool} reads the version tree from S3");
        checked.push(tool);
    }
    eprintln!(
        "S3 readers checked: {checked:?}; not available: {}",
        got["missing"]
    );
}

fn m_endpoint() -> String {
    moto().unwrap().endpoint.clone()
}

#[test]
fn s3_errors_name_the_url_and_publish_nothing() {
    let Some(m) = moto() else { return };
    let b = bucket(m, "errors");
    upload_inputs(&format!("{b}/in/n0"), 0, 1, 40);
    let out = format!("{b}/out");
    let dir = pipelines(&b, &out);
    // A glob that matches nothing names the URL.
    std::fs::write(
        dir.path().join("p1.toml"),
        std::fs::read_to_string(dir.path().join("p0.toml"))
            .unwrap()
            .replace("/in/n0/survey_", "/in/none/survey_"),
    )
    .unwrap();
    let o = cmd(dir.path(), 1, D0, &out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(&format!("{b}/in/none/survey_*.csv")) && e.contains("matches no file"),
        "{e}"
    );
    // A bucket that does not exist, as output.
    let o = cmd(dir.path(), 0, D0, "s3://no-such-bucket/out")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("s3://no-such-bucket/out") && e.contains("nothing was published"),
        "{e}"
    );
    // An injected failure while uploading publishes nothing and leaves no tree behind.
    ok(&cmd(dir.path(), 0, D0, &out).output().unwrap());
    let before = visible(&out);
    let o = cmd(dir.path(), 0, D0, &out)
        .env("PULSO_FAULT", "commit:upload@2:error")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no space left"),
        "{}",
        text(&o)
    );
    assert!(visible(&out) == before);
    assert_eq!(trees(&out).len(), 1, "the failed run's uploads are deleted");
}

// ---- shards staging on the object store (issue 12) ---------------------------------------------

const SHARD_RUN: &str = "night-s3-shards";

/// `pulso run pN.toml --shard SPEC --run-id SHARD_RUN` into `out`.
fn shard_cmd(dir: &Path, night: usize, date: &str, out: &str, spec: &str) -> Command {
    let mut c = cmd(dir, night, date, out);
    c.args(["--shard", spec, "--run-id", SHARD_RUN])
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("PULSO_SHARD_COUNT");
    c
}

/// `pulso commit pN.toml --run-id SHARD_RUN` of `out`.
fn commit_cmd(dir: &Path, night: usize, date: &str, out: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["commit", &format!("p{night}.toml"), "--date", date])
        .args(["--out", out, "--run-id", SHARD_RUN])
        .current_dir(dir)
        .env("PULSO_PSEUDONYM_KEY", "test-key")
        .env_remove("PULSO_MODEL")
        .env_remove("PULSO_FAULT")
        .env_remove("PULSO_GC_GRACE_S");
    c
}

/// Shards `specs` of night 0 started together; each must exit 0. Returns their pids.
fn shards_together(dir: &Path, date: &str, out: &str, specs: &[&str]) -> Vec<u32> {
    let children: Vec<(String, Child)> = specs
        .iter()
        .map(|s| {
            let c = shard_cmd(dir, 0, date, out, s)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (s.to_string(), c)
        })
        .collect();
    let mut pids = Vec::new();
    for (spec, c) in children {
        pids.push(c.id());
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "shard {spec}: {}", text(&o));
    }
    pids
}

/// Rows per partition folder (all part files of a folder together, sorted): shards name their
/// part files `part-sIIII-…`, one process `part-…`.
fn by_partition(c: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rel, rows) in c {
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        m.entry(dir.to_string()).or_default().extend(rows.clone());
    }
    for rows in m.values_mut() {
        rows.sort();
    }
    m
}

/// The same view of a local output (its fixed entries, through `_pulso/current`).
fn local_partitions(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut c = BTreeMap::new();
    let mut stack: Vec<PathBuf> = ["signals", "rejects", "aggregates"]
        .iter()
        .map(|t| out.join(t))
        .collect();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let mut rows = Vec::new();
                for b in ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
                    .unwrap()
                    .build()
                    .unwrap()
                {
                    rows.extend(row_strings(&b.unwrap()));
                }
                let rel = p.strip_prefix(out).unwrap().display().to_string();
                c.insert(rel, rows);
            }
        }
    }
    by_partition(&c)
}

/// Keys under `out`'s staging folder of the test run.
fn staged_keys(out: &str) -> Vec<String> {
    let r = remote(out);
    r.list(&format!("_pulso/staging/{SHARD_RUN}"))
        .unwrap()
        .iter()
        .map(|o| r.rel(&o.location).unwrap())
        .collect()
}

/// The published manifest of `out` (its current log entry).
fn published_manifest(out: &str) -> serde_json::Value {
    serde_json::from_slice(&visible(out)["@manifest"]).unwrap()
}

#[test]
fn s3_three_shards_and_commit_equal_one_process_and_the_local_sharded_run() {
    let Some(m) = moto() else { return };
    let b = bucket(m, "shards");
    upload_inputs(&format!("{b}/in/n0"), 0, 2, 60);
    let single = format!("{b}/single");
    let out = format!("{b}/sharded");
    let dir = pipelines(&b, &out);
    ok(&cmd(dir.path(), 0, D1, &single).output().unwrap());
    let want = by_partition(&content(&single));
    assert!(rows_of(&want, "signals/") > 150, "{:?}", want.keys());
    assert!(rows_of(&want, "rejects/") > 0, "{:?}", want.keys());
    assert!(
        rows_of(&want, "aggregates/brand_daily") > 0,
        "{:?}",
        want.keys()
    );

    // Three shards at once, each staging on the store; nothing is published before the commit.
    let t0 = Instant::now();
    let pids = shards_together(dir.path(), D1, &out, &["0/3", "1/3", "2/3"]);
    let shards_s = t0.elapsed().as_secs_f64();
    assert!(pulso::publish::remote::committed(&out).unwrap().is_none());
    let keys = staged_keys(&out);
    let manifests = keys
        .iter()
        .filter(|k| k.ends_with("/manifest.json"))
        .count();
    assert_eq!(manifests, 3, "{keys:?}");
    assert!(
        keys.iter().any(|k| k.contains("/signals/segment=")),
        "{keys:?}"
    );
    // The shards' local scratch folders are gone.
    let tmp = std::env::temp_dir();
    for pid in &pids {
        assert!(
            std::fs::read_dir(&tmp).unwrap().flatten().all(|e| !e
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("pulso-shard-{pid}-"))),
            "scratch of shard pid {pid} left in {}",
            tmp.display()
        );
    }

    // Shard 1 run again (a pod retried late) is mid-upload while the commit runs: the commit
    // ignores its incomplete attempt; once it finishes it sees the commit and keeps nothing.
    let ready = dir.path().join("late.ready");
    let mut late = shard_cmd(dir.path(), 0, D1, &out, "1/3")
        .env("PULSO_FAULT", "shard:upload:wait")
        .env("PULSO_FAULT_READY", &ready)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&ready, &mut late);

    let t1 = Instant::now();
    let o = commit_cmd(dir.path(), 0, D1, &out).output().unwrap();
    let commit_s = t1.elapsed().as_secs_f64();
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("shard 1/3: took"),
        "{}",
        text(&o)
    );
    std::fs::remove_file(&ready).unwrap();
    let lo = late.wait_with_output().unwrap();
    assert_eq!(lo.status.code(), Some(2), "{}", text(&lo));
    assert!(
        String::from_utf8_lossy(&lo.stderr).contains("already published"),
        "{}",
        text(&lo)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("3 shards"),
        "{}",
        text(&o)
    );
    let got = by_partition(&content(&out));
    assert_same(&got, &want, "3 shards on s3 vs one process on s3");
    let mf = published_manifest(&out);
    let single_mf = published_manifest(&single);
    assert_eq!(mf["counts"], single_mf["counts"], "manifest counts");
    assert_eq!(mf["shards"]["count"], 3);
    assert_eq!(mf["commit"]["run_id"], SHARD_RUN);
    assert!(
        staged_keys(&out).is_empty(),
        "staging is removed after the commit"
    );
    eprintln!("s3 shards: 3 shards together {shards_s:.1} s, commit {commit_s:.1} s");

    // The same night sharded to a local folder publishes the same rows.
    let local = tempfile::tempdir().unwrap();
    let lout = local.path().join("out").display().to_string();
    shards_together(dir.path(), D1, &lout, &["0/3", "1/3", "2/3"]);
    ok(&commit_cmd(dir.path(), 0, D1, &lout).output().unwrap());
    assert_same(
        &local_partitions(Path::new(&lout)),
        &want,
        "3 shards to a local folder vs one process on s3",
    );

    // A commit retried after it succeeded changes nothing.
    let before = visible(&out);
    let o = commit_cmd(dir.path(), 0, D1, &out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("already"),
        "{}",
        text(&o)
    );
    assert!(visible(&out) == before);
    // A shard of the committed run started again (a pod retried too late) stages nothing.
    let o = shard_cmd(dir.path(), 0, D1, &out, "1/3").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("already published") && e.contains("new --run-id"),
        "{e}"
    );
    assert!(staged_keys(&out).is_empty());
    assert!(visible(&out) == before);
}

#[test]
fn s3_missing_shard_exits_2_and_a_shard_killed_mid_upload_is_retried() {
    let Some(m) = moto() else { return };
    let b = bucket(m, "shardkill");
    upload_inputs(&format!("{b}/in/n0"), 0, 1, 100);
    upload_inputs(&format!("{b}/in/n1"), 1, 1, 30);
    let out = format!("{b}/out");
    let dir = pipelines(&b, &out);
    // A previous night, then the reference: night 0 in one process on a copy.
    ok(&cmd(dir.path(), 1, D0, &out).output().unwrap());
    let before = visible(&out);
    let reference = format!("{b}/reference");
    copy_prefix(&out, &reference);
    ok(&cmd(dir.path(), 0, D1, &reference).output().unwrap());
    let want = by_partition(&content(&reference));

    // Shard 1 never ran: exit 2 naming it; the previous version is untouched.
    shards_together(dir.path(), D1, &out, &["0/3", "2/3"]);
    let o = commit_cmd(dir.path(), 0, D1, &out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("shard 1/3")
            && e.contains("--shard 1/3")
            && e.contains(&format!(
                "{out}/_pulso/staging/{SHARD_RUN}/shard-0001-of-0003"
            ))
            && e.contains("Nothing was published"),
        "{e}"
    );
    assert!(visible(&out) == before, "the previous version is untouched");

    // Shard 1 killed by SIGKILL after two of its uploads: an attempt without a manifest.
    let o = shard_cmd(dir.path(), 0, D1, &out, "1/3")
        .env("PULSO_FAULT", "shard:upload@2")
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{}", text(&o));
    let shard1 = |keys: &[String]| -> Vec<String> {
        keys.iter()
            .filter(|k| k.contains("/shard-0001-of-0003/"))
            .cloned()
            .collect()
    };
    let killed = shard1(&staged_keys(&out));
    assert_eq!(killed.len(), 2, "{killed:?}");
    assert!(!killed.iter().any(|k| k.ends_with("manifest.json")));
    let o = commit_cmd(dir.path(), 0, D1, &out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("shard 1/3"),
        "{}",
        text(&o)
    );
    assert!(visible(&out) == before, "the previous version is untouched");

    // Shard 2 has a second complete attempt (a pod that ran twice to the end): an older copy.
    let r = remote(&out);
    let keys = staged_keys(&out);
    let attempt2 = keys
        .iter()
        .find(|k| k.contains("/shard-0002-of-0003/") && k.ends_with("/manifest.json"))
        .unwrap()
        .split('/')
        .nth(4)
        .unwrap()
        .to_string();
    let zombie = "attempt-20000101T000000.000000000Z-000000";
    for k in keys.iter().filter(|k| k.contains(&attempt2)) {
        r.copy(&r.path(k), &r.path(&k.replace(&attempt2, zombie)))
            .unwrap();
    }

    // Another commit of the run holds the claim: `pulso commit` exits 2 saying so.
    let claim = r.path(&format!("_pulso/staging/{SHARD_RUN}/commit-claim.json"));
    r.put(&claim, br#"{"holder": "pid 1 on elsewhere"}"#.to_vec())
        .unwrap();
    let o = commit_cmd(dir.path(), 0, D1, &out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("being committed by another process") && e.contains("pid 1 on elsewhere"),
        "{e}"
    );
    assert!(visible(&out) == before, "the previous version is untouched");

    // What a shard of the previous run left after that run's commit: removed by this commit.
    let prev = pulso::publish::remote::committed(&out)
        .unwrap()
        .unwrap()
        .run_id;
    let orphan = r.path(&format!(
        "_pulso/staging/{prev}/shard-0000-of-0002/attempt-x/signals/part-00000.parquet"
    ));
    r.put(&orphan, b"orphan".to_vec()).unwrap();

    // The retried shard 1 replaces its killed attempt and, last to finish, commits the run,
    // taking over the claim once it has not been renewed for the (here 1 s) claim lifetime.
    std::thread::sleep(Duration::from_millis(1100));
    let o = shard_cmd(dir.path(), 0, D1, &out, "1/3")
        .arg("--commit-when-complete")
        .env("PULSO_COMMIT_CLAIM_TTL_S", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(&format!("shard 2/3: took {attempt2}"))
            && e.contains("1 other attempt")
            && e.contains("taking over the commit claim"),
        "{}",
        text(&o)
    );
    assert_same(
        &by_partition(&content(&out)),
        &want,
        "killed and retried shard, a shard with two complete attempts",
    );
    let mf = published_manifest(&out);
    assert_eq!(mf["counts"], published_manifest(&reference)["counts"]);
    let list = mf["shards"]["list"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[2]["attempt"], attempt2.as_str());
    assert!(
        staged_keys(&out).is_empty(),
        "staging is removed after the commit"
    );
    assert!(
        r.list("_pulso/staging").unwrap().is_empty(),
        "the previous run's leftover staging is removed too"
    );
}

// ---- Delta tables on S3 (`[output] format = "delta"`) ------------------------------------------

/// Night pipelines like [`pipelines`], writing Delta tables.
fn delta_pipelines(bucket: &str, out: &str) -> tempfile::TempDir {
    let d = pipelines(bucket, out);
    for night in 0..3 {
        let p = d.path().join(format!("p{night}.toml"));
        let s = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("{s}\n[output]\nformat = \"delta\"\n")).unwrap();
    }
    d
}

/// The last run manifest of a Delta output on S3: (run number, body).
fn delta_manifest(out: &str) -> Option<(u64, serde_json::Value)> {
    let r = remote(out);
    let last = r
        .list("_pulso/log")
        .unwrap()
        .into_iter()
        .filter_map(|m| {
            let n = m
                .location
                .filename()?
                .strip_suffix(".json")?
                .parse::<u64>()
                .ok()?;
            Some((n, m))
        })
        .max_by_key(|(n, _)| *n)?;
    let body = r.get(&last.1.location).unwrap();
    Some((last.0, serde_json::from_slice(&body).unwrap()))
}

/// table -> Delta version, from a run manifest.
fn delta_versions(m: &serde_json::Value) -> BTreeMap<String, i64> {
    m["commit"]["tables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, v)| (t.clone(), v["delta_version"].as_i64().unwrap()))
        .collect()
}

/// What a reader pinned to the last run manifest sees: partition folder (`signals/segment=…/
/// date=…`) -> its rows, sorted, without run ids.
fn delta_content(out: &str) -> BTreeMap<String, Vec<String>> {
    let tmp = tempfile::tempdir().unwrap();
    let m = pulso::publish::delta_store::download_committed(out, &|_| true, &|_| true, tmp.path())
        .unwrap();
    let mut c: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if m.is_none() {
        return c;
    }
    let mut stack = vec![tmp.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.parent().unwrap().strip_prefix(tmp.path()).unwrap();
            let f = std::fs::File::open(&p).unwrap();
            let rows = c.entry(rel.to_string_lossy().to_string()).or_default();
            for b in ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap()
            {
                rows.extend(row_strings(&b.unwrap()));
            }
        }
    }
    for rows in c.values_mut() {
        rows.sort();
    }
    c
}

/// The latest Delta version of each table under `out` (what a reader that ignores pulso's
/// manifest opens), read with deltalake-core over pulso's store.
fn delta_latest(out: &str, tables: &[&String]) -> BTreeMap<String, i64> {
    pulso::publish::delta_store::register();
    tables
        .iter()
        .map(|t| {
            let tab = storage::block_on(
                deltalake_core::DeltaTableBuilder::from_valid_uri(format!("{out}/{t}"))
                    .unwrap()
                    .load(),
            )
            .unwrap();
            (t.to_string(), tab.version().unwrap())
        })
        .collect()
}

/// Content as the readers report it: table -> "segment/date" or "date" -> rows.
fn delta_reader_counts(
    c: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut m: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (dir, rows) in c {
        let (mut table, mut parts) = (Vec::new(), Vec::new());
        for p in dir.split('/') {
            match p.split_once('=') {
                Some((_, v)) => parts.push(v),
                None => table.push(p),
            }
        }
        // A table with empty partitions reads as a table without rows there.
        let t = m.entry(table.join("/")).or_default();
        if !rows.is_empty() {
            *t.entry(parts.join("/")).or_default() += rows.len() as u64;
        }
    }
    m
}

/// The Python with `deltalake` (and Polars, DuckDB's delta extension), `make test` installs it.
fn delta_readers_python() -> PathBuf {
    std::env::var_os("PULSO_DELTA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("build/delta-readers/bin/python")
        })
}

fn delta_inputs(b: &str) {
    upload_inputs(&format!("{b}/in/n0"), 0, 1, 30);
    upload_inputs(&format!("{b}/in/n1"), 1, 1, 40);
    upload_inputs(&format!("{b}/in/n2"), 2, 2, 50);
}

#[test]
fn s3_delta_two_nights_and_a_rerun_read_back_with_time_travel() {
    let Some(m) = moto() else { return };
    let b = bucket(m, "delta");
    delta_inputs(&b);
    let out = format!("{b}/out");
    let dir = delta_pipelines(&b, &out);
    let mut states = Vec::new();
    for (night, date) in [(0, D0), (1, D1), (2, D1)] {
        let o = cmd(dir.path(), night, date, &out).output().unwrap();
        ok(&o);
        let (n, man) = delta_manifest(&out).unwrap();
        assert_eq!(n, night as u64 + 1, "one run manifest per run");
        assert_eq!(man["commit"]["format"], "delta");
        assert_eq!(man["commit"]["store"], "s3");
        states.push((man, delta_content(&out)));
    }
    // Nothing of the commit protocol is left behind.
    assert!(remote(&out).list("_pulso/delta-plans").unwrap().is_empty());
    let (m3, c3) = &states[2];
    let (m2, c2) = &states[1];
    // The re-run of D1 replaced its partitions: one Delta commit per table, removes and adds.
    for (t, v) in m3["commit"]["tables"].as_object().unwrap() {
        if let Some(prev) = v["previous_delta_version"].as_i64() {
            assert_eq!(v["delta_version"].as_i64().unwrap(), prev + 1, "{t}: {v}");
        }
    }
    for t in ["signals", "rejects"] {
        let v = &m3["commit"]["tables"][t];
        assert!(v["removed_files"].as_u64().unwrap() > 0, "{t}: {v}");
        assert!(v["added_files"].as_u64().unwrap() > 0, "{t}: {v}");
    }
    let d1 = |c: &BTreeMap<String, Vec<String>>, t: &str| -> usize {
        c.iter()
            .filter(|(k, _)| k.starts_with(t) && k.ends_with(&format!("date={D1}")))
            .map(|(_, r)| r.len())
            .sum()
    };
    // Night 2: two files of 50 rows per source, two sources: 200 records (a re-run appended to
    // night 1's 80 would hold 280).
    assert_eq!(d1(c3, "signals/") + d1(c3, "rejects/"), 200);
    assert_eq!(d1(c2, "signals/") + d1(c2, "rejects/"), 80);
    assert!(d1(c3, "signals/segment=external/") > 0 && d1(c3, "signals/segment=internal/") > 0);
    assert_eq!(
        c3.iter()
            .filter(|(k, _)| k.ends_with(&format!("date={D0}")))
            .collect::<Vec<_>>(),
        c2.iter()
            .filter(|(k, _)| k.ends_with(&format!("date={D0}")))
            .collect::<Vec<_>>(),
        "D0 is untouched by the re-run of D1"
    );
    assert_eq!(
        delta_latest(
            &out,
            &m3["commit"]["tables"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>()
        ),
        delta_versions(m3)
    );

    // Every Delta commit is a create-if-absent: a writer that planned against an older version
    // cannot write the version that exists (moto answers 412), and pulso never rebases.
    {
        use deltalake_core::kernel::transaction::{CommitBuilder, TableReference};
        use deltalake_core::protocol::{DeltaOperation, SaveMode};
        let v = delta_versions(m3)["signals"];
        let stale = storage::block_on(
            deltalake_core::DeltaTableBuilder::from_valid_uri(format!("{out}/signals"))
                .unwrap()
                .with_version(v - 1)
                .load(),
        )
        .unwrap();
        let r = storage::block_on(async {
            CommitBuilder::default()
                .with_max_retries(0)
                .with_actions(vec![])
                .build(
                    Some(stale.snapshot().unwrap() as &dyn TableReference),
                    stale.log_store(),
                    DeltaOperation::Write {
                        mode: SaveMode::Append,
                        partition_by: None,
                        predicate: None,
                    },
                )
                .await
                .map(|c| c.version())
        });
        let e = format!("{:?}", r.expect_err("version v exists"));
        assert!(e.contains("MaxCommitAttempts"), "{e}");
        assert_eq!(
            delta_latest(&out, &[&"signals".to_string()])["signals"],
            v,
            "the refused commit wrote nothing"
        );
    }

    // `pulso current` names the run manifest and the prefix of the tables.
    let o = Command::new(BIN)
        .args(["current", &out, "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let cur: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cur["version"], 3);
    assert_eq!(cur["tree"], out.as_str());
    assert_eq!(cur["run_id"], m3["commit"]["run_id"]);
    assert!(cur["manifest"]
        .as_str()
        .unwrap()
        .ends_with("_pulso/log/00000000000000000003.json"));

    // `pulso report` reads the Delta tables on S3.
    let o = Command::new(BIN)
        .args(["report", &out, "--date", D1])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Acme"),
        "{}",
        text(&o)
    );

    // A data team's readers, from the S3 endpoint: latest and time travel to run 2.
    let labels = serde_json::json!({"latest": delta_versions(m3), "previous": delta_versions(m2)});
    let py = delta_readers_python();
    let o = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/read_delta.py"))
        .arg(&out)
        .arg(labels.to_string())
        .arg(m_endpoint())
        .output();
    let o = match o {
        Ok(o) if o.status.success() => o,
        Ok(o) => panic!(
            "{} tests/py/read_delta.py failed:\n{}",
            py.display(),
            text(&o)
        ),
        Err(e) => {
            eprintln!(
                "SKIPPED Delta readers on S3: {} cannot be started ({e}); `make test` installs deltalake",
                py.display()
            );
            return;
        }
    };
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for (tool, why) in got["missing"].as_object().unwrap() {
        eprintln!("SKIPPED Delta reader on S3 {tool}: {why}");
    }
    assert!(
        !got["deltalake"].is_null(),
        "the deltalake package must read the tables from S3: {}",
        got["missing"]
    );
    let mut checked = vec![];
    for tool in ["deltalake", "polars", "duckdb"] {
        if got[tool].is_null() {
            continue;
        }
        for (label, c) in [("latest", c3), ("previous", c2)] {
            let mut seen: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
            for (t, parts) in got[tool][label].as_object().unwrap() {
                if t == "@versions" {
                    continue;
                }
                seen.insert(t.clone(), serde_json::from_value(parts.clone()).unwrap());
            }
            assert_eq!(seen, delta_reader_counts(c), "{tool} {label}");
        }
        checked.push(tool);
    }
    if !got["deltalake"]["latest"]["@versions"].is_null() {
        let v: BTreeMap<String, i64> =
            serde_json::from_value(got["deltalake"]["latest"]["@versions"].clone()).unwrap();
        assert_eq!(v, delta_versions(m3), "deltalake's latest versions");
    }
    eprintln!(
        "Delta readers on S3 checked: {checked:?}; not available: {}; deltalake read: {}",
        got["missing"], got["deltalake"]
    );
}

/// Kill points of the Delta commit on S3: (point, the run is published (its manifest exists),
/// the next run collects at once (`PULSO_GC_GRACE_S=0`), that run's number). The dead run's
/// plan is dropped (grace 0: its number is taken again), kept (within the grace: the next run
/// takes the next number) or completed by the next run (some table holds it).
const DELTA_KILL_POINTS: [(&str, bool, bool, u64); 5] = [
    ("delta:planned", false, false, 4),
    ("delta:file-moved@2", false, true, 3),
    ("delta:moved", false, true, 3),
    ("delta:table-committed", false, true, 4),
    ("delta:manifest", true, true, 4),
];

/// Data files stored under the table folders of `out` (referenced or not).
fn delta_data_objects(out: &str) -> usize {
    let r = remote(out);
    r.list("")
        .unwrap()
        .iter()
        .filter(|m| {
            let rel = r.rel(&m.location).unwrap();
            !rel.starts_with("_pulso/") && rel.ends_with(".parquet")
        })
        .count()
}

#[test]
fn s3_delta_sigkill_keeps_the_previous_run_and_the_next_run_matches() {
    let Some(m) = moto() else { return };
    let b = bucket(m, "delta-kills");
    delta_inputs(&b);
    let base = format!("{b}/base");
    let dir = delta_pipelines(&b, &base);
    ok(&cmd(dir.path(), 0, D0, &base).output().unwrap());
    ok(&cmd(dir.path(), 1, D1, &base).output().unwrap());
    let before = delta_content(&base);
    let (n0, m0) = delta_manifest(&base).unwrap();
    assert_eq!(n0, 2);
    let tables = delta_versions(&m0);
    let names: Vec<&String> = tables.keys().collect();

    let reference = format!("{b}/reference");
    copy_prefix(&base, &reference);
    ok(&cmd(dir.path(), 2, D1, &reference).output().unwrap());
    let want = delta_content(&reference);
    assert_ne!(want, before);

    let want_objects = delta_data_objects(&reference);
    for (i, (point, published, collect, next)) in DELTA_KILL_POINTS.into_iter().enumerate() {
        let out = format!("{b}/k{i}");
        copy_prefix(&base, &out);
        killed_at(dir.path(), &out, point);
        let (n, _) = delta_manifest(&out).unwrap();
        if published {
            assert_eq!(n, 3, "{point}");
            assert_same(&delta_content(&out), &want, &format!("killed at {point}"));
        } else {
            assert_eq!(n, 2, "{point}: no new run manifest");
            assert_same(
                &delta_content(&out),
                &before,
                &format!("killed at {point}: the last run manifest's versions read as before"),
            );
            if point != "delta:table-committed" {
                assert_eq!(
                    delta_latest(&out, &names),
                    tables,
                    "{point}: no Delta table has a new version"
                );
            }
        }
        // The next run settles the dead one and produces the reference output.
        let mut c = cmd(dir.path(), 2, D1, &out);
        if collect {
            c.env("PULSO_GC_GRACE_S", "0");
        }
        ok(&c.output().unwrap());
        assert_same(
            &delta_content(&out),
            &want,
            &format!("re-run after {point}"),
        );
        assert_eq!(delta_manifest(&out).unwrap().0, next, "{point}: run number");
        let plans: Vec<String> = remote(&out)
            .list("_pulso/delta-plans")
            .unwrap()
            .iter()
            .map(|m| m.location.filename().unwrap().to_string())
            .collect();
        if collect {
            assert!(plans.is_empty(), "{point}: plans left {plans:?}");
            if next == 3 {
                assert_eq!(
                    delta_data_objects(&out),
                    want_objects,
                    "{point}: the dead run's uploads were deleted"
                );
            }
        } else {
            // Within the grace period the dead run's plan keeps its number (its writer might
            // still be alive); nothing of it is visible.
            assert_eq!(
                plans,
                vec!["00000000000000000003.json".to_string()],
                "{point}"
            );
        }
    }

    // A failed upload (not a kill) publishes nothing and deletes what it uploaded.
    let out = format!("{b}/err");
    copy_prefix(&base, &out);
    let objects = |u: &str| -> Vec<String> {
        let r = remote(u);
        r.list("")
            .unwrap()
            .iter()
            .map(|m| r.rel(&m.location).unwrap())
            .collect()
    };
    let objects_before = objects(&out);
    let o = cmd(dir.path(), 2, D1, &out)
        .env("PULSO_FAULT", "delta:file-moved@2:error")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_same(&delta_content(&out), &before, "after a failed upload");
    assert_eq!(
        objects(&out),
        objects_before,
        "the failed run left no object"
    );
    eprintln!(
        "s3 delta kill points: {} each followed by a matching re-run",
        DELTA_KILL_POINTS.len()
    );
}

#[test]
fn s3_delta_two_writers_the_stale_one_fails_and_publishes_nothing() {
    let Some(m) = moto() else { return };
    let b = bucket(m, "delta-race");
    delta_inputs(&b);
    let out = format!("{b}/out");
    let dir = delta_pipelines(&b, &out);
    ok(&cmd(dir.path(), 0, D0, &out).output().unwrap());
    // A has planned run 2 and uploaded its files; B runs start to end meanwhile.
    let ready = dir.path().join("ready");
    let mut a = cmd(dir.path(), 2, D1, &out)
        .env("PULSO_FAULT", "delta:moved:wait")
        .env("PULSO_FAULT_READY", &ready)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&ready, &mut a);
    ok(&cmd(dir.path(), 1, D1, &out).output().unwrap());
    let (nb, mb) = delta_manifest(&out).unwrap();
    assert_eq!(nb, 3, "B took the next number: A's plan still claims 2");
    let seen_b = delta_content(&out);
    std::fs::remove_file(&ready).unwrap();
    let o = a.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(&format!("{out}/signals"))
            && e.contains("another writer changed it")
            && e.contains("planned run 2"),
        "{e}"
    );
    // B's run is what every reader sees; A left no plan behind.
    assert_same(&delta_content(&out), &seen_b, "B's run after A failed");
    let names: Vec<&String> = mb["commit"]["tables"].as_object().unwrap().keys().collect();
    assert_eq!(delta_latest(&out, &names), delta_versions(&mb));
    assert!(remote(&out).list("_pulso/delta-plans").unwrap().is_empty());
    // And A simply runs again.
    ok(&cmd(dir.path(), 2, D1, &out).output().unwrap());
    assert_eq!(delta_manifest(&out).unwrap().0, 4);
}
