//! `pulso report`: terminal tables, the self-contained HTML file, escaping of input text, and a
//! headless-Chromium render (skipped with a message when Chromium is not installed).
//!
//! A render of this test's synthetic output:
//!   PULSO_DEMO_DIR=/tmp/x cargo test --release --test it report_html::chromium -- --nocapture
//! writes report-demo.html and report-demo.png there (needs `apt-get install -y chromium`). The
//! README screenshots are of `make demo`'s report instead (see README "What marketing and HR read").

use crate::common::support;

use pulso::aggregate::AggregateConfig;
use pulso::enrich::{EnrichConfig, Enricher};
use pulso::record::{ClientType, Lang, Sentiment, Signal};
use pulso::report::{self, escape_html, ReportData};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const RUN_DATE: &str = "2026-11-14";
/// Injected payloads: they must show up as text and never run.
const XSS_SCRIPT: &str = "<script>alert(1)</script><script>document.body.appendChild(document.createElement('pwned'))</script>";
const XSS_IMG: &str =
    "Péssimo <img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"> atendimento";

fn cfg() -> AggregateConfig {
    AggregateConfig {
        brands: vec!["Aurora".into()],
        competitors: vec!["Boreal".into(), "Cometa".into()],
        min_group_size: 5,
        spike_k: 2.0,
    }
}

fn enricher() -> Enricher {
    EnrichConfig {
        brands: vec!["Aurora".into()],
        competitors: vec!["Boreal".into(), "Cometa".into()],
        topics_path: None,
        pseudonym_key: Some(b"demo-key-0123456789abcdef".to_vec()),
    }
    .build()
    .unwrap()
}

/// Small deterministic generator (no rand dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const EXT_TEXTS: [(&str, Sentiment, f32); 8] = [
    (
        "Adorei o café da {b}, entrega rápida!",
        Sentiment::Positive,
        0.8,
    ),
    ("{b}: o preço subiu demais", Sentiment::Negative, -0.6),
    (
        "El pedido de {b} llegó con retraso",
        Sentiment::Negative,
        -0.7,
    ),
    ("{b} customer service was great", Sentiment::Positive, 0.7),
    (
        "The {b} app keeps crashing at checkout",
        Sentiment::Negative,
        -0.8,
    ),
    ("Comprei {b} hoje", Sentiment::Neutral, 0.0),
    ("La calidad de {b} es excelente", Sentiment::Positive, 0.9),
    ("{b} ok, nada especial", Sentiment::Neutral, 0.05),
];

fn external_day(d: &str, rng: &mut Lcg, loud_boreal: bool) -> Vec<Signal> {
    let e = enricher();
    let mut v = Vec::new();
    for (brand, base, neg_bias) in [("Aurora", 14, 0), ("Boreal", 10, 1), ("Cometa", 6, 0)] {
        let n = base
            + rng.next(5) as usize
            + if loud_boreal && brand == "Boreal" {
                40
            } else {
                0
            };
        for i in 0..n {
            let mut pick = rng.next(EXT_TEXTS.len() as u64) as usize;
            if (neg_bias > 0 || loud_boreal && brand == "Boreal") && i % 2 == 0 {
                pick = [1, 2, 4][i % 3];
            }
            let (t, s, score) = EXT_TEXTS[pick];
            let channel = ["twitter", "instagram", "reclame_aqui"][rng.next(3) as usize];
            let lang = if t.contains("El ") || t.contains("La ") {
                Lang::Es
            } else if t.contains("The ") || t.contains("service") {
                Lang::En
            } else {
                Lang::Pt
            };
            v.push(
                S::ext(&t.replace("{b}", brand), s, score)
                    .id(&format!("{d}-{brand}-{i}"))
                    .at(d)
                    .channel(channel)
                    .lang(lang)
                    .author(&format!("@user{}", rng.next(1000)))
                    .likes(rng.next(40) as i64)
                    .shares(rng.next(10) as i64)
                    .enriched(&e)
                    .done(),
            );
        }
    }
    v
}

fn internal_week(d: &str) -> Vec<Signal> {
    let e = enricher();
    let mut v = Vec::new();
    let emp = |author: &str, dept: &str, text: &str, s: Sentiment, score: f64| {
        let sc = match s {
            Sentiment::Negative => -0.7,
            Sentiment::Neutral => 0.0,
            Sentiment::Positive => 0.7,
        };
        S::new(ClientType::Employee, text, s, sc)
            .author(author)
            .dept(dept)
            .at(d)
            .score(score)
            .enriched(&e)
            .done()
    };
    // Operations: 7 people, published
    let ops = [
        (
            "Muita sobrecarga e horas extras, estou procurando outro emprego",
            Sentiment::Negative,
            3.0,
        ),
        (
            "Sobrecarga constante; o gestor não ajuda",
            Sentiment::Negative,
            4.0,
        ),
        (
            "Too much overtime this week, burned out",
            Sentiment::Negative,
            5.0,
        ),
        (
            "Carga de trabajo alta pero el jefe apoya",
            Sentiment::Neutral,
            7.0,
        ),
        (
            "Salário ok, mas sobrecarga no fechamento",
            Sentiment::Negative,
            6.0,
        ),
        (
            "Good training and career growth, manageable workload",
            Sentiment::Positive,
            9.0,
        ),
        (
            "Gosto da equipe; workload está ok",
            Sentiment::Positive,
            10.0,
        ),
    ];
    for (i, (t, s, sc)) in ops.iter().enumerate() {
        v.push(emp(
            &format!("ops{i}@corp.example"),
            "Operations",
            t,
            *s,
            *sc,
        ));
    }
    // Customer Care: 6 people, published, department name with markup to escape
    let care = [
        ("O sistema trava o dia todo", Sentiment::Negative, 5.0),
        (
            "The CRM system is slow and the VPN drops",
            Sentiment::Negative,
            6.0,
        ),
        (
            "Sistema lento, mas o gestor é ótimo",
            Sentiment::Neutral,
            8.0,
        ),
        (
            "El sistema es lento y nadie explica nada",
            Sentiment::Negative,
            4.0,
        ),
        (
            "Bom reconhecimento do gestor este mês; sistema ok",
            Sentiment::Positive,
            9.0,
        ),
        (
            "I feel valued; the new system is fine",
            Sentiment::Positive,
            9.0,
        ),
    ];
    for (i, (t, s, sc)) in care.iter().enumerate() {
        v.push(emp(
            &format!("care{i}@corp.example"),
            "Customer Care <R&D>",
            t,
            *s,
            *sc,
        ));
    }
    // Finance: 3 people, suppressed
    for i in 0..3 {
        v.push(emp(
            &format!("fin{i}@corp.example"),
            "Finance",
            "Vou pedir demissão, salário baixo",
            Sentiment::Negative,
            2.0,
        ));
    }
    v
}

/// Internal-service signals: IT rated by 6 Sales people (published), by 2 Legal people
/// (suppressed), so the Sales cell is suppressed too (complementary); HR rated by 5 Ops people.
fn service_week(d: &str) -> Vec<Signal> {
    let mut v = Vec::new();
    let mut add = |who: &str, dept: &str, provider: &str, s: Sentiment, rating: f64| {
        let sc = if s == Sentiment::Negative { -0.7 } else { 0.7 };
        v.push(
            S::new(ClientType::Employee, "O suporte <b>demorou</b>", s, sc)
                .author(who)
                .dept(dept)
                .at(d)
                .rating(rating)
                .provider(provider)
                .done(),
        );
    };
    for i in 0..6 {
        let s = if i < 2 {
            Sentiment::Negative
        } else {
            Sentiment::Positive
        };
        add(&format!("sales{i}@corp.example"), "Sales", "IT", s, 4.0);
    }
    for i in 0..2 {
        add(
            &format!("legal{i}@corp.example"),
            "Legal",
            "IT",
            Sentiment::Negative,
            1.0,
        );
    }
    for i in 0..5 {
        add(
            &format!("ops{i}@corp.example"),
            "Operations",
            "HR <i>",
            Sentiment::Positive,
            5.0,
        );
    }
    v
}

/// A published output root with 14 days of history, a spike on the run date, injected markup.
fn demo_out(out: &Path) {
    let mut rng = Lcg(42);
    let run = day(RUN_DATE);
    for back in (1..14).rev() {
        let d = (run - chrono::Duration::days(back))
            .format("%Y-%m-%d")
            .to_string();
        let signals = external_day(&d, &mut rng, false);
        write_signals(out, day(&d), &signals);
        aggregate_run(&cfg(), out, day(&d), &signals);
    }
    let mut signals = external_day(RUN_DATE, &mut rng, true);
    let e = enricher();
    signals.push(
        S::ext(&format!("Boreal {XSS_SCRIPT}"), Sentiment::Negative, -0.95)
            .id("xss-1")
            .at(RUN_DATE)
            .channel("twitter")
            .author("@attacker")
            .likes(5000)
            .enriched(&e)
            .done(),
    );
    signals.push(
        S::ext(XSS_IMG, Sentiment::Negative, -0.9)
            .id("xss-2")
            .at(RUN_DATE)
            .brand("Boreal")
            .channel("reclame_aqui \u{1b}[31m")
            .author("@attacker2")
            .likes(4000)
            .enriched(&e)
            .done(),
    );
    // Weekly tables publish complete weeks only: the internal week is the one before the run's.
    signals.extend(internal_week("2026-11-06"));
    signals.extend(service_week("2026-11-06"));
    write_signals(out, run, &signals);
    aggregate_run(&cfg(), out, run, &signals);
}

fn render(out: &Path) -> (PathBuf, String) {
    let html = out.join("report").join("report.html");
    report::run(out, None, Some(&html)).unwrap();
    let s = std::fs::read_to_string(&html).unwrap();
    (html, s)
}

#[test]
fn escape_html_escapes_the_five_characters() {
    assert_eq!(
        escape_html("<script>alert(1)</script>"),
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    );
    assert_eq!(
        escape_html("<img src=x onerror=alert(1)>"),
        "&lt;img src=x onerror=alert(1)&gt;"
    );
    assert_eq!(
        escape_html("a & b \"c\" 'd'"),
        "a &amp; b &quot;c&quot; &#39;d&#39;"
    );
    assert_eq!(escape_html("ação"), "ação");
}

#[test]
fn html_is_self_contained_escaped_and_script_free() {
    let out = tempfile::tempdir().unwrap();
    demo_out(out.path());
    let (_, html) = render(out.path());

    // CSP forbidding scripts, early in <head>
    let csp = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">";
    let at = html.find(csp).expect("CSP meta tag");
    assert!(at < html.find("<title>").unwrap());

    // injected markup shows as text
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=&quot;document.body.setAttribute(&#39;data-pwned&#39;,&#39;1&#39;)&quot;&gt;"));
    assert!(html.contains("Customer Care &lt;R&amp;D&gt;"));
    let lower = html.to_lowercase();
    for bad in [
        "<script",
        "<img",
        "<iframe",
        "<link",
        "<object",
        "<embed",
        "javascript:",
        "@import",
        "url(",
    ] {
        assert!(!lower.contains(bad), "HTML contains {bad}");
    }
    // nothing external: the only URL is the SVG namespace
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count());
    assert!(!html.contains('\u{1b}'));

    // the four views are there
    assert!(html.contains("Net sentiment trend per brand"));
    assert!(html.contains("<polyline"));
    assert!(html.contains("Share of voice"));
    assert!(html.contains("<rect"));
    assert!(html.contains("Engagement risk: negative share by topic"));
    assert!(html.contains("Most engaged negative mentions"));
    // HR: suppressed group shown as such, published ones with numbers, no raw author
    assert!(html.contains("suppressed (&lt; 5)"));
    assert!(html.contains("<h2>Internal services</h2>"));
    assert!(html.contains("Requester × provider: net sentiment, 2026-W45"));
    assert!(html.contains("HR &lt;i&gt;"), "provider names are escaped");
    assert!(
        html.contains("<td class=\"sup\""),
        "suppressed cells are shown as suppressed"
    );
    assert!(html.contains("complementary"));
    assert!(html.contains("Trend per provider"));
    assert!(html.contains("Operations"));
    assert!(!html.contains("corp.example"));
    // the spike on the run date is listed with its reason
    assert!(html.contains("mentions "), "spike reason missing");
}

#[test]
fn terminal_report_for_both_audiences() {
    let out = tempfile::tempdir().unwrap();
    demo_out(out.path());
    let data = ReportData::load(out.path(), None).unwrap();
    assert_eq!(data.date, day(RUN_DATE), "default date = latest partition");
    let t = report::render_terminal(&data);
    println!("{t}");
    assert!(t.contains("MARKETING"));
    assert!(t.contains("HR"));
    assert!(t.contains("Aurora") && t.contains("Boreal"));
    assert!(t.contains("suppressed (< 5)"));
    assert!(t.contains("Finance"));
    assert!(
        !t.contains('\u{1b}'),
        "control characters from input reach the terminal"
    );
    assert!(!t.contains("corp.example"));
    // spike for Boreal on the run date
    assert!(
        data.spikes()
            .iter()
            .any(|r| r.brand == "Boreal" && r.day == day(RUN_DATE)),
        "{t}"
    );
    // share of voice sums to 1 over tracked brands
    let total: f64 = data.share_of_voice().iter().map(|x| x.3).sum();
    assert!((total - 1.0).abs() < 1e-9);
    // an explicit date with nothing in it still renders
    let empty = ReportData::load(out.path(), Some(day("2020-01-01"))).unwrap();
    assert!(report::render_terminal(&empty).contains("No engagement_weekly rows"));
    // an output root with nothing published is a clear error
    let none = tempfile::tempdir().unwrap();
    let err = ReportData::load(none.path(), None).unwrap_err().to_string();
    assert!(err.contains("no date="), "{err}");
}

// ------------------------------------------------------------------------------------------------
// Headless Chromium
// ------------------------------------------------------------------------------------------------

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PULSO_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs Chromium headless with a fresh profile; returns stdout. Kills it after `limit`.
fn chromium(bin: &Path, args: &[String], limit: Duration) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

#[test]
fn chromium_renders_the_report_and_runs_no_script() {
    let Some(bin) = find_chromium() else {
        println!("SKIP chromium_renders_the_report_and_runs_no_script: Chromium not found (install with `apt-get install -y chromium`, or set PULSO_CHROMIUM=/path/to/chrome)");
        eprintln!("SKIP: Chromium not found; headless render test skipped");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    demo_out(out.path());
    let (html_path, _) = render(out.path());
    let url = format!("file://{}", html_path.display());

    // Screenshot
    let png = out.path().join("report.png");
    chromium(
        &bin,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2000".into(),
            url.clone(),
        ],
        Duration::from_secs(120),
    );
    let bytes = std::fs::read(&png).expect("chromium wrote no screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2000));
    // A blank 1280×2000 page compresses to a few KB; charts and tables make it far bigger.
    assert!(
        bytes.len() > 40_000,
        "screenshot looks empty ({} bytes)",
        bytes.len()
    );

    // DOM after load: the payloads are text, nothing they would have created exists.
    let dom = chromium(&bin, &["--dump-dom".into(), url], Duration::from_secs(120));
    assert!(dom.contains("</html>"), "no DOM dumped: {dom:.200}");
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "payload not shown as text"
    );
    assert!(dom.contains("onerror="), "img payload text missing");
    let lower = dom.to_lowercase();
    assert!(!lower.contains("<script"), "DOM has a <script> element");
    assert!(!lower.contains("<img"), "DOM has an <img> element");
    assert!(!lower.contains("<pwned"), "injected script ran");
    assert!(
        !lower.contains("data-pwned=\"1\""),
        "injected onerror handler ran"
    );

    if let Some(dir) = std::env::var_os("PULSO_DEMO_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&html_path, dir.join("report-demo.html")).unwrap();
        std::fs::copy(&png, dir.join("report-demo.png")).unwrap();
        println!("demo report written to {}", dir.display());
    }
}
