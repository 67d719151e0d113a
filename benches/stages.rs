//! Stage benchmarks without the model: reading (CSV, JSON Lines), routing, language detection,
//! enrichment and Parquet writing, each on one core, reported as records/s
//! (criterion `Throughput::Elements`). Target: >= 200,000 records/s per stage.
//!
//! Run with `cargo bench --bench stages` (needs `[[bench]] name = "stages" harness = false` in
//! Cargo.toml). Short on purpose (small sample size, a few seconds per stage) so `make bench` ends in
//! minutes; criterion prints `thrpt: [low mid high] Kelem/s` per stage.
//!
//! Two measurements of the same stages: group `stages` (wall time, criterion's default) and group
//! `stages_cpu` (this thread's CPU time, CLOCK_THREAD_CPUTIME_ID: records per CPU-second of one
//! core, which other processes on a shared machine do not distort). `PULSO_BENCH_MEASURE=wall|cpu`
//! runs only one. At the end a Markdown table of criterion's estimates (slope, else mean) is printed (from criterion's saved
//! estimates under target/criterion/).
//!
//! Input: `PULSO_BENCH_RECORDS` records (default 20,000) of realistic short texts. Texts come from
//! the tweets in `$PULSO_BENCH_DATA/xlm-t-sentiment/{portuguese,spanish,english}/train_text.txt`
//! (default `/work/shared/data`) when present, else from a small built-in pt/es/en phrase set; they are
//! read at run time and never stored in the repository. Temporary files go to a temp folder.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use pulso::config::{Columns, Format, OrganizationSection, SegmentMode, SourcePlan};
use pulso::enrich::{EnrichConfig, Enricher};
use pulso::ingest::{self, Item};
use pulso::lang;
use pulso::record::{InputRecord, Lang, Routing, Scored, Segment, Sentiment, Signal};
use pulso::route::Router;
use pulso::schema::signals_to_batch;
use pulso::sink::SinkConfig;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Used only when the shared data folder is missing.
const FALLBACK: &[&str] = &[
    "A entrega atrasou de novo, não recomendo",
    "Amei o atendimento, equipe muito atenciosa!",
    "O app trava toda vez que tento pagar 😡",
    "Meu gestor não dá feedback e a carga de trabalho está absurda",
    "El pedido llegó tarde y nadie contesta",
    "Muy buena atención, gracias @user",
    "Estoy buscando otro trabajo, el ambiente es horrible",
    "The delivery was late again and support never answered",
    "Love the new update, great job team!",
    "I'm thinking about quitting, no raise for three years",
    "Precio justo, producto de calidad, volveré a comprar",
    "ok",
];

fn n_records() -> usize {
    std::env::var("PULSO_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(20_000)
}

fn load_texts() -> (Vec<String>, &'static str) {
    let root = PathBuf::from(
        std::env::var("PULSO_BENCH_DATA").unwrap_or_else(|_| "/work/shared/data".into()),
    );
    let mut texts = Vec::new();
    for lang in ["portuguese", "spanish", "english"] {
        let p = root
            .join("xlm-t-sentiment")
            .join(lang)
            .join("train_text.txt");
        if let Ok(s) = std::fs::read_to_string(&p) {
            texts.extend(
                s.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
    }
    if texts.is_empty() {
        (
            FALLBACK.iter().map(|s| s.to_string()).collect(),
            "built-in phrases",
        )
    } else {
        (texts, "xlm-t tweets pt/es/en")
    }
}

/// Deterministic xorshift so every run sees the same mix.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const AUTHORS: &[&str] = &[
    "ana.souza@acme.com",
    "Rui Lima <rui@acme.com>",
    "compras@mail.steelworks.example",
    "contato@parceira.example",
    "@cliente_feliz",
    "@maria_mx",
    "bob@gmail.com",
    "joana@agency.example",
];

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    csv: PathBuf,
    jsonl: PathBuf,
    records: Vec<InputRecord>,
    routings: Vec<Routing>,
    langs: Vec<Lang>,
    scored: Vec<Scored>,
    enricher: Enricher,
    signals: Vec<Signal>,
}

fn fixture(n: usize) -> Fixture {
    let (texts, _) = load_texts();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let csv_path = path.join("mentions.csv");
    let jsonl_path = path.join("mentions.jsonl");
    let mut csv = csv::Writer::from_path(&csv_path).expect("csv");
    csv.write_record(["id", "text", "ts", "author", "likes", "shares", "brand"])
        .expect("csv");
    let mut jsonl = std::io::BufWriter::new(std::fs::File::create(&jsonl_path).expect("jsonl"));
    let base = 1_763_000_000i64; // epoch seconds, Nov 2025
    for i in 0..n {
        let text = &texts[rng.below(texts.len())];
        let author = AUTHORS[rng.below(AUTHORS.len())];
        let ts = chrono::DateTime::from_timestamp(base + (i as i64) * 7, 0)
            .expect("ts")
            .to_rfc3339();
        let likes = rng.below(500).to_string();
        let shares = rng.below(50).to_string();
        let brand = if rng.below(4) == 0 { "Acme" } else { "" };
        csv.write_record([
            &format!("m{i}"),
            text.as_str(),
            &ts,
            author,
            &likes,
            &shares,
            brand,
        ])
        .expect("csv");
        let obj = serde_json::json!({
            "id": format!("m{i}"), "text": text, "ts": ts, "author": author,
            "likes": likes.parse::<i64>().unwrap(), "shares": shares.parse::<i64>().unwrap(),
            "brand": if brand.is_empty() { serde_json::Value::Null } else { brand.into() },
        });
        writeln!(jsonl, "{obj}").expect("jsonl");
    }
    csv.flush().expect("csv");
    jsonl.flush().expect("jsonl");
    drop(jsonl);
    let src = source(Format::Jsonl);
    let records = read_all(&src, &jsonl_path);
    assert_eq!(
        records.len(),
        n,
        "every generated row should read as a record"
    );
    let router = Router::build(&org(), None).expect("router");
    let routings: Vec<Routing> = records.iter().map(|r| router.route(&src, r)).collect();
    let langs: Vec<Lang> = records.iter().map(|r| lang::detect(&r.text)).collect();
    let scored: Vec<Scored> = (0..n).map(fake_scored).collect();
    let enricher = EnrichConfig {
        brands: vec!["Acme".into()],
        competitors: vec!["Globex".into(), "Initech".into()],
        topics_path: None,
        pseudonym_key: Some(b"bench-key-not-secret-0123456789".to_vec()),
    }
    .build()
    .expect("enricher");
    let signals: Vec<Signal> = (0..n)
        .map(|i| Signal {
            record: records[i].clone(),
            routing: routings[i].clone(),
            language: langs[i],
            scored: scored[i],
            enrichment: enricher.enrich(&records[i], &routings[i], langs[i], &scored[i]),
        })
        .collect();
    Fixture {
        dir: path,
        _dir: dir,
        csv: csv_path,
        jsonl: jsonl_path,
        records,
        routings,
        langs,
        scored,
        enricher,
        signals,
    }
}

fn columns() -> Columns {
    Columns {
        id: Some("id".into()),
        text: "text".into(),
        timestamp: Some("ts".into()),
        author: Some("author".into()),
        likes: Some("likes".into()),
        shares: Some("shares".into()),
        brand: Some("brand".into()),
        ..Default::default()
    }
}

fn source(format: Format) -> SourcePlan {
    SourcePlan {
        name: "mentions".into(),
        format,
        segment: SegmentMode::Auto,
        client_type: None,
        delimiter: b',',
        columns: columns(),
        files: vec![],
        read: Default::default(),
    }
}

fn read_all(src: &SourcePlan, file: &Path) -> Vec<InputRecord> {
    ingest::open(src, file)
        .expect("open")
        .filter_map(|r| match r.expect("row") {
            Item::Record(rec) => Some(rec),
            Item::Reject(_) => None,
        })
        .collect()
}

fn org() -> OrganizationSection {
    OrganizationSection {
        internal_domains: vec!["acme.com".into()],
        supplier_domains: vec!["steelworks.example".into()],
        partner_domains: vec!["parceira.example".into()],
        ..Default::default()
    }
}

/// A plausible model output without running the model (the sink and enrichment only read it).
fn fake_scored(i: usize) -> Scored {
    let (sentiment, p) = match i % 3 {
        0 => (Sentiment::Negative, [0.7, 0.2, 0.1]),
        1 => (Sentiment::Neutral, [0.2, 0.6, 0.2]),
        _ => (Sentiment::Positive, [0.05, 0.15, 0.8]),
    };
    Scored {
        sentiment,
        p_negative: p[0],
        p_neutral: p[1],
        p_positive: p[2],
        sentiment_score: p[2] - p[0],
        truncated: false,
    }
}

/// Thread CPU time (CLOCK_THREAD_CPUTIME_ID) as a criterion measurement: the time this thread
/// actually ran, so records per CPU-second of one core, robust to other processes on a shared
/// machine (wall time is the default measurement and is reported too).
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, ns: f64, values: &mut [f64]) -> &'static str {
        let (f, unit) = if ns < 1e3 {
            (1.0, "ns cpu")
        } else if ns < 1e6 {
            (1e-3, "µs cpu")
        } else if ns < 1e9 {
            (1e-6, "ms cpu")
        } else {
            (1e-9, "s cpu")
        };
        values.iter_mut().for_each(|v| *v *= f);
        unit
    }
    fn scale_throughputs(&self, typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let per = match *t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                n as f64
            }
        };
        let rate = per * 1e9 / typical;
        let (d, unit) = if rate < 1e3 {
            (1.0, " elem/cpu-s")
        } else if rate < 1e6 {
            (1e3, "Kelem/cpu-s")
        } else {
            (1e6, "Melem/cpu-s")
        };
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v / d);
        unit
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn stages<M: Measurement>(c: &mut Criterion<M>, group: &str, fx: &Fixture) {
    let n = fx.records.len();
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(n as u64));

    // Reading: open + iterate every row into typed records.
    for (name, format, file) in [
        ("read_csv", Format::Csv, &fx.csv),
        ("read_jsonl", Format::Jsonl, &fx.jsonl),
    ] {
        let src = source(format);
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let mut k = 0usize;
                for r in ingest::open(&src, file).expect("open") {
                    if let Item::Record(rec) = r.expect("row") {
                        k += rec.text.len();
                    }
                }
                black_box(k)
            })
        });
    }

    // Routing: the rules over every record (auto source: roster/domain/default rules all run).
    let router = Router::build(&org(), None).expect("router");
    let src = source(Format::Jsonl);
    g.bench_function(BenchmarkId::from_parameter("route"), |b| {
        b.iter(|| {
            let mut internal = 0usize;
            for rec in &fx.records {
                if router.route(&src, black_box(rec)).segment == Segment::Internal {
                    internal += 1;
                }
            }
            black_box(internal)
        })
    });

    // Language detection (pulso::lang::detect).
    g.bench_function(BenchmarkId::from_parameter("lang_detect"), |b| {
        b.iter(|| {
            let mut pt = 0usize;
            for rec in &fx.records {
                if lang::detect(black_box(&rec.text)) == Lang::Pt {
                    pt += 1;
                }
            }
            black_box(pt)
        })
    });
    g.throughput(Throughput::Elements(n as u64));

    // Enrichment: topics, attrition, brands, engagement, HMAC pseudonyms for internal authors.
    g.bench_function(BenchmarkId::from_parameter("enrich"), |b| {
        b.iter(|| {
            let mut topics = 0usize;
            for i in 0..n {
                topics += fx
                    .enricher
                    .enrich(&fx.records[i], &fx.routings[i], fx.langs[i], &fx.scored[i])
                    .topics
                    .len();
            }
            black_box(topics)
        })
    });

    // Arrow batch building alone.
    g.bench_function(BenchmarkId::from_parameter("arrow_batch"), |b| {
        b.iter(|| {
            black_box(signals_to_batch(fx.signals.iter(), "bench-model", "bench-run").num_rows())
        })
    });

    // Parquet through the real sink: staging, zstd, both segment partitions, atomic commit.
    let out = fx.dir.join(format!("out-{group}"));
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 14).expect("date");
    let mut iteration = 0u64;
    g.bench_function(BenchmarkId::from_parameter("parquet_sink"), |b| {
        b.iter(|| {
            // Each run commits a new version, so each needs its own run id.
            iteration += 1;
            let run_id = format!("bench-run-{iteration}");
            let mut sink = SinkConfig::new(&out, date, run_id, "bench-model")
                .build()
                .expect("sink");
            sink.declare_standard_partitions();
            sink.write_signals(&fx.signals).expect("write");
            let p = sink
                .commit(&mut serde_json::json!({"bench": true}))
                .expect("commit");
            black_box(p.partitions.len())
        })
    });
    g.finish();
}

const STAGES: &[&str] = &[
    "read_csv",
    "read_jsonl",
    "route",
    "lang_detect",
    "enrich",
    "arrow_batch",
    "parquet_sink",
];

fn main() {
    let n = n_records();
    let (_, origin) = load_texts();
    eprintln!("stages: {n} records per iteration, texts from {origin}");
    let fx = fixture(n);
    let which = std::env::var("PULSO_BENCH_MEASURE").unwrap_or_else(|_| "both".into());
    if which != "cpu" {
        let mut c = Criterion::default().configure_from_args();
        stages(&mut c, "stages", &fx);
        c.final_summary();
    }
    if which != "wall" {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpu)
            .configure_from_args();
        stages(&mut c, "stages_cpu", &fx);
        c.final_summary();
    }
    summary_table();
}

/// Records/s of one benchmark from criterion's saved files (target/criterion/<group>/<name>/new/).
fn rate(dir: &Path, group: &str, name: &str) -> Option<(f64, f64, f64)> {
    let base = dir.join(group).join(name).join("new");
    let est: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("estimates.json")).ok()?).ok()?;
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("benchmark.json")).ok()?).ok()?;
    let elems = meta["throughput"]["Elements"].as_f64()?;
    // The estimate criterion prints: the slope of the linear fit, else the mean (flat sampling).
    let e = if est["slope"].is_object() {
        &est["slope"]
    } else {
        &est["mean"]
    };
    let ns = e["point_estimate"].as_f64()?;
    let slow = e["confidence_interval"]["upper_bound"]
        .as_f64()
        .unwrap_or(ns);
    let fast = e["confidence_interval"]["lower_bound"]
        .as_f64()
        .unwrap_or(ns);
    let r = |t: f64| elems / (t * 1e-9);
    Some((r(ns), r(slow), r(fast)))
}

/// Prints a Markdown table of both measurements.
fn summary_table() {
    let root = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            // The bench binary lives in target/<profile>/deps/.
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent()?.parent()?.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("target"))
        });
    let dir = root.join("criterion");
    let cell = |v: Option<(f64, f64, f64)>| match v {
        Some((mid, lo, hi)) => format!("{} ({}–{})", fmt_int(mid), fmt_int(lo), fmt_int(hi)),
        None => "–".into(),
    };
    println!();
    println!("| Stage (one thread) | records/s, wall (95% CI) | records per CPU-second (95% CI) | ≥ 200,000/s on one core? |");
    println!("|---|---:|---:|:---:|");
    for name in STAGES {
        let wall = rate(&dir, "stages", name);
        let cpu = rate(&dir, "stages_cpu", name);
        if wall.is_none() && cpu.is_none() {
            continue;
        }
        let best = cpu.or(wall).map(|x| x.0).unwrap_or(0.0);
        let verdict = if best >= 200_000.0 { "yes" } else { "no" };
        println!("| {name} | {} | {} | {verdict} |", cell(wall), cell(cpu));
    }
}

fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
