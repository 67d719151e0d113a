//! The output a run commits to: a local folder ([`Output`]) or an object-store prefix
//! ([`RemoteOutput`]), behind one interface so the sink does not care which.

use super::remote::RemoteOutput;
use super::{CommitError, Committed, Output};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// An output opened for writing.
pub enum Target {
    Local(Output),
    Remote(RemoteOutput),
}

impl Target {
    /// A local folder (locked), or an `s3://` / `gs://` / `az://` prefix.
    pub fn open(out: &Path) -> Result<Target, CommitError> {
        match out.to_str().filter(|_| crate::storage::is_url_path(out)) {
            Some(url) if super::delta_store::is_delta_store(url) => {
                Err(CommitError::DeltaLayout { path: out.into() })
            }
            Some(url) => Ok(Target::Remote(RemoteOutput::open(url)?)),
            None => Ok(Target::Local(Output::open(out)?)),
        }
    }

    /// The (local) folder a run writes its partitions into.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        match self {
            Target::Local(o) => o.run_dir(run_id),
            Target::Remote(o) => o.run_dir(run_id),
        }
    }

    /// The manifest of the version current when the output was opened.
    pub fn current_manifest(&self) -> Option<Value> {
        match self {
            Target::Local(o) => o.current_manifest(),
            Target::Remote(o) => o.current().map(|c| c.manifest.clone()),
        }
    }

    /// A local folder holding the current version's `aggregates/` (the local root itself, or a
    /// downloaded copy).
    pub fn history_root(&self, out: &Path) -> PathBuf {
        match self {
            Target::Local(_) => out.to_path_buf(),
            Target::Remote(o) => o.history_root(),
        }
    }

    pub fn commit(
        &mut self,
        run_id: &str,
        date: &str,
        replaced: &BTreeSet<String>,
        manifest: &mut Value,
    ) -> Result<Committed, CommitError> {
        match self {
            Target::Local(o) => o.commit(run_id, date, replaced, manifest),
            Target::Remote(o) => o.commit(run_id, date, replaced, manifest),
        }
    }

    pub fn discard(&self, run_id: &str) {
        match self {
            Target::Local(o) => o.discard(run_id),
            Target::Remote(o) => o.discard(run_id),
        }
    }
}

/// Where the current version of an output lives, for readers that do not follow pulso's
/// pointers themselves (`pulso current OUT`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CurrentVersion {
    pub version: u64,
    pub run_id: String,
    /// The version's complete Hive tree (a folder or an object-store URL).
    pub tree: String,
    /// Its manifest.
    pub manifest: String,
}

/// The committed version of a local folder or an object-store prefix (None: nothing committed).
pub fn current_version(out: &Path) -> Result<Option<CurrentVersion>, CommitError> {
    if let Some(url) = out.to_str().filter(|_| crate::storage::is_url_path(out)) {
        // Delta tables on a store: the manifest is found the same way; the tables are the prefix.
        let delta = super::delta_store::is_delta_store(url);
        return Ok(super::remote::committed(url)?.map(|v| CurrentVersion {
            version: v.version,
            run_id: v.run_id,
            tree: if delta { url.to_string() } else { v.tree_url },
            manifest: v.manifest_url,
        }));
    }
    Ok(super::committed(out)?.map(|c| CurrentVersion {
        version: c.version,
        run_id: c.run_id,
        tree: c.dir.display().to_string(),
        manifest: c.manifest.display().to_string(),
    }))
}
