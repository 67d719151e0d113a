//! Delta Lake output (`[output] format = "delta"`): every table is a Delta table that Spark,
//! DuckDB, Polars and `deltalake` read at a committed version, and pulso's run manifest ties one
//! version of each table into one consistent run.
//!
//! Layout under `OUT` (README "Output" has the reader's view):
//!
//! ```text
//! OUT/signals/_delta_log/…                     Delta table, partitioned by segment, date
//! OUT/signals/segment=external/date=D/part-00000-RUN-TOKEN.parquet
//! OUT/rejects/_delta_log/…, date=D/…           partitioned by date
//! OUT/aggregates/<table>/_delta_log/…, date=D/…  partitioned by date (the run's date)
//! OUT/_pulso/log/00000000000000000007.json     run manifest N: commit.tables.<table>.delta_version
//! OUT/_pulso/delta-pending.json                the plan of the run being committed (transient)
//! OUT/_pulso/runs/RUN_ID/                      where a run writes its files before the commit
//! OUT/.pulso.lock                              flock held by the writing run
//! ```
//!
//! The commit of run N (the next number in `_pulso/log`), delta-rs style: data files first, then
//! one commit per table.
//!
//! 1. The run writes and fsyncs every Parquet file of every table under `_pulso/runs/RUN_ID/`
//!    (partition columns are not stored in the files, as Delta expects; `segment` and `date`
//!    come from the log's `partitionValues`). A failure or kill here leaves no trace outside
//!    that folder, which the next run removes.
//! 2. It writes the plan `_pulso/delta-pending.json`: for each table, the `add` actions of the
//!    new files, the `remove` actions of every live file of the run's date (replaceWhere
//!    `date = D`: a re-run replaces that date, never duplicates it) and the Delta version the
//!    plan was made against; plus the run manifest.
//! 3. It moves the files into the table folders (unique names: nothing reads them yet).
//! 4. It commits each table in a fixed order (signals, rejects, then the aggregates by name): one
//!    Delta commit per table with the `remove` and `add` actions together and a `txn` action
//!    (`appId = "pulso"`, `version = N`) that marks the table as holding run N.
//! 5. It writes the run manifest `_pulso/log/N.json` (create-new) with each table's Delta version,
//!    then removes the plan. That file is the run's commit point for `pulso report` and for
//!    readers that want one consistent set of tables (`versionAsOf` of each table).
//!
//! A run killed between 2 and 5 is settled by the next run (or any `pulso run` on the same
//! output) under the lock before it does anything else: when no table holds `txn` N yet, the
//! moved files are deleted and the plan dropped (the run published nothing); when some do, the
//! remaining tables are committed from the plan (their files are in place or still in the run's
//! folder) and the manifest is written, so the run becomes complete, exactly as planned. A table
//! that changed outside pulso since the plan fails that with [`DeltaError::Changed`].
//!
//! pulso's own readers (the aggregates' history, `pulso report`) see only the files live at one
//! version of each table: [`visible_files`], pinned by [`pin_committed`] to the last manifest.

use super::{fault, fsx, log_name, CommitError, META};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake_core::kernel::transaction::{
    CommitBuilder, CommitProperties, TableReference, TransactionError,
};
use deltalake_core::kernel::{Action, Add, Remove, StructType, Transaction};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaResult, DeltaTableBuilder, DeltaTableError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use thiserror::Error;

/// The `txn` application id of pulso's commits; its version is the run number N.
pub const APP_ID: &str = "pulso";
/// The plan of the run being committed, under `_pulso/`.
pub const PENDING: &str = "delta-pending.json";

/// Each way a Delta commit (or opening a Delta output) can fail.
#[derive(Debug, Error)]
pub enum DeltaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Output(#[from] CommitError),
    #[error("Delta table {table}: {source}")]
    Table {
        table: PathBuf,
        source: DeltaTableError,
    },
    #[error("{path} holds plain Parquet output (it has _pulso/current); Delta tables need their own output folder: pass another --out, or keep [output] format = \"parquet\" here")]
    PlainLayout { path: PathBuf },
    #[error("Delta table {table} is at version {found:?} but pulso planned run {run} against version {planned:?}: another writer changed it; nothing more was committed. Check who writes to it, then run pulso again (run {run} will be superseded)")]
    Changed {
        table: PathBuf,
        run: u64,
        planned: Option<i64>,
        found: Option<i64>,
    },
    #[error("run {version} of {out} was recorded by another writer while this run worked ({path} already exists); run again")]
    Conflict {
        out: PathBuf,
        version: u64,
        path: PathBuf,
    },
    #[error("{path}: {message}; restore _pulso/ from a backup or start a new --out")]
    Corrupt { path: PathBuf, message: String },
    #[error("table {table}: its schema cannot be written as Delta: {message}")]
    Schema { table: String, message: String },
    /// A request to the object store holding the tables (see [`super::delta_store`]).
    #[error(transparent)]
    Store(#[from] crate::storage::StorageError),
    #[error("{out}: the store refused a create-if-absent write ({source}); Delta commits on an object store need one (S3 If-None-Match: *, GCS ifGenerationMatch=0, Azure If-None-Match: *): on S3 leave AWS_CONDITIONAL_PUT unset, use an S3-compatible server with conditional writes, or write to a local --out")]
    NoConditionalPut {
        out: String,
        source: Box<object_store::Error>,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DeltaError + '_ {
    move |source| DeltaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn table_err(table: &Path) -> impl FnOnce(DeltaTableError) -> DeltaError + '_ {
    move |source| DeltaError::Table {
        table: table.to_path_buf(),
        source,
    }
}

/// Runs one future of the deltalake crate to completion (pulso is synchronous elsewhere), on the
/// runtime pulso's object stores live on (their connection pools outlive one call).
pub(super) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    crate::storage::block_on(f)
}

/// The URL deltalake opens a local table by (an object-store table: its `s3://…` URL, see
/// [`super::delta_store`]).
fn table_uri(dir: &Path) -> String {
    dir.display().to_string()
}

/// `signals/segment=external/date=D` → (`signals`, [(segment, external), (date, D)]).
pub fn split_partition(rel: &str) -> (String, Vec<(String, String)>) {
    let mut table = Vec::new();
    let mut parts = Vec::new();
    for c in rel.split('/') {
        match c.split_once('=') {
            Some((k, v)) if !table.is_empty() => parts.push((k.to_string(), v.to_string())),
            _ if parts.is_empty() => table.push(c),
            _ => {}
        }
    }
    (table.join("/"), parts)
}

/// What a Delta data file stores for a partition folder `rel`: the logical schema without the
/// partition columns, and the indices of the columns kept (None: all of them).
pub fn physical_schema(rel: &str, logical: &SchemaRef) -> (SchemaRef, Option<Vec<usize>>) {
    let (_, parts) = split_partition(rel);
    let keep: Vec<usize> = (0..logical.fields().len())
        .filter(|i| !parts.iter().any(|(k, _)| k == logical.field(*i).name()))
        .collect();
    if keep.len() == logical.fields().len() {
        return (logical.clone(), None);
    }
    let schema = Arc::new(logical.project(&keep).expect("indices in range"));
    (schema, Some(keep))
}

/// The Delta schema of a table: the Parquet contract's columns plus `date` (a `date`).
pub(super) fn delta_schema(table: &str, logical: &SchemaRef) -> Result<StructType, DeltaError> {
    use delta_kernel::engine::arrow_conversion::TryFromArrow;
    let mut fields: Vec<Field> = logical
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    if logical.field_with_name("date").is_err() {
        fields.push(Field::new("date", DataType::Date32, true));
    }
    let schema = Schema::new(fields);
    StructType::try_from_arrow(&schema).map_err(|e| DeltaError::Schema {
        table: table.to_string(),
        message: e.to_string(),
    })
}

/// One table's part of a run's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PlannedTable {
    /// Relative to OUT (`signals`, `aggregates/brand_daily`).
    pub(super) table: String,
    pub(super) partition_by: Vec<String>,
    pub(super) schema: StructType,
    /// The table's version the plan was made against (None: the run creates the table).
    pub(super) read_version: Option<i64>,
    pub(super) adds: Vec<Add>,
    pub(super) removes: Vec<Remove>,
    /// (file in the run's folder, its place in the table), both relative to OUT.
    pub(super) moves: Vec<(String, String)>,
}

/// `_pulso/delta-pending.json` (on an object store `_pulso/delta-plans/N.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Plan {
    pub(super) version: u64,
    pub(super) run_id: String,
    pub(super) date: String,
    pub(super) tables: Vec<PlannedTable>,
    /// The run manifest, with its `commit` member, written as `_pulso/log/N.json` last.
    pub(super) manifest: Value,
}

/// A committed run of a Delta output.
#[derive(Debug, Clone)]
pub struct DeltaCommitted {
    pub version: u64,
    /// `OUT/_pulso/log/N.json`
    pub manifest: PathBuf,
    /// table → Delta version.
    pub tables: BTreeMap<String, i64>,
}

/// A Delta output opened for writing: holds the lock from open to commit or drop.
pub struct DeltaOutput {
    root: PathBuf,
    meta: PathBuf,
    _lock: File,
}

/// Highest run number in `_pulso/log` (0: none) and its manifest.
fn latest_manifest(meta: &Path) -> Result<Option<(u64, PathBuf)>, DeltaError> {
    let log = meta.join("log");
    let rd = match std::fs::read_dir(&log) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(DeltaError::Io {
                path: log,
                source: e,
            })
        }
    };
    let mut best: Option<(u64, PathBuf)> = None;
    for e in rd {
        let e = e.map_err(io(&log))?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(v) = name
            .strip_suffix(".json")
            .and_then(|s| s.parse::<u64>().ok())
        {
            if best.as_ref().is_none_or(|(b, _)| v > *b) {
                best = Some((v, e.path()));
            }
        }
    }
    Ok(best)
}

/// The last run manifest of a Delta output, if any.
pub fn committed_manifest(out: &Path) -> Option<Value> {
    let (_, p) = latest_manifest(&out.join(META)).ok()??;
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Whether `out` is an output of Delta tables (it has a `signals` Delta table).
pub fn is_delta_output(out: &Path) -> bool {
    out.join("signals").join("_delta_log").is_dir()
}

/// Delta tables under `out` (relative names), in pulso's fixed commit order.
fn existing_tables(out: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for t in ["signals", "rejects"] {
        if out.join(t).join("_delta_log").is_dir() {
            v.push(t.to_string());
        }
    }
    if let Ok(rd) = std::fs::read_dir(out.join("aggregates")) {
        let mut aggs: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("_delta_log").is_dir())
            .map(|e| format!("aggregates/{}", e.file_name().to_string_lossy()))
            .collect();
        aggs.sort();
        v.extend(aggs);
    }
    v
}

pub(super) fn order_key(table: &str) -> (u8, String) {
    match table {
        "signals" => (0, String::new()),
        "rejects" => (1, String::new()),
        t => (2, t.to_string()),
    }
}

/// Where a run's Delta tables live: a local folder or an object-store prefix. The planning and
/// commit steps below are the same for both; only how a table is named and listed differs.
pub(super) trait TableSite {
    /// The URL (or local path) deltalake opens `table` (`signals`, `aggregates/x`) by.
    fn uri(&self, table: &str) -> String;
    /// How errors name `table`.
    fn label(&self, table: &str) -> PathBuf;
    /// Whether `table` has a `_delta_log` (it may still hold no commit).
    fn has_log(&self, table: &str) -> Result<bool, DeltaError>;
    /// Delta tables present, in pulso's fixed commit order.
    fn tables(&self) -> Result<Vec<String>, DeltaError>;
    /// Called after each table commit (a local commit is fsynced here).
    fn committed(&self, _table: &str, _version: i64) -> Result<(), DeltaError> {
        Ok(())
    }
}

/// The table `table` at its latest version; None when it holds no commit yet.
pub(super) fn load_table(
    site: &dyn TableSite,
    table: &str,
) -> Result<Option<deltalake_core::DeltaTable>, DeltaError> {
    if !site.has_log(table)? {
        return Ok(None);
    }
    let label = site.label(table);
    let t = block_on(async {
        DeltaTableBuilder::from_valid_uri(site.uri(table))?
            .load()
            .await
    });
    match t {
        Ok(t) => Ok(Some(t)),
        // A `_delta_log` without a commit (a create killed before its first file).
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(table_err(&label)(e)),
    }
}

/// (latest version, version of pulso's `txn`) of `table`; None when it is no table yet.
pub(super) fn table_state(
    site: &dyn TableSite,
    table: &str,
) -> Result<Option<(i64, Option<i64>)>, DeltaError> {
    let Some(t) = load_table(site, table)? else {
        return Ok(None);
    };
    let label = site.label(table);
    let version = t.version().unwrap_or(-1);
    let txn = block_on(async {
        t.snapshot()?
            .transaction_version(t.log_store().as_ref(), APP_ID)
            .await
    })
    .map_err(table_err(&label))?;
    Ok(Some((version, txn)))
}

fn commit_properties(plan: &Plan) -> CommitProperties {
    CommitProperties::default()
        .with_application_transaction(Transaction::new(APP_ID, plan.version as i64))
        .with_metadata([
            ("pulso.run_id".to_string(), Value::from(plan.run_id.clone())),
            ("pulso.run".to_string(), Value::from(plan.version)),
        ])
        // Exactly the planned version: a table another writer moved on fails the commit
        // (put-if-absent of `_delta_log/N.json`) instead of being rebased onto it.
        .with_max_retries(0)
}

/// One Delta commit: create the table with its first files, or remove + add in one version.
async fn commit_table(uri: String, plan: &Plan, t: &PlannedTable) -> DeltaResult<i64> {
    let mut actions: Vec<Action> = t.removes.iter().cloned().map(Action::Remove).collect();
    actions.extend(t.adds.iter().cloned().map(Action::Add));
    match t.read_version {
        None => {
            let table = CreateBuilder::new()
                .with_location(uri)
                .with_table_name(t.table.replace('/', "_"))
                .with_comment(format!(
                    "written by pulso; run manifests in {META}/log of the output folder"
                ))
                .with_columns(t.schema.fields().cloned())
                .with_partition_columns(t.partition_by.clone())
                .with_actions(actions)
                .with_save_mode(SaveMode::ErrorIfExists)
                .with_commit_properties(commit_properties(plan))
                .await?;
            Ok(table.version().unwrap_or(0))
        }
        Some(_) => {
            let table = DeltaTableBuilder::from_valid_uri(uri)?.load().await?;
            let op = DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: Some(t.partition_by.clone()),
                predicate: Some(format!("date = '{}'", plan.date)),
            };
            let snapshot = table.snapshot()?;
            let done = CommitBuilder::from(commit_properties(plan))
                .with_actions(actions)
                .build(Some(snapshot as &dyn TableReference), table.log_store(), op)
                .await?;
            Ok(done.version())
        }
    }
}

/// `[(segment, external), (date, D)]` of a partition folder.
type PartitionValues = Vec<(String, String)>;

/// Step 2's content: for every table the run wrote or that exists, the `add` actions of the
/// run's files (named `STEM-RUN_ID-TOKEN.parquet`) and the `remove` actions of every live file
/// of `date`. `moves` are (file relative to `src_base`, place relative to the output).
pub(super) fn plan_tables(
    site: &dyn TableSite,
    run_dir: &Path,
    src_base: &Path,
    run_id: &str,
    date: &str,
    parts: &BTreeMap<String, SchemaRef>,
) -> Result<Vec<PlannedTable>, DeltaError> {
    let token = format!("{:x}", now_ms());
    // Tables this run wrote, and those it did not but whose `date` partitions it replaces.
    let mut by_table: BTreeMap<String, Vec<(&String, PartitionValues)>> = BTreeMap::new();
    for rel in parts.keys() {
        let (table, pv) = split_partition(rel);
        by_table.entry(table).or_default().push((rel, pv));
    }
    for t in site.tables()? {
        by_table.entry(t).or_default();
    }
    let mut names: Vec<String> = by_table.keys().cloned().collect();
    names.sort_by_key(|t| order_key(t));

    let mut tables = Vec::new();
    for table in names {
        let written = &by_table[&table];
        let label = site.label(&table);
        let loaded = load_table(site, &table)?;
        let (schema, partition_by, read_version, removes) = match &loaded {
            Some(t) => {
                let snap = t.snapshot().map_err(table_err(&label))?;
                let removes: Vec<Remove> = snap
                    .file_actions()
                    .map_err(table_err(&label))?
                    .into_iter()
                    .filter(|a| {
                        a.partition_values.get("date").and_then(|v| v.as_deref()) == Some(date)
                    })
                    .map(|a| Remove {
                        path: a.path,
                        data_change: true,
                        deletion_timestamp: Some(now_ms()),
                        extended_file_metadata: Some(true),
                        partition_values: Some(a.partition_values),
                        size: Some(a.size),
                        ..Default::default()
                    })
                    .collect();
                (
                    snap.schema().clone(),
                    snap.metadata().partition_columns().clone(),
                    t.version(),
                    removes,
                )
            }
            None => {
                let Some((rel, _)) = written.first() else {
                    continue;
                };
                let (_, pv) = split_partition(rel);
                let pb: Vec<String> = pv.into_iter().map(|(k, _)| k).collect();
                (delta_schema(&table, &parts[*rel])?, pb, None, vec![])
            }
        };
        let mut adds = Vec::new();
        let mut moves = Vec::new();
        for (rel, pv) in written {
            let src_dir = run_dir.join(rel);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&src_dir)
                .map_err(io(&src_dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            files.sort();
            for f in files {
                let stem = f.file_stem().expect("a file name").to_string_lossy();
                let name = format!("{stem}-{run_id}-{token}.parquet");
                let in_table = rel
                    .strip_prefix(table.as_str())
                    .unwrap_or(rel.as_str())
                    .trim_start_matches('/')
                    .to_string();
                let path = format!("{in_table}/{name}");
                let meta = std::fs::metadata(&f).map_err(io(&f))?;
                let rows = parquet_rows(&f)?;
                adds.push(Add {
                    path: path.clone(),
                    partition_values: pv
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect::<HashMap<_, _>>(),
                    size: meta.len() as i64,
                    modification_time: now_ms(),
                    data_change: true,
                    stats: Some(serde_json::json!({ "numRecords": rows }).to_string()),
                    ..Default::default()
                });
                let src_rel = f
                    .strip_prefix(src_base)
                    .expect("run folder under its base")
                    .to_string_lossy()
                    .to_string();
                moves.push((src_rel, format!("{table}/{path}")));
            }
        }
        if adds.is_empty() && removes.is_empty() {
            continue;
        }
        tables.push(PlannedTable {
            table,
            partition_by,
            schema,
            read_version,
            adds,
            removes,
            moves,
        });
    }
    Ok(tables)
}

/// The run manifest's `commit` member before the tables are committed.
pub(super) fn commit_member(
    version: u64,
    run_id: &str,
    previous: Option<u64>,
    date: &str,
    parts: &BTreeMap<String, SchemaRef>,
) -> Value {
    serde_json::json!({
        "version": version,
        "run_id": run_id,
        "format": "delta",
        "previous_version": previous,
        "txn": {"app_id": APP_ID, "version": version},
        "manifest": format!("{META}/log/{}", log_name(version)),
        "replaced_partitions": parts.keys().collect::<Vec<_>>(),
        "replace_where": format!("date = '{date}'"),
    })
}

/// Step 4: one Delta commit per table not yet holding `txn` N, in the plan's order.
pub(super) fn commit_tables(
    site: &dyn TableSite,
    plan: &Plan,
) -> Result<BTreeMap<String, i64>, DeltaError> {
    let mut versions = BTreeMap::new();
    for t in &plan.tables {
        let label = site.label(&t.table);
        let state = table_state(site, &t.table)?;
        let version = match state {
            // This run, committed before a kill (a later run's `txn` is no such proof).
            Some((v, Some(txn))) if txn == plan.version as i64 => v,
            s if s.map(|(v, _)| v) == t.read_version => {
                let v = block_on(commit_table(site.uri(&t.table), plan, t)).map_err(|e| {
                    match e {
                        // Another writer committed this table between our check and our commit.
                        DeltaTableError::Transaction {
                            source: TransactionError::MaxCommitAttempts(_),
                        }
                        | DeltaTableError::VersionAlreadyExists(_) => {
                            let found = table_state(site, &t.table).ok().flatten().map(|(v, _)| v);
                            DeltaError::Changed {
                                table: label.clone(),
                                run: plan.version,
                                planned: t.read_version,
                                found,
                            }
                        }
                        e => table_err(&label)(e),
                    }
                })?;
                site.committed(&t.table, v)?;
                v
            }
            s => {
                return Err(DeltaError::Changed {
                    table: label,
                    run: plan.version,
                    planned: t.read_version,
                    found: s.map(|(v, _)| v),
                })
            }
        };
        versions.insert(t.table.clone(), version);
        fault::point("delta:table-committed").map_err(io(&label))?;
    }
    Ok(versions)
}

/// Step 5's content: the run manifest with each table's Delta version (read back from the
/// tables, so a finished plan records what was committed), and those versions.
pub(super) fn final_manifest(
    site: &dyn TableSite,
    plan: &Plan,
) -> Result<(Value, BTreeMap<String, i64>), DeltaError> {
    let mut versions = BTreeMap::new();
    for t in &plan.tables {
        if let Some((v, _)) = table_state(site, &t.table)? {
            versions.insert(t.table.clone(), v);
        }
    }
    let mut manifest = plan.manifest.clone();
    let mut tables: serde_json::Map<String, Value> = plan
        .tables
        .iter()
        .map(|t| {
            (
                t.table.clone(),
                serde_json::json!({
                    "path": t.table,
                    "delta_version": versions.get(&t.table),
                    "previous_delta_version": t.read_version,
                    "partition_by": t.partition_by,
                    "added_files": t.adds.len(),
                    "removed_files": t.removes.len(),
                }),
            )
        })
        .collect();
    // Tables the run did not touch keep their version: the manifest names every table, so
    // it is one consistent snapshot of the whole output.
    for t in site.tables()? {
        if tables.contains_key(&t) {
            continue;
        }
        if let Some((v, _)) = table_state(site, &t)? {
            versions.insert(t.clone(), v);
            tables.insert(
                t.clone(),
                serde_json::json!({"path": t, "delta_version": v, "unchanged": true}),
            );
        }
    }
    manifest["commit"]["tables"] = Value::Object(tables);
    Ok((manifest, versions))
}

/// Whether some table of the plan already holds its run (`txn` = N).
pub(super) fn any_committed(site: &dyn TableSite, plan: &Plan) -> Result<bool, DeltaError> {
    for t in &plan.tables {
        if matches!(table_state(site, &t.table)?, Some((_, Some(txn))) if txn == plan.version as i64)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Rows in a Parquet file (its footer).
pub(super) fn parquet_rows(path: &Path) -> Result<i64, DeltaError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = File::open(path).map_err(io(path))?;
    let r = SerializedFileReader::new(f).map_err(|e| DeltaError::Corrupt {
        path: path.into(),
        message: e.to_string(),
    })?;
    Ok(r.metadata().file_metadata().num_rows())
}

impl TableSite for DeltaOutput {
    fn uri(&self, table: &str) -> String {
        table_uri(&self.root.join(table))
    }
    fn label(&self, table: &str) -> PathBuf {
        self.root.join(table)
    }
    fn has_log(&self, table: &str) -> Result<bool, DeltaError> {
        Ok(self.root.join(table).join("_delta_log").is_dir())
    }
    fn tables(&self) -> Result<Vec<String>, DeltaError> {
        Ok(existing_tables(&self.root))
    }
    /// deltalake does not fsync a local commit: make it durable before the next.
    fn committed(&self, table: &str, v: i64) -> Result<(), DeltaError> {
        let dir = self.root.join(table);
        let log = dir.join("_delta_log");
        let commit = log.join(format!("{v:020}.json"));
        File::open(&commit)
            .and_then(|f| f.sync_all())
            .map_err(io(&commit))?;
        fsx::sync_dir(&log)?;
        fsx::sync_dir(&dir)?;
        Ok(())
    }
}

impl DeltaOutput {
    /// Takes the output lock, settles a run that was killed during its commit, and clears what
    /// crashed runs left (nothing a reader can see).
    pub fn open(root: &Path) -> Result<DeltaOutput, DeltaError> {
        let lock = super::lock_output(root)?;
        let meta = root.join(META);
        if meta.join("current").symlink_metadata().is_ok() {
            return Err(DeltaError::PlainLayout { path: root.into() });
        }
        for d in [meta.join("runs"), meta.join("log")] {
            std::fs::create_dir_all(&d).map_err(io(&d))?;
        }
        let out = DeltaOutput {
            root: root.to_path_buf(),
            meta,
            _lock: lock,
        };
        out.recover()?;
        Ok(out)
    }

    /// The folder a run writes into before its commit.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.meta.join("runs").join(run_id)
    }

    /// The last run's manifest.
    pub fn current_manifest(&self) -> Option<Value> {
        committed_manifest(&self.root)
    }

    /// Under the lock: finishes or undoes a run killed during its commit, then removes every
    /// run folder and unfinished manifest.
    fn recover(&self) -> Result<(), DeltaError> {
        let pending = self.meta.join(PENDING);
        match std::fs::read(&pending) {
            // A plan that does not parse was cut short by a kill while it was written: nothing
            // was moved yet.
            Ok(body) => {
                if let Ok(plan) = serde_json::from_slice::<Plan>(&body) {
                    self.settle(&plan)?
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(DeltaError::Io {
                    path: pending,
                    source: e,
                })
            }
        }
        let _ = std::fs::remove_file(&pending);
        let _ = std::fs::remove_file(self.meta.join(format!("{PENDING}.tmp")));
        let log = self.meta.join("log");
        for e in std::fs::read_dir(&log).map_err(io(&log))? {
            let e = e.map_err(io(&log))?;
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                std::fs::remove_file(e.path()).map_err(io(&e.path()))?;
            }
        }
        let runs = self.meta.join("runs");
        for e in std::fs::read_dir(&runs).map_err(io(&runs))? {
            let e = e.map_err(io(&runs))?;
            fsx::remove_tree(&e.path())?;
        }
        Ok(())
    }

    /// A plan found at open: its run is complete, half committed (finish it) or not committed
    /// at all (undo its moves).
    fn settle(&self, plan: &Plan) -> Result<(), DeltaError> {
        if self.meta.join("log").join(log_name(plan.version)).exists() {
            return Ok(());
        }
        if !any_committed(self, plan)? {
            for t in &plan.tables {
                for (_, dst) in &t.moves {
                    let p = self.root.join(dst);
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(DeltaError::Io { path: p, source: e }),
                    }
                }
            }
            return Ok(());
        }
        self.move_files(plan)?;
        commit_tables(self, plan)?;
        self.write_manifest(plan)?;
        Ok(())
    }

    /// Step 3: every planned file into its table folder (idempotent), then the folders synced.
    fn move_files(&self, plan: &Plan) -> Result<(), DeltaError> {
        let mut dirs = BTreeSet::new();
        for t in &plan.tables {
            for (src, dst) in &t.moves {
                let (src, dst) = (self.root.join(src), self.root.join(dst));
                if !dst.exists() {
                    let parent = dst.parent().expect("a file in a folder");
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                    std::fs::rename(&src, &dst).map_err(io(&src))?;
                    fault::point("delta:file-moved").map_err(io(&dst))?;
                }
                let mut d = dst.parent().map(Path::to_path_buf);
                while let Some(p) = d {
                    if p == self.root || !dirs.insert(p.clone()) {
                        break;
                    }
                    d = p.parent().map(Path::to_path_buf);
                }
            }
        }
        for d in &dirs {
            fsx::sync_dir(d)?;
        }
        fsx::sync_dir(&self.root)?;
        fault::point("delta:moved").map_err(io(&self.root))?;
        Ok(())
    }

    /// Step 5: the run manifest with each table's Delta version (read back from the tables, so
    /// a finished plan records what was committed).
    fn write_manifest(&self, plan: &Plan) -> Result<(BTreeMap<String, i64>, PathBuf), DeltaError> {
        let (manifest, versions) = final_manifest(self, plan)?;
        let mp = self.meta.join("log").join(log_name(plan.version));
        let body = serde_json::to_vec_pretty(&manifest).expect("manifest is JSON");
        // Written whole to a temporary name, then linked: a reader never sees half a manifest.
        let tmp = self
            .meta
            .join("log")
            .join(format!("{}.tmp", log_name(plan.version)));
        let _ = std::fs::remove_file(&tmp);
        fsx::write_new_synced(&tmp, &body).map_err(io(&tmp))?;
        match std::fs::hard_link(&tmp, &mp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&tmp);
                return Err(DeltaError::Conflict {
                    out: self.root.clone(),
                    version: plan.version,
                    path: mp,
                });
            }
            Err(e) => {
                return Err(DeltaError::Io {
                    path: mp,
                    source: e,
                })
            }
        }
        let _ = std::fs::remove_file(&tmp);
        fsx::sync_dir(&self.meta.join("log"))?;
        fault::point("delta:manifest").map_err(io(&mp))?;
        Ok((versions, mp))
    }

    /// Publishes a run whose files are in [`DeltaOutput::run_dir`]: `parts` are its partition
    /// folders (relative, e.g. `signals/segment=external/date=D`) with their logical schemas
    /// (the Parquet contract, partition columns included). Every live file of `date` in every
    /// Delta table under the output is replaced. `manifest` gets a `commit` member.
    pub fn commit(
        &mut self,
        run_id: &str,
        date: &str,
        parts: &BTreeMap<String, SchemaRef>,
        manifest: &mut Value,
    ) -> Result<DeltaCommitted, DeltaError> {
        fault::point("delta:start").map_err(io(&self.root))?;
        let run_dir = self.run_dir(run_id);
        let previous = latest_manifest(&self.meta)?.map(|(v, _)| v);
        let version = previous.unwrap_or(0) + 1;
        let tables = plan_tables(self, &run_dir, &self.root, run_id, date, parts)?;
        manifest["commit"] = commit_member(version, run_id, previous, date, parts);
        let plan = Plan {
            version,
            run_id: run_id.to_string(),
            date: date.to_string(),
            tables,
            manifest: manifest.clone(),
        };
        // Step 2: the plan, whole and durable, before anything leaves the run's folder.
        let pending = self.meta.join(PENDING);
        let tmp = self.meta.join(format!("{PENDING}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        fsx::write_new_synced(
            &tmp,
            &serde_json::to_vec_pretty(&plan).expect("plan is JSON"),
        )
        .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &pending).map_err(io(&pending))?;
        fsx::sync_dir(&self.meta)?;
        fault::point("delta:planned").map_err(io(&pending))?;

        if let Err(e) = self.move_files(&plan) {
            let _ = self.undo_moves(&plan);
            let _ = std::fs::remove_file(&pending);
            return Err(e);
        }
        let versions = match commit_tables(self, &plan) {
            Ok(v) => v,
            Err(e) => {
                // A failed (not killed) commit: when no table took the run, undo the moves;
                // otherwise the plan stays and the next run completes it.
                if !any_committed(self, &plan).unwrap_or(true) {
                    let _ = self.undo_moves(&plan);
                    let _ = std::fs::remove_file(&pending);
                }
                return Err(e);
            }
        };
        let (_, mp) = self.write_manifest(&plan)?;
        std::fs::remove_file(&pending).map_err(io(&pending))?;
        fsx::sync_dir(&self.meta)?;
        fsx::remove_tree(&run_dir)?;
        fault::point("delta:done").map_err(io(&self.meta))?;
        *manifest = serde_json::from_slice(&std::fs::read(&mp).map_err(io(&mp))?).map_err(|e| {
            DeltaError::Corrupt {
                path: mp.clone(),
                message: e.to_string(),
            }
        })?;
        Ok(DeltaCommitted {
            version,
            manifest: mp,
            tables: versions,
        })
    }

    /// Moves a plan's files back into the run's folder (a commit that failed before any table).
    fn undo_moves(&self, plan: &Plan) -> Result<(), DeltaError> {
        for t in &plan.tables {
            for (src, dst) in &t.moves {
                let (src, dst) = (self.root.join(src), self.root.join(dst));
                if dst.exists() {
                    std::fs::rename(&dst, &src).map_err(io(&dst))?;
                }
            }
        }
        Ok(())
    }

    /// Drops a run that will not be committed; what readers see is untouched.
    pub fn discard(&self, run_id: &str) {
        let _ = fsx::remove_tree(&self.run_dir(run_id));
    }
}

// ---- Reading one consistent version (pulso's own readers) --------------------------------------

/// table folder → Delta version to read (absent: the latest).
fn pins() -> &'static Mutex<HashMap<PathBuf, i64>> {
    static P: OnceLock<Mutex<HashMap<PathBuf, i64>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

/// table folder → its live files (absolute paths) at the pinned version.
fn live_cache() -> &'static Mutex<HashMap<PathBuf, Arc<BTreeSet<PathBuf>>>> {
    static C: OnceLock<Mutex<HashMap<PathBuf, Arc<BTreeSet<PathBuf>>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Pins pulso's readers to the Delta versions of the last run manifest of `out` (so a report
/// reads one run even while a later run is committing). Returns whether `out` is a Delta output.
pub fn pin_committed(out: &Path) -> bool {
    if !is_delta_output(out) {
        return false;
    }
    if let Some(m) = committed_manifest(out) {
        if let Some(tables) = m["commit"]["tables"].as_object() {
            let mut p = pins().lock().expect("pins");
            for (t, v) in tables {
                if let Some(v) = v["delta_version"].as_i64() {
                    p.insert(out.join(t), v);
                }
            }
        }
    }
    true
}

/// The Delta table a folder belongs to (the folder itself or one of its parents).
fn table_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .take(4)
        .find(|d| d.join("_delta_log").is_dir())
        .map(Path::to_path_buf)
}

pub(super) fn decode(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&path[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The files live at `version` (None: the latest) of the Delta table in `table_dir`, as absolute
/// paths (empty when it holds no commit yet). Not cached; [`visible_files`] is.
pub fn live_files(table_dir: &Path, version: Option<i64>) -> anyhow::Result<BTreeSet<PathBuf>> {
    let table = block_on(async {
        let b = DeltaTableBuilder::from_valid_uri(table_uri(table_dir))?;
        match version {
            Some(v) => b.with_version(v).load().await,
            None => b.load().await,
        }
    });
    let table = match table {
        Ok(t) => t,
        Err(DeltaTableError::NotATable(_)) => return Ok(BTreeSet::new()),
        Err(e) => {
            return Err(anyhow::anyhow!(
                "cannot read the Delta table {}: {e}",
                table_dir.display()
            ))
        }
    };
    let files = table
        .snapshot()
        .and_then(|s| s.file_actions())
        .map_err(|e| anyhow::anyhow!("cannot list the Delta table {}: {e}", table_dir.display()))?
        .into_iter()
        .map(|a| table_dir.join(decode(&a.path)))
        .collect();
    Ok(files)
}

/// When `dir` lies in a Delta table: the files live at the pinned (or latest) version of that
/// table, as absolute paths. None for a plain Parquet folder.
pub fn visible_files(dir: &Path) -> anyhow::Result<Option<Arc<BTreeSet<PathBuf>>>> {
    let Some(root) = table_root(dir) else {
        return Ok(None);
    };
    if let Some(s) = live_cache().lock().expect("cache").get(&root) {
        return Ok(Some(s.clone()));
    }
    let pin = pins().lock().expect("pins").get(&root).copied();
    let files = Arc::new(live_files(&root, pin)?);
    live_cache()
        .lock()
        .expect("cache")
        .insert(root, files.clone());
    Ok(Some(files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_split_and_physical_schema_drops_partition_columns() {
        let (t, p) = split_partition("signals/segment=external/date=2026-11-14");
        assert_eq!(t, "signals");
        assert_eq!(
            p,
            vec![
                ("segment".to_string(), "external".to_string()),
                ("date".to_string(), "2026-11-14".to_string())
            ]
        );
        let (t, p) = split_partition("aggregates/brand_daily/date=2026-11-14");
        assert_eq!(t, "aggregates/brand_daily");
        assert_eq!(p.len(), 1);
        let logical = crate::schema::signal_schema();
        let (phys, keep) = physical_schema("signals/segment=internal/date=D", &logical);
        assert_eq!(phys.fields().len(), logical.fields().len() - 1);
        assert!(phys.field_with_name("segment").is_err());
        assert_eq!(keep.unwrap().len(), phys.fields().len());
        let (same, keep) = physical_schema("rejects/date=D", &crate::schema::reject_schema());
        assert!(keep.is_none());
        assert_eq!(
            same.fields().len(),
            crate::schema::reject_schema().fields().len()
        );
    }

    #[test]
    fn delta_schema_keeps_the_contract_and_adds_date() {
        let s = delta_schema("signals", &crate::schema::signal_schema()).unwrap();
        let names: Vec<&str> = s.fields().map(|f| f.name().as_str()).collect();
        let contract = crate::schema::signal_schema();
        let want: Vec<&str> = contract
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(&names[..want.len()], &want[..]);
        assert_eq!(names.last(), Some(&"date"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            decode("date=2026-11-14/a%20b.parquet"),
            "date=2026-11-14/a b.parquet"
        );
        assert_eq!(decode("x%2"), "x%2");
    }
}
