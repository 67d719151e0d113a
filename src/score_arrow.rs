//! `pulso score --arrow`: an Arrow IPC stream in, the same rows with score columns out, batch by batch.
//!
//! This is the contract engines such as Spark's `DataFrame.mapInArrow` speak (see
//! `deploy/spark/`): the input is an Arrow IPC *stream* with a text column (`text` by default;
//! utf8, large_utf8, utf8_view or a dictionary of strings) and any other columns; the output is an
//! Arrow IPC stream with every input column unchanged, in the same order, followed by the
//! [`score_fields`]: the fields `pulso score` prints as JSON Lines, with the names and types of the
//! signals schema ([`crate::schema::signal_schema`]), plus [`REASON_COLUMN`].
//!
//! - One output batch per input batch, rows in input order (an empty batch gives an empty batch).
//! - Memory is bounded by one input batch: a batch is read, scored in chunks of
//!   [`crate::score::StreamOptions`]' `chunk` texts through the scorer's token-budget batching and
//!   worker replicas, written and flushed before the next one is read.
//! - A null text or one that is empty or only whitespace is not scored: its score columns are null
//!   and [`REASON_COLUMN`] says why (`null_text`, `empty_text`, the reject reasons of `pulso run`).
//!   Every other row has a null [`REASON_COLUMN`].
//! - A closed standard output (the reader went away) ends the stream quietly: not an error.

use crate::record::Scored;
use crate::score::{Scorer, StreamOptions};
use arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, Float32Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use std::io::{Read, Write};
use std::sync::Arc;

/// The column that says why a row has no scores (null when it was scored).
pub const REASON_COLUMN: &str = "unscored_reason";

/// Reason of a row whose text is null.
pub const NULL_TEXT: &str = "null_text";
/// Reason of a row whose text is empty or only whitespace (as `pulso run` rejects it).
pub const EMPTY_TEXT: &str = "empty_text";

/// The columns appended to every input batch, in this order. All are nullable (unscored rows);
/// names and types are those of the signals schema.
pub fn score_fields() -> Vec<Field> {
    let f32 = |n: &str| Field::new(n, DataType::Float32, true);
    vec![
        Field::new("sentiment", DataType::Utf8, true),
        f32("p_negative"),
        f32("p_neutral"),
        f32("p_positive"),
        f32("sentiment_score"),
        Field::new("language", DataType::Utf8, true),
        Field::new("truncated", DataType::Boolean, true),
        Field::new(REASON_COLUMN, DataType::Utf8, true),
    ]
}

/// Ways `pulso score --arrow` fails. All mean "unusable input or model" (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ArrowScoreError {
    #[error("the Arrow stream has no column `{text}` (its columns: {columns}); name the text column `{text}` (Spark: df.withColumnRenamed(\"body\", \"{text}\")) or pass --text-column NAME")]
    NoTextColumn { text: String, columns: String },
    #[error("column `{column}` is {found}, not text; cast it to a string (utf8 or large_utf8) before scoring")]
    TextNotString { column: String, found: String },
    #[error("the input already has a column `{0}`, which pulso adds; drop or rename it before scoring (score columns: {1})")]
    ColumnClash(String, String),
    #[error("standard input is empty: send an Arrow IPC stream (schema message first), e.g. from pyarrow.ipc.new_stream")]
    EmptyInput,
    #[error("cannot read the Arrow IPC stream ({at}): {source}; send the IPC *stream* format (pyarrow.ipc.new_stream, not new_file)")]
    Read {
        at: String,
        #[source]
        source: ArrowError,
    },
    #[error("scoring input batch {batch}")]
    Score {
        batch: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    #[error("writing the Arrow IPC stream to the output")]
    Write(#[source] ArrowError),
}

/// What one `pulso score --arrow` call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArrowSummary {
    pub batches: usize,
    pub rows: usize,
    pub scored: usize,
    pub null_text: usize,
    pub empty_text: usize,
    /// The output was closed before the input ended (the rest was not read).
    pub output_closed: bool,
}

impl ArrowSummary {
    /// One line for standard error.
    pub fn line(&self) -> String {
        let mut s = format!(
            "pulso: scored {} of {} rows in {} Arrow batch(es)",
            self.scored, self.rows, self.batches
        );
        if self.null_text + self.empty_text > 0 {
            s.push_str(&format!(
                "; not scored ({REASON_COLUMN}): {NULL_TEXT} {}, {EMPTY_TEXT} {}",
                self.null_text, self.empty_text
            ));
        }
        if self.output_closed {
            s.push_str("; output closed early, rest of the input not read");
        }
        s
    }
}

fn is_broken_pipe(e: &ArrowError) -> bool {
    matches!(e, ArrowError::IoError(_, io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// The output schema for an input schema: the input's fields (and metadata) and [`score_fields`].
/// Checks that the text column exists and is a string, and that no input column clashes.
pub fn output_schema(input: &Schema, text_column: &str) -> Result<SchemaRef, ArrowScoreError> {
    let added = score_fields();
    let names = || {
        added
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Ok(text) = input.field_with_name(text_column) else {
        let cols: Vec<String> = input
            .fields()
            .iter()
            .map(|f| format!("{} ({})", f.name(), f.data_type()))
            .collect();
        return Err(ArrowScoreError::NoTextColumn {
            text: text_column.to_string(),
            columns: if cols.is_empty() {
                "none".into()
            } else {
                cols.join(", ")
            },
        });
    };
    if !is_text_type(text.data_type()) {
        return Err(ArrowScoreError::TextNotString {
            column: text_column.to_string(),
            found: text.data_type().to_string(),
        });
    }
    if let Some(f) = input
        .fields()
        .iter()
        .find(|f| added.iter().any(|a| a.name() == f.name()))
    {
        return Err(ArrowScoreError::ColumnClash(f.name().clone(), names()));
    }
    let mut fields: Vec<Arc<Field>> = input.fields().iter().cloned().collect();
    fields.extend(added.into_iter().map(Arc::new));
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        input.metadata().clone(),
    )))
}

fn is_text_type(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => matches!(
            v.as_ref(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ),
        _ => false,
    }
}

/// The texts of a string column (None where null).
fn texts_of(col: &ArrayRef) -> Result<Vec<Option<String>>, ArrowError> {
    fn collect<'a>(it: impl Iterator<Item = Option<&'a str>>) -> Vec<Option<String>> {
        it.map(|t| t.map(str::to_string)).collect()
    }
    Ok(match col.data_type() {
        DataType::Utf8 => collect(col.as_string::<i32>().iter()),
        DataType::LargeUtf8 => collect(col.as_string::<i64>().iter()),
        DataType::Utf8View => collect(col.as_string_view().iter()),
        _ => {
            let plain = arrow::compute::cast(col, &DataType::Utf8)?;
            collect(plain.as_string::<i32>().iter())
        }
    })
}

/// Scores one input batch: the same rows with the score columns appended.
pub fn score_batch(
    scorer: &Scorer,
    batch: &RecordBatch,
    text_column: &str,
    schema: &SchemaRef,
    chunk: usize,
    summary: &mut ArrowSummary,
) -> anyhow::Result<RecordBatch> {
    let col = batch
        .column_by_name(text_column)
        .ok_or_else(|| anyhow::anyhow!("the batch has no column `{text_column}`"))?;
    let texts = texts_of(col)?;
    let n = texts.len();
    // Which rows are scored, and the scores of those rows in order.
    let to_score: Vec<usize> = (0..n)
        .filter(|&i| texts[i].as_deref().is_some_and(|t| !t.trim().is_empty()))
        .collect();
    let mut scored: Vec<Scored> = Vec::with_capacity(to_score.len());
    for part in to_score.chunks(chunk.max(1)) {
        let refs: Vec<&str> = part
            .iter()
            .map(|&i| texts[i].as_deref().unwrap_or_default())
            .collect();
        scored.extend(scorer.score(&refs)?);
    }
    let mut sentiment = StringBuilder::with_capacity(n, n * 8);
    let mut p_neg = Float32Builder::with_capacity(n);
    let mut p_neu = Float32Builder::with_capacity(n);
    let mut p_pos = Float32Builder::with_capacity(n);
    let mut s_score = Float32Builder::with_capacity(n);
    let mut language = StringBuilder::with_capacity(n, n * 2);
    let mut truncated = BooleanBuilder::with_capacity(n);
    let mut reason = StringBuilder::new();
    let mut next = scored.iter();
    for t in &texts {
        let t = t.as_deref();
        match t.filter(|t| !t.trim().is_empty()) {
            Some(t) => {
                let s = next
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("the scorer returned too few scores"))?;
                sentiment.append_value(s.sentiment.as_str());
                p_neg.append_value(s.p_negative);
                p_neu.append_value(s.p_neutral);
                p_pos.append_value(s.p_positive);
                s_score.append_value(s.sentiment_score);
                language.append_value(crate::lang::detect(t).as_str());
                truncated.append_value(s.truncated);
                reason.append_null();
            }
            None => {
                sentiment.append_null();
                p_neg.append_null();
                p_neu.append_null();
                p_pos.append_null();
                s_score.append_null();
                language.append_null();
                truncated.append_null();
                if t.is_none() {
                    summary.null_text += 1;
                    reason.append_value(NULL_TEXT);
                } else {
                    summary.empty_text += 1;
                    reason.append_value(EMPTY_TEXT);
                }
            }
        }
    }
    summary.rows += n;
    summary.scored += scored.len();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.extend([
        Arc::new(sentiment.finish()) as ArrayRef,
        Arc::new(p_neg.finish()),
        Arc::new(p_neu.finish()),
        Arc::new(p_pos.finish()),
        Arc::new(s_score.finish()),
        Arc::new(language.finish()),
        Arc::new(truncated.finish()),
        Arc::new(reason.finish()),
    ]);
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Options of [`score_arrow_stream`].
#[derive(Clone, Debug)]
pub struct ArrowOptions {
    /// The column that holds the text.
    pub text_column: String,
    /// Texts per call to the scorer (as `pulso score`).
    pub chunk: usize,
}

impl Default for ArrowOptions {
    fn default() -> Self {
        ArrowOptions {
            text_column: "text".into(),
            chunk: StreamOptions::default().chunk,
        }
    }
}

/// Reads an Arrow IPC stream from `input`, writes it with the score columns to `out`, one batch
/// at a time (each output batch is flushed before the next input batch is read).
pub fn score_arrow_stream(
    scorer: &Scorer,
    input: impl Read,
    out: impl Write,
    opts: &ArrowOptions,
) -> Result<ArrowSummary, ArrowScoreError> {
    let mut input = std::io::BufReader::with_capacity(1 << 16, input);
    // An empty input gets its own message: the IPC reader's is an opaque EOF.
    if std::io::BufRead::fill_buf(&mut input)
        .map(|b| b.is_empty())
        .unwrap_or(false)
    {
        return Err(ArrowScoreError::EmptyInput);
    }
    let reader =
        StreamReader::try_new_buffered(input, None).map_err(|source| ArrowScoreError::Read {
            at: "the schema message".into(),
            source,
        })?;
    let schema = output_schema(&reader.schema(), &opts.text_column)?;
    let mut summary = ArrowSummary::default();
    let mut writer = match StreamWriter::try_new_buffered(out, &schema) {
        Ok(w) => w,
        Err(e) if is_broken_pipe(&e) => {
            summary.output_closed = true;
            return Ok(summary);
        }
        Err(e) => return Err(ArrowScoreError::Write(e)),
    };
    let write = |writer: &mut StreamWriter<_>, b: Option<&RecordBatch>| {
        let r = match b {
            Some(b) => writer.write(b).and_then(|_| writer.flush()),
            None => writer.finish(),
        };
        match r {
            Ok(()) => Ok(true),
            Err(e) if is_broken_pipe(&e) => Ok(false),
            Err(e) => Err(ArrowScoreError::Write(e)),
        }
    };
    // The schema goes out at once, so a reader can open the stream before the first batch.
    match writer.flush() {
        Ok(()) => {}
        Err(e) if is_broken_pipe(&e) => {
            summary.output_closed = true;
            return Ok(summary);
        }
        Err(e) => return Err(ArrowScoreError::Write(e)),
    }
    for (i, batch) in reader.enumerate() {
        let batch = batch.map_err(|source| ArrowScoreError::Read {
            at: format!("batch {}", i + 1),
            source,
        })?;
        let scored = score_batch(
            scorer,
            &batch,
            &opts.text_column,
            &schema,
            opts.chunk,
            &mut summary,
        )
        .map_err(|e| ArrowScoreError::Score {
            batch: i + 1,
            source: e.into(),
        })?;
        summary.batches += 1;
        if !write(&mut writer, Some(&scored))? {
            summary.output_closed = true;
            return Ok(summary);
        }
    }
    if !write(&mut writer, None)? {
        summary.output_closed = true;
    }
    Ok(summary)
}
