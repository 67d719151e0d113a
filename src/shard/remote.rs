//! Shard staging on an object store (`--out s3://…`, `gs://…`, `az://…`): the same layout as on
//! local disk, as plain keys under `OUT/_pulso/staging/RUN_ID/`. A shard writes its attempt to a
//! local scratch folder, uploads the part files and the aggregate input, then the manifest LAST:
//! an attempt whose `manifest.json` object exists is complete (one PUT is atomic). The commit
//! lists the staging prefix once, picks the latest complete attempt of each shard, downloads it
//! to a scratch folder and hands that folder to the local commit code ([`super::commit`]).
//!
//! Two commits of one run (two shards finishing together with `--commit-when-complete`) are kept
//! apart by a claim object, `OUT/_pulso/staging/RUN_ID/commit-claim.json`, created if absent and
//! renewed while the commit works; a claim not renewed for `PULSO_COMMIT_CLAIM_TTL_S` seconds
//! (default 600: its commit was killed) is taken over.

// These functions return the crate's `StorageError` as every storage call does; its size
// (clippy's result_large_err with clippy 1.95) is for `crate::storage` to change, not this module.
#![allow(clippy::result_large_err)]

use super::{ShardSpec, MANIFEST};
use crate::storage::{Remote, StorageError};
use object_store::path::Path as ObjPath;
use object_store::ObjectMeta;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Name of the claim object of a run's commit.
pub const CLAIM: &str = "commit-claim.json";

/// Each way the staging area on a store can stop a commit.
#[derive(Debug, Error)]
pub enum StoreStagingError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("run {run_id} is being committed by another process ({holder}; its claim {url} was renewed {age_s} s ago); wait for it to finish (`pulso current OUT` then shows the run). If no commit of it is running any more (it was killed), the claim expires {left_s} s from now, or delete {url} and commit again. Nothing was published by this process")]
    Claimed {
        run_id: String,
        url: String,
        holder: String,
        age_s: i64,
        left_s: i64,
    },
}

/// The staging area of one run on a store.
pub struct StoreStaging {
    pub r: Remote,
    pub run_id: String,
    /// `_pulso/staging/RUN_ID`
    rel: String,
}

/// One attempt folder as listed.
#[derive(Debug, Default, Clone)]
pub struct Listed {
    pub objects: Vec<ObjectMeta>,
    pub complete: bool,
}

/// What the commit took of one shard folder.
#[derive(Debug, Clone)]
pub struct Picked {
    pub shard_dir: String,
    pub attempt: Option<String>,
    /// Older complete attempts and incomplete attempts that were not taken.
    pub ignored_complete: usize,
    pub ignored_incomplete: usize,
}

impl StoreStaging {
    pub fn new(r: Remote, run_id: &str) -> StoreStaging {
        StoreStaging {
            rel: format!("{}/staging/{run_id}", crate::publish::META),
            r,
            run_id: run_id.to_string(),
        }
    }

    /// The key of `rel` (relative to the run's staging folder).
    pub fn path(&self, rel: &str) -> ObjPath {
        self.r.path(&format!("{}/{rel}", self.rel))
    }

    /// `OUT/_pulso/staging/RUN_ID` as a URL (for messages).
    pub fn url(&self) -> String {
        self.r.url_of(&self.r.path(&self.rel))
    }

    /// Every shard folder → attempt → its objects (one recursive listing).
    pub fn list(&self) -> Result<BTreeMap<String, BTreeMap<String, Listed>>, StorageError> {
        let mut m: BTreeMap<String, BTreeMap<String, Listed>> = BTreeMap::new();
        let base = self.r.path(&self.rel);
        for o in self.r.list(&self.rel)? {
            let Some(parts) = o.location.prefix_match(&base) else {
                continue;
            };
            let parts: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
            let [shard, attempt, rest @ ..] = parts.as_slice() else {
                continue;
            };
            if ShardSpec::from_dir_name(shard).is_none()
                || !attempt.starts_with("attempt-")
                || rest.is_empty()
            {
                continue;
            }
            let a = m
                .entry(shard.clone())
                .or_default()
                .entry(attempt.clone())
                .or_default();
            if rest == [MANIFEST] {
                a.complete = true;
            }
            a.objects.push(o);
        }
        Ok(m)
    }

    /// Whether every one of the `count` shards has a complete attempt.
    pub fn all_staged(&self, count: u32) -> bool {
        let Ok(m) = self.list() else {
            return false;
        };
        (0..count).all(|i| {
            ShardSpec::new(i, count).is_ok_and(|s| {
                m.get(&s.dir_name())
                    .is_some_and(|a| a.values().any(|l| l.complete))
            })
        })
    }

    /// Picks the latest complete attempt of each shard folder of a listing (attempt ids start with
    /// their UTC start time).
    pub fn pick(listing: &BTreeMap<String, BTreeMap<String, Listed>>) -> Vec<Picked> {
        listing
            .iter()
            .map(|(shard, attempts)| {
                let chosen = attempts
                    .iter()
                    .rev()
                    .find(|(_, l)| l.complete)
                    .map(|(a, _)| a.clone());
                let complete = attempts.values().filter(|l| l.complete).count();
                Picked {
                    shard_dir: shard.clone(),
                    ignored_complete: complete.saturating_sub(usize::from(chosen.is_some())),
                    ignored_incomplete: attempts.len() - complete,
                    attempt: chosen,
                }
            })
            .collect()
    }

    /// Mirrors the picked attempts of a listing into `dest` (`dest/shard-…/attempt-…/…`): a folder
    /// per shard folder listed, in it the picked attempt only. With `manifests_only`, just each
    /// picked attempt's manifest (enough for [`super::commit`] to check the shards); call again
    /// with the same listing and picks, without it, to fetch the rest.
    pub fn fetch(
        &self,
        listing: &BTreeMap<String, BTreeMap<String, Listed>>,
        picked: &[Picked],
        dest: &Path,
        manifests_only: bool,
    ) -> Result<(), StorageError> {
        for p in picked {
            let d = dest.join(&p.shard_dir);
            std::fs::create_dir_all(&d).map_err(|source| StorageError::Io {
                path: d.clone(),
                source,
            })?;
            let Some(a) = &p.attempt else { continue };
            let base = self.r.path(&format!("{}/{}/{a}", self.rel, p.shard_dir));
            for o in &listing[&p.shard_dir][a].objects {
                let Some(rel) = o.location.prefix_match(&base) else {
                    continue;
                };
                let rel: Vec<String> = rel.map(|p| p.as_ref().to_string()).collect();
                if manifests_only != (rel == [MANIFEST]) {
                    continue;
                }
                self.r
                    .download(&o.location, &d.join(a).join(rel.join("/")))?;
            }
        }
        Ok(())
    }

    /// Deletes every object of the run's staging folder (the claim last).
    pub fn remove(&self) -> Result<(), StorageError> {
        let claim = self.path(CLAIM);
        let objects: Vec<ObjPath> = self
            .r
            .list(&self.rel)?
            .into_iter()
            .map(|o| o.location)
            .filter(|p| *p != claim)
            .collect();
        self.r.delete_all(objects)?;
        self.r.delete_all(vec![claim])
    }
}

/// Seconds a claim may go without renewal before another commit takes it over.
fn claim_ttl_s() -> i64 {
    std::env::var("PULSO_COMMIT_CLAIM_TTL_S")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(600)
}

/// A run's commit claim, renewed by a thread until released or dropped.
pub struct Claim {
    r: Remote,
    path: ObjPath,
    stop: Option<std::sync::mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl Claim {
    /// Claims the commit of `st`'s run, or says who holds it.
    pub fn take(st: &StoreStaging) -> Result<Claim, StoreStagingError> {
        let path = st.path(CLAIM);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        let body = json!({
            "run_id": st.run_id,
            "holder": format!("pid {} on {host}", std::process::id()),
            "since": chrono::Utc::now().to_rfc3339(),
        });
        let bytes = serde_json::to_vec_pretty(&body).expect("json");
        let ttl = claim_ttl_s();
        for _ in 0..2 {
            if st.r.put_if_absent(&path, bytes.clone())? {
                return Ok(Claim::renewing(st.r.clone(), path, bytes, ttl));
            }
            let meta = crate::storage::block_on(st.r.store.head(&path));
            let Ok(meta) = meta else {
                continue; // released meanwhile: try again
            };
            let age = (chrono::Utc::now() - meta.last_modified)
                .num_seconds()
                .max(0);
            if age < ttl {
                let holder =
                    st.r.get(&path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                        .and_then(|v| v["holder"].as_str().map(str::to_string))
                        .unwrap_or_else(|| "unknown holder".into());
                return Err(StoreStagingError::Claimed {
                    run_id: st.run_id.clone(),
                    url: st.r.url_of(&path),
                    holder,
                    age_s: age,
                    left_s: ttl - age,
                });
            }
            // Expired (its commit was killed): take it over.
            eprintln!(
                "pulso: note: taking over the commit claim {} of run {}, not renewed for {age} s",
                st.r.url_of(&path),
                st.run_id
            );
            st.r.delete_all(vec![path.clone()])?;
        }
        Err(StoreStagingError::Claimed {
            run_id: st.run_id.clone(),
            url: st.r.url_of(&path),
            holder: "another commit that took it just now".into(),
            age_s: 0,
            left_s: ttl,
        })
    }

    fn renewing(r: Remote, path: ObjPath, body: Vec<u8>, ttl: i64) -> Claim {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let every = std::time::Duration::from_secs((ttl as u64 / 4).max(1));
        let (r2, p2) = (r.clone(), path.clone());
        let renewer = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                let _ = r2.put(&p2, body.clone());
            }
        });
        Claim {
            r,
            path,
            stop: Some(tx),
            renewer: Some(renewer),
        }
    }

    /// Stops renewing and deletes the claim.
    pub fn release(mut self) {
        self.stop_renewing();
        let _ = self.r.delete_all(vec![self.path.clone()]);
    }

    fn stop_renewing(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.renewer.is_some() {
            self.stop_renewing();
            let _ = self.r.delete_all(vec![self.path.clone()]);
        }
    }
}

/// A local path for messages about a store key (`s3://bucket/…` as a path value).
pub fn shown(url: String) -> PathBuf {
    PathBuf::from(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn store() -> Remote {
        Remote {
            url: "s3://b/out".into(),
            root: "s3://b".into(),
            scheme: "s3".into(),
            store: Arc::new(object_store::memory::InMemory::new()),
            prefix: ObjPath::from("out"),
        }
    }

    #[test]
    fn picks_the_latest_complete_attempt_and_mirrors_only_it() {
        let r = store();
        let st = StoreStaging::new(r.clone(), "night");
        let put = |rel: &str| st.r.put(&st.path(rel), rel.as_bytes().to_vec()).unwrap();
        // Shard 0: an old complete attempt, a newer complete one, a newest one killed mid-upload.
        for a in ["attempt-20261114T010000Z-a", "attempt-20261114T020000Z-b"] {
            put(&format!(
                "shard-0000-of-0002/{a}/signals/part-00000.parquet"
            ));
            put(&format!("shard-0000-of-0002/{a}/{MANIFEST}"));
        }
        put("shard-0000-of-0002/attempt-20261114T030000Z-c/signals/part-00000.parquet");
        // Shard 1: only a killed attempt.
        put("shard-0001-of-0002/attempt-20261114T010000Z-d/aggregate-input.jsonl.zst");
        assert!(!st.all_staged(2));
        let listing = st.list().unwrap();
        let picked = StoreStaging::pick(&listing);
        assert_eq!(picked.len(), 2);
        assert_eq!(
            picked[0].attempt.as_deref(),
            Some("attempt-20261114T020000Z-b")
        );
        assert_eq!(
            (picked[0].ignored_complete, picked[0].ignored_incomplete),
            (1, 1)
        );
        assert_eq!(picked[1].attempt, None);

        let dest = tempfile::tempdir().unwrap();
        st.fetch(&listing, &picked, dest.path(), true).unwrap();
        let s0 = dest.path().join("shard-0000-of-0002");
        assert!(s0
            .join("attempt-20261114T020000Z-b")
            .join(MANIFEST)
            .is_file());
        assert!(!s0.join("attempt-20261114T020000Z-b/signals").exists());
        assert_eq!(std::fs::read_dir(&s0).unwrap().count(), 1);
        assert!(dest.path().join("shard-0001-of-0002").is_dir());
        st.fetch(&listing, &picked, dest.path(), false).unwrap();
        assert_eq!(
            std::fs::read(s0.join("attempt-20261114T020000Z-b/signals/part-00000.parquet"))
                .unwrap(),
            b"shard-0000-of-0002/attempt-20261114T020000Z-b/signals/part-00000.parquet"
        );

        put(&format!(
            "shard-0001-of-0002/attempt-20261114T040000Z-e/{MANIFEST}"
        ));
        assert!(st.all_staged(2));
        st.remove().unwrap();
        assert!(st.list().unwrap().is_empty());
    }

    #[test]
    fn one_claim_per_run_until_released() {
        let st = StoreStaging::new(store(), "night");
        let c = Claim::take(&st).unwrap();
        match Claim::take(&st) {
            Err(StoreStagingError::Claimed { run_id, holder, .. }) => {
                assert_eq!(run_id, "night");
                assert!(holder.starts_with("pid "), "{holder}");
            }
            other => panic!("a second claim was granted: {:?}", other.map(|_| ())),
        }
        c.release();
        let c = Claim::take(&st).unwrap();
        drop(c);
        assert!(st.r.get(&st.path(CLAIM)).unwrap_err().is_not_found());
    }
}
