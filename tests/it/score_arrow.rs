//! `pulso score --arrow` end to end: the real binary fed Arrow IPC streams written here with
//! arrow's IPC writer, its output read back and checked against `pulso score` (JSON Lines).

use arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Float32Type, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_pulso");
const SCORE_COLUMNS: [&str; 8] = [
    "sentiment",
    "p_negative",
    "p_neutral",
    "p_positive",
    "sentiment_score",
    "language",
    "truncated",
    "unscored_reason",
];

fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert")
}

fn cmd(extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["score", "--model"])
        .arg(tiny_model())
        .args(["--precision", "fp32", "--threads", "2"])
        .args(extra)
        .env_remove("PULSO_MODEL");
    c
}

fn stream_bytes(schema: &Arc<Schema>, batches: &[RecordBatch]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = StreamWriter::try_new(&mut buf, schema).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    buf
}

fn run_with_input(c: &mut Command, input: Vec<u8>) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pulso");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read_stream(bytes: &[u8]) -> (Arc<Schema>, Vec<RecordBatch>) {
    let r = StreamReader::try_new(bytes, None).expect("output is an Arrow IPC stream");
    let schema = r.schema();
    let batches = r.map(|b| b.unwrap()).collect();
    (schema, batches)
}

/// `pulso score` (JSON Lines) on the same texts: (sentiment, p_negative, p_neutral, p_positive,
/// sentiment_score, language, truncated) per text.
fn json_scores(texts: &[&str]) -> Vec<serde_json::Value> {
    let input: String = texts.iter().map(|t| format!("{t}\n")).collect();
    let o = run_with_input(&mut cmd(&[]), input.into_bytes());
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn mixed_texts(n: usize) -> Vec<String> {
    let base = [
        "I love this product, it works perfectly.",
        "Terrible service, I want my money back.",
        "Adorei o atendimento, muito rápido e atencioso!",
        "Péssima experiência, nunca mais compro aqui.",
        "Me encantó, volveré pronto.",
        "El peor servicio que he recibido.",
        "The package arrived on Tuesday.",
    ];
    (0..n)
        .map(|i| format!("{} (order {i})", base[i % base.len()]))
        .collect()
}

#[test]
fn adds_score_columns_keeps_every_row_in_order_and_matches_pulso_score() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("text", DataType::Utf8, true),
        Field::new("brand", DataType::Utf8, true),
    ]));
    let texts = mixed_texts(250);
    // Batches of 100, 0, 97 and 53 rows; row 5 null, row 6 blank, row 120 empty.
    let mut cells: Vec<Option<String>> = texts.iter().cloned().map(Some).collect();
    cells[5] = None;
    cells[6] = Some("   ".into());
    cells[120] = Some(String::new());
    let sizes = [100usize, 0, 97, 53];
    let mut batches = Vec::new();
    let mut start = 0;
    for &n in &sizes {
        let ids: Vec<i64> = (start as i64..(start + n) as i64).collect();
        let t: StringArray = cells[start..start + n]
            .iter()
            .map(|c| c.as_deref())
            .collect();
        let brand: StringArray = (start..start + n)
            .map(|i| (i % 3 != 0).then(|| format!("b{i}")))
            .collect();
        batches.push(
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)) as ArrayRef,
                    Arc::new(t),
                    Arc::new(brand),
                ],
            )
            .unwrap(),
        );
        start += n;
    }
    let o = run_with_input(&mut cmd(&["--arrow"]), stream_bytes(&schema, &batches));
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("scored 247 of 250 rows in 4 Arrow batch(es)")
            && err.contains("null_text 1, empty_text 2"),
        "{err}"
    );
    let (out_schema, out) = read_stream(&o.stdout);

    // Input columns first, unchanged; then the score columns with the signals schema's types.
    let names: Vec<&str> = out_schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let mut expected = vec!["id", "text", "brand"];
    expected.extend(SCORE_COLUMNS);
    assert_eq!(names, expected);
    let signals = pulso::schema::signal_schema();
    for c in &SCORE_COLUMNS[..7] {
        assert_eq!(
            out_schema.field_with_name(c).unwrap().data_type(),
            signals.field_with_name(c).unwrap().data_type(),
            "{c}"
        );
    }
    // One output batch per input batch, same sizes, input columns identical.
    assert_eq!(
        out.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
        sizes.to_vec()
    );
    for (i, o) in batches.iter().zip(&out) {
        for c in 0..3 {
            assert_eq!(i.column(c).as_ref(), o.column(c).as_ref());
        }
    }

    let reference = json_scores(&texts.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(reference.len(), texts.len());
    let mut row = 0;
    let mut max_diff = 0f32;
    for b in &out {
        let sentiment = b.column_by_name("sentiment").unwrap().as_string::<i32>();
        let language = b.column_by_name("language").unwrap().as_string::<i32>();
        let reason = b
            .column_by_name("unscored_reason")
            .unwrap()
            .as_string::<i32>();
        let truncated = b.column_by_name("truncated").unwrap().as_boolean();
        let probs: Vec<_> = ["p_negative", "p_neutral", "p_positive", "sentiment_score"]
            .iter()
            .map(|c| b.column_by_name(c).unwrap().as_primitive::<Float32Type>())
            .collect();
        for r in 0..b.num_rows() {
            match row {
                5 | 6 | 120 => {
                    let why = if row == 5 { "null_text" } else { "empty_text" };
                    assert_eq!(reason.value(r), why, "row {row}");
                    assert!(sentiment.is_null(r) && language.is_null(r) && truncated.is_null(r));
                    assert!(probs.iter().all(|p| p.is_null(r)), "row {row}");
                }
                _ => {
                    let j = &reference[row];
                    assert!(reason.is_null(r), "row {row}");
                    assert_eq!(sentiment.value(r), j["sentiment"], "row {row}");
                    assert_eq!(language.value(r), j["language"], "row {row}");
                    assert_eq!(truncated.value(r), j["truncated"], "row {row}");
                    for (p, k) in probs.iter().zip([
                        "p_negative",
                        "p_neutral",
                        "p_positive",
                        "sentiment_score",
                    ]) {
                        let d = (p.value(r) - j[k].as_f64().unwrap() as f32).abs();
                        max_diff = max_diff.max(d);
                    }
                }
            }
            row += 1;
        }
    }
    assert_eq!(row, 250);
    // fp32 on both sides; only the padding of a text's batch differs.
    assert!(max_diff < 1e-4, "max probability difference {max_diff}");
}

#[test]
fn large_utf8_and_a_named_text_column() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int32, false),
        Field::new("body", DataType::LargeUtf8, true),
    ]));
    let texts = mixed_texts(20);
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int32Array::from_iter_values(0..20)) as ArrayRef,
            Arc::new(LargeStringArray::from_iter_values(texts.iter())),
        ],
    )
    .unwrap();
    let input = stream_bytes(&schema, &[b]);

    // Without --text-column: exit 2, naming the columns it has and what to do.
    let o = run_with_input(&mut cmd(&["--arrow"]), input.clone());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no column `text`")
            && err.contains("n (Int32), body (LargeUtf8)")
            && err.contains("--text-column"),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "no output on error");

    let o = run_with_input(&mut cmd(&["--arrow", "--text-column", "body"]), input);
    assert!(o.status.success(), "{}", text(&o));
    let (_, out) = read_stream(&o.stdout);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].num_rows(), 20);
    assert_eq!(out[0].column(1).data_type(), &DataType::LargeUtf8);
    let reference = json_scores(&texts.iter().map(String::as_str).collect::<Vec<_>>());
    let s = out[0]
        .column_by_name("sentiment")
        .unwrap()
        .as_string::<i32>();
    for (i, j) in reference.iter().enumerate() {
        assert_eq!(s.value(i), j["sentiment"]);
    }
}

#[test]
fn unusable_streams_exit_2_with_what_to_do() {
    // Text that is not a string.
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Int64, true)]));
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef],
    )
    .unwrap();
    let o = run_with_input(&mut cmd(&["--arrow"]), stream_bytes(&schema, &[b]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("column `text` is Int64, not text"),
        "{}",
        text(&o)
    );

    // An input column that pulso would add.
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("sentiment", DataType::Utf8, true),
    ]));
    let o = run_with_input(&mut cmd(&["--arrow"]), stream_bytes(&schema, &[]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already has a column `sentiment`"),
        "{}",
        text(&o)
    );

    // Nothing at all, and something that is not an IPC stream.
    let o = run_with_input(&mut cmd(&["--arrow"]), Vec::new());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("standard input is empty"),
        "{}",
        text(&o)
    );
    let o = run_with_input(&mut cmd(&["--arrow"]), b"text\nhello\n".to_vec());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot read the Arrow IPC stream"),
        "{}",
        text(&o)
    );

    // A stream cut off in the middle of a batch (the writer died): an error, not a short success.
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
    let t: StringArray = mixed_texts(50).iter().map(|s| Some(s.as_str())).collect();
    let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(t) as ArrayRef]).unwrap();
    let full = stream_bytes(&schema, &[b.clone(), b]);
    let cut = full[..full.len() - 300].to_vec();
    let o = run_with_input(&mut cmd(&["--arrow"]), cut);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("batch 2"),
        "{}",
        text(&o)
    );

    // An empty stream (schema, no batches) is fine: the output schema, no batches.
    let o = run_with_input(&mut cmd(&["--arrow"]), stream_bytes(&schema, &[]));
    assert!(o.status.success(), "{}", text(&o));
    let (s, out) = read_stream(&o.stdout);
    assert!(out.is_empty());
    assert_eq!(s.fields().len(), 1 + SCORE_COLUMNS.len());

    // --text-column without --arrow is refused by the flag parser.
    let o = run_with_input(&mut cmd(&["--text-column", "body"]), b"x\n".to_vec());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// Writes `batches` batches of 400 short texts to `out`, each row carrying a 10 KB `payload`
/// column (4 MB a batch), made one at a time (the test process never holds the whole stream).
fn write_big_input(out: impl Write, batches: usize) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("payload", DataType::Utf8, true),
    ]));
    let texts = mixed_texts(400);
    let Ok(mut w) = StreamWriter::try_new(out, &schema) else {
        return;
    };
    for k in 0..batches {
        let t: StringArray = texts.iter().map(|s| Some(s.as_str())).collect();
        let p: StringArray = (0..400)
            .map(|i| Some(format!("{k}-{i}-{}", "x".repeat(10_000))))
            .collect();
        let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(t) as ArrayRef, Arc::new(p)])
            .unwrap();
        if w.write(&b).is_err() {
            return;
        }
    }
    let _ = w.finish();
}

#[test]
fn a_closed_output_is_not_an_error() {
    let mut child = cmd(&["--arrow"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || write_big_input(stdin, 30));
    // Read a little of the first batch, then go away (like `| head -c`).
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1024];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let o = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("output closed early"), "{err}");
    assert!(!err.contains("error"), "{err}");
}

/// Peak RSS (KiB) of `pulso score --arrow` on `batches` big batches, and the rows it wrote. The
/// input is made while the child runs: a child's peak RSS includes what the parent held when it
/// was spawned.
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
fn peak_rss_kib(batches: usize) -> (i64, usize) {
    let mut child = cmd(&["--arrow"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || write_big_input(stdin, batches));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut rows = 0;
        let r = StreamReader::try_new(&mut stdout, None).unwrap();
        for b in r {
            rows += b.unwrap().num_rows();
        }
        rows
    });
    let mut status = 0;
    // SAFETY: plain FFI call on our own child; `child` is not waited on afterwards.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    feeder.join().unwrap();
    (usage.ru_maxrss, reader.join().unwrap())
}

#[cfg(target_os = "linux")]
#[test]
fn memory_stays_flat_as_the_stream_grows() {
    // 5 versus 50 batches of 4 MB: 20 MB versus 200 MB through the process.
    let (small, rows_small) = peak_rss_kib(5);
    let (large, rows_large) = peak_rss_kib(50);
    assert_eq!((rows_small, rows_large), (2_000, 20_000));
    // Holding the stream would add the 180 MB of extra input (and as much output).
    assert!(
        large < small + 60 * 1024,
        "peak RSS {small} KiB for 5 batches, {large} KiB for 50"
    );
}

#[test]
fn dictionary_and_view_text_columns_are_scored_like_plain_strings() {
    use arrow::array::{DictionaryArray, StringViewArray};
    use arrow::datatypes::Int32Type;
    let texts = mixed_texts(6);
    let cells: Vec<Option<&str>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (i != 2).then_some(t.as_str()))
        .collect();
    let dict: DictionaryArray<Int32Type> = cells.iter().copied().collect();
    let view = StringViewArray::from(cells.clone());
    let plain: StringArray = cells.iter().copied().collect();
    let mut sentiments = Vec::new();
    for col in [
        Arc::new(plain) as ArrayRef,
        Arc::new(dict) as ArrayRef,
        Arc::new(view) as ArrayRef,
    ] {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "text",
            col.data_type().clone(),
            true,
        )]));
        let b = RecordBatch::try_new(schema.clone(), vec![col.clone()]).unwrap();
        let o = run_with_input(&mut cmd(&["--arrow"]), stream_bytes(&schema, &[b]));
        assert!(o.status.success(), "{}: {}", col.data_type(), text(&o));
        let (s, out) = read_stream(&o.stdout);
        // The text column comes back as it went in.
        assert_eq!(s.field(0).data_type(), col.data_type());
        assert_eq!(out[0].column(0).as_ref(), col.as_ref());
        let reason = out[0]
            .column_by_name("unscored_reason")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(reason.value(2), "null_text");
        let sent = out[0]
            .column_by_name("sentiment")
            .unwrap()
            .as_string::<i32>();
        sentiments.push(
            (0..6)
                .map(|i| (!sent.is_null(i)).then(|| sent.value(i).to_string()))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(sentiments[0], sentiments[1]);
    assert_eq!(sentiments[0], sentiments[2]);
    assert_eq!(sentiments[0].iter().filter(|s| s.is_some()).count(), 5);
}
