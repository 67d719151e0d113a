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

/// True for strings shaped like a hub id: `owner/name`, letters, digits, `-`, `_`, `.`.
pub fn looks_like_hub_id(s: &str) -> bool {
    let mut parts = s.split('/');
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

/// Where a hub model is cached under `root`: `owner--name`.
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
pub fn fetch_into(
    id: &str,
    root: &Path,
    offline: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<PathBuf> {
    let dir = cache_dir_in(root, id);
    if is_complete(&dir) {
        return Ok(dir);
    }
    if offline {
        bail!(
            "model {id:?} is not in the local cache ({}) and downloads are off (PULSO_OFFLINE / HF_HUB_OFFLINE); \
             on an air-gapped machine copy the model folder and pass its path",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create cache folder {}", dir.display()))?;
    let endpoint = env("HF_ENDPOINT")
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into());
    let dl = Downloader {
        agent: ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120))
            .build(),
        base: format!("{}/{id}/resolve/main", endpoint.trim_end_matches('/')),
        token: env("HF_TOKEN")
            .or_else(|| env("HUGGING_FACE_HUB_TOKEN"))
            .filter(|t| !t.trim().is_empty()),
        dir: dir.clone(),
    };
    dl.get("config.json", true)?;
    let config = ModelConfig::from_file(&dir.join("config.json"))?;
    dl.get("tokenizer_config.json", false)?;
    if !dl.get("tokenizer.json", false)? {
        for f in tokenizer_files(config.family) {
            dl.get(f, true)?;
        }
    }
    if !WEIGHT_FILES.iter().any(|w| dir.join(w).is_file()) {
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
    }
    Ok(dir)
}

struct Downloader {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
    dir: PathBuf,
}

impl Downloader {
    /// Downloads `file` unless already present. Ok(false) when the hub says 404 and `required` is false.
    fn get(&self, file: &str, required: bool) -> anyhow::Result<bool> {
        let dest = self.dir.join(file);
        if dest.is_file() {
            return Ok(true);
        }
        let url = format!("{}/{file}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(404, _)) if !required => return Ok(false),
            Err(ureq::Error::Status(code @ (401 | 403), _)) => bail!(
                "could not download {url}: HTTP {code}; the model may be private or gated: set HF_TOKEN \
                 to a token with access, or copy the model folder and pass its path"
            ),
            // ureq's own messages repeat the URL; say it once.
            Err(ureq::Error::Status(code, _)) => bail!(
                "could not download {url}: HTTP {code}; on an air-gapped machine copy the model folder and pass its path"
            ),
            Err(ureq::Error::Transport(t)) => bail!(
                "could not download {url}: {}; on an air-gapped machine copy the model folder and pass its path",
                transport_detail(&t)
            ),
        };
        let tmp = self
            .dir
            .join(format!(".{file}.partial-{}", std::process::id()));
        let result = (|| -> anyhow::Result<()> {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            std::io::copy(&mut resp.into_reader(), &mut out)
                .map_err(|e| anyhow!("could not download {url}: {e}; on an air-gapped machine copy the model folder and pass its path"))?;
            out.flush()?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, &dest)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.with_context(|| format!("saving {} into {}", file, self.dir.display()))?;
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
