//! A shard's own output: Parquet part files and the aggregate input under its attempt folder,
//! then the shard manifest, written last. Publishes nothing and takes no output lock, so N shards
//! can write at once. With an object-store output the attempt is written to a local scratch
//! folder and uploaded at the end, the manifest last ([`super::remote`]).

use super::{ShardSpec, MANIFEST};
use crate::record::{Reject, Segment, Signal};
use crate::schema::{reject_schema, rejects_to_batch, signal_schema, signals_to_batch};
use crate::storage::Remote;
use anyhow::{Context, Result};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use object_store::path::Path as ObjPath;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows per part file (as [`crate::sink::SinkConfig`]).
const FILE_ROWS: usize = 1_000_000;
const ROW_GROUP_ROWS: usize = 64 * 1024;

struct Part {
    dir: PathBuf,
    schema: SchemaRef,
    writer: Option<ArrowWriter<File>>,
    rows_in_file: usize,
    /// (file name, rows) of closed files.
    files: Vec<(String, u64)>,
}

/// One shard attempt being written.
pub struct Stage {
    pub spec: ShardSpec,
    pub run_id: String,
    pub attempt: String,
    /// `OUT/_pulso/staging/RUN_ID/shard-…`
    pub shard_dir: PathBuf,
    /// `…/attempt-…`
    pub dir: PathBuf,
    props: WriterProperties,
    model: String,
    /// Table (`signals/segment=internal`, `rejects`) → writer.
    parts: BTreeMap<String, Part>,
    finished: bool,
    /// Object-store output: the store, the local scratch root the attempt is written under, and
    /// the keys uploaded so far (deleted again if the attempt fails).
    remote: Option<(Remote, PathBuf)>,
    uploaded: Vec<ObjPath>,
    out: PathBuf,
}

/// What a finished shard staged.
#[derive(Debug, Clone)]
pub struct StagedShard {
    pub spec: ShardSpec,
    pub attempt: String,
    pub manifest: PathBuf,
    pub rows: u64,
}

fn attempt_id() -> String {
    let now = chrono::Utc::now();
    let salt = xxhash_rust::xxh3::xxh3_64(
        format!(
            "{:?}{}{:?}",
            now,
            std::process::id(),
            std::thread::current().id()
        )
        .as_bytes(),
    );
    format!(
        "attempt-{}-{:06x}",
        now.format("%Y%m%dT%H%M%S%.9fZ"),
        salt & 0xff_ffff
    )
}

impl Stage {
    /// Creates a new attempt folder for shard `spec` of run `run_id` under `out`.
    /// An object-store `out` stages under a local scratch folder until [`Stage::finish`].
    pub fn create(out: &Path, run_id: &str, spec: ShardSpec, model: &str) -> Result<Stage> {
        refuse_committed(out, run_id)?;
        let remote = match out.to_str().filter(|_| crate::storage::is_url_path(out)) {
            Some(url) => Some((
                crate::storage::remote(url)?,
                crate::storage::scratch_dir("shard")?,
            )),
            None => None,
        };
        let root = remote
            .as_ref()
            .map_or(out, |(_, scratch)| scratch.as_path());
        let shard_dir = super::staging_root(root, run_id).join(spec.dir_name());
        let attempt = attempt_id();
        let dir = shard_dir.join(&attempt);
        std::fs::create_dir_all(&dir).with_context(|| {
            format!("cannot create the shard's staging folder {}", dir.display())
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("valid zstd level"),
            ))
            .set_max_row_group_size(ROW_GROUP_ROWS)
            .set_created_by(format!("pulso {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![
                parquet::format::KeyValue::new("pulso.run_id".to_string(), run_id.to_string()),
                parquet::format::KeyValue::new("pulso.model".to_string(), model.to_string()),
            ]))
            .build();
        Ok(Stage {
            spec,
            run_id: run_id.to_string(),
            attempt,
            shard_dir,
            dir,
            props,
            model: model.to_string(),
            parts: BTreeMap::new(),
            finished: false,
            remote,
            uploaded: Vec::new(),
            out: out.to_path_buf(),
        })
    }

    /// `_pulso/staging/RUN_ID/shard-…/attempt-…` as a key prefix.
    fn rel_dir(&self) -> String {
        format!(
            "{}/staging/{}/{}/{}",
            crate::publish::META,
            self.run_id,
            self.spec.dir_name(),
            self.attempt
        )
    }

    /// Uploads the attempt's files, the manifest last; then deletes this shard's older attempts
    /// on the store. Returns the manifest's URL.
    fn upload(&mut self) -> Result<PathBuf> {
        let (r, _) = self.remote.clone().expect("an object-store output");
        let mut files = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in
                std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?
            {
                let p = e?.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(&self.dir)
                        .expect("under the attempt")
                        .to_string_lossy()
                        .replace('\\', "/");
                    files.push((rel, p));
                }
            }
        }
        // The manifest last: its presence says the attempt is complete.
        files.sort_by_key(|(rel, _)| (rel == MANIFEST, rel.clone()));
        let base = self.rel_dir();
        for (rel, p) in &files {
            let key = r.path(&format!("{base}/{rel}"));
            self.uploaded.push(key.clone());
            r.upload(p, &key)?;
            crate::publish::fault::point("shard:upload")?;
        }
        // Older attempts of this shard are superseded (the commit would ignore them anyway).
        let shard_rel = format!(
            "{}/staging/{}/{}",
            crate::publish::META,
            self.run_id,
            self.spec.dir_name()
        );
        let shard_base = r.path(&shard_rel);
        if let Ok(objects) = r.list(&shard_rel) {
            let old: Vec<ObjPath> = objects
                .into_iter()
                .map(|o| o.location)
                .filter(|p| {
                    p.prefix_match(&shard_base)
                        .and_then(|mut parts| parts.next())
                        .is_some_and(|a| {
                            a.as_ref().starts_with("attempt-") && a.as_ref() < self.attempt.as_str()
                        })
                })
                .collect();
            let _ = r.delete_all(old);
        }
        Ok(PathBuf::from(
            r.url_of(&r.path(&format!("{base}/{MANIFEST}"))),
        ))
    }

    /// Deletes what this attempt uploaded (a failed or superseded attempt).
    fn delete_uploaded(&mut self) {
        if let Some((r, _)) = &self.remote {
            if !self.uploaded.is_empty() {
                let _ = r.delete_all(std::mem::take(&mut self.uploaded));
            }
        }
    }

    fn write(&mut self, table: &str, schema: SchemaRef, batch: &RecordBatch) -> Result<()> {
        let dir = self.dir.join(table);
        let part = self.parts.entry(table.to_string()).or_insert_with(|| Part {
            dir,
            schema,
            writer: None,
            rows_in_file: 0,
            files: Vec::new(),
        });
        let mut offset = 0;
        while offset < batch.num_rows() {
            if part.writer.is_some() && part.rows_in_file >= FILE_ROWS {
                close(part)?;
            }
            if part.writer.is_none() {
                std::fs::create_dir_all(&part.dir)
                    .with_context(|| format!("cannot create {}", part.dir.display()))?;
                let name = format!("part-{:05}.parquet", part.files.len());
                let path = part.dir.join(&name);
                let f = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                part.writer = Some(ArrowWriter::try_new(
                    f,
                    part.schema.clone(),
                    Some(self.props.clone()),
                )?);
                part.files.push((name, 0));
                part.rows_in_file = 0;
            }
            let n = (FILE_ROWS - part.rows_in_file).min(batch.num_rows() - offset);
            crate::publish::fault::point("write:batch")?;
            part.writer
                .as_mut()
                .expect("opened above")
                .write(&batch.slice(offset, n))
                .with_context(|| format!("cannot write {}", part.dir.display()))?;
            part.rows_in_file += n;
            part.files.last_mut().expect("opened above").1 += n as u64;
            offset += n;
        }
        Ok(())
    }

    /// Writes signals, each to its segment's table.
    pub fn write_signals(&mut self, signals: &[Signal]) -> Result<()> {
        for seg in Segment::ALL {
            if !signals.iter().any(|s| s.routing.segment == seg) {
                continue;
            }
            let these = signals.iter().filter(|s| s.routing.segment == seg);
            let batch = signals_to_batch(these, &self.model, &self.run_id);
            self.write(&format!("signals/segment={seg}"), signal_schema(), &batch)?;
        }
        Ok(())
    }

    pub fn write_rejects(&mut self, rejects: &[Reject]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        let batch = rejects_to_batch(rejects, &self.run_id);
        self.write("rejects", reject_schema(), &batch)
    }

    /// Closes every part file, writes the shard manifest last (`body` plus the file list) and
    /// removes this shard's older attempts.
    pub fn finish(mut self, mut body: Value, agg: (PathBuf, u64)) -> Result<StagedShard> {
        let mut files = Vec::new();
        let mut rows = 0;
        for (table, part) in std::mem::take(&mut self.parts) {
            let mut part = part;
            close(&mut part)?;
            for (name, n) in &part.files {
                let path = part.dir.join(name);
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                rows += n;
                files.push(json!({"table": table, "file": format!("{table}/{name}"), "rows": n, "bytes": bytes}));
            }
        }
        let agg_name = agg
            .0
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        body["shard"] = json!({
            "index": self.spec.index,
            "count": self.spec.count,
            "attempt": self.attempt,
            "files": files,
            "aggregate_input": {"file": agg_name, "rows": agg.1},
        });
        crate::publish::fault::point("shard:manifest")?;
        let path = self.dir.join(MANIFEST);
        {
            use std::io::Write;
            let mut f = File::options()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            f.write_all(&serde_json::to_vec_pretty(&body)?)?;
            f.sync_all()?;
        }
        for d in [&self.dir, &self.shard_dir] {
            let _ = File::open(d).and_then(|f| f.sync_all());
        }
        let manifest = match self.remote {
            Some(_) => self.upload()?,
            None => path.clone(),
        };
        // A shard that finished after its run was committed (a retried pod that came too late)
        // would leave its attempt behind for good: it removes it and says so. (The commit removes
        // the staging folder after publishing, so what was written before this check is removed
        // by the commit, and what is written after it sees the commit here.)
        match refuse_committed(&self.out, &self.run_id) {
            Err(e) if e.downcast_ref::<super::ShardError>().is_some() => {
                // Everything left under the committed run's staging folder is an orphan.
                match &self.remote {
                    Some((r, _)) => {
                        self.uploaded.clear();
                        let _ = super::remote::StoreStaging::new(r.clone(), &self.run_id).remove();
                    }
                    None => {
                        let _ =
                            std::fs::remove_dir_all(super::staging_root(&self.out, &self.run_id));
                    }
                }
                return Err(e);
            }
            // Cannot tell (the store did not answer): keep the staged attempt.
            Err(e) => eprintln!("pulso: warning: shard {} is staged, but whether run {} was committed meanwhile could not be read ({e:#})", self.spec, self.run_id),
            Ok(()) => {}
        }
        self.finished = true;
        if let Some((_, scratch)) = self.remote.take() {
            let _ = std::fs::remove_dir_all(scratch);
            return Ok(StagedShard {
                spec: self.spec,
                attempt: self.attempt.clone(),
                manifest,
                rows,
            });
        }
        // Older attempts of this shard are superseded (the commit would ignore them anyway).
        if let Ok(rd) = std::fs::read_dir(&self.shard_dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("attempt-") && name < self.attempt {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(StagedShard {
            spec: self.spec,
            attempt: self.attempt.clone(),
            manifest: path,
            rows,
        })
    }

    /// Removes this attempt (a failed shard stages nothing).
    pub fn abort(mut self) {
        self.parts.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
        self.delete_uploaded();
        if let Some((_, scratch)) = self.remote.take() {
            let _ = std::fs::remove_dir_all(scratch);
        }
        self.finished = true;
    }
}

fn close(part: &mut Part) -> Result<()> {
    if let Some(w) = part.writer.take() {
        let f = w
            .into_inner()
            .with_context(|| format!("cannot finish a part file in {}", part.dir.display()))?;
        f.sync_all()?;
        let _ = File::open(&part.dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

impl Drop for Stage {
    fn drop(&mut self) {
        if !self.finished {
            self.parts.clear();
            let _ = std::fs::remove_dir_all(&self.dir);
            self.delete_uploaded();
        }
        if let Some((_, scratch)) = self.remote.take() {
            let _ = std::fs::remove_dir_all(scratch);
        }
    }
}

/// Fails with [`super::ShardError::Committed`] when `run_id` is the committed version of `out`.
pub fn refuse_committed(out: &Path, run_id: &str) -> Result<()> {
    let current = crate::publish::target::current_version(out)
        .with_context(|| format!("cannot read the committed version of {}", out.display()))?;
    match current {
        Some(v) if v.run_id == run_id => Err(super::ShardError::Committed {
            run_id: run_id.to_string(),
            out: out.display().to_string(),
            version: v.version,
        }
        .into()),
        _ => Ok(()),
    }
}
