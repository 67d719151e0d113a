//! Partitioned Parquet output with atomic replacement of a date's partitions.
//!
//! Everything a run writes goes to `OUT/_staging/RUN_ID/` first. On commit each partition
//! directory (`signals/segment=internal/date=D`, `rejects/date=D`, `aggregates/<table>/date=D`) is
//! swapped into place with one `renameat2(RENAME_EXCHANGE)` (two renames where the kernel or file
//! system lacks it), so a reader sees the old partition or the new one, never a mix. A crash before
//! commit leaves the published output untouched. `runs/RUN_ID.json` and then `_SUCCESS` are written last.
//!
//! Writers are opened lazily per partition (xsv style), flushed by size, rolled to a new
//! `part-NNNNN.parquet` every [`SinkConfig::file_rows`] rows, and closed explicitly.

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
    #[error("{path} is locked by another pulso run writing to the same output; wait for it or choose another --out")]
    Locked { path: PathBuf },
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
        }
    }
    pub fn file_rows(mut self, n: usize) -> Self {
        self.file_rows = n.max(1);
        self
    }
    pub fn row_group_rows(mut self, n: usize) -> Self {
        self.row_group_rows = n.max(1);
        self
    }

    /// Takes the output lock and creates the staging folder.
    pub fn build(self) -> Result<Sink, SinkError> {
        std::fs::create_dir_all(&self.out).map_err(io(&self.out))?;
        let lock_path = self.out.join(".pulso.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock_exclusive(&lock, &lock_path)?;
        let staging_root = self.out.join("_staging");
        // Leftovers of crashed runs: safe to remove, we hold the lock.
        if staging_root.exists() {
            std::fs::remove_dir_all(&staging_root).map_err(io(&staging_root))?;
        }
        let staging = staging_root.join(&self.run_id);
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        Ok(Sink {
            cfg: self,
            staging,
            parts: BTreeMap::new(),
            _lock: lock,
        })
    }
}

fn lock_exclusive(f: &File, path: &Path) -> Result<(), SinkError> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Err(SinkError::Locked { path: path.into() })
    } else {
        Err(SinkError::Io {
            path: path.into(),
            source: e,
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
            let (w, path) = self.writer.as_mut().expect("opened by roll");
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
            w.close()
                .map_err(|source| SinkError::Parquet { path, source })?;
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
    _lock: File,
}

/// What a commit published.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Published {
    /// Partition dir (relative to OUT) → rows.
    pub partitions: BTreeMap<String, u64>,
    pub manifest: PathBuf,
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
        self.parts.entry(rel).or_insert_with(|| PartWriter {
            dir,
            schema,
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

    /// Closes every writer, swaps each partition into place, writes the manifest and `_SUCCESS`.
    pub fn commit(mut self, manifest: &serde_json::Value) -> Result<Published, SinkError> {
        let mut published = Published::default();
        let parts = std::mem::take(&mut self.parts);
        let mut closed = Vec::new();
        for (rel, w) in parts {
            let rows = w.finish()?;
            closed.push((rel, rows));
        }
        for (rel, rows) in closed {
            let staged = self.staging.join(&rel);
            let target = self.cfg.out.join(&rel);
            swap_into_place(&staged, &target)?;
            published.partitions.insert(rel, rows);
        }
        let runs = self.cfg.out.join("runs");
        std::fs::create_dir_all(&runs).map_err(io(&runs))?;
        let manifest_path = runs.join(format!("{}.json", self.cfg.run_id));
        let body = serde_json::to_vec_pretty(manifest).expect("manifest is JSON");
        write_atomic(&manifest_path, &body)?;
        let success = serde_json::json!({
            "run_id": self.cfg.run_id,
            "date": self.cfg.date.format("%Y-%m-%d").to_string(),
            "finished_at": chrono::Utc::now().to_rfc3339(),
        });
        write_atomic(
            &self.cfg.out.join("_SUCCESS"),
            serde_json::to_string_pretty(&success)
                .expect("json")
                .as_bytes(),
        )?;
        let _ = std::fs::remove_dir_all(self.cfg.out.join("_staging"));
        published.manifest = manifest_path;
        Ok(published)
    }

    /// Discards everything staged; the published output is untouched.
    pub fn abort(self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Moves `staged` to `target`, atomically replacing an existing `target` directory.
fn swap_into_place(staged: &Path, target: &Path) -> Result<(), SinkError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    if !target.exists() {
        return std::fs::rename(staged, target).map_err(io(target));
    }
    if exchange(staged, target).is_ok() {
        // `staged` now holds the old partition.
        return std::fs::remove_dir_all(staged).map_err(io(staged));
    }
    // Fallback: a short window where the partition is absent, never mixed.
    let old = staged.with_extension("old");
    std::fs::rename(target, &old).map_err(io(target))?;
    std::fs::rename(staged, target).map_err(io(target))?;
    std::fs::remove_dir_all(&old).map_err(io(&old))
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: valid NUL-terminated paths; renameat2 does not retain them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
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
        let p = s.commit(&serde_json::json!({"run": 1})).unwrap();
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
        s.commit(&serde_json::json!({})).unwrap();
        assert_eq!(rows_in(&ext), 0);
        assert_eq!(
            rows_in(&out.join("signals/segment=internal/date=2026-11-14")),
            1
        );
        assert!(!out.join("_staging").exists());
    }

    #[test]
    fn aborted_run_leaves_previous_output() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let mut s = SinkConfig::new(&out, date(), "run1", "m").build().unwrap();
        s.write_signals(&[signal("a", Segment::External)]).unwrap();
        s.commit(&serde_json::json!({})).unwrap();
        let mut s = SinkConfig::new(&out, date(), "run2", "m").build().unwrap();
        s.write_signals(&[
            signal("b", Segment::External),
            signal("c", Segment::External),
        ])
        .unwrap();
        drop(s); // crash before commit
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
