//! What the report reads: the published tables under `OUT`, nothing else.
//!
//! `aggregates/brand_daily` (partition `D` and the 30 days before it, for the trend), the weekly
//! tables (`engagement_weekly`, `internal_service_weekly`: every partition up to `D`, weeks of the
//! last [`TREND_WEEKS`]) and `signals/segment=external/date=D` (the most engaged negative mentions).

use super::{TOP_NEGATIVE, TREND_DAYS, TREND_WEEKS};
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
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    pub week_start: NaiveDate,
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
    /// `internal_service_weekly` rows of the weeks shown.
    pub services: Vec<super::services::ServiceRow>,
}

fn latest_partition(out: &Path) -> anyhow::Result<Option<NaiveDate>> {
    let mut dirs = vec![
        out.join(BRAND_DAILY),
        out.join(ENGAGEMENT_WEEKLY),
        out.join(crate::services::weekly::INTERNAL_SERVICE_WEEKLY),
    ];
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

pub(super) fn part_dir(out: &Path, table: &str, date: NaiveDate) -> PathBuf {
    out.join(table)
        .join(format!("date={}", date.format("%Y-%m-%d")))
}

pub(super) fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}
pub(super) fn opt_f64(a: &Float64Array, i: usize) -> Option<f64> {
    (!a.is_null(i)).then(|| a.value(i))
}
pub(super) fn opt_i64(a: &Int64Array, i: usize) -> Option<i64> {
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
    let wstart = col::<Date32Array>(batch, "week_start")?;
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
            week_start: days_to_date(wstart.value(i)),
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

pub(super) fn keep<T>(suppressed: bool, v: Option<T>) -> Option<T> {
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

        // Weekly tables publish each week once (see `aggregate::publishable_weeks`), so the weeks
        // of the last TREND_WEEKS live in several partitions: read every partition up to `date`.
        let since = date - Duration::weeks(TREND_WEEKS);
        let mut weekly = Vec::new();
        for (pdate, wdir) in partitions(&out.join(ENGAGEMENT_WEEKLY))? {
            if pdate > date {
                continue;
            }
            for b in read_parquet_dir(&wdir)? {
                let rows =
                    weekly_rows(&b).with_context(|| format!("reading {}", wdir.display()))?;
                weekly.extend(rows.into_iter().filter(|r| r.week_start >= since));
            }
        }
        weekly.sort_by(|a, b| {
            (&a.week, &a.department, &a.client_type).cmp(&(&b.week, &b.department, &b.client_type))
        });
        let services = super::services::load(out, date, since)?;

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
            services,
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

pub(super) fn net_for(days: &BTreeMap<NaiveDate, (i64, i64, i64)>, d: NaiveDate) -> Option<f64> {
    days.get(&d)
        .and_then(|(p, n, _)| crate::aggregate::net_sentiment(*p, *n))
}
