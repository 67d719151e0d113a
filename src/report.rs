//! `pulso report OUT [--date D] [--html FILE]`: what marketing and HR read.
//!
//! Reads the published tables under `OUT` (nothing else): `aggregates/brand_daily` (partition `D`
//! and the ones of the 30 days before, for the trend), `aggregates/engagement_weekly` (partition
//! `D`) and `signals/segment=external/date=D` (the most engaged negative mentions). `D` defaults to
//! the latest `date=` partition present.
//!
//! The terminal output has one section per audience. With `--html`, a single self-contained file is
//! written: inline CSS and inline SVG, no JavaScript, no external resources, and a
//! Content-Security-Policy that forbids scripts. Every text that comes from input data is
//! HTML-escaped ([`escape_html`]) and stripped of control characters on the terminal.
//! Internal signals are never read: HR sees only the (suppressed-where-small) weekly aggregates.

use crate::aggregate::{
    col, days_to_date, partitions, read_parquet_dir, TopicStat, BRAND_DAILY, ENGAGEMENT_WEEKLY,
};
use crate::enrich::{BrandMatcher, NO_BRAND};
use anyhow::Context;
use arrow::array::{
    Array, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow::record_batch::RecordBatch;
use chrono::{Duration, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Days of brand history shown in the trend chart.
pub const TREND_DAYS: i64 = 30;
/// Days shown in the terminal brand × day table.
pub const TERMINAL_DAYS: i64 = 7;
/// Negative mentions listed.
pub const TOP_NEGATIVE: usize = 10;

pub fn run(out: &Path, date: Option<NaiveDate>, html: Option<&Path>) -> anyhow::Result<()> {
    let data = ReportData::load(out, date)?;
    print!("{}", render_terminal(&data));
    if let Some(path) = html {
        write_atomically(path, render_html(&data).as_bytes())?;
        eprintln!("report: wrote {}", path.display());
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Data
// ------------------------------------------------------------------------------------------------

/// One `brand_daily` row.
#[derive(Clone, Debug)]
pub struct BrandRow {
    pub day: NaiveDate,
    pub brand: String,
    pub brand_type: String,
    pub channel: String,
    pub language: String,
    pub mentions: i64,
    pub positive: i64,
    pub negative: i64,
    pub net_sentiment: Option<f64>,
    pub share_of_voice: Option<f64>,
    pub spike: bool,
    pub spike_reason: Option<String>,
}

/// One `engagement_weekly` row.
#[derive(Clone, Debug)]
pub struct WeeklyRow {
    pub week: String,
    pub department: String,
    pub client_type: String,
    pub suppressed: bool,
    pub min_group_size: i64,
    pub respondents: Option<i64>,
    pub negative_share: Option<f64>,
    pub net_sentiment: Option<f64>,
    pub attrition_risk: Option<i64>,
    pub enps: Option<f64>,
    pub topics: Vec<TopicStat>,
}

/// A heatmap row: label and topic → (mentions, negative share).
pub type HeatRow = (String, BTreeMap<String, (i64, f64)>);

/// One negative external mention.
#[derive(Clone, Debug)]
pub struct Mention {
    pub event_time: Option<i64>,
    pub brand: Option<String>,
    pub channel: Option<String>,
    pub language: String,
    pub engagement: i64,
    pub sentiment_score: f64,
    pub text: String,
}

/// Everything the report shows, read from `OUT`.
#[derive(Clone, Debug)]
pub struct ReportData {
    pub out: PathBuf,
    pub date: NaiveDate,
    /// `brand_daily` rows of partition `date`.
    pub brand_rows: Vec<BrandRow>,
    /// brand → day → (positive, negative, mentions) over the trend window, all partitions ≤ `date`.
    pub trend: BTreeMap<String, BTreeMap<NaiveDate, (i64, i64, i64)>>,
    /// brand → brand_type, for every brand in the trend.
    pub brand_types: BTreeMap<String, String>,
    /// `engagement_weekly` rows of partition `date`.
    pub weekly_rows: Vec<WeeklyRow>,
    /// Most engaged negative external mentions of partition `date`.
    pub negative_mentions: Vec<Mention>,
}

fn latest_partition(out: &Path) -> anyhow::Result<Option<NaiveDate>> {
    let mut dirs = vec![out.join(BRAND_DAILY), out.join(ENGAGEMENT_WEEKLY)];
    for seg in ["internal", "external"] {
        dirs.push(out.join("signals").join(format!("segment={seg}")));
    }
    let mut best = None;
    for d in dirs {
        for (date, _) in partitions(&d)? {
            best = best.max(Some(date));
        }
    }
    Ok(best)
}

fn part_dir(out: &Path, table: &str, date: NaiveDate) -> PathBuf {
    out.join(table)
        .join(format!("date={}", date.format("%Y-%m-%d")))
}

fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}
fn opt_f64(a: &Float64Array, i: usize) -> Option<f64> {
    (!a.is_null(i)).then(|| a.value(i))
}
fn opt_i64(a: &Int64Array, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn brand_rows(batch: &RecordBatch) -> anyhow::Result<Vec<BrandRow>> {
    let day = col::<Date32Array>(batch, "day")?;
    let brand = col::<StringArray>(batch, "brand")?;
    let btype = col::<StringArray>(batch, "brand_type")?;
    let channel = col::<StringArray>(batch, "channel")?;
    let lang = col::<StringArray>(batch, "language")?;
    let mentions = col::<Int64Array>(batch, "mentions")?;
    let pos = col::<Int64Array>(batch, "positive")?;
    let neg = col::<Int64Array>(batch, "negative")?;
    let net = col::<Float64Array>(batch, "net_sentiment")?;
    let sov = col::<Float64Array>(batch, "share_of_voice")?;
    let spike = col::<BooleanArray>(batch, "spike")?;
    let reason = col::<StringArray>(batch, "spike_reason")?;
    Ok((0..batch.num_rows())
        .filter(|&i| !day.is_null(i))
        .map(|i| BrandRow {
            day: days_to_date(day.value(i)),
            brand: brand.value(i).to_string(),
            brand_type: btype.value(i).to_string(),
            channel: channel.value(i).to_string(),
            language: lang.value(i).to_string(),
            mentions: mentions.value(i),
            positive: pos.value(i),
            negative: neg.value(i),
            net_sentiment: opt_f64(net, i),
            share_of_voice: opt_f64(sov, i),
            spike: !spike.is_null(i) && spike.value(i),
            spike_reason: opt_str(reason, i),
        })
        .collect())
}

fn weekly_rows(batch: &RecordBatch) -> anyhow::Result<Vec<WeeklyRow>> {
    let week = col::<StringArray>(batch, "week")?;
    let dept = col::<StringArray>(batch, "department")?;
    let ctype = col::<StringArray>(batch, "client_type")?;
    let sup = col::<BooleanArray>(batch, "suppressed")?;
    let k = col::<Int64Array>(batch, "min_group_size")?;
    let resp = col::<Int64Array>(batch, "respondents")?;
    let negs = col::<Float64Array>(batch, "negative_share")?;
    let net = col::<Float64Array>(batch, "net_sentiment")?;
    let attr = col::<Int64Array>(batch, "attrition_risk")?;
    let enps = col::<Float64Array>(batch, "enps")?;
    let topics = col::<StringArray>(batch, "top_topics")?;
    let mut rows = Vec::new();
    for i in 0..batch.num_rows() {
        // Anything not clearly published is shown as suppressed.
        let suppressed = sup.is_null(i) || sup.value(i);
        let t: Vec<TopicStat> = match (suppressed, opt_str(topics, i)) {
            (false, Some(j)) => {
                serde_json::from_str(&j).context("top_topics is not the documented JSON")?
            }
            _ => vec![],
        };
        rows.push(WeeklyRow {
            week: week.value(i).to_string(),
            department: dept.value(i).to_string(),
            client_type: ctype.value(i).to_string(),
            suppressed,
            min_group_size: opt_i64(k, i).unwrap_or(5),
            respondents: keep(suppressed, opt_i64(resp, i)),
            negative_share: keep(suppressed, opt_f64(negs, i)),
            net_sentiment: keep(suppressed, opt_f64(net, i)),
            attrition_risk: keep(suppressed, opt_i64(attr, i)),
            enps: keep(suppressed, opt_f64(enps, i)),
            topics: t,
        });
    }
    Ok(rows)
}

fn keep<T>(suppressed: bool, v: Option<T>) -> Option<T> {
    if suppressed {
        None
    } else {
        v
    }
}

fn negative_mentions(batch: &RecordBatch, into: &mut Vec<Mention>) -> anyhow::Result<()> {
    let sentiment = col::<StringArray>(batch, "sentiment")?;
    let text = col::<StringArray>(batch, "text")?;
    let brand = col::<StringArray>(batch, "brand")?;
    let channel = col::<StringArray>(batch, "channel")?;
    let lang = col::<StringArray>(batch, "language")?;
    let eng = col::<Int64Array>(batch, "engagement")?;
    let score = batch
        .column_by_name("sentiment_score")
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::Float32Array>())
        .context("column \"sentiment_score\" is missing or not float32")?;
    let time = col::<TimestampMicrosecondArray>(batch, "event_time")?;
    for i in 0..batch.num_rows() {
        if sentiment.value(i) != "negative" {
            continue;
        }
        into.push(Mention {
            event_time: (!time.is_null(i)).then(|| time.value(i)),
            brand: opt_str(brand, i),
            channel: opt_str(channel, i),
            language: lang.value(i).to_string(),
            engagement: opt_i64(eng, i).unwrap_or(0),
            sentiment_score: score.value(i) as f64,
            text: text.value(i).to_string(),
        });
    }
    Ok(())
}

impl ReportData {
    /// Reads what the report needs; `date` None = the latest partition present.
    pub fn load(out: &Path, date: Option<NaiveDate>) -> anyhow::Result<ReportData> {
        // Read one committed version, even if a run commits while the report reads.
        let shown = out.to_path_buf();
        let out = &crate::publish::read_root(out);
        if !out.is_dir() {
            anyhow::bail!(
                "{} is not a directory (expected a pulso output root)",
                out.display()
            );
        }
        let date = match date {
            Some(d) => d,
            None => latest_partition(out)?.with_context(|| {
                format!(
                    "no date=YYYY-MM-DD partitions under {}; run the pipeline first",
                    out.display()
                )
            })?,
        };

        let mut brand_rows_d = Vec::new();
        let mut trend: BTreeMap<String, BTreeMap<NaiveDate, (i64, i64, i64)>> = BTreeMap::new();
        let mut brand_types = BTreeMap::new();
        let from = date - Duration::days(TREND_DAYS - 1);
        for (pdate, dir) in partitions(&out.join(BRAND_DAILY))? {
            if pdate > date || pdate < from - Duration::days(1) {
                continue;
            }
            for b in read_parquet_dir(&dir)? {
                let rows = brand_rows(&b).with_context(|| format!("reading {}", dir.display()))?;
                for r in &rows {
                    if r.day >= from && r.day <= date {
                        let e = trend
                            .entry(r.brand.clone())
                            .or_default()
                            .entry(r.day)
                            .or_default();
                        e.0 += r.positive;
                        e.1 += r.negative;
                        e.2 += r.mentions;
                        brand_types.insert(r.brand.clone(), r.brand_type.clone());
                    }
                }
                if pdate == date {
                    brand_rows_d.extend(rows);
                }
            }
        }
        for r in &brand_rows_d {
            brand_types
                .entry(r.brand.clone())
                .or_insert_with(|| r.brand_type.clone());
        }

        let mut weekly = Vec::new();
        let wdir = part_dir(out, ENGAGEMENT_WEEKLY, date);
        for b in read_parquet_dir(&wdir)? {
            weekly.extend(weekly_rows(&b).with_context(|| format!("reading {}", wdir.display()))?);
        }

        let mut mentions = Vec::new();
        let sdir = part_dir(out, "signals/segment=external", date);
        for b in read_parquet_dir(&sdir)? {
            negative_mentions(&b, &mut mentions)
                .with_context(|| format!("reading {}", sdir.display()))?;
        }
        // Signals carry the `brand` field only; name the tracked brand mentioned in the text otherwise,
        // with the brands and competitors known from brand_daily.
        let names = |kind: &str| {
            brand_types
                .iter()
                .filter(|(_, t)| t.as_str() == kind)
                .map(|(b, _)| b.clone())
                .collect::<Vec<_>>()
        };
        let matcher = BrandMatcher::new(&names("brand"), &names("competitor"));
        for m in &mut mentions {
            if m.brand.as_deref().is_none_or(|b| b.trim().is_empty()) {
                let (b, _) = matcher.assign(None, &m.text);
                m.brand = (b != NO_BRAND).then_some(b);
            }
        }
        mentions.sort_by(|a, b| {
            b.engagement
                .cmp(&a.engagement)
                .then(a.sentiment_score.total_cmp(&b.sentiment_score))
                .then(a.text.cmp(&b.text))
        });
        mentions.truncate(TOP_NEGATIVE);

        Ok(ReportData {
            out: shown,
            date,
            brand_rows: brand_rows_d,
            trend,
            brand_types,
            weekly_rows: weekly,
            negative_mentions: mentions,
        })
    }

    /// Brands in display order: ours, then competitors, then others by mentions (at most `max`).
    pub fn brands_ordered(&self, max: usize) -> Vec<String> {
        let mut v: Vec<(u8, i64, String)> = self
            .trend
            .iter()
            .map(|(b, days)| {
                let rank = match self.brand_types.get(b).map(String::as_str) {
                    Some("brand") => 0,
                    Some("competitor") => 1,
                    _ => 2,
                };
                (rank, -days.values().map(|d| d.2).sum::<i64>(), b.clone())
            })
            .collect();
        v.sort();
        v.into_iter().take(max).map(|x| x.2).collect()
    }

    /// Share of voice per tracked brand over partition `date`: brand mentions / tracked mentions.
    pub fn share_of_voice(&self) -> Vec<(String, String, i64, f64)> {
        let mut per: BTreeMap<String, (String, i64)> = BTreeMap::new();
        let mut total = 0;
        for r in self.brand_rows.iter().filter(|r| r.brand_type != "other") {
            let e = per
                .entry(r.brand.clone())
                .or_insert((r.brand_type.clone(), 0));
            e.1 += r.mentions;
            total += r.mentions;
        }
        let mut v: Vec<_> = per
            .into_iter()
            .map(|(b, (t, m))| {
                (
                    b,
                    t,
                    m,
                    if total > 0 {
                        m as f64 / total as f64
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        v
    }

    pub fn spikes(&self) -> Vec<&BrandRow> {
        self.brand_rows.iter().filter(|r| r.spike).collect()
    }

    /// (row label, topic → (mentions, negative share)) for published weekly groups, merged across
    /// weeks of the partition; topics in first-seen order. Only published numbers are combined.
    pub fn heatmap(&self) -> (Vec<String>, Vec<HeatRow>) {
        let mut topics: Vec<String> = Vec::new();
        let mut rows: BTreeMap<String, BTreeMap<String, (i64, f64)>> = BTreeMap::new();
        for r in self.weekly_rows.iter().filter(|r| !r.suppressed) {
            let label = format!("{} · {}", r.department, r.client_type);
            let row = rows.entry(label).or_default();
            for t in &r.topics {
                if !topics.contains(&t.topic) {
                    topics.push(t.topic.clone());
                }
                let e = row.entry(t.topic.clone()).or_insert((0, 0.0));
                // merge by negative mentions: share = Σ(share·mentions) / Σ mentions
                let neg = e.1 * e.0 as f64 + t.negative_share * t.mentions as f64;
                e.0 += t.mentions;
                e.1 = neg / e.0 as f64;
            }
        }
        (topics, rows.into_iter().collect())
    }
}

fn net_for(days: &BTreeMap<NaiveDate, (i64, i64, i64)>, d: NaiveDate) -> Option<f64> {
    days.get(&d)
        .and_then(|(p, n, _)| crate::aggregate::net_sentiment(*p, *n))
}

// ------------------------------------------------------------------------------------------------
// Terminal
// ------------------------------------------------------------------------------------------------

/// Input text made safe for a terminal: control characters (escape sequences) become spaces.
fn term_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn clip(s: &str, n: usize) -> String {
    let s = term_safe(s);
    if s.chars().count() <= n {
        s
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

fn text_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            s.push_str(c);
            s.push_str(&" ".repeat(pad));
            s.push_str(if i + 1 < cells.len() { "  " } else { "" });
        }
        s.trim_end().to_string() + "\n"
    };
    let mut s = line(headers.to_vec());
    s += &line(
        w.iter()
            .map(|n| "─".repeat(*n))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for r in rows {
        s += &line(r.iter().map(String::as_str).collect());
    }
    s
}

fn fmt_net(v: Option<f64>) -> String {
    v.map(|v| format!("{v:+.2}")).unwrap_or_else(|| "—".into())
}
fn fmt_pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.0}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

pub fn render_terminal(d: &ReportData) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "pulso report — {} (date={})\n", d.out.display(), d.date);

    let _ = writeln!(s, "MARKETING — brand perception (external signals)\n");
    let days: Vec<NaiveDate> = (0..TERMINAL_DAYS)
        .rev()
        .map(|i| d.date - Duration::days(i))
        .collect();
    let brands = d.brands_ordered(15);
    if brands.is_empty() {
        let _ = writeln!(s, " No brand_daily rows for the last {TREND_DAYS} days.\n");
    } else {
        let _ = writeln!(s, " Net sentiment by brand and day, (pos − neg) / (pos + neg), all channels and languages:");
        let mut headers = vec!["brand".to_string()];
        headers.extend(days.iter().map(|x| x.format("%m-%d").to_string()));
        let rows: Vec<Vec<String>> = brands
            .iter()
            .map(|b| {
                let mut r = vec![clip(b, 28)];
                r.extend(days.iter().map(|x| fmt_net(net_for(&d.trend[b], *x))));
                r
            })
            .collect();
        let h: Vec<&str> = headers.iter().map(String::as_str).collect();
        s += &text_table(&h, &rows);
        s.push('\n');
    }
    let sov = d.share_of_voice();
    let _ = writeln!(
        s,
        " Share of voice (mentions / mentions of all tracked brands and competitors, run {}):",
        d.date
    );
    if sov.is_empty() {
        let _ = writeln!(s, " No tracked brand or competitor mentions.\n");
    } else {
        let rows: Vec<Vec<String>> = sov
            .iter()
            .map(|(b, t, m, v)| {
                vec![
                    clip(b, 28),
                    t.clone(),
                    m.to_string(),
                    format!("{:.1}%", v * 100.0),
                ]
            })
            .collect();
        s += &text_table(&["brand", "type", "mentions", "share"], &rows);
        s.push('\n');
    }
    let spikes = d.spikes();
    let _ = writeln!(s, " Spikes (trailing 7-day mean + k·σ):");
    if spikes.is_empty() {
        let _ = writeln!(s, " none\n");
    } else {
        let rows: Vec<Vec<String>> = spikes
            .iter()
            .map(|r| {
                vec![
                    r.day.to_string(),
                    clip(&r.brand, 24),
                    clip(&r.channel, 16),
                    r.language.clone(),
                    r.mentions.to_string(),
                    clip(r.spike_reason.as_deref().unwrap_or(""), 60),
                ]
            })
            .collect();
        s += &text_table(
            &["day", "brand", "channel", "lang", "mentions", "why"],
            &rows,
        );
        s.push('\n');
    }
    if !d.negative_mentions.is_empty() {
        let _ = writeln!(s, " Most engaged negative mentions:");
        let rows: Vec<Vec<String>> = d
            .negative_mentions
            .iter()
            .map(|m| {
                vec![
                    m.engagement.to_string(),
                    clip(m.brand.as_deref().unwrap_or("—"), 20),
                    clip(m.channel.as_deref().unwrap_or("—"), 14),
                    clip(&m.text, 70),
                ]
            })
            .collect();
        s += &text_table(&["engagement", "brand", "channel", "text"], &rows);
        s.push('\n');
    }

    let _ = writeln!(
        s,
        "HR — engagement (internal signals, weekly; small groups suppressed)\n"
    );
    if d.weekly_rows.is_empty() {
        let _ = writeln!(s, " No engagement_weekly rows for date={}.", d.date);
    } else {
        let rows: Vec<Vec<String>> = d
            .weekly_rows
            .iter()
            .map(|r| {
                let mut v = vec![
                    r.week.clone(),
                    clip(&r.department, 24),
                    r.client_type.clone(),
                ];
                if r.suppressed {
                    v.push(format!("suppressed (< {})", r.min_group_size));
                    v.extend(std::iter::repeat_n(String::new(), 5));
                } else {
                    v.push(r.respondents.map(|x| x.to_string()).unwrap_or_default());
                    v.push(fmt_pct(r.negative_share));
                    v.push(fmt_net(r.net_sentiment));
                    v.push(r.attrition_risk.map(|x| x.to_string()).unwrap_or_default());
                    v.push(
                        r.enps
                            .map(|x| format!("{x:+.0}"))
                            .unwrap_or_else(|| "—".into()),
                    );
                    v.push(clip(
                        &r.topics
                            .iter()
                            .take(3)
                            .map(|t| format!("{} ({:.0}% neg)", t.topic, t.negative_share * 100.0))
                            .collect::<Vec<_>>()
                            .join(", "),
                        60,
                    ));
                }
                v
            })
            .collect();
        s += &text_table(
            &[
                "week",
                "department",
                "client_type",
                "respondents",
                "negative",
                "net",
                "attrition",
                "eNPS",
                "top topics",
            ],
            &rows,
        );
    }
    s
}

// ------------------------------------------------------------------------------------------------
// HTML
// ------------------------------------------------------------------------------------------------

/// Escapes `& < > " '` so input text is always shown as text (also inside attributes).
pub fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// The Content-Security-Policy of the HTML report: no scripts, no external anything.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f",
];

const CSS: &str = r#"
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#b8c0d0;font-size:13px}
main{padding:8px 32px 32px;max-width:1200px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:16px 20px;margin:18px 0}
h2{font-size:18px;margin:0 0 4px}
h3{font-size:15px;margin:18px 0 6px}
p.note{color:#5b6475;font-size:12px;margin:2px 0 10px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e6e8ec;vertical-align:top}
th{background:#fafbfc;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.sup{color:#8a93a3;font-style:italic}
td.text{max-width:560px;word-wrap:break-word}
.pos{color:#1a7f37}.neg{color:#c62828}
.heat td{text-align:center;min-width:70px}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
svg text{font-family:inherit}
"#;

fn net_class(v: Option<f64>) -> &'static str {
    match v {
        Some(v) if v > 0.05 => "num pos",
        Some(v) if v < -0.05 => "num neg",
        _ => "num",
    }
}

/// Net sentiment per brand over days (SVG line chart, y from −1 to 1).
fn line_chart(d: &ReportData, brands: &[String]) -> String {
    let days: BTreeSet<NaiveDate> = brands
        .iter()
        .flat_map(|b| d.trend[b].keys().copied())
        .collect();
    let (Some(first), Some(last)) = (days.first().copied(), days.last().copied()) else {
        return "<p class=\"note\">No brand history yet.</p>".into();
    };
    let n = (last - first).num_days().max(1) as f64;
    let (w, h, l, r, t, b) = (1080.0, 300.0, 48.0, 16.0, 14.0, 34.0);
    let x = |day: NaiveDate| l + (day - first).num_days() as f64 / n * (w - l - r);
    let y = |v: f64| t + (1.0 - v) / 2.0 * (h - t - b);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Net sentiment per brand\">"
    );
    for g in [-1.0, -0.5, 0.0, 0.5, 1.0] {
        let yy = y(g);
        let stroke = if g == 0.0 { "#9aa3b2" } else { "#e6e8ec" };
        let _ = write!(
            s,
            "<line x1=\"{l}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{stroke}\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6475\">{g:+.1}</text>",
            w - r,
            l - 6.0,
            yy + 4.0
        );
    }
    let total = (last - first).num_days() + 1;
    let step = ((total as f64) / 10.0).ceil().max(1.0) as i64;
    let mut i = 0;
    while i < total {
        let day = first + Duration::days(i);
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6475\">{}</text>",
            x(day),
            h - 12.0,
            day.format("%m-%d")
        );
        i += step;
    }
    for (bi, brand) in brands.iter().enumerate() {
        let color = PALETTE[bi % PALETTE.len()];
        let series = &d.trend[brand];
        let mut segment: Vec<(f64, f64)> = Vec::new();
        let mut segments = Vec::new();
        let mut day = first;
        while day <= last {
            match net_for(series, day) {
                Some(v) => segment.push((x(day), y(v))),
                None if !segment.is_empty() => segments.push(std::mem::take(&mut segment)),
                None => {}
            }
            day += Duration::days(1);
        }
        if !segment.is_empty() {
            segments.push(segment);
        }
        for seg in &segments {
            let pts: Vec<String> = seg.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
        for (day, (p, ng, m)) in series {
            if let Some(v) = crate::aggregate::net_sentiment(*p, *ng) {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{} {}: {v:+.2} ({m} mentions)</title></circle>",
                    x(*day),
                    y(v),
                    escape_html(brand),
                    day
                );
            }
        }
    }
    s.push_str("</svg>");
    s.push_str("<div class=\"legend\">");
    for (bi, brand) in brands.iter().enumerate() {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span>",
            PALETTE[bi % PALETTE.len()],
            escape_html(brand)
        );
    }
    s.push_str("</div>");
    s
}

/// Share of voice per tracked brand (SVG horizontal bars).
fn sov_chart(sov: &[(String, String, i64, f64)]) -> String {
    if sov.is_empty() {
        return "<p class=\"note\">No tracked brand or competitor mentions in this run.</p>".into();
    }
    let (w, bar, gap, label_w) = (1080.0, 22.0, 8.0, 220.0);
    let h = sov.len() as f64 * (bar + gap) + gap;
    let max = sov.iter().map(|x| x.3).fold(0.0, f64::max).max(1e-9);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Share of voice\">"
    );
    for (i, (brand, kind, m, v)) in sov.iter().enumerate() {
        let yy = gap + i as f64 * (bar + gap);
        let bw = v / max * (w - label_w - 120.0);
        let color = if kind == "brand" {
            "#1f77b4"
        } else {
            "#9aa3b2"
        };
        let label: String = brand.chars().take(30).collect();
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{yy:.1}\" width=\"{bw:.1}\" height=\"{bar}\" rx=\"3\" fill=\"{color}\"><title>{}: {m} mentions</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#1d2330\">{:.1}% ({m})</text>",
            label_w - 8.0,
            yy + bar * 0.72,
            escape_html(&label),
            escape_html(brand),
            label_w + bw + 6.0,
            yy + bar * 0.72,
            v * 100.0
        );
    }
    s.push_str("</svg>");
    s
}

fn heat_color(v: f64) -> (String, &'static str) {
    // white (0) → red (1)
    let v = v.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * v).round() as u8;
    let bg = format!(
        "#{:02x}{:02x}{:02x}",
        lerp(255.0, 198.0),
        lerp(255.0, 40.0),
        lerp(255.0, 40.0)
    );
    (bg, if v > 0.55 { "#fff" } else { "#1d2330" })
}

fn heatmap(d: &ReportData) -> String {
    let (topics, rows) = d.heatmap();
    if rows.is_empty() || topics.is_empty() {
        return "<p class=\"note\">No published group has a topic mentioned by enough people.</p>"
            .into();
    }
    let mut s = String::from("<table class=\"heat\"><tr><th>department · client type</th>");
    for t in &topics {
        let _ = write!(s, "<th>{}</th>", escape_html(t));
    }
    s.push_str("</tr>");
    for (label, cells) in &rows {
        let _ = write!(s, "<tr><th>{}</th>", escape_html(label));
        for t in &topics {
            match cells.get(t) {
                Some((m, v)) => {
                    let (bg, fg) = heat_color(*v);
                    let _ = write!(
                        s,
                        "<td style=\"background:{bg};color:{fg}\" title=\"{} mentions\">{:.0}%</td>",
                        m,
                        v * 100.0
                    );
                }
                None => s.push_str("<td style=\"color:#b8c0d0\">—</td>"),
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

fn fmt_time(t: Option<i64>) -> String {
    t.and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".into())
}

/// The self-contained HTML report.
pub fn render_html(d: &ReportData) -> String {
    let mut s = String::new();
    let date = d.date;
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>pulso report {date}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <header><h1>pulso — brand perception and engagement</h1><p>date={date} · generated from {}</p></header>\n<main>\n",
        escape_html(&d.out.display().to_string())
    );

    // Marketing
    s.push_str("<section id=\"marketing\"><h2>Marketing — brand perception</h2>");
    let _ = write!(
        s,
        "<p class=\"note\">External signals. Net sentiment = (positive − negative) / (positive + negative), all channels and languages, last {TREND_DAYS} days.</p>"
    );
    let brands = d.brands_ordered(PALETTE.len());
    s.push_str("<h3>Net sentiment trend per brand</h3>");
    s.push_str(&line_chart(d, &brands));

    s.push_str("<h3>Share of voice</h3><p class=\"note\">Mentions of each tracked brand and competitor / mentions of all of them, in this run.</p>");
    s.push_str(&sov_chart(&d.share_of_voice()));

    s.push_str("<h3>Spikes</h3><p class=\"note\">Mentions or negative share above the trailing 7-day mean + k·σ for a brand, channel and language.</p>");
    let spikes = d.spikes();
    if spikes.is_empty() {
        s.push_str("<p>No spikes.</p>");
    } else {
        s.push_str("<table><tr><th>day</th><th>brand</th><th>channel</th><th>lang</th><th class=\"num\">mentions</th><th class=\"num\">net</th><th>why</th></tr>");
        for r in spikes {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                r.day,
                escape_html(&r.brand),
                escape_html(&r.channel),
                escape_html(&r.language),
                r.mentions,
                net_class(r.net_sentiment),
                fmt_net(r.net_sentiment),
                escape_html(r.spike_reason.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</table>");
    }

    s.push_str("<h3>Most engaged negative mentions</h3><p class=\"note\">Negative external signals of this run, by engagement (likes + shares + replies).</p>");
    if d.negative_mentions.is_empty() {
        s.push_str("<p>None.</p>");
    } else {
        s.push_str("<table><tr><th>time (UTC)</th><th>brand</th><th>channel</th><th>lang</th><th class=\"num\">engagement</th><th class=\"num\">score</th><th>text</th></tr>");
        for m in &d.negative_mentions {
            let text: String = m.text.chars().take(400).collect();
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num neg\">{:+.2}</td><td class=\"text\">{}</td></tr>",
                fmt_time(m.event_time),
                escape_html(m.brand.as_deref().unwrap_or("—")),
                escape_html(m.channel.as_deref().unwrap_or("—")),
                escape_html(&m.language),
                m.engagement,
                m.sentiment_score,
                escape_html(&text)
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section>\n");

    // HR
    s.push_str("<section id=\"hr\"><h2>HR — engagement</h2>");
    let k = d.weekly_rows.first().map(|r| r.min_group_size).unwrap_or(5);
    let _ = write!(
        s,
        "<p class=\"note\">Internal signals by ISO week, department and client type. Groups with fewer than {k} people are suppressed; no totals are shown so suppressed groups cannot be recovered.</p>"
    );
    s.push_str("<h3>Engagement risk: negative share by topic</h3><p class=\"note\">Published groups only; a topic appears when at least that many people mentioned it.</p>");
    s.push_str(&heatmap(d));
    s.push_str("<h3>Weekly groups</h3>");
    if d.weekly_rows.is_empty() {
        s.push_str("<p>No engagement rows for this date.</p>");
    } else {
        s.push_str("<table><tr><th>week</th><th>department</th><th>client type</th><th class=\"num\">respondents</th><th class=\"num\">negative</th><th class=\"num\">net</th><th class=\"num\">attrition risk</th><th class=\"num\">eNPS</th><th>top topics</th></tr>");
        for r in &d.weekly_rows {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td>",
                escape_html(&r.week),
                escape_html(&r.department),
                escape_html(&r.client_type)
            );
            if r.suppressed {
                let _ = write!(
                    s,
                    "<td class=\"sup\" colspan=\"6\">suppressed (&lt; {})</td></tr>",
                    r.min_group_size
                );
                continue;
            }
            let topics = r
                .topics
                .iter()
                .take(4)
                .map(|t| {
                    format!(
                        "{} ({:.0}% neg)",
                        escape_html(&t.topic),
                        t.negative_share * 100.0
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let _ = write!(
                s,
                "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                r.respondents.map(|x| x.to_string()).unwrap_or_default(),
                fmt_pct(r.negative_share),
                net_class(r.net_sentiment),
                fmt_net(r.net_sentiment),
                r.attrition_risk.map(|x| x.to_string()).unwrap_or_default(),
                r.enps.map(|x| format!("{x:+.0}")).unwrap_or_else(|| "—".into()),
                topics
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section>\n</main>\n</body>\n</html>\n");
    s
}
