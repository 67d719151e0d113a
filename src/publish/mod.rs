//! One commit point per run for a local output folder: readers see the previous run or the new
//! one, never a mix, and a failed or killed run leaves what readers see byte-identical.
//!
//! Layout under `OUT` (README "Output" has the reader's view):
//!
//! ```text
//! OUT/signals     -> _pulso/current/signals      fixed entry symlinks, created once
//! OUT/rejects     -> _pulso/current/rejects
//! OUT/aggregates  -> _pulso/current/aggregates
//! OUT/runs        -> _pulso/current/runs
//! OUT/_SUCCESS    -> _pulso/current/_SUCCESS
//! OUT/_pulso/current -> runs/RUN_ID              THE commit point: one symlink, swapped by rename(2)
//! OUT/_pulso/runs/RUN_ID/                        a complete Hive tree per retained version
//! OUT/_pulso/log/00000000000000000007.json       manifest of version 7, created with O_EXCL
//! OUT/.pulso.lock                                flock held by the writing run
//! ```
//!
//! A run writes its new partitions under `_pulso/runs/RUN_ID/`, fsyncs them, hard-links the
//! unchanged files of the current version next to them, writes `_SUCCESS`, fsyncs every folder,
//! claims version N+1 by creating `_pulso/log/N+1.json` with create-new semantics (a second
//! writer that got past the lock fails with [`CommitError::Conflict`]), then renames a fresh
//! symlink over `_pulso/current`. That rename is the commit. Versions older than the previous
//! one are removed afterwards; a version's folder is removed only when `current` no longer points
//! at it nor at its successor.

pub mod delta;
pub mod delta_store;
pub mod fault;
mod fsx;
pub mod guard;
pub mod lineage;
pub mod remote;
pub mod target;

use fsx::io;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The folder with pulso's own bookkeeping under an output root.
pub const META: &str = "_pulso";
/// Names under `OUT` that readers use; each is a symlink through `_pulso/current`.
pub const ENTRIES: [&str; 5] = ["signals", "rejects", "aggregates", "runs", "_SUCCESS"];

/// Each way a commit (or opening an output for writing) can fail.
#[derive(Debug, Error)]
pub enum CommitError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is locked by another pulso run{holder} writing to the same output; wait for it to finish or choose another --out")]
    Locked { path: PathBuf, holder: String },
    #[error("version {version} of {out} was committed by another writer while this run worked ({path} already exists); nothing was published: run again")]
    Conflict {
        out: PathBuf,
        version: u64,
        path: PathBuf,
    },
    #[error("cannot hard-link {from} to {to}: {source}; the output folder must be on one local file system that supports hard links")]
    Link {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is a real folder written by an older pulso and this file system cannot swap it for a symlink atomically; move the old output away or pass another --out")]
    Legacy { path: PathBuf },
    #[error("{path} holds Delta tables (written with [output] format = \"delta\"); set that format in the pipeline file again, or pass another --out for plain Parquet")]
    DeltaLayout { path: PathBuf },
    #[error("{path}: the committed version cannot be read: {message}; restore _pulso/ from a backup or start a new --out")]
    Corrupt { path: PathBuf, message: String },
    /// An object-store output (see [`remote`]).
    #[error(transparent)]
    Store(#[from] remote::StoreCommitError),
    #[error("version {version} is published, but {path} could not be synced ({source}); it may not survive a power loss")]
    Durability {
        version: u64,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A committed version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Committed {
    pub version: u64,
    pub run_id: String,
    /// The version's tree (`OUT/_pulso/runs/RUN_ID`).
    pub dir: PathBuf,
    /// Its manifest (`OUT/_pulso/log/N.json`).
    pub manifest: PathBuf,
}

/// `_pulso/log/00000000000000000007.json`
pub fn log_name(version: u64) -> String {
    format!("{version:020}.json")
}

/// The version `current` points at, if any (no lock needed; for readers).
pub fn committed(out: &Path) -> Result<Option<Committed>, CommitError> {
    let meta = out.join(META);
    let link = meta.join("current");
    let target = match std::fs::read_link(&link) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CommitError::Io {
                path: link,
                source: e,
            })
        }
    };
    let dir = meta.join(&target);
    let run_id = target
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let success = dir.join("_SUCCESS");
    let corrupt = |message: String| CommitError::Corrupt {
        path: success.clone(),
        message,
    };
    let body = std::fs::read(&success).map_err(|e| corrupt(e.to_string()))?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| corrupt(e.to_string()))?;
    let version = v["version"]
        .as_u64()
        .ok_or_else(|| corrupt("no version".into()))?;
    Ok(Some(Committed {
        version,
        run_id,
        dir,
        manifest: meta.join("log").join(log_name(version)),
    }))
}

/// Where a reader should read a consistent snapshot of `out`: the committed version's own tree
/// (so a commit during a long read cannot mix versions), or `out` itself when it holds no
/// versions (an older layout). `pulso report` reads through this.
pub fn read_root(out: &Path) -> PathBuf {
    if delta::pin_committed(out) {
        // Delta tables: the readers filter each table's files by the manifest's versions.
        return out.to_path_buf();
    }
    match committed(out) {
        Ok(Some(c)) => c.dir,
        _ => out.to_path_buf(),
    }
}

/// The manifest of the committed version, if any.
pub fn committed_manifest(out: &Path) -> Option<Value> {
    let c = committed(out).ok()??;
    serde_json::from_slice(&std::fs::read(&c.manifest).ok()?).ok()
}

/// An output folder opened for writing: holds the lock from open to commit or drop.
pub struct Output {
    root: PathBuf,
    meta: PathBuf,
    _lock: File,
    current: Option<Committed>,
}

/// Creates `root` and takes its output lock (`root/.pulso.lock`, held until the file is dropped),
/// waiting for another run that holds it; the lock file then names this process.
pub(crate) fn lock_output(root: &Path) -> Result<File, CommitError> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    let lock_path = root.join(".pulso.lock");
    let mut lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock_exclusive(&lock, &lock_path)?;
    use std::io::Write;
    let _ = lock.set_len(0);
    let _ = write!(
        lock,
        "pid {} since {}",
        std::process::id(),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    Ok(lock)
}

fn lock_exclusive(f: &File, path: &Path) -> Result<(), CommitError> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        let holder = std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        Err(CommitError::Locked {
            path: path.into(),
            holder,
        })
    } else {
        Err(CommitError::Io {
            path: path.into(),
            source: e,
        })
    }
}

impl Output {
    /// Takes the output lock, then clears what crashed runs left (nothing a reader can see).
    pub fn open(root: &Path) -> Result<Output, CommitError> {
        let lock = lock_output(root)?;
        if delta::is_delta_output(root) {
            return Err(CommitError::DeltaLayout { path: root.into() });
        }
        let meta = root.join(META);
        for d in [meta.join("runs"), meta.join("log")] {
            std::fs::create_dir_all(&d).map_err(io(&d))?;
        }
        let current = committed(root)?;
        let mut out = Output {
            root: root.to_path_buf(),
            meta,
            _lock: lock,
            current,
        };
        if out.current.is_none() && !out.legacy_entries().is_empty() {
            out.import_legacy()?;
        }
        out.recover()?;
        Ok(out)
    }

    /// The committed version when the run started.
    pub fn current(&self) -> Option<&Committed> {
        self.current.as_ref()
    }

    /// The committed version's manifest.
    pub fn current_manifest(&self) -> Option<Value> {
        let c = self.current.as_ref()?;
        serde_json::from_slice(&std::fs::read(&c.manifest).ok()?).ok()
    }

    /// The folder a run writes into.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.meta.join("runs").join(run_id)
    }

    /// Run ids of the current version and the one before it: the only trees kept.
    fn retained(&self) -> BTreeSet<String> {
        let mut keep = BTreeSet::new();
        if let Some(c) = &self.current {
            keep.insert(c.run_id.clone());
            if let Some(prev) = c.version.checked_sub(1).filter(|v| *v > 0) {
                let p = self.meta.join("log").join(log_name(prev));
                if let Ok(b) = std::fs::read(&p) {
                    if let Ok(v) = serde_json::from_slice::<Value>(&b) {
                        if let Some(r) = v["commit"]["run_id"].as_str() {
                            keep.insert(r.to_string());
                        }
                    }
                }
            }
        }
        keep
    }

    /// Under the lock: removes trees of crashed or superseded runs, manifests claimed by runs that
    /// crashed before their commit, and half-made symlinks. None of them is visible to readers.
    fn recover(&self) -> Result<(), CommitError> {
        let cur = self.current.as_ref().map(|c| c.version).unwrap_or(0);
        let log = self.meta.join("log");
        for e in std::fs::read_dir(&log).map_err(io(&log))? {
            let e = e.map_err(io(&log))?;
            let name = e.file_name().to_string_lossy().to_string();
            let v = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok());
            if v.is_some_and(|v| v > cur) || name.ends_with(".tmp") {
                std::fs::remove_file(e.path()).map_err(io(&e.path()))?;
            }
        }
        for e in std::fs::read_dir(&self.meta).map_err(io(&self.meta))? {
            let e = e.map_err(io(&self.meta))?;
            if e.file_name().to_string_lossy().starts_with("current.next") {
                std::fs::remove_file(e.path()).map_err(io(&e.path()))?;
            }
        }
        self.gc()?;
        if self.current.is_some() {
            self.ensure_entries()?;
        }
        Ok(())
    }

    /// Removes every run tree except the retained ones.
    fn gc(&self) -> Result<(), CommitError> {
        let keep = self.retained();
        let runs = self.meta.join("runs");
        for e in std::fs::read_dir(&runs).map_err(io(&runs))? {
            let e = e.map_err(io(&runs))?;
            if !keep.contains(&*e.file_name().to_string_lossy()) {
                fsx::remove_tree(&e.path())?;
            }
        }
        Ok(())
    }

    /// Entry names that are real files or folders (an output of the older layout).
    fn legacy_entries(&self) -> Vec<&'static str> {
        ENTRIES
            .into_iter()
            .filter(|e| {
                self.root
                    .join(e)
                    .symlink_metadata()
                    .is_ok_and(|m| !m.file_type().is_symlink())
            })
            .collect()
    }

    /// Turns an output of the older layout (real `signals/`, … folders) into version 1 without
    /// changing what readers see: its files are hard-linked into a tree, `current` is pointed at
    /// it, then each real folder is exchanged with its entry symlink (`renameat2(RENAME_EXCHANGE)`),
    /// which shows the same files before and after.
    fn import_legacy(&mut self) -> Result<(), CommitError> {
        let run_id = format!("imported-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
        let dir = self.run_dir(&run_id);
        fsx::remove_tree(&dir)?;
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        for e in ["signals", "rejects", "aggregates", "runs"] {
            let src = self.root.join(e);
            if src.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                fsx::link_tree(&src, &dir.join(e), &|_| false, &mut || Ok(()))?;
            }
        }
        let success = serde_json::json!({"run_id": run_id, "version": 1, "imported": true});
        let sp = dir.join("_SUCCESS");
        fsx::write_new_synced(&sp, &serde_json::to_vec_pretty(&success).expect("json"))
            .map_err(io(&sp))?;
        fsx::sync_tree(&dir)?;
        fsx::sync_dir(&self.meta.join("runs"))?;
        let mp = self.meta.join("log").join(log_name(1));
        let manifest = serde_json::json!({
            "run_id": run_id,
            "imported": "output written by an older pulso, taken over as version 1",
            "inputs": [],
            "commit": {"version": 1, "run_id": run_id, "tree": format!("{META}/runs/{run_id}")},
        });
        match fsx::write_new_synced(&mp, &serde_json::to_vec_pretty(&manifest).expect("json")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(CommitError::Conflict {
                    out: self.root.clone(),
                    version: 1,
                    path: mp,
                })
            }
            Err(e) => {
                return Err(CommitError::Io {
                    path: mp,
                    source: e,
                })
            }
        }
        fsx::sync_dir(&self.meta.join("log"))?;
        fsx::swap_symlink(
            &self.meta.join("current"),
            &Path::new("runs").join(&run_id),
            &format!("current.next-{run_id}"),
            &mut || Ok(()),
        )?;
        fsx::sync_dir(&self.meta)?;
        self.current = committed(&self.root)?;
        self.replace_legacy_entries()?;
        fsx::remove_tree(&self.root.join("_staging"))?;
        Ok(())
    }

    /// Swaps each real entry folder of the older layout for its symlink (same files behind both).
    fn replace_legacy_entries(&self) -> Result<(), CommitError> {
        for e in self.legacy_entries() {
            let p = self.root.join(e);
            let tmp = self.root.join(format!(".{e}.pulso-link"));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(Path::new(META).join("current").join(e), &tmp)
                .map_err(io(&tmp))?;
            if p.is_dir() {
                fsx::exchange(&tmp, &p).map_err(|_| CommitError::Legacy { path: p.clone() })?;
                fsx::remove_tree(&tmp)?;
            } else {
                std::fs::rename(&tmp, &p).map_err(io(&p))?;
            }
        }
        fsx::sync_dir(&self.root)
    }

    /// Creates the entry symlinks (`OUT/signals -> _pulso/current/signals`, …) that are missing.
    fn ensure_entries(&self) -> Result<(), CommitError> {
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.run_id.starts_with("imported-"))
        {
            // An import interrupted between its commit and the folder swaps.
            self.replace_legacy_entries()?;
        }
        let mut made = false;
        for e in ENTRIES {
            let p = self.root.join(e);
            match p.symlink_metadata() {
                Ok(m) if m.file_type().is_symlink() => continue,
                Ok(_) => return Err(CommitError::Legacy { path: p }),
                Err(_) => {}
            }
            let target = Path::new(META).join("current").join(e);
            std::os::unix::fs::symlink(&target, &p).map_err(io(&p))?;
            made = true;
        }
        if made {
            fsx::sync_dir(&self.root)?;
        }
        Ok(())
    }

    /// Publishes the run whose new partitions are in [`Output::run_dir`]: every file of the
    /// current version outside `replaced` (partition folders relative to the root, e.g.
    /// `rejects/date=2026-11-14`) and outside the run's `date` is carried over. `manifest` gets
    /// a `commit` member.
    pub fn commit(
        &mut self,
        run_id: &str,
        date: &str,
        replaced: &BTreeSet<String>,
        manifest: &mut Value,
    ) -> Result<Committed, CommitError> {
        let dir = self.run_dir(run_id);
        let prev = self.current.clone();
        let version = prev.as_ref().map(|c| c.version).unwrap_or(0) + 1;
        fault::point("commit:start").map_err(io(&dir))?;

        // 1. Carry over the unchanged files of the current version (hard links: no copy). Every
        //    partition of the run's date is replaced, also in tables this run wrote nothing to.
        let mut carried = 0;
        if let Some(c) = &prev {
            let this_date = format!("date={date}");
            let skip = |rel: &str| {
                rel == "_SUCCESS"
                    || rel.split('/').any(|p| p == this_date)
                    || replaced
                        .iter()
                        .any(|r| rel == r || rel.starts_with(&format!("{r}/")))
            };
            carried = fsx::link_tree(&c.dir, &dir, &skip, &mut || fault::point("commit:link"))?;
        }
        // 2. The version's _SUCCESS (also how `committed` learns the version number).
        let success = serde_json::json!({
            "run_id": run_id,
            "version": version,
            "date": date,
            "finished_at": chrono::Utc::now().to_rfc3339(),
        });
        let sp = dir.join("_SUCCESS");
        fsx::write_new_synced(&sp, &serde_json::to_vec_pretty(&success).expect("json"))
            .map_err(io(&sp))?;
        std::fs::create_dir_all(dir.join("runs")).map_err(io(&dir))?;
        fault::point("commit:success-written").map_err(io(&sp))?;
        // 3. Every folder of the tree durable before anything points at it.
        fsx::sync_tree(&dir)?;
        fsx::sync_dir(&self.meta.join("runs"))?;
        fault::point("commit:synced").map_err(io(&dir))?;

        // 4. Claim the version: create-new of its manifest (optimistic concurrency).
        let log = self.meta.join("log");
        let mp = log.join(log_name(version));
        manifest["commit"] = serde_json::json!({
            "version": version,
            "run_id": run_id,
            "previous_version": prev.as_ref().map(|c| c.version),
            "previous_run_id": prev.as_ref().map(|c| c.run_id.clone()),
            "tree": format!("{META}/runs/{run_id}"),
            "manifest": format!("{META}/log/{}", log_name(version)),
            "replaced_partitions": replaced,
            "carried_files": carried,
        });
        let body = serde_json::to_vec_pretty(manifest).expect("manifest is JSON");
        match fsx::write_new_synced(&mp, &body) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(CommitError::Conflict {
                    out: self.root.clone(),
                    version,
                    path: mp,
                })
            }
            Err(e) => {
                let _ = std::fs::remove_file(&mp);
                return Err(CommitError::Io {
                    path: mp,
                    source: e,
                });
            }
        }
        let after_claim = |r: Result<(), CommitError>| {
            if r.is_err() {
                let _ = std::fs::remove_file(&mp);
            }
            r
        };
        after_claim(fsx::sync_dir(&log))?;
        after_claim(fault::point("commit:claimed").map_err(io(&mp)))?;
        // 5. The manifest inside the tree too (`OUT/runs/RUN_ID.json`, one per committed run).
        let in_tree = dir.join("runs").join(format!("{run_id}.json"));
        after_claim(
            std::fs::hard_link(&mp, &in_tree).map_err(|source| CommitError::Link {
                from: mp.clone(),
                to: in_tree.clone(),
                source,
            }),
        )?;
        after_claim(fsx::sync_dir(&dir.join("runs")))?;
        after_claim(fault::point("commit:manifest-linked").map_err(io(&in_tree)))?;
        // 6. Entry symlinks (dangling until the first commit, so that one swap publishes all).
        after_claim(self.ensure_entries())?;
        after_claim(fault::point("commit:entries").map_err(io(&self.root)))?;

        // 7. THE commit: one rename of the `current` symlink.
        let link = self.meta.join("current");
        after_claim(fsx::swap_symlink(
            &link,
            &Path::new("runs").join(run_id),
            &format!("current.next-{run_id}"),
            &mut || fault::point("commit:next-link"),
        ))?;
        let committed = Committed {
            version,
            run_id: run_id.to_string(),
            dir: dir.clone(),
            manifest: mp.clone(),
        };
        self.current = Some(committed.clone());
        fault::point("commit:renamed").map_err(|source| CommitError::Durability {
            version,
            path: self.meta.clone(),
            source,
        })?;
        File::open(&self.meta)
            .and_then(|f| f.sync_all())
            .map_err(|source| CommitError::Durability {
                version,
                path: self.meta.clone(),
                source,
            })?;
        fault::point("commit:published").map_err(io(&self.meta))?;
        // 8. Versions before the previous one are unreferenced now.
        self.gc()?;
        fault::point("commit:gc").map_err(io(&self.meta))?;
        Ok(committed)
    }

    /// Drops a run that will not be committed; what readers see is untouched.
    pub fn discard(&self, run_id: &str) {
        let _ = fsx::remove_tree(&self.run_dir(run_id));
        if self.current.is_none() {
            // A first run that failed: no dangling entry symlinks left behind.
            for e in ENTRIES {
                let p = self.root.join(e);
                if p.symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink())
                {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, body: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn commit(out: &Path, run: &str, parts: &[(&str, &str)]) -> Committed {
        let mut o = Output::open(out).unwrap();
        let dir = o.run_dir(run);
        let mut replaced = BTreeSet::new();
        for (rel, body) in parts {
            write(&dir.join(rel).join("part-00000.parquet"), body);
            replaced.insert(rel.to_string());
        }
        let mut m = serde_json::json!({"run_id": run});
        o.commit(run, "2026-11-14", &replaced, &mut m).unwrap()
    }

    #[test]
    fn versions_carry_unchanged_partitions_and_gc_old_trees() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let c1 = commit(&out, "r1", &[("signals/segment=external/date=D1", "a")]);
        assert_eq!(c1.version, 1);
        let c2 = commit(&out, "r2", &[("signals/segment=external/date=D2", "b")]);
        assert_eq!(c2.version, 2);
        let c3 = commit(&out, "r3", &[("signals/segment=external/date=D2", "c")]);
        assert_eq!(c3.version, 3);
        let read = |rel: &str| std::fs::read_to_string(out.join(rel)).unwrap();
        assert_eq!(
            read("signals/segment=external/date=D1/part-00000.parquet"),
            "a"
        );
        assert_eq!(
            read("signals/segment=external/date=D2/part-00000.parquet"),
            "c"
        );
        let runs: BTreeSet<String> = std::fs::read_dir(out.join("runs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(runs.len(), 3, "{runs:?}");
        // r1 is two versions back: collected; r2 (previous) kept for readers pinned on it.
        assert!(!out.join("_pulso/runs/r1").exists());
        assert!(out.join("_pulso/runs/r2").exists());
        assert_eq!(committed(&out).unwrap().unwrap().run_id, "r3");
        assert_eq!(read_root(&out), out.join("_pulso/runs/r3"));
        let m: Value = serde_json::from_slice(&std::fs::read(&c3.manifest).unwrap()).unwrap();
        assert_eq!(m["commit"]["version"], 3);
        assert_eq!(m["commit"]["previous_run_id"], "r2");
    }

    #[test]
    fn a_claimed_version_conflicts_and_orphans_are_cleared() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        commit(&out, "r1", &[("rejects/date=D1", "a")]);
        // Another writer (that did not honour the lock) claimed version 2 meanwhile.
        let mut o = Output::open(&out).unwrap();
        write(
            &o.run_dir("r2").join("rejects/date=D1/part-00000.parquet"),
            "b",
        );
        std::fs::write(out.join("_pulso/log").join(log_name(2)), "{}").unwrap();
        let e = o
            .commit(
                "r2",
                "D1",
                &BTreeSet::from(["rejects/date=D1".to_string()]),
                &mut serde_json::json!({}),
            )
            .unwrap_err();
        assert!(matches!(e, CommitError::Conflict { version: 2, .. }), "{e}");
        o.discard("r2");
        drop(o);
        assert_eq!(
            std::fs::read_to_string(out.join("rejects/date=D1/part-00000.parquet")).unwrap(),
            "a"
        );
        // The next writer clears the unpublished claim and commits version 2 itself.
        let c = commit(&out, "r3", &[("rejects/date=D1", "c")]);
        assert_eq!(c.version, 2);
    }

    #[test]
    fn second_writer_is_locked_out() {
        let d = tempfile::tempdir().unwrap();
        let _a = Output::open(d.path()).unwrap();
        let e = Output::open(d.path()).err().unwrap().to_string();
        assert!(e.contains("another pulso run") && e.contains("pid"), "{e}");
    }

    #[test]
    fn an_older_layout_is_taken_over_as_version_1_with_the_same_files() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let old = "signals/segment=internal/date=D0/part-00000.parquet";
        write(&out.join(old), "old");
        write(&out.join("runs/r0.json"), "{}");
        write(&out.join("_SUCCESS"), "{}");
        let o = Output::open(&out).unwrap();
        assert_eq!(o.current().unwrap().version, 1);
        drop(o);
        assert!(out
            .join("signals")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(out.join(old)).unwrap(), "old");
        assert!(out.join("runs/r0.json").is_file());
        let c = commit(&out, "r1", &[("signals/segment=internal/date=D1", "new")]);
        assert_eq!(c.version, 2);
        assert_eq!(std::fs::read_to_string(out.join(old)).unwrap(), "old");
        let new = "signals/segment=internal/date=D1/part-00000.parquet";
        assert_eq!(std::fs::read_to_string(out.join(new)).unwrap(), "new");
    }
}
