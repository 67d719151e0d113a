//! Hub downloads against a local server that imitates the Hugging Face hub (no real hub is
//! reachable): `resolve/REV/FILE` answers with `X-Repo-Commit`, git blob ids as `ETag` and, for the
//! LFS weights, `X-Linked-Etag` (SHA-256) plus a redirect to a "CDN" path, like huggingface.co.
//! It serves the project's tiny BERT fixture as `acme/tiny`. Checked: the revision is resolved to
//! a commit and every file is fetched by that sha, checksums are verified (a corrupted download
//! fails), `@REV` pins a revision, the manifest records it, and the cache works offline.

use sha2::Digest;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_pulso");
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const FILES: [&str; 5] = [
    "config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert")
}

fn git_oid(b: &[u8]) -> String {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", b.len()).as_bytes());
    h.update(b);
    hex::encode(h.finalize())
}

struct Hub {
    endpoint: String,
    /// "METHOD path" of every request.
    log: Arc<Mutex<Vec<String>>>,
}

/// Starts the imitation hub; `corrupt` makes the CDN send other bytes for the weights.
fn hub(corrupt: bool) -> Hub {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", l.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            log2.lock().unwrap().push(format!("{method} {path}"));
            let (status, headers, body) = answer(path, corrupt);
            let mut head = format!(
                "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = s.write_all(head.as_bytes());
            if method != "HEAD" {
                let _ = s.write_all(&body);
            }
        }
    });
    Hub { endpoint, log }
}

fn answer(path: &str, corrupt: bool) -> (&'static str, Vec<(String, String)>, Vec<u8>) {
    let nf = ("404 Not Found", vec![], b"Entry not found".to_vec());
    if let Some(rest) = path.strip_prefix("/api/models/acme/tiny/revision/") {
        return if rest == "main" || rest == SHA {
            (
                "200 OK",
                vec![("Content-Type".into(), "application/json".into())],
                format!("{{\"sha\": \"{SHA}\"}}").into_bytes(),
            )
        } else {
            nf
        };
    }
    if let Some(file) = path.strip_prefix(&format!("/cdn/{SHA}/")) {
        let Ok(mut b) = std::fs::read(fixture().join(file)) else {
            return nf;
        };
        if corrupt {
            let n = b.len();
            b[n / 2] ^= 0xff;
        }
        return ("200 OK", vec![], b);
    }
    let Some(rest) = path.strip_prefix("/acme/tiny/resolve/") else {
        return nf;
    };
    let Some((rev, file)) = rest.split_once('/') else {
        return nf;
    };
    if rev != "main" && rev != SHA {
        return nf;
    }
    if !FILES.contains(&file) {
        return nf;
    }
    let b = std::fs::read(fixture().join(file)).unwrap();
    let commit = ("X-Repo-Commit".to_string(), SHA.to_string());
    if file.ends_with(".safetensors") {
        let sha = hex::encode(sha2::Sha256::digest(&b));
        (
            "302 Found",
            vec![
                commit,
                ("X-Linked-Etag".into(), format!("\"{sha}\"")),
                ("X-Linked-Size".into(), b.len().to_string()),
                ("Location".into(), format!("/cdn/{SHA}/{file}")),
            ],
            vec![],
        )
    } else {
        (
            "200 OK",
            vec![commit, ("ETag".into(), format!("\"{}\"", git_oid(&b)))],
            b,
        )
    }
}

fn pulso(dir: &Path, hub: &Hub, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("HF_ENDPOINT", &hub.endpoint)
        .env("PULSO_CACHE", dir.join("cache"))
        .env("PULSO_PSEUDONYM_KEY", "k")
        .env_remove("PULSO_OFFLINE")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .env_remove("PULSO_MODEL")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn main_is_resolved_to_a_commit_files_are_verified_and_the_cache_works_offline() {
    let h = hub(false);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("in.txt"), "great service\nawful delay\n").unwrap();
    let o = pulso(
        d.path(),
        &h,
        &["score", "in.txt", "--model", "acme/tiny", "--threads", "1"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let local = pulso(
        d.path(),
        &h,
        &[
            "score",
            "in.txt",
            "--model",
            &fixture().display().to_string(),
            "--threads",
            "1",
        ],
    );
    assert!(local.status.success(), "{}", text(&local));
    assert_eq!(
        o.stdout, local.stdout,
        "the downloaded model scores like the folder it came from"
    );

    let log = h.log.lock().unwrap().clone();
    // Only the revision lookup names `main`; every file is fetched by the commit sha.
    let by_main: Vec<_> = log
        .iter()
        .filter(|l| l.contains("/resolve/main/"))
        .collect();
    assert_eq!(
        by_main,
        vec!["HEAD /acme/tiny/resolve/main/config.json"],
        "{log:?}"
    );
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(
            log.contains(&format!("GET /acme/tiny/resolve/{SHA}/{f}")),
            "{f} not fetched by sha: {log:?}"
        );
    }
    let dir = d.path().join("cache/acme--tiny");
    let pin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(".pulso-hub.json")).unwrap()).unwrap();
    assert_eq!(pin["revision"], SHA);
    assert_eq!(pin["requested"], "main");
    assert_eq!(pin["files"]["model.safetensors"]["checked"], "sha256");
    assert_eq!(
        pin["files"]["model.safetensors"]["sha256"],
        pulso::publish::lineage::sha256_file(&fixture().join("model.safetensors")).unwrap()
    );
    assert_eq!(pin["files"]["config.json"]["checked"], "git-blob-sha1");

    // Offline, from the cache: no request at all.
    let n = h.log.lock().unwrap().len();
    let o = Command::new(BIN)
        .args(["score", "in.txt", "--model", "acme/tiny", "--threads", "1"])
        .current_dir(d.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("PULSO_CACHE", d.path().join("cache"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(o.stdout, local.stdout);
    assert_eq!(h.log.lock().unwrap().len(), n);
}

#[test]
fn a_pinned_revision_is_recorded_in_the_run_manifest() {
    let h = hub(false);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("p.toml"),
        "[pipeline]\nname = \"hub\"\noutput = \"out\"\n\n[[source]]\nname = \"s\"\npath = \"in.csv\"\nformat = \"csv\"\nsegment = \"external\"\n[source.columns]\nid = \"id\"\ntext = \"text\"\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("in.csv"),
        "id,text\n1,great\n2,slow delivery\n",
    )
    .unwrap();
    let spec = format!("acme/tiny@{SHA}");
    let o = pulso(
        d.path(),
        &h,
        &[
            "run",
            "p.toml",
            "--date",
            "2026-11-14",
            "--no-progress",
            "--threads",
            "1",
            "--model",
            &spec,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let m = pulso::publish::committed_manifest(&d.path().join("out")).unwrap();
    let hubm = &m["lineage"]["model"]["hub"];
    assert_eq!(hubm["id"], "acme/tiny");
    assert_eq!(hubm["requested"], SHA);
    assert_eq!(hubm["revision"], SHA);
    assert_eq!(hubm["pinned"], true);
    assert_eq!(hubm["checked"]["model.safetensors"]["checked"], "sha256");
    assert!(d
        .path()
        .join(format!("cache/acme--tiny@{SHA}/.pulso-hub.json"))
        .is_file());
    let log = h.log.lock().unwrap().clone();
    assert!(!log.iter().any(|l| l.contains("/resolve/main/")), "{log:?}");
}

#[test]
fn a_corrupted_download_or_an_unknown_revision_fails_clearly() {
    let h = hub(true);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("in.txt"), "great\n").unwrap();
    let o = pulso(d.path(), &h, &["score", "in.txt", "--model", "acme/tiny"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("checksum mismatch")
            && e.contains(&format!(
                "{}/acme/tiny/resolve/{SHA}/model.safetensors",
                h.endpoint
            )),
        "{e}"
    );
    let dir = d.path().join("cache/acme--tiny");
    assert!(!dir.join("model.safetensors").exists() && !dir.join(".pulso-hub.json").exists());
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("partial")));

    let good = hub(false);
    let o = pulso(
        d.path(),
        &good,
        &["score", "in.txt", "--model", "acme/tiny@v9"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("revision \"v9\" not found"), "{e}");
}
