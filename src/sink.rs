//! Partitioned Parquet output of one run, published through one commit (see [`crate::publish`]).
//!
//! Everything a run writes goes to its own folder `OUT/_pulso/runs/RUN_ID/` in the Hive layout
//! (`signals/segment=internal/date=D/part-00000.parquet`, `rejects/date=D/…`,
//! `aggregates/<table>/date=D/…`); every file is fsynced when closed. [`Sink::commit`] then
//! publishes the whole run with one atomic step; dropping the sink publishes nothing.
//!
//! Writers are opened lazily per partition (xsv style), flushed by size, rolled to a new
//! `part-NNNNN.parquet` every [`SinkConfig::file_rows`] rows, and closed explicitly.

use crate::config::OutputFormat;
use crate::publish::delta::{self, DeltaError, DeltaOutput};
use crate::publish::delta_store::StoreDeltaOutput;
use crate::publish::target::Target;
use crate::publish::{fault, CommitError, Committed};
use crate::record::{Reject, Segment, Signal};
use crate::schema::{reject_schema, rejects_to_batch, signal_schema, signals_to_batch};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SinkError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// Boxed: a Delta error is the largest, and this one travels through every sink call.
    #[error(transparent)]
    Delta(Box<DeltaError>),
    #[error("{path} already exists: every run needs a new run id")]
    RunIdTaken { path: PathBuf },
}

impl From<DeltaError> for SinkError {
    fn from(e: DeltaError) -> Self {
        SinkError::Delta(Box::new(e))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Options for the sink (builder style).
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub out: PathBuf,
    pub date: NaiveDate,
    pub run_id: String,
    pub model: String,
    /// Rows per row group (also bounded by `max_buffer_bytes`).
    pub row_group_rows: usize,
    /// Flush a row group once the writer buffers this many bytes.
    pub max_buffer_bytes: usize,
    /// Start a new part file after this many rows.
    pub file_rows: usize,
    /// Plain Hive Parquet or Delta tables ([`crate::publish::delta`]).
    pub format: OutputFormat,
}

impl SinkConfig {
    pub fn new(
        out: impl Into<PathBuf>,
        date: NaiveDate,
        run_id: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        SinkConfig {
            out: out.into(),
            date,
            run_id: run_id.into(),
            model: model.into(),
            row_group_rows: 64 * 1024,
            max_buffer_bytes: 64 << 20,
            file_rows: 1_000_000,
            format: OutputFormat::Parquet,
        }
    }
    pub fn format(mut self, format: OutputFormat) -> Self {
        self.format = format;
        self
    }
    pub fn file_rows(mut self, n: usize) -> Self {
        self.file_rows = n.max(1);
        self
    }
    pub fn row_group_rows(mut self, n: usize) -> Self {
        self.row_group_rows = n.max(1);
        self
    }

    /// Takes the output lock, clears leftovers of crashed runs and creates the run's folder.
    pub fn build(self) -> Result<Sink, SinkError> {
        let output = match self.format {
            OutputFormat::Parquet => Dest::Hive(Target::open(&self.out)?),
            OutputFormat::Delta => match self
                .out
                .to_str()
                .filter(|_| crate::storage::is_url_path(&self.out))
            {
                Some(url) => Dest::DeltaStore(StoreDeltaOutput::open(url)?),
                None => Dest::Delta(DeltaOutput::open(&self.out)?),
            },
        };
        let staging = output.run_dir(&self.run_id);
        if staging.exists() {
            // Never write into a committed version's tree.
            return Err(SinkError::RunIdTaken { path: staging });
        }
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        Ok(Sink {
            cfg: self,
            staging,
            parts: BTreeMap::new(),
            finished: BTreeMap::new(),
            schemas: BTreeMap::new(),
            output,
            committed: false,
        })
    }
}

/// A lazily opened, size-flushed, rolling Parquet writer for one partition directory.
struct PartWriter {
    dir: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    max_buffer_bytes: usize,
    file_rows: usize,
    writer: Option<(ArrowWriter<File>, PathBuf)>,
    /// Columns stored in the file (Delta files leave the partition columns out).
    keep: Option<Vec<usize>>,
    rows_in_file: usize,
    files: usize,
    rows: u64,
}

impl PartWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.writer.is_none() || self.rows_in_file >= self.file_rows {
                self.roll()?;
            }
            let room = self.file_rows - self.rows_in_file;
            let n = room.min(batch.num_rows() - offset);
            let slice = batch.slice(offset, n);
            let slice = match &self.keep {
                Some(k) => slice.project(k).map_err(|e| SinkError::Parquet {
                    path: self.dir.clone(),
                    source: e.into(),
                })?,
                None => slice,
            };
            let (w, path) = self.writer.as_mut().expect("opened by roll");
            fault::point("write:batch").map_err(io(path))?;
            w.write(&slice).map_err(|source| SinkError::Parquet {
                path: path.clone(),
                source,
            })?;
            if w.in_progress_size() >= self.max_buffer_bytes {
                w.flush().map_err(|source| SinkError::Parquet {
                    path: path.clone(),
                    source,
                })?;
            }
            self.rows_in_file += n;
            self.rows += n as u64;
            offset += n;
        }
        Ok(())
    }

    fn roll(&mut self) -> Result<(), SinkError> {
        self.close_current()?;
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.dir.join(format!("part-{:05}.parquet", self.files));
        let f = File::create(&path).map_err(io(&path))?;
        let w = ArrowWriter::try_new(f, self.schema.clone(), Some(self.props.clone())).map_err(
            |source| SinkError::Parquet {
                path: path.clone(),
                source,
            },
        )?;
        self.writer = Some((w, path));
        self.files += 1;
        self.rows_in_file = 0;
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), SinkError> {
        if let Some((w, path)) = self.writer.take() {
            let f = w.into_inner().map_err(|source| SinkError::Parquet {
                path: path.clone(),
                source,
            })?;
            f.sync_all().map_err(io(&path))?;
            fault::point("write:file-closed").map_err(io(&path))?;
        }
        Ok(())
    }

    /// Closes the writer; an untouched partition still gets one empty file so readers find the schema.
    fn finish(mut self) -> Result<u64, SinkError> {
        if self.files == 0 {
            self.roll()?;
        }
        self.close_current()?;
        Ok(self.rows)
    }
}

/// An open run's output. Call [`Sink::commit`] to publish; dropping it publishes nothing.
pub struct Sink {
    cfg: SinkConfig,
    staging: PathBuf,
    /// Partition dir relative to OUT → writer.
    parts: BTreeMap<String, PartWriter>,
    /// Closed partitions → rows.
    finished: BTreeMap<String, u64>,
    /// Partition dir → logical schema (the Parquet contract, partition columns included).
    schemas: BTreeMap<String, SchemaRef>,
    output: Dest,
    committed: bool,
}

/// Where a run is published: a versioned Hive tree (local folder or object store) or Delta
/// tables (local folder or object store).
enum Dest {
    Hive(Target),
    Delta(DeltaOutput),
    DeltaStore(StoreDeltaOutput),
}

impl Dest {
    fn current_manifest(&self) -> Option<serde_json::Value> {
        match self {
            Dest::Hive(o) => o.current_manifest(),
            Dest::Delta(o) => o.current_manifest(),
            Dest::DeltaStore(o) => o.current_manifest(),
        }
    }
    fn run_dir(&self, run_id: &str) -> PathBuf {
        match self {
            Dest::Hive(o) => o.run_dir(run_id),
            Dest::Delta(o) => o.run_dir(run_id),
            Dest::DeltaStore(o) => o.run_dir(run_id),
        }
    }
    fn history_root(&self, out: &Path) -> PathBuf {
        match self {
            Dest::Hive(o) => o.history_root(out),
            Dest::Delta(_) => out.to_path_buf(),
            Dest::DeltaStore(o) => o.history_root(),
        }
    }
    fn discard(&self, run_id: &str) {
        match self {
            Dest::Hive(o) => o.discard(run_id),
            Dest::Delta(o) => o.discard(run_id),
            Dest::DeltaStore(o) => o.discard(run_id),
        }
    }
}

/// What a commit published.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Published {
    /// Partition dir (relative to OUT) → rows.
    pub partitions: BTreeMap<String, u64>,
    /// The version's manifest (`OUT/_pulso/log/N.json`).
    pub manifest: PathBuf,
    pub version: u64,
}

impl Sink {
    /// Relative partition dir for a table.
    pub fn partition_dir(&self, table: &str) -> String {
        format!("{table}/date={}", self.cfg.date.format("%Y-%m-%d"))
    }

    fn part(&mut self, rel: String, schema: SchemaRef) -> &mut PartWriter {
        let dir = self.staging.join(&rel);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("valid zstd level"),
            ))
            .set_max_row_group_size(self.cfg.row_group_rows)
            .set_created_by(format!("pulso {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![
                parquet::format::KeyValue::new("pulso.run_id".to_string(), self.cfg.run_id.clone()),
                parquet::format::KeyValue::new("pulso.model".to_string(), self.cfg.model.clone()),
            ]))
            .build();
        let (max_buffer_bytes, file_rows) = (self.cfg.max_buffer_bytes, self.cfg.file_rows);
        self.schemas
            .entry(rel.clone())
            .or_insert_with(|| schema.clone());
        let (schema, keep) = match self.cfg.format {
            OutputFormat::Delta => delta::physical_schema(&rel, &schema),
            OutputFormat::Parquet => (schema, None),
        };
        self.parts.entry(rel).or_insert_with(|| PartWriter {
            dir,
            schema,
            keep,
            props,
            max_buffer_bytes,
            file_rows,
            writer: None,
            rows_in_file: 0,
            files: 0,
            rows: 0,
        })
    }

    /// Makes sure both signal partitions and the rejects partition exist, even if empty.
    pub fn declare_standard_partitions(&mut self) {
        for seg in Segment::ALL {
            let rel = self.partition_dir(&format!("signals/segment={seg}"));
            self.part(rel, signal_schema());
        }
        let rel = self.partition_dir("rejects");
        self.part(rel, reject_schema());
    }

    /// Writes signals, each to its segment's partition.
    pub fn write_signals(&mut self, signals: &[Signal]) -> Result<(), SinkError> {
        for seg in Segment::ALL {
            if !signals.iter().any(|s| s.routing.segment == seg) {
                continue;
            }
            let these = signals.iter().filter(|s| s.routing.segment == seg);
            let batch = signals_to_batch(these, &self.cfg.model, &self.cfg.run_id);
            let rel = self.partition_dir(&format!("signals/segment={seg}"));
            self.part(rel, signal_schema()).write(&batch)?;
        }
        Ok(())
    }

    /// Writes rejects.
    pub fn write_rejects(&mut self, rejects: &[Reject]) -> Result<(), SinkError> {
        if rejects.is_empty() {
            return Ok(());
        }
        let batch = rejects_to_batch(rejects, &self.cfg.run_id);
        let rel = self.partition_dir("rejects");
        self.part(rel, reject_schema()).write(&batch)
    }

    /// Writes a batch of another table (e.g. `aggregates/brand_daily`) into its date partition.
    pub fn write_table(&mut self, table: &str, batch: &RecordBatch) -> Result<(), SinkError> {
        let rel = self.partition_dir(table);
        self.part(rel, batch.schema()).write(batch)
    }

    /// Places a finished Parquet file written elsewhere (a shard's staging area, see
    /// [`crate::shard`]) into `table`'s date partition of this run as `name`: hard-linked where the
    /// file system allows, else copied and fsynced. Its `rows` count towards the partition.
    pub fn adopt_file(
        &mut self,
        table: &str,
        src: &Path,
        name: &str,
        rows: u64,
    ) -> Result<(), SinkError> {
        let rel = self.partition_dir(table);
        // A declared partition that got no rows would add an empty file next to the adopted one.
        if self.parts.get(&rel).is_some_and(|w| w.files == 0) {
            self.parts.remove(&rel);
        }
        let dir = self.staging.join(&rel);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let dst = dir.join(name);
        if std::fs::hard_link(src, &dst).is_err() {
            std::fs::copy(src, &dst).map_err(io(&dst))?;
            File::open(&dst)
                .and_then(|f| f.sync_all())
                .map_err(io(&dst))?;
        }
        *self.finished.entry(rel).or_default() += rows;
        Ok(())
    }

    /// The manifest of the version that was current when this run took the lock.
    pub fn previous_manifest(&self) -> Option<serde_json::Value> {
        self.output.current_manifest()
    }

    /// A local folder with the current version's `aggregates/`, for the rules that read history
    /// (the output root itself on local disk, a downloaded copy for an object store).
    pub fn history_root(&self) -> PathBuf {
        self.output.history_root(&self.cfg.out)
    }

    /// Closes (and fsyncs) every writer. Call before [`Sink::commit`] to learn early whether the
    /// data is complete; `commit` does it anyway.
    pub fn finish_files(&mut self) -> Result<(), SinkError> {
        for (rel, w) in std::mem::take(&mut self.parts) {
            let rows = w.finish()?;
            *self.finished.entry(rel).or_default() += rows;
        }
        Ok(())
    }

    /// Publishes the run: closes every writer, then commits the run's folder as the next
    /// version (see [`crate::publish`]). `manifest` gets the commit's details.
    pub fn commit(mut self, manifest: &mut serde_json::Value) -> Result<Published, SinkError> {
        self.finish_files()?;
        let rows = std::mem::take(&mut self.finished);
        let replaced = rows.keys().cloned().collect();
        let date = self.cfg.date.format("%Y-%m-%d").to_string();
        // Delta tables (local or on a store) commit table by table; see publish::delta.
        let delta = match &mut self.output {
            Dest::Hive(_) => None,
            Dest::Delta(o) => {
                let schemas = std::mem::take(&mut self.schemas);
                Some(o.commit(&self.cfg.run_id, &date, &schemas, manifest)?)
            }
            Dest::DeltaStore(o) => {
                let schemas = std::mem::take(&mut self.schemas);
                Some(o.commit(&self.cfg.run_id, &date, &schemas, manifest)?)
            }
        };
        if let Some(c) = delta {
            self.committed = true;
            return Ok(Published {
                partitions: rows,
                manifest: c.manifest,
                version: c.version,
            });
        }
        let Dest::Hive(output) = &mut self.output else {
            unreachable!("Delta outputs returned above")
        };
        let c: Committed = match output.commit(&self.cfg.run_id, &date, &replaced, manifest) {
            Ok(c) => c,
            Err(e @ CommitError::Durability { .. }) => {
                self.committed = true;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        self.committed = true;
        Ok(Published {
            partitions: rows,
            manifest: c.manifest,
            version: c.version,
        })
    }

    /// Discards everything written; the published output is untouched.
    pub fn abort(self) {
        drop(self)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if !self.committed {
            self.parts.clear();
            self.output.discard(&self.cfg.run_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    fn signal(id: &str, seg: Segment) -> Signal {
        Signal {
            record: InputRecord {
                source: Arc::from("s"),
                id: id.into(),
                text: format!("text {id}"),
                ..Default::default()
            },
            routing: Routing {
                segment: seg,
                client_type: ClientType::Consumer,
                reason: "default:external".into(),
            },
            language: Lang::En,
            scored: Scored {
                sentiment: Sentiment::Positive,
                p_negative: 0.1,
                p_neutral: 0.2,
                p_positive: 0.7,
                sentiment_score: 0.6,
                truncated: false,
            },
            enrichment: Enrichment {
                topics: vec!["price".into()],
                ..Default::default()
            },
        }
    }

    fn rows_in(dir: &Path) -> usize {
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let f = File::open(e.unwrap().path()).unwrap();
            for b in ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap()
            {
                n += b.unwrap().num_rows();
            }
        }
        n
    }

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 14).unwrap()
    }

    #[test]
    fn round_trip_roll_and_replace() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let mut s = SinkConfig::new(&out, date(), "run1", "m")
            .file_rows(3)
            .build()
            .unwrap();
        s.declare_standard_partitions();
        let sigs: Vec<Signal> = (0..7)
            .map(|i| signal(&i.to_string(), Segment::External))
            .collect();
        s.write_signals(&sigs).unwrap();
        let p = s.commit(&mut serde_json::json!({"run": 1})).unwrap();
        let ext = out.join("signals/segment=external/date=2026-11-14");
        assert_eq!(
            std::fs::read_dir(&ext).unwrap().count(),
            3,
            "7 rows at 3 per file"
        );
        assert_eq!(rows_in(&ext), 7);
        assert_eq!(
            rows_in(&out.join("signals/segment=internal/date=2026-11-14")),
            0
        );
        assert_eq!(p.partitions["signals/segment=external/date=2026-11-14"], 7);
        assert!(out.join("_SUCCESS").exists() && out.join("runs/run1.json").exists());

        // A second run of the same date replaces the partition, nothing mixed.
        let mut s = SinkConfig::new(&out, date(), "run2", "m").build().unwrap();
        s.declare_standard_partitions();
        s.write_signals(&[signal("x", Segment::Internal)]).unwrap();
        s.commit(&mut serde_json::json!({})).unwrap();
        assert_eq!(rows_in(&ext), 0);
        assert_eq!(
            rows_in(&out.join("signals/segment=internal/date=2026-11-14")),
            1
        );
        assert_eq!(
            std::fs::read_dir(out.join("_pulso/runs")).unwrap().count(),
            2
        );
    }

    #[test]
    fn aborted_run_leaves_previous_output() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let mut s = SinkConfig::new(&out, date(), "run1", "m").build().unwrap();
        s.write_signals(&[signal("a", Segment::External)]).unwrap();
        s.commit(&mut serde_json::json!({})).unwrap();
        let mut s = SinkConfig::new(&out, date(), "run2", "m").build().unwrap();
        s.write_signals(&[
            signal("b", Segment::External),
            signal("c", Segment::External),
        ])
        .unwrap();
        drop(s); // failure before commit
        assert!(!out.join("_pulso/runs/run2").exists());
        assert_eq!(
            rows_in(&out.join("signals/segment=external/date=2026-11-14")),
            1
        );
    }

    #[test]
    fn second_writer_is_locked_out() {
        let d = tempfile::tempdir().unwrap();
        let _a = SinkConfig::new(d.path(), date(), "a", "m").build().unwrap();
        let e = SinkConfig::new(d.path(), date(), "b", "m")
            .build()
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("another pulso run"), "{e}");
    }
}
