//! One commit point per run on an object store (`s3://`, `gs://`, `az://`), where there is no
//! rename: the run's files are uploaded under a prefix of their own, then one create-if-absent
//! write of the version's log entry publishes them all at once.
//!
//! Layout under `OUT` (an object-store prefix; README "Output" has the reader's view):
//!
//! ```text
//! OUT/_pulso/runs/RUN_ID/…                    a complete Hive tree per retained version
//! OUT/_pulso/log/00000000000000000007.json    manifest of version 7: THE commit, created if absent
//! OUT/_pulso/current.json                     hint {version, run_id, tree}, written after a commit
//! ```
//!
//! 1. Opening the output resolves the current version: the hint's version, then a listing of
//!    `_pulso/log/` after it (S3 `start-after`); the newest entry wins, so a stale or missing
//!    hint only costs a longer listing. The current version's `aggregates/` are downloaded to a
//!    local scratch folder (the spike and weekly rules read yesterday's aggregates).
//! 2. The run writes its partitions to local scratch (as on local disk), then [`RemoteOutput::commit`]
//!    uploads them to `_pulso/runs/RUN_ID/`, copies every unchanged file of the current version's
//!    tree next to them server-side, writes the tree's `_SUCCESS` and `runs/RUN_ID.json`.
//! 3. The commit: `PUT _pulso/log/N+1.json` with `PutMode::Create` (S3 `If-None-Match: *`, GCS
//!    `ifGenerationMatch=0`, Azure `If-None-Match: *`). Until it exists no reader can reach the new
//!    tree; once it exists the version is complete. If another writer created N+1 first, the run
//!    fails with [`StoreCommitError::Conflict`] and deletes its own tree: nothing is published.
//!    There is no lock: two writers both work, the second to commit loses.
//! 4. After the commit: the hint is overwritten, then trees are collected: a tree is deleted only
//!    when it is neither the current version's nor the previous one's, and either its version is
//!    committed and superseded or it was never committed and nothing was written to it for
//!    `PULSO_GC_GRACE_S` seconds (default 6 hours: a concurrent writer may still be uploading it).
//!    A failure there is a warning: the version is already published.

use super::{fault, log_name, CommitError, Committed, META};
use crate::storage::{self, Remote, StorageError};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Each way a commit to (or a read of) an object-store output can fail.
#[derive(Debug, Error)]
pub enum StoreCommitError {
    /// A request failed before the commit: nothing was published.
    #[error("{0} (nothing was published)")]
    Storage(#[from] StorageError),
    #[error("version {version} of {out} was committed by another writer while this run worked ({entry} already exists, written by run {other}); nothing was published: run again")]
    Conflict {
        out: String,
        version: u64,
        entry: String,
        other: String,
    },
    #[error("{out}: the store refused a create-if-absent write ({source}); pulso needs it for an atomic commit. On S3 leave AWS_CONDITIONAL_PUT unset (If-None-Match is the default); an S3-compatible server must support conditional writes (If-None-Match: *)")]
    NoConditionalPut {
        out: String,
        source: Box<object_store::Error>,
    },
    #[error("{entry}: the commit request failed ({cause}) and whether it took effect could not be read back ({check}); look at {out}/_pulso/log/ before running again")]
    Uncertain {
        out: String,
        entry: String,
        cause: String,
        check: String,
    },
    #[error("{url}: the committed version cannot be read: {message}; restore _pulso/log/ from a backup or start a new output")]
    Corrupt { url: String, message: String },
}

/// A committed version of an object-store output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemoteVersion {
    pub version: u64,
    pub run_id: String,
    /// `OUT/_pulso/runs/RUN_ID`
    pub tree_url: String,
    /// `OUT/_pulso/log/N.json`
    pub manifest_url: String,
    #[serde(skip)]
    pub manifest: Value,
    #[serde(skip)]
    tree: String,
}

fn log_rel(v: u64) -> String {
    format!("{META}/log/{}", log_name(v))
}

fn version_of_name(name: &str) -> Option<u64> {
    name.strip_suffix(".json")
        .filter(|s| s.len() == 20)
        .and_then(|s| s.parse().ok())
}

fn corrupt(r: &Remote, rel: &str, message: String) -> StoreCommitError {
    StoreCommitError::Corrupt {
        url: r.url_of(&r.path(rel)),
        message,
    }
}

/// The version `r` is at: the hint, then every log entry after it; the newest entry wins.
pub fn resolve(r: &Remote) -> Result<Option<RemoteVersion>, StoreCommitError> {
    let hint = match r.get(&r.path(&format!("{META}/current.json"))) {
        Ok(b) => serde_json::from_slice::<Value>(&b)
            .ok()
            .and_then(|v| v["version"].as_u64())
            .unwrap_or(0),
        Err(e) if e.is_not_found() => 0,
        Err(e) => return Err(e.into()),
    };
    let log = format!("{META}/log");
    let listed = if hint > 0 {
        r.list_after(&log, &log_name(hint))?
    } else {
        r.list(&log)?
    };
    let newest = listed
        .iter()
        .filter_map(|m| m.location.filename().and_then(version_of_name))
        .max();
    let mut v = newest.unwrap_or(0).max(hint);
    if v == 0 {
        return Ok(None);
    }
    let body = match r.get(&r.path(&log_rel(v))) {
        Ok(b) => b,
        Err(e) if e.is_not_found() && newest.is_none() => {
            // A hint ahead of the log (the log was restored from a backup): trust the log.
            let all = r.list(&log)?;
            match all
                .iter()
                .filter_map(|m| m.location.filename().and_then(version_of_name))
                .max()
            {
                None => return Ok(None),
                Some(x) => {
                    v = x;
                    r.get(&r.path(&log_rel(v)))?
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    let manifest: Value =
        serde_json::from_slice(&body).map_err(|e| corrupt(r, &log_rel(v), e.to_string()))?;
    let run_id = manifest["commit"]["run_id"]
        .as_str()
        .ok_or_else(|| corrupt(r, &log_rel(v), "no commit.run_id".into()))?
        .to_string();
    let tree = manifest["commit"]["tree"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{META}/runs/{run_id}"));
    Ok(Some(RemoteVersion {
        version: v,
        run_id,
        tree_url: r.url_of(&r.path(&tree)),
        manifest_url: r.url_of(&r.path(&log_rel(v))),
        manifest,
        tree,
    }))
}

/// The committed version of the object-store output at `url` (for readers).
pub fn committed(url: &str) -> Result<Option<RemoteVersion>, StoreCommitError> {
    resolve(&storage::remote(url)?)
}

/// Downloads the files of version `v` of `url` whose tree-relative path satisfies `want` into
/// `dest`; returns how many.
pub fn download(
    url: &str,
    v: &RemoteVersion,
    want: &dyn Fn(&str) -> bool,
    dest: &Path,
) -> Result<u64, StoreCommitError> {
    download_tree(&storage::remote(url)?, v, want, dest)
}

/// Tree-relative paths of the files of version `v`.
pub fn tree_files(url: &str, v: &RemoteVersion) -> Result<Vec<String>, StoreCommitError> {
    let r = storage::remote(url)?;
    let t = sub(&r, &v.tree);
    Ok(t.list("")?
        .iter()
        .filter_map(|m| t.rel(&m.location))
        .collect())
}

fn sub(r: &Remote, rel: &str) -> Remote {
    Remote {
        prefix: r.path(rel),
        url: r.url_of(&r.path(rel)),
        ..r.clone()
    }
}

fn download_tree(
    r: &Remote,
    v: &RemoteVersion,
    want: &dyn Fn(&str) -> bool,
    dest: &Path,
) -> Result<u64, StoreCommitError> {
    let t = sub(r, &v.tree);
    let mut n = 0;
    for m in t.list("")? {
        let Some(rel) = t.rel(&m.location) else {
            continue;
        };
        if want(&rel) {
            t.download(&m.location, &dest.join(&rel))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Whether a file of the previous version is carried into the new one (same rule as on local
/// disk: every partition of the run's date and every replaced partition is new).
fn carried(rel: &str, date: &str, replaced: &BTreeSet<String>) -> bool {
    let this_date = format!("date={date}");
    !(rel == "_SUCCESS"
        || rel.split('/').any(|p| p == this_date)
        || replaced
            .iter()
            .any(|r| rel == r || rel.starts_with(&format!("{r}/"))))
}

/// Seconds an uncommitted tree must stay untouched before it is collected.
fn gc_grace_s() -> u64 {
    std::env::var("PULSO_GC_GRACE_S")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(6 * 3600)
}

/// An object-store output opened for writing.
pub struct RemoteOutput {
    r: Remote,
    scratch: PathBuf,
    current: Option<RemoteVersion>,
    /// The commit's outcome is unknown: [`RemoteOutput::discard`] must keep the uploaded tree.
    uncertain: bool,
}

impl RemoteOutput {
    /// Resolves the current version and fetches its aggregates (the history later runs read).
    pub fn open(url: &str) -> Result<RemoteOutput, CommitError> {
        let r = storage::remote(url).map_err(StoreCommitError::from)?;
        let current = resolve(&r)?;
        let scratch = storage::scratch_dir("out").map_err(StoreCommitError::from)?;
        let history = scratch.join("history");
        std::fs::create_dir_all(&history).map_err(super::fsx::io(&history))?;
        if let Some(v) = &current {
            download_tree(&r, v, &|rel| rel.starts_with("aggregates/"), &history)?;
        }
        Ok(RemoteOutput {
            r,
            scratch,
            current,
            uncertain: false,
        })
    }

    pub fn current(&self) -> Option<&RemoteVersion> {
        self.current.as_ref()
    }

    /// The local folder a run writes into before its commit uploads it.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.scratch.join("runs").join(run_id)
    }

    /// A local copy of the current version's `aggregates/` (see [`crate::aggregate`]).
    pub fn history_root(&self) -> PathBuf {
        self.scratch.join("history")
    }

    pub fn url(&self) -> &str {
        &self.r.url
    }

    /// Another writer committed after `base`? Then any failure is reported as that conflict.
    fn overtaken(&self, base: u64) -> Option<StoreCommitError> {
        let v = base + 1;
        let b = self.r.get(&self.r.path(&log_rel(v))).ok()?;
        let other = serde_json::from_slice::<Value>(&b)
            .ok()
            .and_then(|m| m["commit"]["run_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| "?".into());
        Some(StoreCommitError::Conflict {
            out: self.r.url.clone(),
            version: v,
            entry: self.r.url_of(&self.r.path(&log_rel(v))),
            other,
        })
    }

    /// Publishes the run in [`RemoteOutput::run_dir`] as the next version (see the module docs).
    pub fn commit(
        &mut self,
        run_id: &str,
        date: &str,
        replaced: &BTreeSet<String>,
        manifest: &mut Value,
    ) -> Result<Committed, CommitError> {
        let base = self.current.as_ref().map(|c| c.version).unwrap_or(0);
        match self.commit_inner(run_id, date, replaced, manifest) {
            Ok(c) => Ok(c),
            Err(e @ StoreCommitError::Uncertain { .. }) => {
                self.uncertain = true;
                Err(e.into())
            }
            Err(e @ StoreCommitError::Conflict { .. }) => Err(e.into()),
            Err(e) => Err(self.overtaken(base).unwrap_or(e).into()),
        }
    }

    fn commit_inner(
        &mut self,
        run_id: &str,
        date: &str,
        replaced: &BTreeSet<String>,
        manifest: &mut Value,
    ) -> Result<Committed, StoreCommitError> {
        let local = self.run_dir(run_id);
        let prev = self.current.clone();
        let version = prev.as_ref().map(|c| c.version).unwrap_or(0) + 1;
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| StoreCommitError::Storage(StorageError::Io { path: p, source })
        };
        fault::point("commit:start").map_err(io(&local))?;
        let tree_rel = format!("{META}/runs/{run_id}");
        let tree = sub(&self.r, &tree_rel);

        // 1. The run's own files.
        let mut files = Vec::new();
        let mut stack = vec![local.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).map_err(io(&d))? {
                let p = e.map_err(io(&d))?.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        files.sort();
        for f in &files {
            let rel = f
                .strip_prefix(&local)
                .expect("under the run folder")
                .to_string_lossy()
                .replace('\\', "/");
            tree.upload(f, &tree.path(&rel))?;
            fault::point("commit:upload").map_err(io(f))?;
        }
        // 2. Unchanged files of the current version, copied server-side.
        let mut carried_n = 0u64;
        if let Some(c) = &prev {
            let old = sub(&self.r, &c.tree);
            for m in old.list("")? {
                let Some(rel) = old.rel(&m.location) else {
                    continue;
                };
                if carried(&rel, date, replaced) {
                    self.r.copy(&m.location, &tree.path(&rel))?;
                    fault::point("commit:link").map_err(io(&local))?;
                    carried_n += 1;
                }
            }
        }
        // 3. The tree's _SUCCESS and its copy of the manifest.
        let success = json!({
            "run_id": run_id,
            "version": version,
            "date": date,
            "finished_at": chrono::Utc::now().to_rfc3339(),
        });
        tree.put(
            &tree.path("_SUCCESS"),
            serde_json::to_vec_pretty(&success).expect("json"),
        )?;
        fault::point("commit:success-written").map_err(io(&local))?;
        manifest["commit"] = json!({
            "version": version,
            "run_id": run_id,
            "previous_version": prev.as_ref().map(|c| c.version),
            "previous_run_id": prev.as_ref().map(|c| c.run_id.clone()),
            "tree": tree_rel,
            "manifest": log_rel(version),
            "replaced_partitions": replaced,
            "carried_files": carried_n,
            "store": self.r.scheme,
            "protocol": "object store: tree uploaded, then log entry created if absent",
        });
        let body = serde_json::to_vec_pretty(manifest).expect("manifest is JSON");
        tree.put(&tree.path(&format!("runs/{run_id}.json")), body.clone())?;
        fault::point("commit:manifest-linked").map_err(io(&local))?;
        fault::point("commit:synced").map_err(io(&local))?;

        // 4. THE commit: create the version's log entry if absent.
        let entry = self.r.path(&log_rel(version));
        let entry_url = self.r.url_of(&entry);
        match self.r.put_if_absent(&entry, body.clone()) {
            Ok(true) => {}
            Ok(false) => {
                // Ours after all if a retried request found the first attempt's object.
                let other = self
                    .r
                    .get(&entry)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .and_then(|m| m["commit"]["run_id"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "?".into());
                if other != run_id {
                    return Err(StoreCommitError::Conflict {
                        out: self.r.url.clone(),
                        version,
                        entry: entry_url,
                        other,
                    });
                }
            }
            Err(StorageError::Request { source, .. })
                if matches!(*source, object_store::Error::NotImplemented) =>
            {
                return Err(StoreCommitError::NoConditionalPut {
                    out: self.r.url.clone(),
                    source,
                })
            }
            Err(e) => {
                // The request may have reached the store: read back what is there.
                return match self.r.get(&entry) {
                    Ok(b) if b.as_ref() == body.as_slice() => {
                        Ok(self.published(run_id, version, &prev)?)
                    }
                    Ok(_) => Err(self.overtaken(version - 1).unwrap_or(e.into())),
                    Err(c) if c.is_not_found() => Err(e.into()),
                    Err(c) => Err(StoreCommitError::Uncertain {
                        out: self.r.url.clone(),
                        entry: entry_url,
                        cause: e.to_string(),
                        check: c.to_string(),
                    }),
                };
            }
        }
        self.published(run_id, version, &prev)
    }

    /// After the commit: hint, local state, collection of old trees (failures are warnings).
    fn published(
        &mut self,
        run_id: &str,
        version: u64,
        prev: &Option<RemoteVersion>,
    ) -> Result<Committed, StoreCommitError> {
        let tree_rel = format!("{META}/runs/{run_id}");
        self.uncertain = false;
        let c = Committed {
            version,
            run_id: run_id.to_string(),
            dir: PathBuf::from(self.r.url_of(&self.r.path(&tree_rel))),
            manifest: PathBuf::from(self.r.url_of(&self.r.path(&log_rel(version)))),
        };
        // Published: a fault here can kill or pause the run, never undo the commit.
        let _ = fault::point("commit:claimed");
        let hint = json!({"version": version, "run_id": run_id, "tree": tree_rel});
        if let Err(e) = self.r.put(
            &self.r.path(&format!("{META}/current.json")),
            serde_json::to_vec_pretty(&hint).expect("json"),
        ) {
            eprintln!("pulso: warning: version {version} is published, but the hint {META}/current.json was not updated ({e}); readers still find the version through {META}/log/");
        }
        let _ = fault::point("commit:published");
        let mut keep = BTreeSet::from([run_id.to_string()]);
        if let Some(p) = prev {
            keep.insert(p.run_id.clone());
        }
        if let Err(e) = self.gc(version, &keep) {
            eprintln!("pulso: warning: version {version} is published, but old versions were not collected ({e}); the next run tries again");
        }
        let _ = fault::point("commit:gc");
        let _ = std::fs::remove_dir_all(self.run_dir(run_id));
        self.current = resolve(&self.r).ok().flatten();
        Ok(c)
    }

    /// Deletes the trees no reader can reach (see the module docs).
    fn gc(&self, current: u64, keep: &BTreeSet<String>) -> Result<(), StoreCommitError> {
        let grace = gc_grace_s();
        let now = chrono::Utc::now();
        for run in self.r.list_dirs(&format!("{META}/runs"))? {
            if keep.contains(&run) {
                continue;
            }
            let tree = sub(&self.r, &format!("{META}/runs/{run}"));
            // Committed? Its manifest copy names a version whose log entry names this run.
            let committed_as = tree
                .get(&tree.path(&format!("runs/{run}.json")))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|m| m["commit"]["version"].as_u64())
                .filter(|v| {
                    self.r
                        .get(&self.r.path(&log_rel(*v)))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                        .is_some_and(|m| m["commit"]["run_id"] == run.as_str())
                });
            let objects = tree.list("")?;
            let remove = match committed_as {
                Some(v) => v + 1 < current,
                None => objects
                    .iter()
                    .map(|m| m.last_modified)
                    .max()
                    .is_none_or(|t| (now - t).num_seconds() >= grace as i64),
            };
            if remove {
                tree.delete_all(objects.into_iter().map(|m| m.location).collect())?;
            }
        }
        Ok(())
    }

    /// Drops a run that will not be committed: its scratch folder and whatever it uploaded.
    pub fn discard(&self, run_id: &str) {
        let _ = std::fs::remove_dir_all(self.run_dir(run_id));
        if self.uncertain {
            return;
        }
        let tree = sub(&self.r, &format!("{META}/runs/{run_id}"));
        if let Ok(objects) = tree.list("") {
            let _ = tree.delete_all(objects.into_iter().map(|m| m.location).collect());
        }
    }
}

impl Drop for RemoteOutput {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carry_rule_matches_the_local_one() {
        let replaced = BTreeSet::from(["aggregates/brand_daily/date=2026-11-10".to_string()]);
        assert!(carried(
            "signals/segment=external/date=2026-11-13/part-00000.parquet",
            "2026-11-14",
            &replaced
        ));
        assert!(!carried(
            "signals/segment=external/date=2026-11-14/part-00000.parquet",
            "2026-11-14",
            &replaced
        ));
        assert!(!carried(
            "aggregates/brand_daily/date=2026-11-10/part-00000.parquet",
            "2026-11-14",
            &replaced
        ));
        assert!(!carried("_SUCCESS", "2026-11-14", &replaced));
        assert!(carried("runs/r1.json", "2026-11-14", &replaced));
        assert_eq!(version_of_name("00000000000000000007.json"), Some(7));
        assert_eq!(version_of_name("7.json"), None);
        assert_eq!(version_of_name("00000000000000000007.json.tmp"), None);
    }
}
