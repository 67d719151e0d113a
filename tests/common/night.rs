//! The synthetic "night" the commit, Delta, S3 and shard tests share: a two-source pipeline
//! (a survey CSV and a mentions JSONL, every 25th row a reject), its deterministic inputs, and the
//! helpers those tests all need to run the real binary and compare what it published.

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The tiny BERT the fixture script builds (tests/fixtures/models/tiny-bert): fast, and enough
/// to exercise every stage.
pub fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert")
}

/// The night's pipeline file; `NAME`, `OUT`, `MODEL` and `INPUTS` are filled by [`pipeline`].
const PIPELINE: &str = r#"
[pipeline]
name = "NAME"
output = "OUT"

[model]
path = "MODEL"

[organization]
internal_domains = ["acme.com"]
brands = ["Acme", "AcmePay"]
competitors = ["Globex"]

[[source]]
name = "survey"
path = "INPUTS/survey_*.csv"
format = "csv"
segment = "internal"
client_type = "employee"
[source.columns]
id = "response_id"
text = "comment"
timestamp = "submitted_at"
author = "email"
department = "dept"

[[source]]
name = "mentions"
path = "INPUTS/mentions_*.jsonl"
format = "jsonl"
segment = "external"
client_type = "consumer"
[source.columns]
id = "id"
text = "text"
timestamp = "created_at"
author = "user.handle"
brand = "brand"
channel = "platform"
likes = "metrics.likes"
"#;

/// The pipeline file for output `out` reading `inputs/{survey,mentions}_*`, with the tiny model.
pub fn pipeline(name: &str, out: &str, inputs: &str) -> String {
    PIPELINE
        .replace("NAME", name)
        .replace("OUT", out)
        .replace("MODEL", &tiny_model().display().to_string())
        .replace("INPUTS", inputs)
}

const WORDS: [&str; 16] = [
    "great", "slow", "delivery", "price", "support", "love", "hate", "Acme", "AcmePay", "late",
    "manager", "meeting", "entrega", "ótimo", "malo", "Globex",
];

/// Record `i`'s text on night `night` (4 to 8 words, deterministic).
pub fn sentence(i: usize, night: usize) -> String {
    let mut x = (i as u64 + 1) * 2654435761 + night as u64 * 97;
    let mut w = Vec::new();
    for _ in 0..(4 + i % 5) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.push(WORDS[(x % 16) as usize]);
    }
    w.join(" ")
}

/// Night `night`'s input files as (file name, body): `files` survey files and as many mention
/// files, `rows` rows each, every 25th row with an empty text (a reject).
pub fn night_files(night: usize, files: usize, rows: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in 0..files {
        let mut s = String::from("response_id,submitted_at,email,dept,comment\n");
        let mut m = String::new();
        for r in 0..rows {
            let i = f * rows + r;
            let text = if i % 25 == 7 {
                String::new()
            } else {
                sentence(i, night)
            };
            s.push_str(&format!(
                "r{i},2026-11-14T10:{:02}:00Z,user{}@acme.com,Dept{},{text}\n",
                i % 60,
                i % 40,
                i % 4
            ));
            m.push_str(&format!(
                "{{\"id\": \"m{i}\", \"created_at\": \"2026-11-14T11:{:02}:00Z\", \"platform\": \"x\", \"user\": {{\"handle\": \"@u{}\"}}, \"text\": {:?}, \"brand\": \"{}\", \"metrics\": {{\"likes\": {}}}}}\n",
                i % 60,
                i % 70,
                text,
                if i.is_multiple_of(3) { "AcmePay" } else { "Acme" },
                i % 13
            ));
        }
        out.push((format!("survey_{f}.csv"), s));
        out.push((format!("mentions_{f}.jsonl"), m));
    }
    out
}

/// Replaces `dir/data` with night `night`'s inputs (see [`night_files`]).
pub fn write_inputs(dir: &Path, night: usize, files: usize, rows: usize) {
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    for (name, body) in night_files(night, files, rows) {
        std::fs::write(data.join(name), body).unwrap();
    }
}

/// A finished process's status, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Exit 0, or 1 (published with rejects).
pub fn ok(o: &Output) {
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "run failed\n{}",
        text(o)
    );
}

/// Every record batch of one Parquet file.
pub fn batches(p: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(p).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// Each row as `col=value|…` without the columns in `skip` (timestamps as integers: the
/// formatter would need a time zone database for "UTC").
pub fn row_strings_without(b: &RecordBatch, skip: &[&str]) -> Vec<String> {
    use arrow::datatypes::DataType;
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let schema = b.schema();
    let cols: Vec<(String, arrow::array::ArrayRef)> = schema
        .fields()
        .iter()
        .zip(b.columns())
        .filter(|(f, _)| !skip.contains(&f.name().as_str()))
        .map(|(f, c)| {
            let c = match f.data_type() {
                DataType::Timestamp(..) => arrow::compute::cast(c, &DataType::Int64).unwrap(),
                _ => c.clone(),
            };
            (f.name().clone(), c)
        })
        .collect();
    let opts = FormatOptions::default().with_null("∅");
    let fmts: Vec<_> = cols
        .iter()
        .map(|(_, c)| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
        .collect();
    (0..b.num_rows())
        .map(|i| {
            cols.iter()
                .zip(&fmts)
                .map(|((n, _), f)| format!("{n}={}", f.value(i)))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// Waits until `p` exists (the child reached its fault or pause point); panics if the child
/// exits first or after `limit`.
pub fn wait_until_exists(p: &Path, child: &mut Child, limit: Duration) {
    let t0 = Instant::now();
    while !p.exists() {
        if let Some(s) = child.try_wait().unwrap() {
            panic!(
                "the run ended ({s:?}) before reaching its pause point {}",
                p.display()
            );
        }
        assert!(
            t0.elapsed() < limit,
            "pause point {} never reached",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `cp -a` keeps symlinks and hard links, so a copy is the same output.
pub fn copy_dir(from: &Path, to: &Path) {
    let s = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(s.success());
}

/// Rows per file or partition, sorted: what two runs of the same inputs agree on.
pub type Content = std::collections::BTreeMap<String, Vec<String>>;

/// Compares two contents, naming the first differing key and row instead of printing both.
pub fn assert_same(got: &Content, want: &Content, what: &str) {
    if got == want {
        return;
    }
    let keys: std::collections::BTreeSet<_> = got.keys().chain(want.keys()).collect();
    for k in keys {
        let (g, w) = (got.get(k), want.get(k));
        if g != w {
            let first = match (g, w) {
                (Some(g), Some(w)) => g
                    .iter()
                    .zip(w)
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("\n  got  {a}\n  want {b}"))
                    .unwrap_or_else(|| format!(" ({} vs {} rows)", g.len(), w.len())),
                _ => format!(" (present: got {}, want {})", g.is_some(), w.is_some()),
            };
            panic!("{what}: {k} differs{first}");
        }
    }
}

/// Rows under the keys starting with `prefix`.
pub fn rows_of(c: &Content, prefix: &str) -> usize {
    c.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.len())
        .sum()
}
