//! Helpers shared by the integration tests: reading pulso's Parquet output back, and comparing
//! pulso's probabilities with Hugging Face references.
// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::path::Path;

pub mod night;

/// Every record batch of every `.parquet` file under `dir` (recursively, following the entry
/// symlinks of a committed output; `_staging` folders are skipped).
pub fn read_parquet_tree(dir: &Path) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "_staging") {
                    continue;
                }
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let f = std::fs::File::open(&p).unwrap();
                for b in ParquetRecordBatchReaderBuilder::try_new(f)
                    .unwrap()
                    .build()
                    .unwrap()
                {
                    out.push(b.unwrap());
                }
            }
        }
    }
    out
}

/// A JSON array of numbers as f32.
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Largest absolute difference between two probability rows of the same length.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
