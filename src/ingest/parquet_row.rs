//! Parquet rows as JSON objects, converted from Arrow cell by cell.
//!
//! Going through Arrow's JSON writer scored `binary` text as hex, turned NaN into null and could
//! not tell naive from zoned timestamps. Here binary is decoded as UTF-8 (a mapped column that is
//! not valid UTF-8 rejects the row as `invalid_utf8`), NaN and infinities stay visible as
//! `"NaN"` / `"inf"` (so they are `bad_number` / `bad_timestamp`, not missing), zoned timestamps
//! become RFC 3339 in UTC and naive ones stay naive (read in the source's `timezone`).

use super::{configured_columns, Extractor, IngestError, Item, Rows};
use crate::record::RejectReason;
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::path::PathBuf;

pub(super) fn rows<R: ChunkReader + Send + 'static>(
    ex: Extractor,
    label: &str,
    input: R,
) -> Result<Rows, IngestError> {
    let path = PathBuf::from(label);
    let fmt_err = |message: String| IngestError::Format {
        path: path.clone(),
        message,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(input)
        .map_err(|e| fmt_err(format!("not a readable Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let wanted = configured_columns(&ex.columns);
    let mut all = Vec::new();
    leaf_paths(schema.fields(), "", 3, &mut all);
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(_, col)| {
            let parts: Vec<&str> = col.split('.').collect();
            !has_path(schema.fields(), &parts)
        })
        .map(|(f, col)| format!("{f} = {col:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(fmt_err(format!(
            "column(s) {} not in the Parquet schema; the file has: {}. Fix [source.columns] in the pipeline file",
            missing.join(", "),
            all.join(", ")
        )));
    }
    ex.note_keys(|k| k.extend(all.iter().cloned()));
    // Top-level columns that a mapped field reads: only there is invalid UTF-8 a reject.
    let mapped: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| {
            wanted
                .iter()
                .any(|(_, col)| col == f.name() || col.starts_with(&format!("{}.", f.name())))
        })
        .collect();
    let reader = builder
        .with_batch_size(1024)
        .build()
        .map_err(|e| fmt_err(e.to_string()))?;
    let display = label.to_string();
    let mut row = 0u64;
    let mut pending: VecDeque<Result<Item, IngestError>> = VecDeque::new();
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
                    path: PathBuf::from(&display),
                    message: format!("Parquet read error: {e}"),
                }));
            }
            Some(Ok(batch)) => {
                let names: Vec<String> = batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let cols: Vec<ArrayRef> = batch
                    .columns()
                    .iter()
                    .map(|c| match c.data_type() {
                        DataType::Dictionary(_, v) => {
                            arrow::compute::cast(c, v).unwrap_or_else(|_| c.clone())
                        }
                        _ => c.clone(),
                    })
                    .collect();
                for i in 0..batch.num_rows() {
                    row += 1;
                    let location = format!("{display}:row {row}");
                    let mut invalid = false;
                    let mut m = Map::new();
                    for (k, c) in cols.iter().enumerate() {
                        let strict = mapped.get(k).copied().unwrap_or(false);
                        m.insert(names[k].clone(), cell(c.as_ref(), i, strict, &mut invalid));
                    }
                    let v = Value::Object(m);
                    let raw = v.to_string();
                    pending.push_back(Ok(if invalid {
                        ex.reject(location, raw, RejectReason::InvalidUtf8)
                    } else {
                        ex.item_from_json(location, raw, &v)
                    }));
                }
            }
        }
    });
    Ok(Box::new(iter))
}

/// Whether `a.b.c` names a field (a name that itself contains dots is tried first).
fn has_path(fields: &Fields, parts: &[&str]) -> bool {
    for k in (1..=parts.len()).rev() {
        let name = parts[..k].join(".");
        if let Some((_, f)) = fields.find(&name) {
            if k == parts.len() {
                return true;
            }
            if let DataType::Struct(ch) = f.data_type() {
                if has_path(ch, &parts[k..]) {
                    return true;
                }
            }
        }
    }
    false
}

fn leaf_paths(fields: &Fields, prefix: &str, depth: usize, out: &mut Vec<String>) {
    for f in fields {
        let p = if prefix.is_empty() {
            f.name().clone()
        } else {
            format!("{prefix}.{}", f.name())
        };
        match f.data_type() {
            DataType::Struct(ch) if depth > 1 => leaf_paths(ch, &p, depth - 1, out),
            _ => out.push(p),
        }
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or_else(|| {
            Value::String(
                if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "inf"
                } else {
                    "-inf"
                }
                .into(),
            )
        })
}

fn binary(b: &[u8], strict: bool, invalid: &mut bool) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => {
            if strict {
                *invalid = true;
            }
            Value::String(hex::encode(b))
        }
    }
}

fn micros_string(us: Option<i64>, zoned: bool, shown: i64) -> Value {
    match us.and_then(chrono::DateTime::from_timestamp_micros) {
        Some(t) if zoned => Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        Some(t) => Value::String(t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        None => Value::String(format!("timestamp value {shown} out of range")),
    }
}

/// One cell as JSON; `strict` = a mapped column (invalid UTF-8 there sets `invalid`).
fn cell(a: &dyn Array, i: usize, strict: bool, invalid: &mut bool) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float32 => float(a.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::String(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::String(a.as_string_view().value(i).to_string()),
        DataType::Binary => binary(a.as_binary::<i32>().value(i), strict, invalid),
        DataType::LargeBinary => binary(a.as_binary::<i64>().value(i), strict, invalid),
        DataType::BinaryView => binary(a.as_binary_view().value(i), strict, invalid),
        DataType::FixedSizeBinary(_) => binary(a.as_fixed_size_binary().value(i), strict, invalid),
        DataType::Timestamp(unit, tz) => {
            let (v, us) = match unit {
                TimeUnit::Second => {
                    let v = a.as_primitive::<TimestampSecondType>().value(i);
                    (v, v.checked_mul(1_000_000))
                }
                TimeUnit::Millisecond => {
                    let v = a.as_primitive::<TimestampMillisecondType>().value(i);
                    (v, v.checked_mul(1_000))
                }
                TimeUnit::Microsecond => {
                    let v = a.as_primitive::<TimestampMicrosecondType>().value(i);
                    (v, Some(v))
                }
                TimeUnit::Nanosecond => {
                    let v = a.as_primitive::<TimestampNanosecondType>().value(i);
                    (v, Some(v / 1_000))
                }
            };
            micros_string(us, tz.is_some(), v)
        }
        DataType::Date32 => {
            let d = a.as_primitive::<Date32Type>().value(i);
            micros_date(i64::from(d).checked_mul(86_400_000_000), d as i64)
        }
        DataType::Date64 => {
            let d = a.as_primitive::<Date64Type>().value(i);
            micros_date(d.checked_mul(1_000), d)
        }
        DataType::Struct(_) => {
            let s = a.as_struct();
            let mut m = Map::new();
            for (f, c) in s.fields().iter().zip(s.columns()) {
                m.insert(f.name().clone(), cell(c.as_ref(), i, strict, invalid));
            }
            Value::Object(m)
        }
        DataType::List(_) => list(a.as_list::<i32>().value(i), strict, invalid),
        DataType::LargeList(_) => list(a.as_list::<i64>().value(i), strict, invalid),
        DataType::FixedSizeList(..) => list(a.as_fixed_size_list().value(i), strict, invalid),
        _ => {
            use arrow::util::display::{ArrayFormatter, FormatOptions};
            match ArrayFormatter::try_new(a, &FormatOptions::default()) {
                Ok(f) => Value::String(f.value(i).to_string()),
                Err(_) => Value::Null,
            }
        }
    }
}

fn micros_date(us: Option<i64>, shown: i64) -> Value {
    match us.and_then(chrono::DateTime::from_timestamp_micros) {
        Some(t) => Value::String(t.date_naive().to_string()),
        None => Value::String(format!("date value {shown} out of range")),
    }
}

fn list(v: ArrayRef, strict: bool, invalid: &mut bool) -> Value {
    Value::Array(
        (0..v.len())
            .map(|j| cell(v.as_ref(), j, strict, invalid))
            .collect(),
    )
}
