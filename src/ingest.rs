//! Readers for CSV, JSON Lines and Parquet sources that turn every row into a typed record or a reject.
//!
//! A row never disappears: it becomes an [`InputRecord`] or a [`Reject`] with the file, line and
//! reason. Only a file that cannot be read at all is an error, and that stops the run before
//! anything is published. The readers assume hostile input: quotes that never close, numbers and
//! times out of any plausible range, arrays where strings belong, BOMs, CRLF, Latin-1.

pub mod csvline;
mod parquet_row;

use crate::config::{Columns, Format, ReadOptions, SourcePlan};
use crate::record::{InputRecord, Reject, RejectReason};
use crate::timefmt::{epoch_f64_to_micros, epoch_to_micros, parse_timestamp_in};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// A file that cannot be read as its declared format.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
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

/// Opens one file of a source (an object-store URL is read from a downloaded copy, which is
/// deleted once open: the run reads each file once).
pub fn open(source: &SourcePlan, file: &Path) -> Result<Rows, IngestError> {
    let rows = open_with(source, file, None);
    crate::storage::release_input(file);
    rows
}

/// [`open`], counting which mapped fields carry a value (for [`absent_fields`]).
fn open_with(
    source: &SourcePlan,
    file: &Path,
    presence: Option<Arc<Presence>>,
) -> Result<Rows, IngestError> {
    let ex = Extractor::new(source, presence);
    let local = crate::storage::local_input(file).map_err(|e| IngestError::Io {
        path: file.into(),
        err: std::io::Error::other(e.to_string()),
    })?;
    let f = File::open(&local).map_err(|err| IngestError::Io {
        path: file.into(),
        err,
    })?;
    let label = file.display().to_string();
    match source.format {
        Format::Csv => csv_rows(
            ex,
            &label,
            Box::new(BufReader::with_capacity(1 << 16, f)),
            source,
        ),
        Format::Jsonl => jsonl_rows(ex, &label, Box::new(BufReader::with_capacity(1 << 16, f))),
        Format::Parquet => parquet_row::rows(ex, &label, f),
    }
}

/// Rows from bytes in memory, located as `label` (property tests and fuzz targets).
pub fn open_bytes(source: &SourcePlan, label: &str, bytes: Vec<u8>) -> Result<Rows, IngestError> {
    let ex = Extractor::new(source, None);
    match source.format {
        Format::Csv => csv_rows(ex, label, Box::new(std::io::Cursor::new(bytes)), source),
        Format::Jsonl => jsonl_rows(ex, label, Box::new(std::io::Cursor::new(bytes))),
        Format::Parquet => parquet_row::rows(ex, label, bytes::Bytes::from(bytes)),
    }
}

/// Cheap estimate of the number of rows in a file (newlines for text formats, metadata for Parquet).
pub fn estimate_rows(format: Format, file: &Path) -> u64 {
    let Ok(file) = crate::storage::local_input(file) else {
        return 0;
    };
    let file = file.as_path();
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
    /// A JSON array (or Parquet list).
    Array(&'a [Value]),
    /// A JSON object (or Parquet struct).
    Object,
}

impl Val<'_> {
    /// The scalar as text; None for arrays and objects.
    fn scalar_string(&self) -> Option<String> {
        Some(match self {
            Val::Str(s) => s.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => f.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Array(_) | Val::Object => return None,
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Val::Array(_) => "an array",
            Val::Object => "an object",
            _ => "a value",
        }
    }

    fn is_blank(&self) -> bool {
        matches!(self, Val::Str(s) if s.trim().is_empty())
    }
}

fn json_val(v: &Value) -> Option<Val<'_>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Val::Str(Cow::Borrowed(s))),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Val::Int(i),
            (None, Some(u)) => Val::Float(u as f64),
            _ => Val::Float(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::Bool(b) => Some(Val::Bool(*b)),
        Value::Array(a) => Some(Val::Array(a)),
        Value::Object(_) => Some(Val::Object),
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

/// Dotted key paths of a JSON object, to depth 3 (for "the file has keys: ..." messages).
fn key_paths(v: &Value, prefix: &str, depth: usize, out: &mut BTreeSet<String>) {
    let Value::Object(m) = v else { return };
    for (k, child) in m {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if depth > 1 && child.is_object() {
            key_paths(child, &p, depth - 1, out);
        } else if out.len() < 200 {
            out.insert(p);
        }
    }
}

/// Which mapped fields carried a value in the rows read so far.
#[derive(Debug, Default)]
struct Presence {
    /// (rows, hits per configured field, keys seen)
    inner: Mutex<(u64, Vec<u64>, BTreeSet<String>)>,
}

/// Turns field lookups into a typed record or a reject: the rules shared by every format.
struct Extractor {
    source: Arc<str>,
    columns: Columns,
    read: ReadOptions,
    /// (pulso field, configured column), for presence counting.
    wanted: Vec<(&'static str, String)>,
    presence: Option<Arc<Presence>>,
}

type NumResult<T> = Result<Option<T>, RejectReason>;

impl Extractor {
    fn new(source: &SourcePlan, presence: Option<Arc<Presence>>) -> Extractor {
        Extractor {
            source: Arc::from(source.name.as_str()),
            columns: source.columns.clone(),
            read: source.read.clone(),
            wanted: configured_columns(&source.columns),
            presence,
        }
    }

    fn reject(&self, location: String, raw: String, reason: RejectReason) -> Item {
        Item::Reject(Reject {
            source: self.source.clone(),
            location,
            raw,
            reason,
        })
    }

    fn note_keys(&self, keys: impl FnOnce(&mut BTreeSet<String>)) {
        if let Some(p) = &self.presence {
            let mut g = p.inner.lock().unwrap();
            if g.0 < 200 {
                keys(&mut g.2);
            }
        }
    }

    fn build<'a>(
        &self,
        location: String,
        raw: String,
        get: impl Fn(&str) -> Option<Val<'a>>,
    ) -> Item {
        if let Some(p) = &self.presence {
            let mut g = p.inner.lock().unwrap();
            g.0 += 1;
            if g.1.len() < self.wanted.len() {
                g.1.resize(self.wanted.len(), 0);
            }
            for (i, (_, col)) in self.wanted.iter().enumerate() {
                if get(col).is_some_and(|v| !v.is_blank()) {
                    g.1[i] += 1;
                }
            }
        }
        match self.fields(&location, get) {
            Ok(mut rec) => {
                rec.location = location;
                rec.raw = raw;
                Item::Record(rec)
            }
            Err(reason) => self.reject(location, raw, reason),
        }
    }

    /// The typed record, or why it cannot be one.
    fn fields<'a>(
        &self,
        location: &str,
        get: impl Fn(&str) -> Option<Val<'a>>,
    ) -> Result<InputRecord, RejectReason> {
        let c = &self.columns;
        let scalar = |name: &str, col: &Option<String>| -> Result<Option<String>, RejectReason> {
            let Some(v) = col.as_deref().and_then(&get) else {
                return Ok(None);
            };
            let s = v
                .scalar_string()
                .ok_or_else(|| RejectReason::NotScalar(name.into(), v.kind().into()))?;
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_string()))
        };
        let id = match &c.id {
            Some(_) => {
                scalar("id", &c.id)?.ok_or_else(|| RejectReason::MissingField("id".into()))?
            }
            None => location.to_string(),
        };
        let text = match get(&c.text) {
            None => return Err(RejectReason::MissingField("text".into())),
            Some(v) => v
                .scalar_string()
                .ok_or_else(|| RejectReason::NotScalar("text".into(), v.kind().into()))?,
        };
        if text.trim().is_empty() {
            return Err(RejectReason::EmptyText);
        }
        let event_time = match &c.timestamp {
            None => None,
            Some(col) => Some(self.timestamp(get(col))?),
        };
        let author = match c.author.as_deref().and_then(&get) {
            None => None,
            // A list of addresses (`["nina@acme.com"]`): the first address decides.
            Some(Val::Array(items)) if items.iter().all(|x| x.is_string() || x.is_null()) => {
                let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                normalise_author(&joined.join(", "))
            }
            Some(v) => normalise_author(
                &v.scalar_string()
                    .ok_or_else(|| RejectReason::NotScalar("author".into(), v.kind().into()))?,
            ),
        };
        let count =
            |name: &str, col: &Option<String>| self.count(name, col.as_deref().and_then(&get));
        let likes = count("likes", &c.likes)?;
        let shares = count("shares", &c.shares)?;
        let replies = count("replies", &c.replies)?;
        let reach = count("reach", &c.reach)?;
        let rating = in_range(
            "rating",
            float(c.rating.as_deref().and_then(&get), "rating")?,
            1.0,
            5.0,
            "ratings are 1 to 5",
        )?;
        let score = in_range(
            "score",
            float(c.score.as_deref().and_then(&get), "score")?,
            0.0,
            10.0,
            "eNPS scores are 0 to 10",
        )?;
        Ok(InputRecord {
            source: self.source.clone(),
            location: String::new(),
            raw: String::new(),
            id,
            text,
            event_time,
            author,
            department: scalar("department", &c.department)?,
            language: scalar("language", &c.language)?,
            brand: scalar("brand", &c.brand)?,
            channel: scalar("channel", &c.channel)?,
            likes,
            shares,
            replies,
            reach,
            rating,
            score,
            provider: scalar("provider", &c.provider)?,
        })
    }

    fn timestamp(&self, v: Option<Val<'_>>) -> Result<i64, RejectReason> {
        let missing = || RejectReason::MissingField("timestamp".into());
        let (us, shown) = match v {
            None => return Err(missing()),
            Some(Val::Int(i)) => (epoch_to_micros(i), i.to_string()),
            Some(Val::Float(f)) => (epoch_f64_to_micros(f), f.to_string()),
            Some(Val::Str(s)) => {
                if s.trim().is_empty() {
                    return Err(missing());
                }
                (parse_timestamp_in(&s, self.read.timezone), s.to_string())
            }
            Some(Val::Bool(b)) => return Err(RejectReason::BadTimestamp(b.to_string())),
            Some(v @ (Val::Array(_) | Val::Object)) => {
                return Err(RejectReason::NotScalar("timestamp".into(), v.kind().into()))
            }
        };
        match us {
            None => Err(RejectReason::BadTimestamp(shown)),
            Some(t) if !self.read.window.contains(t) => Err(RejectReason::TimestampOutOfRange(
                shown,
                self.read.window.describe(),
            )),
            Some(t) => Ok(t),
        }
    }

    /// A count (likes, shares, replies, reach): a whole number from 0 to `max_count`.
    fn count(&self, name: &str, v: Option<Val<'_>>) -> NumResult<i64> {
        let max = self.read.max_count;
        let out_of_range = |shown: String| {
            RejectReason::NumberOutOfRange(
                name.into(),
                format!("{shown} is not a plausible count (whole numbers 0 to {max}; see [limits] max_count)"),
            )
        };
        let f = match v {
            None => return Ok(None),
            Some(Val::Int(i)) => {
                return if (0..=max).contains(&i) {
                    Ok(Some(i))
                } else {
                    Err(out_of_range(i.to_string()))
                }
            }
            Some(Val::Float(f)) => f,
            Some(Val::Str(s)) => {
                let t = s.trim();
                if t.is_empty() {
                    return Ok(None);
                }
                if let Ok(i) = t.parse::<i64>() {
                    return if (0..=max).contains(&i) {
                        Ok(Some(i))
                    } else {
                        Err(out_of_range(t.to_string()))
                    };
                }
                match t.parse::<f64>() {
                    Ok(f)
                        if t.bytes()
                            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
                    {
                        f
                    }
                    _ => return Err(RejectReason::BadNumber(name.into())),
                }
            }
            Some(Val::Bool(_)) => return Err(RejectReason::BadNumber(name.into())),
            Some(v) => return Err(RejectReason::NotScalar(name.into(), v.kind().into())),
        };
        if !f.is_finite() || f.fract() != 0.0 {
            return Err(RejectReason::BadNumber(name.into()));
        }
        if f < 0.0 || f > max as f64 {
            return Err(out_of_range(f.to_string()));
        }
        Ok(Some(f as i64))
    }
}

/// A real number (rating, score): `4,5` is read as 4.5.
fn float(v: Option<Val<'_>>, name: &str) -> NumResult<f64> {
    match v {
        None => Ok(None),
        Some(Val::Int(i)) => Ok(Some(i as f64)),
        Some(Val::Float(f)) if f.is_finite() => Ok(Some(f)),
        Some(Val::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(Val::Str(s)) => s
            .trim()
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| RejectReason::BadNumber(name.into())),
        Some(v @ (Val::Array(_) | Val::Object)) => {
            Err(RejectReason::NotScalar(name.into(), v.kind().into()))
        }
        Some(_) => Err(RejectReason::BadNumber(name.into())),
    }
}

fn in_range(name: &str, v: Option<f64>, lo: f64, hi: f64, what: &str) -> NumResult<f64> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(RejectReason::NumberOutOfRange(
            name.into(),
            format!("{x} is out of range ({what})"),
        )),
        v => Ok(v),
    }
}

/// The author as routing and pseudonymising should see it: the bare address when the field holds
/// one in any common spelling, else the trimmed text (a handle).
fn normalise_author(a: &str) -> Option<String> {
    let t = a.trim();
    if t.is_empty() {
        return None;
    }
    Some(crate::route::extract_email(t).unwrap_or_else(|| t.to_string()))
}

impl Extractor {
    /// A JSON object row (JSON Lines, or a Parquet row rendered as JSON).
    fn item_from_json(&self, location: String, raw: String, v: &Value) -> Item {
        if !v.is_object() {
            return self.reject(
                location,
                raw,
                RejectReason::MalformedRow("the line is JSON but not an object".into()),
            );
        }
        self.note_keys(|k| key_paths(v, "", 3, k));
        self.build(location, raw, |col| json_path(v, col).and_then(json_val))
    }
}

/// Decodes one line or field in the source's encoding; Err for invalid UTF-8.
fn decode<'a>(bytes: &'a [u8], read: &ReadOptions) -> Result<Cow<'a, str>, ()> {
    match read.encoding {
        None => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| ()),
        Some(enc) => Ok(enc.decode_without_bom_handling(bytes).0),
    }
}

fn csv_rows(
    ex: Extractor,
    label: &str,
    input: Box<dyn BufRead + Send>,
    source: &SourcePlan,
) -> Result<Rows, IngestError> {
    let path = PathBuf::from(label);
    let fmt = |message: String| IngestError::Format {
        path: path.clone(),
        message,
    };
    let mut lines = csvline::Lines::new(input);
    let header = lines
        .header(source.delimiter)
        .map_err(|err| IngestError::Io {
            path: path.clone(),
            err,
        })?;
    let Some((header_line, header_raw)) = header else {
        return Err(fmt(
            "the CSV file is empty (no header line); export it with its header row, or remove it from the source's path".into(),
        ));
    };
    let header_text = String::from_utf8_lossy(&header_raw).into_owned();
    let split = |d: u8| -> Vec<String> {
        let mut r = csvline::Record::default();
        r.feed(&header_raw, d);
        r.finish();
        r.fields
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let mut delimiter = source.delimiter;
    let mut headers = split(delimiter);
    if !source.read.delimiter_explicit && missing_columns(&ex.columns, &headers).is_some() {
        // Brazilian and Spanish exports are often `;`-separated: take the separator that finds every column.
        for d in [b';', b'\t', b'|'] {
            let h = split(d);
            if h.len() > 1 && missing_columns(&ex.columns, &h).is_none() {
                delimiter = d;
                headers = h;
                break;
            }
        }
    }
    if let Some(detail) = missing_columns(&ex.columns, &headers) {
        let hint = [(';', "\";\""), ('\t', "\"tab\""), ('|', "\"|\"")]
            .iter()
            .find(|(c, _)| *c as u8 != delimiter && header_text.contains(*c))
            .map(|(_, name)| {
                format!(" (the header contains {name}: if that is the separator, set delimiter = {name} in the [[source]])")
            })
            .unwrap_or_default();
        return Err(fmt(format!(
            "line {header_line}: column(s) {detail} not in the header; the file has: {}{hint}. Fix [source.columns] in the pipeline file",
            headers.join(", ")
        )));
    }
    ex.note_keys(|k| k.extend(headers.iter().cloned()));
    let index: Vec<(String, usize)> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), i))
        .collect();
    let n = headers.len();
    let mut reader = csvline::RecordReader::new(lines, delimiter, n);
    let display = label.to_string();
    let read = source.read.clone();
    let mut done = false;
    let iter = std::iter::from_fn(move || {
        if done {
            return None;
        }
        let ev = match reader.next_record() {
            Ok(None) => {
                done = true;
                return None;
            }
            Err(err) => {
                done = true;
                return Some(Err(IngestError::Io {
                    path: PathBuf::from(&display),
                    err,
                }));
            }
            Ok(Some(ev)) => ev,
        };
        let location = format!("{display}:{}", ev.line);
        let raw = match read.encoding {
            None => String::from_utf8_lossy(&ev.raw).into_owned(),
            Some(enc) => enc.decode_without_bom_handling(&ev.raw).0.into_owned(),
        };
        if let Some(why) = ev.unbalanced {
            return Some(Ok(ex.reject(
                location,
                raw,
                RejectReason::UnbalancedQuote(why),
            )));
        }
        let rec = ev.record;
        if rec.fields.len() != n {
            return Some(Ok(ex.reject(
                location,
                raw,
                RejectReason::MalformedRow(format!(
                    "expected {n} fields, found {}",
                    rec.fields.len()
                )),
            )));
        }
        let mut fields = Vec::with_capacity(n);
        for f in &rec.fields {
            match decode(f, &read) {
                Ok(s) => fields.push(s),
                Err(()) => return Some(Ok(ex.reject(location, raw, RejectReason::InvalidUtf8))),
            }
        }
        let get = |col: &str| -> Option<Val<'_>> {
            let i = index.iter().find(|(h, _)| h == col)?.1;
            // An empty cell is an empty string: empty text is `empty_text`, an empty id is missing.
            Some(Val::Str(Cow::Borrowed(fields[i].as_ref())))
        };
        Some(Ok(ex.build(location, raw, get)))
    });
    Ok(Box::new(iter))
}

/// `field = "col"` for each configured column missing from `available`, or None when all are there.
fn missing_columns(c: &Columns, available: &[String]) -> Option<String> {
    let missing: Vec<String> = configured_columns(c)
        .into_iter()
        .filter(|(_, col)| !available.iter().any(|h| h == col))
        .map(|(f, col)| format!("{f} = {col:?}"))
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// (pulso field, configured column) pairs.
pub(crate) fn configured_columns(c: &Columns) -> Vec<(&'static str, String)> {
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

fn jsonl_rows(
    ex: Extractor,
    label: &str,
    mut rdr: Box<dyn BufRead + Send>,
) -> Result<Rows, IngestError> {
    let display = label.to_string();
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    let read = ex.read.clone();
    let iter = std::iter::from_fn(move || loop {
        buf.clear();
        match rdr.read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Err(err) => {
                return Some(Err(IngestError::Io {
                    path: PathBuf::from(&display),
                    err,
                }))
            }
            Ok(_) => {}
        }
        line_no += 1;
        if line_no == 1 && buf.starts_with(b"\xEF\xBB\xBF") {
            buf.drain(..3);
        }
        while matches!(buf.last(), Some(b'\n') | Some(b'\r')) {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let location = format!("{display}:{line_no}");
        let s = match decode(&buf, &read) {
            Ok(s) => s,
            Err(()) => {
                let raw = String::from_utf8_lossy(&buf).into_owned();
                return Some(Ok(ex.reject(location, raw, RejectReason::InvalidUtf8)));
            }
        };
        let raw = s.to_string();
        return Some(Ok(match serde_json::from_str::<Value>(&s) {
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

/// Mapped fields of a source that are absent or null in every sampled row, one message each.
///
/// A wrong dotted path (`requester.mail`) or a column that is empty throughout yields null for
/// every record without any reject; this is the check that says so. Reads at most `sample` rows
/// per file; a file that cannot be read is left to the run to report.
pub fn absent_fields(source: &SourcePlan, sample: usize) -> Vec<String> {
    let presence = Arc::new(Presence::default());
    for f in &source.files {
        let Ok(rows) = open_with(source, f, Some(presence.clone())) else {
            continue;
        };
        for r in rows.take(sample) {
            if r.is_err() {
                break;
            }
        }
    }
    let g = presence.inner.lock().unwrap();
    let (rows, hits, keys) = (&g.0, &g.1, &g.2);
    if *rows == 0 {
        return Vec::new();
    }
    let keys: Vec<&str> = keys.iter().map(String::as_str).take(60).collect();
    configured_columns(&source.columns)
        .iter()
        .enumerate()
        .filter(|(i, _)| hits.get(*i).copied().unwrap_or(0) == 0)
        .map(|(_, (field, col))| {
            format!(
                "source '{}': field {field} = {col:?} is absent or null in all {rows} sampled row(s); the file has keys: {}. Fix [source.columns] {field} in the pipeline file",
                source.name,
                keys.join(", ")
            )
        })
        .collect()
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
            read: Default::default(),
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
    fn csv_unbalanced_quote_keeps_the_next_records() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("q.csv");
        std::fs::write(
            &p,
            "id,text,ts\n1,first,2026-11-01\n2,\"Best product ever,2026-11-01\n3,I said 5\" screen,2026-11-02\n4,fourth,2026-11-03\n",
        )
        .unwrap();
        let mut c = cols();
        c.likes = None;
        let got = reasons(open(&plan(Format::Csv, c.clone(), &p), &p).unwrap());
        assert_eq!(got, vec!["ok:1", "unbalanced_quote@3", "ok:3", "ok:4"]);
        // A quote that never closes: every later line still reads.
        std::fs::write(
            &p,
            "id,text,ts\n1,first,2026-11-01\n2,\"never closed,2026-11-01\n3,x,2026-11-02\n4,y,2026-11-03\n5,z,2026-11-03\n",
        )
        .unwrap();
        let got = reasons(open(&plan(Format::Csv, c, &p), &p).unwrap());
        assert_eq!(
            got,
            vec!["ok:1", "unbalanced_quote@3", "ok:3", "ok:4", "ok:5"]
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

    #[test]
    fn absent_fields_name_the_field_and_the_keys() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.jsonl");
        std::fs::write(
            &p,
            "{\"id\":1,\"text\":\"a\",\"requester\":{\"email\":\"x@acme.com\"}}\n{\"id\":2,\"text\":\"b\",\"requester\":{\"email\":\"y@acme.com\"}}\n",
        )
        .unwrap();
        let c = Columns {
            id: Some("id".into()),
            text: "text".into(),
            author: Some("requester.mail".into()),
            ..Default::default()
        };
        let m = absent_fields(&plan(Format::Jsonl, c, &p), 100);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains("author = \"requester.mail\"") && m[0].contains("requester.email"),
            "{}",
            m[0]
        );
    }
}
