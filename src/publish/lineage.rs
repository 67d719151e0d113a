//! Lineage for the run manifest: what exactly produced a version (SHA-256 of the pipeline file,
//! roster, topic taxonomy and every file of the model folder, and the model's hub id).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn file_entry(path: &Path) -> Value {
    match sha256_file(path) {
        Ok(h) => json!({"path": path, "sha256": h}),
        Err(e) => json!({"path": path, "error": e.to_string()}),
    }
}

/// `{path, sha256}` of every regular file in the model folder (weights, config, tokenizer).
fn model_files(dir: &Path) -> Value {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Value::Array(
        files
            .iter()
            .map(|p| {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                match sha256_file(p) {
                    Ok(h) => json!({"file": name, "sha256": h}),
                    Err(e) => json!({"file": name, "error": e.to_string()}),
                }
            })
            .collect(),
    )
}

/// `{id, requested, revision, pinned, files}` of a hub model: the commit sha its cached folder was
/// downloaded from and the checksums checked then (see [`crate::model::hub`]).
fn hub_entry(model_ref: &str, model_dir: &Path) -> Value {
    let (id, rev) = crate::model::hub::split_revision(model_ref);
    match crate::model::hub::pin_of(model_dir) {
        Some(p) => json!({
            "id": id,
            "requested": p["requested"],
            "revision": p["revision"],
            "pinned": true,
            "endpoint": p["endpoint"],
            "checked": p["files"],
        }),
        // A cache filled by an older pulso and used offline: the file hashes identify the weights.
        None => {
            json!({"id": id, "requested": rev.unwrap_or("main"), "revision": null, "pinned": false})
        }
    }
}

/// The `lineage` member of a run manifest.
pub fn lineage(
    pipeline_file: &Path,
    roster: Option<&Path>,
    topics: Option<&Path>,
    model_ref: &str,
    model_dir: &Path,
) -> Value {
    let hub = !Path::new(model_ref).exists() && crate::model::hub::looks_like_hub_id(model_ref);
    json!({
        "pipeline_file": file_entry(pipeline_file),
        "roster": roster.map(file_entry),
        "topics": match topics {
            Some(t) => file_entry(t),
            None => json!({
                "path": "built-in pipelines/topics.toml",
                "sha256": hex::encode(Sha256::digest(crate::enrich::DEFAULT_TOPICS_TOML.as_bytes())),
            }),
        },
        "model": {
            "ref": model_ref,
            "folder": model_dir,
            "hub": if hub {
                hub_entry(model_ref, model_dir)
            } else {
                Value::Null
            },
            "files": model_files(model_dir),
        },
        "pulso_version": env!("CARGO_PKG_VERSION"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_files_and_marks_hub_ids() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("p.toml"), "abc").unwrap();
        std::fs::write(d.path().join("model.safetensors"), "w").unwrap();
        let l = lineage(&d.path().join("p.toml"), None, None, "owner/name", d.path());
        assert_eq!(
            l["pipeline_file"]["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(l["model"]["hub"]["id"], "owner/name");
        let files = l["model"]["files"].as_array().unwrap();
        assert!(files.iter().any(|f| f["file"] == "model.safetensors"));
        let l = lineage(
            &d.path().join("p.toml"),
            None,
            None,
            &d.path().display().to_string(),
            d.path(),
        );
        assert!(l["model"]["hub"].is_null());
        assert_eq!(l["topics"]["path"], "built-in pipelines/topics.toml");
    }
}
