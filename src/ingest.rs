//! Readers for CSV, JSON Lines and Parquet sources that turn every row into a typed record or a reject.
//!
//! A row never disappears: it becomes an [`InputRecord`] or a [`Reject`] with the file, line and
//! reason. Only a file that cannot be read at all is an error, and that stops the run before
//! anything is published.

use crate::config::{Columns, Format, SourcePlan};
use crate::record::{InputRecord, Reject, RejectReason};
use crate::timefmt::{epoch_to_micros, parse_timestamp};
use serde_json::Value;
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// A file that cannot be read as its declared format.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

/// One row's outcome.
///
/// Not boxed although `Record` is much larger than `Reject`: nearly every item is a record, and a
/// box would add one allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Item {
    Record(InputRecord),
    Reject(Reject),
}

/// Iterator over one file's rows.
pub type Rows = Box<dyn Iterator<Item = Result<Item, IngestError>> + Send>;

/// Opens one file of a source.
pub fn open(source: &SourcePlan, file: &Path) -> Result<Rows, IngestError> {
    let name: Arc<str> = Arc::from(source.name.as_str());
    let ex = Extractor {
        source: name,
        columns: source.columns.clone(),
    };
    match source.format {
        Format::Csv => csv_rows(ex, file, source.delimiter),
        Format::Jsonl => jsonl_rows(ex, file),
        Format::Parquet => parquet_rows(ex, file),
    }
}

/// Cheap estimate of the number of rows in a file (newlines for text formats, metadata for Parquet).
pub fn estimate_rows(format: Format, file: &Path) -> u64 {
    match format {
        Format::Parquet => File::open(file)
            .ok()
            .and_then(|f| parquet::file::reader::SerializedFileReader::new(f).ok())
            .map(|r| {
                use parquet::file::reader::FileReader;
                r.metadata().file_metadata().num_rows().max(0) as u64
            })
            .unwrap_or(0),
        Format::Csv | Format::Jsonl => {
            let Ok(mut f) = File::open(file) else {
                return 0;
            };
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0u64;
            while let Ok(k) = f.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
            }
            if format == Format::Csv {
                n.saturating_sub(1)
            } else {
                n
            }
        }
    }
}

/// A field value as found in the input, before typing.
#[derive(Debug, Clone)]
enum Val<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Nested JSON (object or array) kept as text.
    Json(String),
}

impl Val<'_> {
    fn into_string(self) -> String {
        match self {
            Val::Str(s) => s.into_owned(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => f.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Json(s) => s,
        }
    }
}

fn json_val(v: &Value) -> Option<Val<'_>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Val::Str(Cow::Borrowed(s))),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => Val::Int(i),
            None => Val::Float(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::Bool(b) => Some(Val::Bool(*b)),
        other => Some(Val::Json(other.to_string())),
    }
}

/// Looks up `a.b.c` in a JSON object; a key that itself contains dots wins over the path.
fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut cur = obj;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Turns field lookups into a typed record or a reject: the rules shared by every format.
struct Extractor {
    source: Arc<str>,
    columns: Columns,
}

impl Extractor {
    fn reject(&self, location: String, raw: String, reason: RejectReason) -> Item {
        Item::Reject(Reject {
            source: self.source.clone(),
            location,
            raw,
            reason,
        })
    }

    fn build<'a>(
        &self,
        location: String,
        raw: String,
        get: impl Fn(&str) -> Option<Val<'a>>,
    ) -> Item {
        let c = &self.columns;
        let text_of = |col: &Option<String>| -> Option<String> {
            col.as_deref()
                .and_then(&get)
                .map(Val::into_string)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let id = match &c.id {
            Some(col) => match text_of(&Some(col.clone())) {
                Some(id) => id,
                None => return self.reject(location, raw, RejectReason::MissingField("id".into())),
            },
            None => location.clone(),
        };
        let text = match get(&c.text) {
            None => return self.reject(location, raw, RejectReason::MissingField("text".into())),
            Some(v) => v.into_string(),
        };
        if text.trim().is_empty() {
            return self.reject(location, raw, RejectReason::EmptyText);
        }
        let event_time = match &c.timestamp {
            None => None,
            Some(col) => match get(col) {
                None => {
                    return self.reject(
                        location,
                        raw,
                        RejectReason::MissingField("timestamp".into()),
                    )
                }
                Some(Val::Int(i)) => match epoch_to_micros(i) {
                    Some(t) => Some(t),
                    None => {
                        return self.reject(
                            location,
                            raw,
                            RejectReason::BadTimestamp(i.to_string()),
                        )
                    }
                },
                Some(Val::Float(f)) if f.is_finite() => Some((f * 1e6).round() as i64),
                Some(v) => {
                    let s = v.into_string();
                    if s.trim().is_empty() {
                        return self.reject(
                            location,
                            raw,
                            RejectReason::MissingField("timestamp".into()),
                        );
                    }
                    match parse_timestamp(&s) {
                        Some(t) => Some(t),
                        None => return self.reject(location, raw, RejectReason::BadTimestamp(s)),
                    }
                }
            },
        };
        let int_of = |name: &str, col: &Option<String>| -> Result<Option<i64>, RejectReason> {
            let Some(v) = col.as_deref().and_then(&get) else {
                return Ok(None);
            };
            match v {
                Val::Int(i) => Ok(Some(i)),
                Val::Float(f) if f.is_finite() && f.fract() == 0.0 => Ok(Some(f as i64)),
                Val::Str(s) if s.trim().is_empty() => Ok(None),
                Val::Str(s) => {
                    let t = s.trim();
                    t.parse::<i64>()
                        .ok()
                        .or_else(|| {
                            t.parse::<f64>()
                                .ok()
                                .filter(|f| f.fract() == 0.0)
                                .map(|f| f as i64)
                        })
                        .map(Some)
                        .ok_or_else(|| RejectReason::BadNumber(name.into()))
                }
                _ => Err(RejectReason::BadNumber(name.into())),
            }
        };
        let float_of = |name: &str, col: &Option<String>| -> Result<Option<f64>, RejectReason> {
            let Some(v) = col.as_deref().and_then(&get) else {
                return Ok(None);
            };
            match v {
                Val::Int(i) => Ok(Some(i as f64)),
                Val::Float(f) if f.is_finite() => Ok(Some(f)),
                Val::Str(s) if s.trim().is_empty() => Ok(None),
                Val::Str(s) => s
                    .trim()
                    .replace(',', ".")
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Some)
                    .ok_or_else(|| RejectReason::BadNumber(name.into())),
                _ => Err(RejectReason::BadNumber(name.into())),
            }
        };
        let numbers = (|| {
            Ok::<_, RejectReason>((
                int_of("likes", &c.likes)?,
                int_of("shares", &c.shares)?,
                int_of("replies", &c.replies)?,
                int_of("reach", &c.reach)?,
                float_of("rating", &c.rating)?,
                float_of("score", &c.score)?,
            ))
        })();
        let (likes, shares, replies, reach, rating, score) = match numbers {
            Ok(n) => n,
            Err(r) => return self.reject(location, raw, r),
        };
        Item::Record(InputRecord {
            source: self.source.clone(),
            location,
            raw,
            id,
            text,
            event_time,
            author: text_of(&c.author),
            department: text_of(&c.department),
            language: text_of(&c.language),
            brand: text_of(&c.brand),
            channel: text_of(&c.channel),
            likes,
            shares,
            replies,
            reach,
            rating,
            score,
            provider: text_of(&c.provider),
        })
    }

    /// A JSON object row (JSON Lines, or a Parquet row rendered as JSON).
    fn item_from_json(&self, location: String, raw: String, v: &Value) -> Item {
        if !v.is_object() {
            return self.reject(
                location,
                raw,
                RejectReason::MalformedRow("the line is JSON but not an object".into()),
            );
        }
        self.build(location, raw.clone(), |col| {
            json_path(v, col).and_then(json_val)
        })
    }
}

fn csv_rows(ex: Extractor, file: &Path, delimiter: u8) -> Result<Rows, IngestError> {
    let io = |source| IngestError::Io {
        path: file.into(),
        source,
    };
    let f = File::open(file).map_err(io)?;
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(f);
    let headers = rdr
        .byte_headers()
        .map_err(|e| IngestError::Format {
            path: file.into(),
            message: format!("cannot read the CSV header: {e}"),
        })?
        .clone();
    let headers: Vec<String> = headers
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_string()
        })
        .collect();
    check_columns(&ex.columns, file, &headers)?;
    let path = file.to_path_buf();
    let display = file.display().to_string();
    let mut rec = csv::ByteRecord::new();
    let mut done = false;
    let iter = std::iter::from_fn(move || {
        if done {
            return None;
        }
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => {
                done = true;
                None
            }
            Err(e) => {
                // The csv crate only fails on I/O errors in flexible mode; report and stop this file.
                done = true;
                Some(Err(IngestError::Format {
                    path: path.clone(),
                    message: format!("CSV read error: {e}"),
                }))
            }
            Ok(true) => {
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                let location = format!("{display}:{line}");
                let raw = reencode_csv(&rec, delimiter);
                if rec.len() != headers.len() {
                    return Some(Ok(ex.reject(
                        location,
                        raw,
                        RejectReason::MalformedRow(format!(
                            "expected {} fields, found {}",
                            headers.len(),
                            rec.len()
                        )),
                    )));
                }
                let mut fields = Vec::with_capacity(rec.len());
                for f in rec.iter() {
                    match std::str::from_utf8(f) {
                        Ok(s) => fields.push(s),
                        Err(_) => {
                            return Some(Ok(ex.reject(location, raw, RejectReason::InvalidUtf8)))
                        }
                    }
                }
                let get = |col: &str| -> Option<Val<'_>> {
                    let i = headers.iter().position(|h| h == col)?;
                    // An empty cell is an empty string: empty text is `empty_text`, an empty id is missing.
                    Some(Val::Str(Cow::Borrowed(fields[i])))
                };
                let item = ex.build(location, raw.clone(), get);
                Some(Ok(item))
            }
        }
    });
    Ok(Box::new(iter))
}

fn reencode_csv(rec: &csv::ByteRecord, delimiter: u8) -> String {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = w.write_byte_record(rec);
    let bytes = w.into_inner().unwrap_or_default();
    let s = String::from_utf8_lossy(&bytes);
    s.trim_end_matches('\n').to_string()
}

fn check_columns(c: &Columns, file: &Path, available: &[String]) -> Result<(), IngestError> {
    let wanted = configured_columns(c);
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, col)| !available.iter().any(|h| h == col))
        .map(|(field, _)| *field)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let detail: Vec<String> = wanted
        .iter()
        .filter(|(f, _)| missing.contains(f))
        .map(|(f, col)| format!("{f} = {col:?}"))
        .collect();
    Err(IngestError::Format {
        path: file.into(),
        message: format!(
            "column(s) {} not in the header; the file has: {}. Fix [source.columns] in the pipeline file",
            detail.join(", "),
            available.join(", ")
        ),
    })
}

/// (pulso field, configured column) pairs.
fn configured_columns(c: &Columns) -> Vec<(&'static str, String)> {
    let mut v = vec![("text", c.text.clone())];
    for (f, col) in [
        ("id", &c.id),
        ("timestamp", &c.timestamp),
        ("author", &c.author),
        ("department", &c.department),
        ("language", &c.language),
        ("brand", &c.brand),
        ("channel", &c.channel),
        ("likes", &c.likes),
        ("shares", &c.shares),
        ("replies", &c.replies),
        ("reach", &c.reach),
        ("rating", &c.rating),
        ("score", &c.score),
        ("provider", &c.provider),
    ] {
        if let Some(col) = col {
            v.push((f, col.clone()));
        }
    }
    v
}

fn jsonl_rows(ex: Extractor, file: &Path) -> Result<Rows, IngestError> {
    let f = File::open(file).map_err(|source| IngestError::Io {
        path: file.into(),
        source,
    })?;
    let mut rdr = BufReader::with_capacity(1 << 16, f);
    let path = file.to_path_buf();
    let display = file.display().to_string();
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    let iter = std::iter::from_fn(move || loop {
        buf.clear();
        match rdr.read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Err(e) => {
                return Some(Err(IngestError::Io {
                    path: path.clone(),
                    source: e,
                }))
            }
            Ok(_) => {}
        }
        line_no += 1;
        while matches!(buf.last(), Some(b'\n') | Some(b'\r')) {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let location = format!("{display}:{line_no}");
        let s = match std::str::from_utf8(&buf) {
            Ok(s) => s,
            Err(_) => {
                let raw = String::from_utf8_lossy(&buf).into_owned();
                return Some(Ok(ex.reject(location, raw, RejectReason::InvalidUtf8)));
            }
        };
        let raw = s.to_string();
        return Some(Ok(match serde_json::from_str::<Value>(s) {
            Ok(v) => ex.item_from_json(location, raw, &v),
            Err(e) => ex.reject(
                location,
                raw,
                RejectReason::MalformedRow(format!("invalid JSON: {e}")),
            ),
        }));
    });
    Ok(Box::new(iter))
}

fn parquet_rows(ex: Extractor, file: &Path) -> Result<Rows, IngestError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let fmt_err = |message: String| IngestError::Format {
        path: file.into(),
        message,
    };
    let f = File::open(file).map_err(|source| IngestError::Io {
        path: file.into(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| fmt_err(format!("not a readable Parquet file: {e}")))?;
    let top: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    // Dotted paths address struct fields; check only the top-level name.
    let wanted = configured_columns(&ex.columns);
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(_, col)| {
            !top.iter()
                .any(|h| h == col || col.starts_with(&format!("{h}.")))
        })
        .map(|(f, col)| format!("{f} = {col:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(fmt_err(format!(
            "column(s) {} not in the Parquet schema; the file has: {}. Fix [source.columns] in the pipeline file",
            missing.join(", "),
            top.join(", ")
        )));
    }
    let reader = builder
        .with_batch_size(1024)
        .build()
        .map_err(|e| fmt_err(e.to_string()))?;
    let path = file.to_path_buf();
    let display = file.display().to_string();
    let mut row = 0u64;
    let mut pending: std::collections::VecDeque<Result<Item, IngestError>> = Default::default();
    let mut reader = Some(reader);
    let iter = std::iter::from_fn(move || loop {
        if let Some(x) = pending.pop_front() {
            return Some(x);
        }
        let r = reader.as_mut()?;
        match r.next() {
            None => {
                reader = None;
                return None;
            }
            Some(Err(e)) => {
                reader = None;
                return Some(Err(IngestError::Format {
                    path: path.clone(),
                    message: format!("Parquet read error: {e}"),
                }));
            }
            Some(Ok(batch)) => {
                let batch = match utc_offsets(batch) {
                    Ok(b) => b,
                    Err(e) => {
                        reader = None;
                        return Some(Err(IngestError::Format {
                            path: path.clone(),
                            message: format!("cannot convert a row: {e}"),
                        }));
                    }
                };
                let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
                if let Err(e) = w.write(&batch).and_then(|_| w.finish()) {
                    reader = None;
                    return Some(Err(IngestError::Format {
                        path: path.clone(),
                        message: format!("cannot convert a row: {e}"),
                    }));
                }
                let bytes = w.into_inner();
                for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    row += 1;
                    let location = format!("{display}:row {row}");
                    let raw = String::from_utf8_lossy(line).into_owned();
                    let item = match serde_json::from_slice::<Value>(line) {
                        Ok(v) => ex.item_from_json(location, raw, &v),
                        Err(e) => ex.reject(
                            location,
                            raw,
                            RejectReason::MalformedRow(format!("unreadable row: {e}")),
                        ),
                    };
                    pending.push_back(Ok(item));
                }
            }
        }
    });
    Ok(Box::new(iter))
}

/// Arrow stores zoned timestamps as UTC instants; the zone name only affects display. Rewriting
/// named zones (`UTC`, `America/Sao_Paulo`) as `+00:00` lets them render as RFC 3339 without a
/// time-zone database, with the same instant.
fn utc_offsets(
    batch: arrow::record_batch::RecordBatch,
) -> Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError> {
    use arrow::datatypes::{DataType, Field, Schema};
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Timestamp(_, Some(_))))
    {
        return Ok(batch);
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut cols = Vec::with_capacity(schema.fields().len());
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        match f.data_type() {
            DataType::Timestamp(unit, Some(_)) => {
                let dt = DataType::Timestamp(*unit, Some("+00:00".into()));
                cols.push(arrow::compute::cast(c, &dt)?);
                fields.push(Field::new(f.name(), dt, f.is_nullable()));
            }
            _ => {
                cols.push(c.clone());
                fields.push(f.as_ref().clone());
            }
        }
    }
    arrow::record_batch::RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SegmentMode;

    fn plan(format: Format, cols: Columns, file: &Path) -> SourcePlan {
        SourcePlan {
            name: "s".into(),
            format,
            segment: SegmentMode::Auto,
            client_type: None,
            delimiter: b',',
            columns: cols,
            files: vec![file.to_path_buf()],
        }
    }

    fn cols() -> Columns {
        Columns {
            id: Some("id".into()),
            text: "text".into(),
            timestamp: Some("ts".into()),
            likes: Some("likes".into()),
            ..Default::default()
        }
    }

    fn reasons(rows: Rows) -> Vec<String> {
        rows.map(|r| match r.unwrap() {
            Item::Record(r) => format!("ok:{}", r.id),
            Item::Reject(r) => format!(
                "{}@{}",
                r.reason.code(),
                r.location.rsplit(':').next().unwrap()
            ),
        })
        .collect()
    }

    #[test]
    fn csv_every_reason_with_line_numbers() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        let mut body = b"id,text,ts,likes\n1,hello,2026-11-01,3\n2,\"multi\nline\",2026-11-01,\n3,too,many,fields,here\n,no id,2026-11-01,1\n5,   ,2026-11-01,1\n6,bad time,yesterday,1\n7,bad likes,2026-11-01,lots\n8,".to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(b",2026-11-01,1\n9,,2026-11-01,1\n");
        std::fs::write(&p, body).unwrap();
        let got = reasons(open(&plan(Format::Csv, cols(), &p), &p).unwrap());
        assert_eq!(
            got,
            vec![
                "ok:1",
                "ok:2",
                "malformed_row@5",
                "missing_field:id@6",
                "empty_text@7",
                "bad_timestamp@8",
                "bad_number:likes@9",
                "invalid_utf8@10",
                "empty_text@11"
            ]
        );
    }

    #[test]
    fn csv_missing_column_names_the_file_and_column() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(&p, "id,comment\n1,x\n").unwrap();
        let e = open(&plan(Format::Csv, cols(), &p), &p)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("a.csv") && e.contains("text = \"text\"") && e.contains("comment"),
            "{e}"
        );
    }

    #[test]
    fn jsonl_paths_invalid_json_and_utf8() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.jsonl");
        let mut body = br#"{"id": 1, "text": "hi", "ts": 1762000000, "m": {"likes": 4}}
not json

{"id": "2", "text": "x", "ts": "2026-11-01T00:00:00Z", "m": {"likes": "7"}}
[1,2]
"#
        .to_vec();
        body.extend_from_slice(b"{\"id\": \"3\", \"text\": \"\xff\"}\n");
        std::fs::write(&p, body).unwrap();
        let mut c = cols();
        c.likes = Some("m.likes".into());
        let rows: Vec<Item> = open(&plan(Format::Jsonl, c, &p), &p)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let codes: Vec<String> = rows
            .iter()
            .map(|i| match i {
                Item::Record(r) => format!("ok:{}:{:?}", r.id, r.likes),
                Item::Reject(r) => format!(
                    "{}@{}",
                    r.reason.code(),
                    r.location.rsplit(':').next().unwrap()
                ),
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                "ok:1:Some(4)",
                "malformed_row@2",
                "ok:2:Some(7)",
                "malformed_row@5",
                "invalid_utf8@6"
            ]
        );
    }
}
