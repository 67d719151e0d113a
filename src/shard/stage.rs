//! A shard's own output: Parquet part files and the aggregate input under its attempt folder,
//! then the shard manifest, written last. Publishes nothing and takes no output lock, so N shards
//! can write at once.

use super::{ShardSpec, MANIFEST};
use crate::record::{Reject, Segment, Signal};
use crate::schema::{reject_schema, rejects_to_batch, signal_schema, signals_to_batch};
use anyhow::{Context, Result};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
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
    pub fn create(out: &Path, run_id: &str, spec: ShardSpec, model: &str) -> Result<Stage> {
        let shard_dir = super::staging_root(out, run_id).join(spec.dir_name());
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
        })
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
        self.finished = true;
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
        }
    }
}
