//! The "Internal services" section's data: `internal_service_weekly` rows and the three views built
//! from them (requester × provider heat map, trend per provider, topics behind the negatives).
//! Only published numbers are used; suppressed cells stay suppressed in every view.

use super::data::{opt_f64, opt_i64, opt_str};
use crate::aggregate::{col, days_to_date, partitions, read_parquet_dir, TopicStat};
use crate::services::weekly::INTERNAL_SERVICE_WEEKLY;
use anyhow::Context;
use arrow::array::{Array, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One `internal_service_weekly` row.
#[derive(Clone, Debug)]
pub struct ServiceRow {
    pub week: String,
    pub week_start: NaiveDate,
    pub provider: String,
    pub department: String,
    pub client_type: String,
    /// `cell` or `provider`.
    pub level: String,
    pub suppressed: bool,
    pub suppression: Option<String>,
    pub min_group_size: i64,
    pub responses: Option<i64>,
    pub respondents: Option<i64>,
    pub negative_share: Option<f64>,
    pub net_sentiment: Option<f64>,
    pub csat_mean: Option<f64>,
    pub csat_top2_share: Option<f64>,
    pub internal_nps: Option<f64>,
    pub net_sentiment_change: Option<f64>,
    pub topics: Vec<TopicStat>,
}

impl ServiceRow {
    pub fn is_total(&self) -> bool {
        self.level == "provider"
    }
    /// `Sales · employee`
    pub fn requester(&self) -> String {
        format!("{} · {}", self.department, self.client_type)
    }
}

fn rows(batch: &RecordBatch) -> anyhow::Result<Vec<ServiceRow>> {
    let week = col::<StringArray>(batch, "week")?;
    let ws = col::<Date32Array>(batch, "week_start")?;
    let prov = col::<StringArray>(batch, "provider")?;
    let dept = col::<StringArray>(batch, "department")?;
    let ct = col::<StringArray>(batch, "client_type")?;
    let level = col::<StringArray>(batch, "level")?;
    let sup = col::<BooleanArray>(batch, "suppressed")?;
    let why = col::<StringArray>(batch, "suppression")?;
    let k = col::<Int64Array>(batch, "min_group_size")?;
    let resp = col::<Int64Array>(batch, "responses")?;
    let who = col::<Int64Array>(batch, "respondents")?;
    let neg = col::<Float64Array>(batch, "negative_share")?;
    let net = col::<Float64Array>(batch, "net_sentiment")?;
    let csat = col::<Float64Array>(batch, "csat_mean")?;
    let top2 = col::<Float64Array>(batch, "csat_top2_share")?;
    let nps = col::<Float64Array>(batch, "internal_nps")?;
    let change = col::<Float64Array>(batch, "net_sentiment_change")?;
    let topics = col::<StringArray>(batch, "top_topics")?;
    let mut v = Vec::new();
    for i in 0..batch.num_rows() {
        // Anything not clearly published is shown as suppressed, with no number.
        let s = sup.is_null(i) || sup.value(i);
        let pubf = |a: &Float64Array| if s { None } else { opt_f64(a, i) };
        let pubi = |a: &Int64Array| if s { None } else { opt_i64(a, i) };
        let t: Vec<TopicStat> = match (s, opt_str(topics, i)) {
            (false, Some(j)) => {
                serde_json::from_str(&j).context("top_topics is not the documented JSON")?
            }
            _ => vec![],
        };
        v.push(ServiceRow {
            week: week.value(i).to_string(),
            week_start: days_to_date(ws.value(i)),
            provider: prov.value(i).to_string(),
            department: dept.value(i).to_string(),
            client_type: ct.value(i).to_string(),
            level: level.value(i).to_string(),
            suppressed: s,
            suppression: opt_str(why, i),
            min_group_size: opt_i64(k, i).unwrap_or(5),
            responses: pubi(resp),
            respondents: pubi(who),
            negative_share: pubf(neg),
            net_sentiment: pubf(net),
            csat_mean: pubf(csat),
            csat_top2_share: pubf(top2),
            internal_nps: pubf(nps),
            net_sentiment_change: pubf(change),
            topics: t,
        });
    }
    Ok(v)
}

/// Rows of every partition up to `date` whose week starts on or after `since`.
pub fn load(out: &Path, date: NaiveDate, since: NaiveDate) -> anyhow::Result<Vec<ServiceRow>> {
    let mut v = Vec::new();
    for (pdate, dir) in partitions(&out.join(INTERNAL_SERVICE_WEEKLY))? {
        if pdate > date {
            continue;
        }
        for b in read_parquet_dir(&dir)? {
            let r = rows(&b).with_context(|| format!("reading {}", dir.display()))?;
            v.extend(r.into_iter().filter(|r| r.week_start >= since));
        }
    }
    v.sort_by(|a, b| {
        (
            &a.week_start,
            &a.provider,
            a.is_total(),
            &a.department,
            &a.client_type,
        )
            .cmp(&(
                &b.week_start,
                &b.provider,
                b.is_total(),
                &b.department,
                &b.client_type,
            ))
    });
    Ok(v)
}

/// A heat map cell: published net sentiment, or suppressed, or no responses at all.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Net { net: Option<f64>, responses: i64 },
    Suppressed(String),
    Empty,
}

/// Requester (department · client type) × provider, latest week with rows.
pub struct HeatMap {
    pub week: String,
    pub providers: Vec<String>,
    pub rows: Vec<(String, Vec<Cell>)>,
}

/// One week of a provider's trend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point {
    /// Published total (net sentiment is None when no response was positive or negative).
    Net(Option<f64>),
    Suppressed,
    /// No row that week.
    Absent,
}

/// Trend per provider: weeks, and per provider its total per week.
pub struct Trend {
    pub weeks: Vec<(NaiveDate, String)>,
    pub series: Vec<(String, Vec<Point>)>,
}

/// A topic behind a provider's negatives: (topic, mentions, negative share, negative mentions).
pub type Driver = (String, i64, f64, f64);

pub fn heat_map(rows: &[ServiceRow]) -> Option<HeatMap> {
    let latest = rows.iter().map(|r| r.week_start).max()?;
    let week_rows: Vec<&ServiceRow> = rows
        .iter()
        .filter(|r| r.week_start == latest && !r.is_total())
        .collect();
    let providers: Vec<String> = week_rows
        .iter()
        .map(|r| r.provider.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let requesters: BTreeSet<String> = week_rows.iter().map(|r| r.requester()).collect();
    let mut out = Vec::new();
    for q in requesters {
        let cells = providers
            .iter()
            .map(|p| {
                match week_rows
                    .iter()
                    .find(|r| &r.provider == p && r.requester() == q)
                {
                    None => Cell::Empty,
                    Some(r) if r.suppressed => Cell::Suppressed(
                        r.suppression.clone().unwrap_or_else(|| "suppressed".into()),
                    ),
                    Some(r) => Cell::Net {
                        net: r.net_sentiment,
                        responses: r.responses.unwrap_or(0),
                    },
                }
            })
            .collect();
        out.push((q, cells));
    }
    Some(HeatMap {
        week: week_rows
            .first()
            .map(|r| r.week.clone())
            .unwrap_or_default(),
        providers,
        rows: out,
    })
}

pub fn trend(rows: &[ServiceRow]) -> Trend {
    let weeks: Vec<(NaiveDate, String)> = rows
        .iter()
        .map(|r| (r.week_start, r.week.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let providers: BTreeSet<&str> = rows.iter().map(|r| r.provider.as_str()).collect();
    let series = providers
        .into_iter()
        .map(|p| {
            let vals = weeks
                .iter()
                .map(|(w, _)| {
                    match rows
                        .iter()
                        .find(|r| r.is_total() && r.provider == p && r.week_start == *w)
                    {
                        None => Point::Absent,
                        Some(r) if r.suppressed => Point::Suppressed,
                        Some(r) => Point::Net(r.net_sentiment),
                    }
                })
                .collect();
            (p.to_string(), vals)
        })
        .collect();
    Trend { weeks, series }
}

/// Per provider, the topics of its published cells (all weeks shown) ranked by negative mentions.
pub fn drivers(rows: &[ServiceRow], per_provider: usize) -> Vec<(String, Vec<Driver>)> {
    let mut acc: BTreeMap<String, BTreeMap<String, (i64, f64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.suppressed && !r.is_total()) {
        let p = acc.entry(r.provider.clone()).or_default();
        for t in &r.topics {
            let e = p.entry(t.topic.clone()).or_insert((0, 0.0));
            e.0 += t.mentions;
            e.1 += t.negative_share * t.mentions as f64;
        }
    }
    acc.into_iter()
        .map(|(p, topics)| {
            let mut v: Vec<Driver> = topics
                .into_iter()
                .map(|(t, (m, negm))| (t, m, negm / m as f64, negm))
                .filter(|d| d.3 > 0.0)
                .collect();
            v.sort_by(|a, b| b.3.total_cmp(&a.3).then(a.0.cmp(&b.0)));
            v.truncate(per_provider);
            (p, v)
        })
        .collect()
}
