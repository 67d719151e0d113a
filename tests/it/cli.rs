//! End-to-end tests: the real `pulso` binary on fixtures in a temp dir per test.
//!
//! Covers every input format, routing rule and reject reason, checks that input rows =
//! signals + rejects, and reads the Parquet back.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_pulso");

fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert")
}

fn pulso(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("PULSO_PSEUDONYM_KEY", "test-key")
        .env_remove("PULSO_MODEL")
        .output()
        .expect("run pulso")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read_dir_batches(dir: &Path) -> Vec<RecordBatch> {
    crate::common::read_parquet_tree(dir)
}

fn strings(batches: &[RecordBatch], col: &str) -> Vec<String> {
    let mut v = Vec::new();
    for b in batches {
        let a = b
            .column_by_name(col)
            .unwrap_or_else(|| panic!("no column {col}"));
        let a = a.as_string::<i32>();
        for i in 0..a.len() {
            v.push(if a.is_null(i) {
                String::new()
            } else {
                a.value(i).to_string()
            });
        }
    }
    v
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

const SURVEY: &str = "response_id,submitted_at,email,dept,comment,enps
r1,2026-11-03T14:22:00-03:00,ana@acme.com,Sales,Adoro trabalhar aqui. A equipe é ótima,9
r2,2026-11-03 10:00:00,bruno@acme.com.br,IT,Estoy buscando otro trabajo porque nadie escucha,2
r3,2026-11-04,carla@acme.com,HR,\"Too many meetings, not enough time\",6
r4,2026-11-04,dan@acme.com,HR,this row,has,too,many,fields
r5,yesterday,eva@acme.com,HR,Bad timestamp here,5
r6,2026-11-05,fabio@acme.com,IT,   ,7
r1,2026-11-05,ana@acme.com,Sales,Duplicate id in the same source,8
,2026-11-05,gil@acme.com,IT,No id at all,8
";

const HELPDESK: &str = r#"{"ticket_id": "t1", "created": "2026-11-05 09:12:00", "requester": {"email": "rui@acme.com", "department": "Finance"}, "body": "My laptop is slow and IT never answers"}
{"ticket_id": "t2", "created": "2026-11-05 10:00:00", "requester": {"email": "Joana Lima <joana@agency.example>"}, "body": "Obrigada pelo suporte rápido!"}
{"ticket_id": "t3", "created": "2026-11-06T08:00:00Z", "requester": {"email": "buyer@bigclient.example"}, "body": "Where is my invoice?"}
{"ticket_id": "t4", "created": "2026-11-06T08:00:00Z", "requester": {"email": "x@acme.com"}}
this is not json
"#;

const PARTNERS: &str = "message_id,received_at,from,body
m1,1762500000,ops@steelworks.example,Delivery of steel coils confirmed for Monday
m2,1762500000000,ana@logistica-parceira.example,O pagamento atrasou de novo e ninguém responde
m3,1762500000,cfo@fund.example,Quarterly numbers look solid
";

const MENTIONS_OK: &str = r#"{"id": "s1", "created_at": "2026-11-14T10:00:00Z", "platform": "twitter", "user": {"handle": "@maria"}, "text": "A entrega da Acme atrasou de novo!!", "brand": "Acme", "metrics": {"likes": 10, "shares": 2, "replies": 1, "reach": 1000}}
{"id": "s2", "created_at": "2026-11-14T11:00:00Z", "platform": "instagram", "user": {"handle": "@john"}, "text": "<script>alert('x')</script> love the new AcmePay app", "lang": "en", "brand": "AcmePay", "metrics": {"likes": "5"}}
{"id": "s3", "created_at": "2026-11-14T12:00:00Z", "platform": "twitter", "user": {"handle": "@pepe"}, "text": "", "brand": "Acme"}
"#;

const ROSTER: &str = "author,client_type,department\njoana@agency.example,contractor,IT\ncfo@fund.example,investor,\n";

const PIPELINE: &str = r#"
[pipeline]
name = "fixture"
output = "out"

[model]
path = "MODEL"

[organization]
internal_domains = ["acme.com", "acme.com.br"]
supplier_domains = ["steelworks.example"]
partner_domains = ["logistica-parceira.example"]
roster = "people.csv"
brands = ["Acme", "AcmePay"]
competitors = ["Globex"]

[[source]]
name = "survey"
path = "data/survey_*.csv"
format = "csv"
segment = "internal"
client_type = "employee"
# The fixture holds one row of every reject kind: 5 of its 8 rows are rejected on purpose.
max_reject_ratio = 0.7
[source.columns]
id = "response_id"
text = "comment"
timestamp = "submitted_at"
author = "email"
department = "dept"
score = "enps"

[[source]]
name = "helpdesk"
path = "data/helpdesk.jsonl"
format = "jsonl"
segment = "auto"
[source.columns]
id = "ticket_id"
text = "body"
timestamp = "created"
author = "requester.email"
department = "requester.department"

[[source]]
name = "partners"
path = "data/partners.csv"
format = "csv"
segment = "auto"
[source.columns]
id = "message_id"
text = "body"
timestamp = "received_at"
author = "from"

[[source]]
name = "mentions"
path = "data/mentions.jsonl"
format = "jsonl"
segment = "external"
client_type = "consumer"
[source.columns]
id = "id"
text = "text"
timestamp = "created_at"
author = "user.handle"
language = "lang"
brand = "brand"
channel = "platform"
likes = "metrics.likes"
shares = "metrics.shares"
replies = "metrics.replies"
reach = "metrics.reach"

[[source]]
name = "reviews"
path = "data/reviews.parquet"
format = "parquet"
segment = "external"
client_type = "consumer"
[source.columns]
id = "review_id"
text = "body"
timestamp = "reviewed_at"
rating = "stars"
brand = "product_brand"
"#;

fn write_reviews(path: &Path) {
    use arrow::array::{Int32Array, StringArray, TimestampMillisecondArray};
    let schema = Arc::new(Schema::new(vec![
        Field::new("review_id", DataType::Utf8, true),
        Field::new(
            "reviewed_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("stars", DataType::Int32, true),
        Field::new("product_brand", DataType::Utf8, true),
        Field::new("body", DataType::Utf8, true),
    ]));
    let t = 1_762_000_000_000i64;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![
                Some("v1"),
                Some("v2"),
                Some("v3"),
                Some("v4"),
            ])),
            Arc::new(
                TimestampMillisecondArray::from(vec![Some(t), Some(t + 1000), None, Some(t)])
                    .with_timezone("UTC"),
            ),
            Arc::new(Int32Array::from(vec![Some(5), Some(1), Some(3), Some(4)])),
            Arc::new(StringArray::from(vec![
                Some("Acme"),
                Some("Acme"),
                Some("Globex"),
                Some("Acme"),
            ])),
            Arc::new(StringArray::from(vec![
                Some("Produto excelente, chegou rápido"),
                Some("Muy mala calidad, se rompió"),
                Some("no time"),
                None,
            ])),
        ],
    )
    .unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// A fixture pipeline in a fresh temp dir; returns (tempdir, input record count).
fn fixture() -> (tempfile::TempDir, usize) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("survey_2026-11.csv"), SURVEY).unwrap();
    std::fs::write(data.join("helpdesk.jsonl"), HELPDESK).unwrap();
    std::fs::write(data.join("partners.csv"), PARTNERS).unwrap();
    let mut m = MENTIONS_OK.as_bytes().to_vec();
    m.extend_from_slice(
        b"{\"id\": \"s4\", \"created_at\": \"2026-11-14T12:00:00Z\", \"text\": \"caf\xe9 ruim\"}\n",
    );
    std::fs::write(data.join("mentions.jsonl"), m).unwrap();
    write_reviews(&data.join("reviews.parquet"));
    std::fs::write(d.path().join("people.csv"), ROSTER).unwrap();
    let p = PIPELINE.replace("MODEL", &tiny_model().display().to_string());
    std::fs::write(d.path().join("pipeline.toml"), p).unwrap();
    // survey 8 + helpdesk 5 + partners 3 + mentions 4 + reviews 4
    (d, 24)
}

#[test]
fn run_routes_scores_and_accounts_for_every_record() {
    let (d, n_input) = fixture();
    let o = pulso(
        &[
            "run",
            "pipeline.toml",
            "--date",
            "2026-11-14",
            "--no-progress",
            "--threads",
            "1",
        ],
        d.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "rejects present → exit 1\n{}",
        text(&o)
    );
    let out = d.path().join("out");
    assert!(out.join("_SUCCESS").is_file());

    let internal = read_dir_batches(&out.join("signals/segment=internal/date=2026-11-14"));
    let external = read_dir_batches(&out.join("signals/segment=external/date=2026-11-14"));
    let rejects = read_dir_batches(&out.join("rejects/date=2026-11-14"));
    assert_eq!(
        rows(&internal) + rows(&external) + rows(&rejects),
        n_input,
        "nothing lost\n{}",
        text(&o)
    );

    // Every reject reason, with file and line.
    let reasons: BTreeMap<String, String> = strings(&rejects, "location")
        .into_iter()
        .zip(strings(&rejects, "reason"))
        .map(|(loc, r)| (loc.rsplit('/').next().unwrap().to_string(), r))
        .collect();
    let want: BTreeMap<String, String> = [
        ("survey_2026-11.csv:5", "malformed_row"),
        ("survey_2026-11.csv:6", "bad_timestamp"),
        ("survey_2026-11.csv:7", "empty_text"),
        ("survey_2026-11.csv:8", "duplicate"),
        ("survey_2026-11.csv:9", "missing_field:id"),
        ("helpdesk.jsonl:4", "missing_field:text"),
        ("helpdesk.jsonl:5", "malformed_row"),
        ("mentions.jsonl:3", "empty_text"),
        ("mentions.jsonl:4", "invalid_utf8"),
        ("reviews.parquet:row 3", "missing_field:timestamp"),
        ("reviews.parquet:row 4", "missing_field:text"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(reasons, want);

    // Routing: every rule fires, with its reason.
    let mut routed: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for b in [&internal, &external] {
        for ((id, seg), (ct, reason)) in strings(b, "record_id")
            .into_iter()
            .zip(strings(b, "segment"))
            .zip(
                strings(b, "client_type")
                    .into_iter()
                    .zip(strings(b, "segment_reason")),
            )
        {
            routed.insert(id, (seg, ct, reason));
        }
    }
    let r = |id: &str| {
        routed
            .get(id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} missing: {routed:?}"))
    };
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(r("r1"), t("internal", "employee", "source:survey"));
    assert_eq!(r("t1"), t("internal", "employee", "domain:acme.com"));
    assert_eq!(r("t2"), t("internal", "contractor", "roster"));
    assert_eq!(r("t3"), t("external", "consumer", "default:external"));
    assert_eq!(
        r("m1"),
        t("internal", "supplier", "domain:steelworks.example")
    );
    assert_eq!(
        r("m2"),
        t("internal", "partner", "domain:logistica-parceira.example")
    );
    assert_eq!(r("m3"), t("internal", "investor", "roster"));
    assert_eq!(r("s1"), t("external", "consumer", "source:mentions"));
    assert_eq!(r("v1"), t("external", "consumer", "source:reviews"));

    // Scores are probabilities; the schema round-trips.
    for b in internal.iter().chain(&external) {
        let p = |c: &str| {
            b.column_by_name(c)
                .unwrap()
                .as_primitive::<arrow::datatypes::Float32Type>()
                .clone()
        };
        let (n, u, q, s) = (
            p("p_negative"),
            p("p_neutral"),
            p("p_positive"),
            p("sentiment_score"),
        );
        for i in 0..b.num_rows() {
            let sum = n.value(i) + u.value(i) + q.value(i);
            assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
            assert!((s.value(i) - (q.value(i) - n.value(i))).abs() < 1e-5);
        }
        assert!(
            matches!(b.schema().field_with_name("event_time").unwrap().data_type(), DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC")
        );
    }
    // Internal authors never appear raw.
    for a in strings(&internal, "author_id") {
        assert!(!a.contains('@'), "raw internal author leaked: {a}");
    }
    // Numbers from nested JSON, including numeric strings.
    let ext_ids = strings(&external, "record_id");
    let likes: Vec<Option<i64>> = external
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name("likes")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>()
                .clone();
            (0..a.len())
                .map(move |i| a.is_valid(i).then(|| a.value(i)))
                .collect::<Vec<_>>()
        })
        .collect();
    let by_id: BTreeMap<_, _> = ext_ids.into_iter().zip(likes).collect();
    assert_eq!(by_id["s1"], Some(10));
    assert_eq!(by_id["s2"], Some(5));

    // The manifest accounts for every input file.
    let runs: Vec<_> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&runs[0]).unwrap()).unwrap();
    assert_eq!(m["counts"]["records"], n_input);
    assert_eq!(m["counts"]["rejects"], rows(&rejects));
    let per_file: u64 = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["records"].as_u64().unwrap())
        .sum();
    assert_eq!(per_file as usize, n_input);
    // The summary table names every source.
    let stdout = String::from_utf8_lossy(&o.stdout);
    for s in [
        "survey", "helpdesk", "partners", "mentions", "reviews", "TOTAL",
    ] {
        assert!(stdout.contains(s), "summary lacks {s}:\n{stdout}");
    }
}

#[test]
fn rerunning_a_date_replaces_its_partitions() {
    let (d, _) = fixture();
    let args = [
        "run",
        "pipeline.toml",
        "--date",
        "2026-11-14",
        "--no-progress",
        "--threads",
        "1",
    ];
    let o = pulso(&args, d.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Second night: the mentions feed has only one good record.
    std::fs::write(
        d.path().join("data/mentions.jsonl"),
        MENTIONS_OK.lines().next().unwrap(),
    )
    .unwrap();
    let o = pulso(&args, d.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let external = read_dir_batches(
        &d.path()
            .join("out/signals/segment=external/date=2026-11-14"),
    );
    let ids = strings(&external, "record_id");
    assert_eq!(
        ids.iter().filter(|i| i.starts_with('s')).count(),
        1,
        "old mentions must be gone: {ids:?}"
    );
    let run_ids: std::collections::BTreeSet<String> =
        strings(&external, "run_id").into_iter().collect();
    assert_eq!(run_ids.len(), 1, "one run per partition: {run_ids:?}");
    assert!(!d.path().join("out/_staging").exists());
}

#[test]
fn validate_reports_rejects_and_writes_nothing() {
    let (d, _) = fixture();
    let o = pulso(&["validate", "pipeline.toml"], d.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("malformed_row") && s.contains("survey_2026-11.csv:5"),
        "{s}"
    );
    assert!(s.contains("invalid_utf8") && s.contains("duplicate"), "{s}");
    assert!(
        !d.path().join("out").exists(),
        "validate must write nothing"
    );
}

#[test]
fn unusable_config_or_input_exits_2_and_publishes_nothing() {
    let (d, _) = fixture();
    let p = d.path().join("pipeline.toml");
    let good = std::fs::read_to_string(&p).unwrap();

    std::fs::write(
        &p,
        good.replace(
            "format = \"jsonl\"\nsegment = \"auto\"",
            "format = \"jsonl\"\nsegmnet = \"auto\"",
        ),
    )
    .unwrap();
    let o = pulso(&["run", "pipeline.toml", "--no-progress"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("pipeline.toml") && e.contains("segmnet"), "{e}");

    std::fs::write(
        &p,
        good.replace("text = \"comment\"", "text = \"commment\""),
    )
    .unwrap();
    let o = pulso(&["run", "pipeline.toml", "--no-progress"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("survey_2026-11.csv") && e.contains("commment") && e.contains("comment"),
        "{e}"
    );
    assert!(!d.path().join("out/_SUCCESS").exists());
    assert!(read_dir_batches(&d.path().join("out/signals")).is_empty());

    std::fs::write(
        &p,
        good.replace(&tiny_model().display().to_string(), "/nonexistent/model"),
    )
    .unwrap();
    let o = pulso(&["run", "pipeline.toml", "--no-progress"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent/model"),
        "{}",
        text(&o)
    );
}
