//! Hugging Face Hub ids (`owner/name`): download once into a local cache, then load like a folder.
//!
//! Files come from `{HF_ENDPOINT or https://huggingface.co}/{id}/resolve/main/{file}`: `config.json`,
//! `tokenizer.json` (or, when the repository has none, the family's vocabulary files), optionally
//! `tokenizer_config.json`, and `model.safetensors` (falling back to `rust_model.ot`). `HF_TOKEN` is
//! sent as a bearer token for private or gated models. Each file is written to a temporary name and
//! renamed into place, so an interrupted download never leaves a half file that looks complete.
//!
//! Cache folder: `PULSO_CACHE`, else `$XDG_CACHE_HOME/pulso/models`, else `~/.cache/pulso/models`;
//! one sub-folder per model, `owner--name`. With `PULSO_OFFLINE=1` or `HF_HUB_OFFLINE=1` nothing is
//! downloaded: a cached copy is used or the load fails saying so. On an air-gapped machine, copy the
//! model folder over and pass its path instead of the id.

use super::config::ModelConfig;
use super::tokenize::tokenizer_files;
use anyhow::{anyhow, bail, Context};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Weights file names pulso can load, in order of preference.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "rust_model.ot"];

/// True for strings shaped like a hub id: `owner/name`, letters, digits, `-`, `_`, `.`, optionally
/// followed by `@REVISION` (a branch, tag or commit sha).
pub fn looks_like_hub_id(s: &str) -> bool {
    let (id, rev) = split_revision(s);
    if rev.is_some_and(|r| {
        r.is_empty()
            || r.starts_with('/')
            || r.contains("..")
            || !r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    }) {
        return false;
    }
    let mut parts = id.split('/');
    let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && !p.starts_with('-')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    ok(owner) && ok(name)
}

/// `owner/name@rev` → (`owner/name`, Some(`rev`)).
pub fn split_revision(s: &str) -> (&str, Option<&str>) {
    match s.split_once('@') {
        Some((id, rev)) => (id, Some(rev)),
        None => (s, None),
    }
}

/// A 40-hex-digit commit sha.
fn is_commit_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The file in a cached model folder that records which commit it holds and each file's checksum.
pub const PIN_FILE: &str = ".pulso-hub.json";

/// The pin record of a cached hub model (`{id, requested, revision, files: {name: {sha256, …}}}`),
/// if the folder has one.
pub fn pin_of(dir: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(dir.join(PIN_FILE)).ok()?).ok()
}

/// A transport failure without the URL ureq puts in front: kind, message, cause.
fn transport_detail(t: &ureq::Transport) -> String {
    let mut parts = vec![t.kind().to_string()];
    if let Some(m) = t.message() {
        parts.push(m.to_string());
    }
    if let Some(src) = std::error::Error::source(t) {
        let s = src.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// The cache root given an environment lookup (see module docs).
pub fn cache_root_with(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if let Some(p) = set("PULSO_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = set("XDG_CACHE_HOME") {
        return Some(PathBuf::from(p).join("pulso").join("models"));
    }
    set("HOME").map(|h| PathBuf::from(h).join(".cache").join("pulso").join("models"))
}

/// The cache root from the process environment.
pub fn cache_root() -> anyhow::Result<PathBuf> {
    cache_root_with(&|k| std::env::var(k).ok()).context(
        "no cache folder for downloaded models: set PULSO_CACHE (or HOME / XDG_CACHE_HOME)",
    )
}

/// Where a hub model is cached under `root`: `owner--name`, or `owner--name@REV` for an explicit
/// revision.
pub fn cache_dir_in(root: &Path, id: &str) -> PathBuf {
    root.join(id.replace('/', "--"))
}

/// Whether downloads are switched off (`PULSO_OFFLINE` / `HF_HUB_OFFLINE` set to 1/true/yes).
pub fn offline_with(env: &dyn Fn(&str) -> Option<String>) -> bool {
    ["PULSO_OFFLINE", "HF_HUB_OFFLINE"].iter().any(|k| {
        env(k)
            .map(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            })
            .unwrap_or(false)
    })
}

/// True when `dir` holds everything needed to load a model (config, weights, some tokenizer).
pub fn is_complete(dir: &Path) -> bool {
    if !dir.join("config.json").is_file() || !WEIGHT_FILES.iter().any(|w| dir.join(w).is_file()) {
        return false;
    }
    if dir.join("tokenizer.json").is_file() {
        return true;
    }
    match ModelConfig::from_file(&dir.join("config.json")) {
        Ok(c) => tokenizer_files(c.family)
            .iter()
            .all(|f| dir.join(f).is_file()),
        Err(_) => false,
    }
}

/// Returns the local folder for hub model `id`, downloading it into the cache first if needed.
pub fn fetch(id: &str) -> anyhow::Result<PathBuf> {
    let env = |k: &str| std::env::var(k).ok();
    let root = cache_root()?;
    fetch_into(id, &root, offline_with(&env), &env)
}

/// [`fetch`] with explicit cache root, offline flag and environment (for tests).
///
/// The revision (`@REV`, default `main`) is resolved to a commit sha first (the hub's
/// `X-Repo-Commit` header on `resolve/REV/config.json`, else `api/models/ID/revision/REV`); every
/// file is then downloaded from `resolve/SHA/FILE`, so all files come from one commit even if the
/// branch moves meanwhile, and checked against the checksum the hub publishes: SHA-256
/// (`X-Linked-Etag`) for LFS files such as the weights, the git blob id (`ETag`) for the others.
/// [`PIN_FILE`] records the commit and the checksums; a folder without it (an older cache) is
/// checked again when the network allows.
pub fn fetch_into(
    spec: &str,
    root: &Path,
    offline: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<PathBuf> {
    let (id, rev) = split_revision(spec);
    let dir = cache_dir_in(root, spec);
    let pinned = pin_of(&dir).is_some();
    if is_complete(&dir) && (pinned || offline) {
        return Ok(dir);
    }
    if offline {
        bail!(
            "model {spec:?} is not in the local cache ({}) and downloads are off (PULSO_OFFLINE / HF_HUB_OFFLINE); \
             on an air-gapped machine copy the model folder and pass its path",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create cache folder {}", dir.display()))?;
    let endpoint = env("HF_ENDPOINT")
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into());
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let requested = rev.unwrap_or("main").to_string();
    let mut dl = Downloader {
        agent: ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120))
            .build(),
        meta_agent: ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(60))
            .redirects(0)
            .build(),
        endpoint: endpoint.clone(),
        id: id.to_string(),
        base: format!("{endpoint}/{id}/resolve/{requested}"),
        token: env("HF_TOKEN")
            .or_else(|| env("HUGGING_FACE_HUB_TOKEN"))
            .filter(|t| !t.trim().is_empty()),
        dir: dir.clone(),
        files: serde_json::Map::new(),
    };
    // 1. The commit the revision points at, now.
    let commit = dl.resolve_commit(&requested)?;
    dl.base = format!("{endpoint}/{id}/resolve/{commit}");
    // 2. Every file from that commit, checked.
    dl.get("config.json", true)?;
    let config = ModelConfig::from_file(&dir.join("config.json"))?;
    dl.get("tokenizer_config.json", false)?;
    if !dl.get("tokenizer.json", false)? {
        for f in tokenizer_files(config.family) {
            dl.get(f, true)?;
        }
    }
    let mut found = false;
    for w in WEIGHT_FILES {
        if dl.get(w, false)? {
            found = true;
            break;
        }
    }
    if !found {
        bail!(
            "{id} has neither {} on {}; pulso cannot load it",
            WEIGHT_FILES.join(" nor "),
            dl.base
        );
    }
    // 3. The pin, last: a folder with it is complete and checked.
    let pin = serde_json::json!({
        "id": id,
        "requested": requested,
        "revision": commit,
        "endpoint": endpoint,
        "downloaded_at": chrono::Utc::now().to_rfc3339(),
        "files": dl.files,
    });
    let tmp = dir.join(format!(".{PIN_FILE}.partial-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&pin).expect("json"))
        .and_then(|_| std::fs::rename(&tmp, dir.join(PIN_FILE)))
        .with_context(|| format!("saving {PIN_FILE} into {}", dir.display()))?;
    Ok(dir)
}

struct Downloader {
    agent: ureq::Agent,
    /// No redirects: the hub's own headers (commit, checksum) are on the first response.
    meta_agent: ureq::Agent,
    endpoint: String,
    id: String,
    base: String,
    token: Option<String>,
    dir: PathBuf,
    /// file → {sha256, checked}
    files: serde_json::Map<String, serde_json::Value>,
}

/// What the hub says about one file without sending it.
struct FileMeta {
    commit: Option<String>,
    /// SHA-256 of the content (LFS files: `X-Linked-Etag`).
    sha256: Option<String>,
    /// Git blob id (other files: `ETag`).
    git_oid: Option<String>,
}

fn etag_value(v: &str) -> String {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_ascii_lowercase()
}

fn sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// SHA-256 and git blob id of a file.
fn file_hashes(p: &Path) -> std::io::Result<(String, String)> {
    use sha1::Digest as _;
    use std::io::Read;
    let len = std::fs::metadata(p)?.len();
    let mut f = std::fs::File::open(p)?;
    let mut a = sha2::Sha256::new();
    let mut b = sha1::Sha1::new();
    b.update(format!("blob {len}\0").as_bytes());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        a.update(&buf[..n]);
        b.update(&buf[..n]);
    }
    Ok((hex::encode(a.finalize()), hex::encode(b.finalize())))
}

impl Downloader {
    fn fail(&self, url: &str, e: ureq::Error) -> anyhow::Error {
        match e {
            ureq::Error::Status(code @ (401 | 403), _) => anyhow!(
                "could not download {url}: HTTP {code}; the model may be private or gated: set HF_TOKEN \
                 to a token with access, or copy the model folder and pass its path"
            ),
            // ureq's own messages repeat the URL; say it once.
            ureq::Error::Status(code, _) => anyhow!(
                "could not download {url}: HTTP {code}; on an air-gapped machine copy the model folder and pass its path"
            ),
            ureq::Error::Transport(t) => anyhow!(
                "could not download {url}: {}; on an air-gapped machine copy the model folder and pass its path",
                transport_detail(&t)
            ),
        }
    }

    fn request(&self, agent: &ureq::Agent, method: &str, url: &str) -> ureq::Request {
        let mut req = agent.request(method, url);
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        req
    }

    /// HEAD without redirects. Ok(None) on 404.
    fn meta(&self, file: &str) -> anyhow::Result<Option<FileMeta>> {
        let url = format!("{}/{file}", self.base);
        let resp = match self.request(&self.meta_agent, "HEAD", &url).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(404, _)) => return Ok(None),
            Err(e) => return Err(self.fail(&url, e)),
        };
        let h = |k: &str| resp.header(k).map(etag_value).filter(|v| !v.is_empty());
        let linked = h("x-linked-etag");
        let etag = h("etag");
        Ok(Some(FileMeta {
            commit: h("x-repo-commit"),
            sha256: linked
                .clone()
                .filter(|v| sha256_hex(v))
                .or_else(|| etag.clone().filter(|v| sha256_hex(v))),
            git_oid: if linked.is_none() {
                etag.filter(|v| v.len() == 40)
            } else {
                None
            },
        }))
    }

    /// The commit sha `requested` points at.
    fn resolve_commit(&self, requested: &str) -> anyhow::Result<String> {
        if let Some(c) = self.meta("config.json")?.and_then(|m| m.commit) {
            if is_commit_sha(&c) {
                return Ok(c);
            }
        }
        let url = format!(
            "{}/api/models/{}/revision/{requested}",
            self.endpoint, self.id
        );
        let v: serde_json::Value = match self.request(&self.agent, "GET", &url).call() {
            Ok(r) => r
                .into_string()
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .ok_or_else(|| anyhow!("could not read {url} as JSON"))?,
            Err(ureq::Error::Status(404, _)) => bail!(
                "{}: revision {requested:?} not found on {} (no such branch, tag or commit, or no config.json there)",
                self.id,
                self.endpoint
            ),
            Err(e) => return Err(self.fail(&url, e)),
        };
        match v["sha"].as_str() {
            Some(c) if is_commit_sha(c) => Ok(c.to_ascii_lowercase()),
            _ => bail!("{url} did not name a commit sha for revision {requested:?}"),
        }
    }

    /// Downloads `file` from the pinned commit unless a copy with the right checksum is there.
    /// Ok(false) when the hub says 404 and `required` is false.
    fn get(&mut self, file: &str, required: bool) -> anyhow::Result<bool> {
        let url = format!("{}/{file}", self.base);
        let Some(meta) = self.meta(file)? else {
            if required {
                bail!("could not download {url}: HTTP 404; the model needs {file}");
            }
            return Ok(false);
        };
        let dest = self.dir.join(file);
        let matches = |p: &Path| -> std::io::Result<(bool, String)> {
            let (sha, oid) = file_hashes(p)?;
            let ok = match (&meta.sha256, &meta.git_oid) {
                (Some(want), _) => *want == sha,
                (None, Some(want)) => *want == oid,
                (None, None) => true,
            };
            Ok((ok, sha))
        };
        let checked = if meta.sha256.is_some() {
            "sha256"
        } else if meta.git_oid.is_some() {
            "git-blob-sha1"
        } else {
            "none (the hub sent no checksum)"
        };
        if dest.is_file() {
            if let Ok((true, sha)) = matches(&dest) {
                self.files.insert(
                    file.into(),
                    serde_json::json!({"sha256": sha, "checked": checked}),
                );
                return Ok(true);
            }
        }
        let resp = match self.request(&self.agent, "GET", &url).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(404, _)) if !required => return Ok(false),
            Err(e) => return Err(self.fail(&url, e)),
        };
        let tmp = self
            .dir
            .join(format!(".{file}.partial-{}", std::process::id()));
        let result = (|| -> anyhow::Result<String> {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            std::io::copy(&mut resp.into_reader(), &mut out)
                .map_err(|e| anyhow!("could not download {url}: {e}; on an air-gapped machine copy the model folder and pass its path"))?;
            out.flush()?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            let (ok, sha) = matches(&tmp)?;
            if !ok {
                let want = meta
                    .sha256
                    .clone()
                    .or(meta.git_oid.clone())
                    .unwrap_or_default();
                bail!(
                    "checksum mismatch for {url}: the hub announced {want} ({checked}), the downloaded file has sha256 {sha}; \
                     the download was corrupted or the mirror serves other bytes: run again, or copy the model folder and pass its path"
                );
            }
            std::fs::rename(&tmp, &dest)?;
            Ok(sha)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        let sha = result.with_context(|| format!("saving {} into {}", file, self.dir.display()))?;
        self.files.insert(
            file.into(),
            serde_json::json!({"sha256": sha, "checked": checked}),
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn hub_id_shape() {
        assert!(looks_like_hub_id(
            "cardiffnlp/twitter-xlm-roberta-base-sentiment"
        ));
        assert!(looks_like_hub_id(
            "nlptown/bert-base-multilingual-uncased-sentiment"
        ));
        assert!(looks_like_hub_id("owner/name.v2"));
        assert!(!looks_like_hub_id("models/pulso-mini/extra"));
        assert!(!looks_like_hub_id("./models"));
        assert!(!looks_like_hub_id("../x/y"));
        assert!(!looks_like_hub_id("/abs/path"));
        assert!(!looks_like_hub_id("plain"));
        assert!(!looks_like_hub_id("a b/c"));
    }

    #[test]
    fn cache_root_precedence() {
        let e = env_of(&[
            ("PULSO_CACHE", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(cache_root_with(&e), Some(PathBuf::from("/c")));
        let e = env_of(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(cache_root_with(&e), Some(PathBuf::from("/x/pulso/models")));
        let e = env_of(&[("HOME", "/h"), ("PULSO_CACHE", " ")]);
        assert_eq!(
            cache_root_with(&e),
            Some(PathBuf::from("/h/.cache/pulso/models"))
        );
        assert_eq!(cache_root_with(&env_of(&[])), None);
        assert_eq!(
            cache_dir_in(Path::new("/c"), "owner/model"),
            PathBuf::from("/c/owner--model")
        );
    }

    #[test]
    fn offline_flags() {
        assert!(offline_with(&env_of(&[("PULSO_OFFLINE", "1")])));
        assert!(offline_with(&env_of(&[("HF_HUB_OFFLINE", "true")])));
        assert!(!offline_with(&env_of(&[("HF_HUB_OFFLINE", "0")])));
        assert!(!offline_with(&env_of(&[])));
    }

    #[test]
    fn offline_without_cache_fails_clearly() {
        let root = std::env::temp_dir().join(format!("pulso-hub-test-{}", std::process::id()));
        let e = fetch_into("owner/missing-model", &root, true, &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not in the local cache") && e.contains("copy the model folder"),
            "{e}"
        );
        assert!(!root.join("owner--missing-model").exists());
    }

    #[test]
    fn complete_cache_is_used_offline() {
        let root = std::env::temp_dir().join(format!("pulso-hub-test2-{}", std::process::id()));
        let dir = cache_dir_in(&root, "owner/cached");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            r#"{"model_type":"bert","id2label":{"0":"negative","1":"positive"}}"#,
        )
        .unwrap();
        std::fs::write(dir.join("model.safetensors"), b"x").unwrap();
        assert!(!is_complete(&dir), "no tokenizer yet");
        std::fs::write(dir.join("vocab.txt"), "[PAD]\n").unwrap();
        assert!(is_complete(&dir));
        assert_eq!(
            fetch_into("owner/cached", &root, true, &env_of(&[])).unwrap(),
            dir
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn unreachable_endpoint_error_says_what_to_do() {
        let root = std::env::temp_dir().join(format!("pulso-hub-test3-{}", std::process::id()));
        // Port 9 on localhost: connection refused immediately, no network needed.
        let e = fetch_into(
            "owner/model",
            &root,
            false,
            &env_of(&[("HF_ENDPOINT", "http://127.0.0.1:9")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "could not download http://127.0.0.1:9/owner/model/resolve/main/config.json"
            ),
            "{e}"
        );
        assert!(e.contains("air-gapped"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
