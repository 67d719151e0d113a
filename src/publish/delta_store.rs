//! Delta tables on an object store (`s3://`, `gs://`, `az://`): the commit sequence of
//! [`super::delta`], with uploads where the local one renames and create-if-absent writes where
//! it takes a lock. deltalake-core is handed pulso's own object store (built from the URL and
//! the standard environment, see [`crate::storage`]) through a registered store factory and
//! its default log store, so no cloud SDK crate is needed.
//!
//! Layout under `OUT` (an object-store prefix; README "Output" has the reader's view):
//!
//! ```text
//! OUT/signals/_delta_log/…, segment=…/date=…/…   Delta tables, as on local disk
//! OUT/rejects/…, OUT/aggregates/<table>/…
//! OUT/_pulso/delta-plans/00000000000000000007.json  the plan of run 7: claims the number
//! OUT/_pulso/log/00000000000000000007.json         run manifest 7: commit.tables.<t>.delta_version
//! ```
//!
//! The commit of run N:
//!
//! 1. The run writes and fsyncs its Parquet files in a local scratch folder.
//! 2. It creates the plan `_pulso/delta-plans/N.json` if absent (S3 `If-None-Match: *`): the
//!    `add`/`remove` actions of every table and the Delta version each was planned against.
//!    Two writers cannot claim the same N; the second fails with [`DeltaError::Conflict`].
//! 3. It uploads the files to their places in the table folders (unique names: no Delta
//!    version references them yet, so readers never see them).
//! 4. One Delta commit per table (signals, rejects, aggregates by name), each with pulso's
//!    `txn` (`appId = "pulso"`, `version = N`). deltalake's default log store writes
//!    `_delta_log/V.json` with `PutMode::Create`, so a table another writer moved on fails the
//!    commit ([`DeltaError::Changed`]); pulso never retries onto a newer version.
//! 5. It creates the run manifest `_pulso/log/N.json` if absent, then deletes the plan.
//!
//! Opening the output settles plans left by killed runs: a plan whose manifest exists is
//! deleted; one some table already holds (`txn` = N) is completed exactly as planned; one no
//! table holds published nothing: its uploaded files and the plan are deleted once the plan is
//! `PULSO_GC_GRACE_S` seconds old (default 6 hours: its writer may still be running), and until
//! then its number stays taken (the next run takes N+1).

use super::delta::{
    self, any_committed, block_on, commit_member, commit_tables, final_manifest, plan_tables,
    DeltaCommitted, DeltaError, Plan, TableSite,
};
use super::{fault, log_name, META};
use crate::storage::{self, Remote, StorageError};
use arrow::datatypes::SchemaRef;
use deltalake_core::logstore::{
    default_logstore, logstore_factories, object_store_factories, LogStore, LogStoreFactory,
    ObjectStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake_core::{DeltaResult, DeltaTableBuilder, DeltaTableError};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

/// Plans of runs being committed, under `_pulso/`.
pub const PLANS: &str = "delta-plans";

/// Hands deltalake the store pulso built for a URL's `scheme://authority`.
struct PulsoStores;

impl ObjectStoreFactory for PulsoStores {
    fn parse_url_opts(
        &self,
        url: &url::Url,
        _options: &HashMap<String, String>,
        _retry: &object_store::RetryConfig,
        _handle: Option<tokio::runtime::Handle>,
    ) -> DeltaResult<(ObjectStoreRef, object_store::path::Path)> {
        let r = storage::remote(url.as_str())
            .map_err(|e| DeltaTableError::InvalidTableLocation(e.to_string()))?;
        Ok((r.store.clone(), r.prefix.clone()))
    }
}

/// deltalake's default log store (commits with `PutMode::Create`) for those schemes.
struct PulsoLogStores;

impl LogStoreFactory for PulsoLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &url::Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Registers pulso's stores with deltalake for every object-store scheme pulso accepts.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in storage::SCHEMES.iter().filter(|s| **s != "file") {
            let u = url::Url::parse(&format!("{scheme}://")).expect("a scheme URL");
            object_store_factories().insert(u.clone(), Arc::new(PulsoStores));
            logstore_factories().insert(u, Arc::new(PulsoLogStores));
        }
    });
}

fn version_of_name(name: &str) -> Option<u64> {
    name.strip_suffix(".json")
        .filter(|s| s.len() == 20)
        .and_then(|s| s.parse().ok())
}

fn gc_grace_s() -> i64 {
    std::env::var("PULSO_GC_GRACE_S")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(6 * 3600)
}

/// The Delta tables of an object-store prefix (for writers and readers).
struct Site {
    r: Remote,
}

impl TableSite for Site {
    fn uri(&self, table: &str) -> String {
        format!("{}/{table}", self.r.url)
    }
    fn label(&self, table: &str) -> PathBuf {
        PathBuf::from(self.uri(table))
    }
    fn has_log(&self, table: &str) -> Result<bool, DeltaError> {
        let p = self.r.path(&format!("{table}/_delta_log"));
        let l = block_on(self.r.store.list_with_delimiter(Some(&p))).map_err(|source| {
            StorageError::Request {
                url: self.r.url_of(&p),
                op: "list",
                hint: String::new(),
                source: Box::new(source),
            }
        })?;
        Ok(!l.objects.is_empty())
    }
    fn tables(&self) -> Result<Vec<String>, DeltaError> {
        let mut v = Vec::new();
        for t in ["signals", "rejects"] {
            if self.has_log(t)? {
                v.push(t.to_string());
            }
        }
        let mut aggs = Vec::new();
        for a in self.r.list_dirs("aggregates")? {
            let t = format!("aggregates/{a}");
            if self.has_log(&t)? {
                aggs.push(t);
            }
        }
        aggs.sort();
        v.extend(aggs);
        Ok(v)
    }
}

impl Site {
    fn rel(&self, v: u64, dir: &str) -> String {
        format!("{META}/{dir}/{}", log_name(v))
    }

    /// Numbers (and objects) under `_pulso/<dir>/`, ascending.
    fn numbered(&self, dir: &str) -> Result<Vec<(u64, object_store::ObjectMeta)>, DeltaError> {
        let mut v: Vec<_> = self
            .r
            .list(&format!("{META}/{dir}"))?
            .into_iter()
            .filter_map(|m| Some((m.location.filename().and_then(version_of_name)?, m)))
            .collect();
        v.sort_by_key(|(n, _)| *n);
        Ok(v)
    }

    fn latest_manifest(&self) -> Result<Option<(u64, Value)>, DeltaError> {
        let Some((n, m)) = self.numbered("log")?.pop() else {
            return Ok(None);
        };
        let body = self.r.get(&m.location)?;
        let v = serde_json::from_slice(&body).map_err(|e| DeltaError::Corrupt {
            path: PathBuf::from(self.r.url_of(&m.location)),
            message: e.to_string(),
        })?;
        Ok(Some((n, v)))
    }

    fn exists(&self, rel: &str) -> Result<bool, DeltaError> {
        match self.r.get(&self.r.path(rel)) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `rel` if absent; Ok(false) when it exists.
    fn create(&self, rel: &str, body: Vec<u8>) -> Result<bool, DeltaError> {
        match self.r.put_if_absent(&self.r.path(rel), body) {
            Ok(b) => Ok(b),
            Err(StorageError::Request { source, .. })
                if matches!(*source, object_store::Error::NotImplemented) =>
            {
                Err(DeltaError::NoConditionalPut {
                    out: self.r.url.clone(),
                    source,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a plan's uploaded files, then the plan (a run that published nothing).
    fn drop_plan(&self, plan: &Plan) -> Result<(), DeltaError> {
        let files = plan
            .tables
            .iter()
            .flat_map(|t| t.moves.iter().map(|(_, dst)| self.r.path(dst)))
            .collect();
        self.r.delete_all(files)?;
        self.r
            .delete_all(vec![self.r.path(&self.rel(plan.version, PLANS))])?;
        Ok(())
    }

    /// Step 5: the run manifest, created if absent (ours already when a settle wrote it).
    fn write_manifest(
        &self,
        plan: &Plan,
    ) -> Result<(BTreeMap<String, i64>, Value, String), DeltaError> {
        let (manifest, versions) = final_manifest(self, plan)?;
        let rel = self.rel(plan.version, "log");
        let url = self.r.url_of(&self.r.path(&rel));
        let body = serde_json::to_vec_pretty(&manifest).expect("manifest is JSON");
        if !self.create(&rel, body)? {
            let theirs = self
                .r
                .get(&self.r.path(&rel))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            match theirs {
                Some(m) if m["commit"]["run_id"] == plan.run_id.as_str() => {
                    return Ok((versions, m, url))
                }
                _ => {
                    return Err(DeltaError::Conflict {
                        out: PathBuf::from(&self.r.url),
                        version: plan.version,
                        path: PathBuf::from(url),
                    })
                }
            }
        }
        fault::point("delta:manifest").map_err(|e| DeltaError::Io {
            path: PathBuf::from(&url),
            source: e,
        })?;
        Ok((versions, manifest, url))
    }

    /// Settles the plans left by killed runs (see the module docs).
    fn recover(&self) -> Result<(), DeltaError> {
        let latest = self.numbered("log")?.last().map(|(n, _)| *n).unwrap_or(0);
        let now = chrono::Utc::now();
        // Newest first: a started plan is completed before an older one is judged.
        for (n, m) in self.numbered(PLANS)?.into_iter().rev() {
            let body = self.r.get(&m.location)?;
            let plan: Plan = serde_json::from_slice(&body).map_err(|e| DeltaError::Corrupt {
                path: PathBuf::from(self.r.url_of(&m.location)),
                message: e.to_string(),
            })?;
            if self.exists(&self.rel(n, "log"))? {
                self.r.delete_all(vec![m.location])?;
                continue;
            }
            let stale = (now - m.last_modified).num_seconds() >= gc_grace_s();
            if n > latest && any_committed(self, &plan)? {
                commit_tables(self, &plan)?;
                self.write_manifest(&plan)?;
                self.r.delete_all(vec![m.location])?;
            } else if stale {
                self.drop_plan(&plan)?;
            }
        }
        Ok(())
    }
}

/// A Delta output on an object store, opened for writing.
pub struct StoreDeltaOutput {
    site: Site,
    scratch: PathBuf,
}

impl StoreDeltaOutput {
    /// Settles what killed runs left, then fetches the aggregates' live files (the history the
    /// spike and weekly rules read).
    pub fn open(url: &str) -> Result<StoreDeltaOutput, DeltaError> {
        register();
        let r = storage::remote(url)?;
        let site = Site { r };
        if site.exists(&format!("{META}/current.json"))?
            || !site.r.list_dirs(&format!("{META}/runs"))?.is_empty()
        {
            return Err(DeltaError::PlainLayout {
                path: PathBuf::from(url),
            });
        }
        site.recover()?;
        let scratch = storage::scratch_dir("delta")?;
        let out = StoreDeltaOutput { site, scratch };
        let history = out.history_root();
        std::fs::create_dir_all(&history).map_err(|e| DeltaError::Io {
            path: history.clone(),
            source: e,
        })?;
        let aggs = |t: &str| t.starts_with("aggregates/");
        download_live(&out.site, &aggs, &|_| true, &history)?;
        Ok(out)
    }

    /// The local folder a run writes into before its commit uploads it.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.scratch.join("runs").join(run_id)
    }

    /// A local copy of the live files of the `aggregates/` tables.
    pub fn history_root(&self) -> PathBuf {
        self.scratch.join("history")
    }

    /// The last run manifest.
    pub fn current_manifest(&self) -> Option<Value> {
        self.site.latest_manifest().ok().flatten().map(|(_, m)| m)
    }

    /// Publishes a run whose files are in [`StoreDeltaOutput::run_dir`] (see the module docs;
    /// the arguments are those of [`delta::DeltaOutput::commit`]).
    pub fn commit(
        &mut self,
        run_id: &str,
        date: &str,
        parts: &BTreeMap<String, SchemaRef>,
        manifest: &mut Value,
    ) -> Result<DeltaCommitted, DeltaError> {
        let site = &self.site;
        let fault_io = |what: &str| {
            let path = PathBuf::from(format!("{}/{what}", site.r.url));
            move |source| DeltaError::Io { path, source }
        };
        fault::point("delta:start").map_err(fault_io(""))?;
        let run_dir = self.run_dir(run_id);
        let previous = site.latest_manifest()?.map(|(n, _)| n);
        let claimed = site.numbered(PLANS)?.last().map(|(n, _)| *n);
        let version = previous.max(claimed).unwrap_or(0) + 1;
        let tables = plan_tables(site, &run_dir, &self.scratch, run_id, date, parts)?;
        manifest["commit"] = commit_member(version, run_id, previous, date, parts);
        manifest["commit"]["store"] = Value::from(site.r.scheme.clone());
        manifest["commit"]["protocol"] = Value::from(
            "object store: plan created if absent, files uploaded, one Delta commit per table (put-if-absent), then the manifest created if absent",
        );
        let plan = Plan {
            version,
            run_id: run_id.to_string(),
            date: date.to_string(),
            tables,
            manifest: manifest.clone(),
        };
        // Step 2: the plan claims run N.
        let plan_rel = site.rel(version, PLANS);
        let body = serde_json::to_vec_pretty(&plan).expect("plan is JSON");
        if !site.create(&plan_rel, body)? {
            return Err(DeltaError::Conflict {
                out: PathBuf::from(&site.r.url),
                version,
                path: PathBuf::from(site.r.url_of(&site.r.path(&plan_rel))),
            });
        }
        fault::point("delta:planned").map_err(fault_io(&plan_rel))?;

        // Step 3: the files, to their places in the tables.
        let uploaded = (|| {
            for t in &plan.tables {
                for (src, dst) in &t.moves {
                    site.r.upload(&self.scratch.join(src), &site.r.path(dst))?;
                    fault::point("delta:file-moved").map_err(fault_io(dst))?;
                }
            }
            fault::point("delta:moved").map_err(fault_io(""))
        })();
        if let Err(e) = uploaded {
            let _ = site.drop_plan(&plan);
            return Err(e);
        }
        // Step 4.
        let versions = match commit_tables(site, &plan) {
            Ok(v) => v,
            Err(e) => {
                // Failed (not killed): when no table took the run, nothing was published.
                if !any_committed(site, &plan).unwrap_or(true) {
                    let _ = site.drop_plan(&plan);
                }
                return Err(e);
            }
        };
        // Step 5.
        let (_, written, url) = site.write_manifest(&plan)?;
        site.r.delete_all(vec![site.r.path(&plan_rel)])?;
        let _ = std::fs::remove_dir_all(&run_dir);
        fault::point("delta:done").map_err(fault_io(""))?;
        *manifest = written;
        Ok(DeltaCommitted {
            version,
            manifest: PathBuf::from(url),
            tables: versions,
        })
    }

    /// Drops a run that will not be committed (its local files; it uploaded nothing yet or
    /// deleted its uploads when its commit failed).
    pub fn discard(&self, run_id: &str) {
        let _ = std::fs::remove_dir_all(self.run_dir(run_id));
    }
}

impl Drop for StoreDeltaOutput {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Downloads the live files of every table of the last run manifest (at the versions it
/// names; a table it does not name, at its latest) whose path relative to OUT satisfies `want`,
/// into `dest` as a plain Hive tree. Returns the number of files.
fn download_live(
    site: &Site,
    tables: &dyn Fn(&str) -> bool,
    want: &dyn Fn(&str) -> bool,
    dest: &Path,
) -> Result<u64, DeltaError> {
    let pins: BTreeMap<String, i64> = site
        .latest_manifest()?
        .and_then(|(_, m)| m["commit"]["tables"].as_object().cloned())
        .map(|t| {
            t.into_iter()
                .filter_map(|(k, v)| Some((k, v["delta_version"].as_i64()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut n = 0;
    for t in site.tables()? {
        if !tables(&t) {
            continue;
        }
        let label = site.label(&t);
        let table = block_on(async {
            let b = DeltaTableBuilder::from_valid_uri(site.uri(&t))?;
            match pins.get(&t) {
                Some(v) => b.with_version(*v).load().await,
                None => b.load().await,
            }
        });
        let table = match table {
            Ok(x) => x,
            Err(DeltaTableError::NotATable(_)) => continue,
            Err(e) => {
                return Err(DeltaError::Table {
                    table: label,
                    source: e,
                })
            }
        };
        let files = table
            .snapshot()
            .and_then(|s| s.file_actions())
            .map_err(|e| DeltaError::Table {
                table: label.clone(),
                source: e,
            })?;
        for a in files {
            let rel = format!("{t}/{}", delta::decode(&a.path));
            if !want(&rel) {
                continue;
            }
            site.r.download(&site.r.path(&rel), &dest.join(&rel))?;
            n += 1;
        }
    }
    Ok(n)
}

/// For readers (`pulso report s3://…`): when `url` holds Delta tables, downloads the live files
/// of the last run (see [`download_live`]) that satisfy `want` into `dest` and returns the run
/// manifest; None when it holds no Delta tables.
pub fn download_committed(
    url: &str,
    tables: &dyn Fn(&str) -> bool,
    want: &dyn Fn(&str) -> bool,
    dest: &Path,
) -> Result<Option<Value>, DeltaError> {
    register();
    let site = Site {
        r: storage::remote(url)?,
    };
    if !site.has_log("signals")? {
        return Ok(None);
    }
    let Some((_, m)) = site.latest_manifest()? else {
        return Ok(None);
    };
    download_live(&site, tables, want, dest)?;
    Ok(Some(m))
}

/// Whether the object-store prefix `url` holds Delta tables (a `signals` Delta table).
pub fn is_delta_store(url: &str) -> bool {
    register();
    storage::remote(url)
        .ok()
        .map(|r| Site { r })
        .is_some_and(|s| s.has_log("signals").unwrap_or(false))
}
