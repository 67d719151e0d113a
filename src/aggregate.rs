//! What marketing and HR read: `aggregates/brand_daily` and `aggregates/engagement_weekly`.
//!
//! Both tables are written under the run's logical date (`date=YYYY-MM-DD`) and computed over the
//! signals of this run only. Columns and formulas are listed on [`brand_daily_schema`] and
//! [`engagement_weekly_schema`]; the README section "Aggregates" repeats them for readers.
//!
//! ## brand_daily (external signals)
//! One row per event day (UTC date of `event_time`, the run date when it is null) × brand × channel ×
//! language. The brand of a signal is its `brand` field (spelled as configured when it names a tracked
//! brand or competitor), else the tracked name mentioned earliest in the text, else `(none)`.
//!
//! * `net_sentiment = (positive − negative) / (positive + negative)`, null when both are 0.
//! * `engagement_weighted_sentiment = Σ sentiment_score·(1 + engagement) / Σ (1 + engagement)`, with a
//!   missing engagement counted as 0 (so every mention weighs at least 1).
//! * `share_of_voice = mentions of this row / mentions of all tracked brands and competitors on that
//!   day` (all channels and languages in this run). Rows are additive: summing a brand's rows for a
//!   day gives that brand's share of voice for the day. Null for untracked brands and `(none)`.
//! * `spike`: `mentions > mean + k·σ` or `negative_share > mean + k·σ`, on a day with at least 5
//!   mentions (fewer is noise on a sparse brand/channel/language series), where mean
//!   and σ (population standard deviation) come from the same (brand, channel, language) over the 7
//!   days before the row's day. History = earlier days in this run plus the brand_daily partitions of
//!   earlier runs (partitions dated before this run's date; this run's own partition is ignored because
//!   it is being replaced; later partitions are ignored so backfills do not see the future). Counts of
//!   the same day found in several partitions are added. A day counts as history when any brand has a
//!   row for it; a key missing on such a day had 0 mentions. At least 3 history days are needed
//!   (negative share: 3 days with mentions of that key); with less, `spike = false`. σ is floored at 1
//!   mention and at 0.05 negative share so flat histories do not alert on noise.
//!   `spike_reason` explains the alert, e.g. `mentions 41 > 12.3 + 2×4.1`.
//!
//! ## engagement_weekly (internal signals)
//! One row per ISO week × department × client_type. Groups with fewer than `min_group_size` distinct
//! authors are published with `suppressed = true` and every metric null. Authorless signals cannot
//! prove distinct people, so they do not count towards the threshold. No totals or rollups are
//! published (they would let a suppressed group be recovered by subtraction); every signal belongs to
//! exactly one row, and each run covers different signals, so no two published numbers overlap.
//! Inside a published group, a topic is listed only when at least `min_group_size` distinct authors
//! mentioned it, and eNPS only when at least `min_group_size` respondents gave a score (scores on
//! signals about an internal service are internal NPS answers and do not count). A topic's
//! `negative_share` uses the sentiment of the sentences that raised it (aspects) when present.
//! Weeks are published once, when complete ([`publishable_weeks`]).
//!
//! ## internal_service_weekly (internal signals with a provider)
//! See [`crate::services::weekly`].

use crate::enrich::{BrandKind, BrandMatcher};
use crate::record::{Segment, Sentiment, Signal};
use anyhow::Context;
use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Table directories, relative to the output root.
pub const BRAND_DAILY: &str = "aggregates/brand_daily";
pub const ENGAGEMENT_WEEKLY: &str = "aggregates/engagement_weekly";

/// Days of history looked at for spikes.
pub const SPIKE_WINDOW_DAYS: i64 = 7;
/// History days needed before a spike can be flagged.
pub const SPIKE_MIN_HISTORY_DAYS: usize = 3;
/// Mentions needed on the day for any spike (fewer is noise on sparse brand/channel/language series).
pub const SPIKE_MIN_MENTIONS: i64 = 5;
/// Floors for σ (see module docs).
pub const SPIKE_MIN_SIGMA_MENTIONS: f64 = 1.0;
pub const SPIKE_MIN_SIGMA_SHARE: f64 = 0.05;
/// Department value for records without one.
pub const NO_DEPARTMENT: &str = "(none)";
/// Channel value for records without one.
pub const NO_CHANNEL: &str = "(none)";

#[derive(Clone, Debug)]
pub struct AggregateConfig {
    pub brands: Vec<String>,
    pub competitors: Vec<String>,
    pub min_group_size: usize,
    pub spike_k: f64,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            brands: vec![],
            competitors: vec![],
            min_group_size: 5,
            spike_k: 2.0,
        }
    }
}

/// Schema of `aggregates/brand_daily/date=*/part-*.parquet`.
///
/// `day` (date), `brand`, `brand_type` (`brand` | `competitor` | `other`), `channel`, `language`,
/// `mentions`, `positive`, `neutral`, `negative`, `negative_share` (negative / mentions),
/// `net_sentiment`, `mean_sentiment_score`, `engagement` (Σ engagement), `engagement_weighted_sentiment`,
/// `share_of_voice`, `spike`, `spike_reason`, `history_days` (history days the spike test had).
pub fn brand_daily_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let s = |n: &str| Field::new(n, DataType::Utf8, false);
        let i = |n: &str| Field::new(n, DataType::Int64, false);
        let f = |n: &str, null| Field::new(n, DataType::Float64, null);
        Arc::new(Schema::new(vec![
            Field::new("day", DataType::Date32, false),
            s("brand"),
            s("brand_type"),
            s("channel"),
            s("language"),
            i("mentions"),
            i("positive"),
            i("neutral"),
            i("negative"),
            f("negative_share", false),
            f("net_sentiment", true),
            f("mean_sentiment_score", false),
            i("engagement"),
            f("engagement_weighted_sentiment", false),
            f("share_of_voice", true),
            Field::new("spike", DataType::Boolean, false),
            Field::new("spike_reason", DataType::Utf8, true),
            i("history_days"),
        ]))
    })
    .clone()
}

/// Schema of `aggregates/engagement_weekly/date=*/part-*.parquet`.
///
/// `week` (`2026-W45`), `week_start` (the Monday), `department`, `client_type`, `suppressed`,
/// `min_group_size`, then — null when suppressed — `respondents` (distinct authors), `responses`
/// (signals), `negative_share`, `net_sentiment`, `mean_sentiment_score`, `top_topics` (JSON, see
/// [`TopicStat`]), `attrition_risk` (signals flagged), `enps`, `enps_respondents`.
pub fn engagement_weekly_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let i = |n: &str| Field::new(n, DataType::Int64, true);
        let f = |n: &str| Field::new(n, DataType::Float64, true);
        Arc::new(Schema::new(vec![
            Field::new("week", DataType::Utf8, false),
            Field::new("week_start", DataType::Date32, false),
            Field::new("department", DataType::Utf8, false),
            Field::new("client_type", DataType::Utf8, false),
            Field::new("suppressed", DataType::Boolean, false),
            Field::new("min_group_size", DataType::Int64, false),
            i("respondents"),
            i("responses"),
            f("negative_share"),
            f("net_sentiment"),
            f("mean_sentiment_score"),
            Field::new("top_topics", DataType::Utf8, true),
            i("attrition_risk"),
            f("enps"),
            i("enps_respondents"),
        ]))
    })
    .clone()
}

/// One entry of the `top_topics` JSON array: `{"topic": "workload", "mentions": 7, "negative_share": 0.5714}`
/// (negative_share rounded to 4 decimals). Entries are ordered by mentions (desc), then topic.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopicStat {
    pub topic: String,
    pub mentions: i64,
    pub negative_share: f64,
}

/// `(positive − negative) / (positive + negative)`, None when both are 0.
pub fn net_sentiment(positive: i64, negative: i64) -> Option<f64> {
    let d = positive + negative;
    (d > 0).then(|| (positive - negative) as f64 / d as f64)
}

/// eNPS over 0–10 scores: `100 × (promoters (≥ 9) − detractors (≤ 6)) / scores`; None when empty.
pub fn enps(scores: &[f64]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let p = scores.iter().filter(|s| **s >= 9.0).count() as f64;
    let d = scores.iter().filter(|s| **s <= 6.0).count() as f64;
    Some(100.0 * (p - d) / scores.len() as f64)
}

/// The UTC day of an event time (µs), or `fallback`.
pub fn event_day(event_time: Option<i64>, fallback: NaiveDate) -> NaiveDate {
    event_time
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.date_naive())
        .unwrap_or(fallback)
}

/// ISO week label, e.g. `2026-W45`.
pub fn iso_week_label(d: NaiveDate) -> String {
    let w = d.iso_week();
    format!("{:04}-W{:02}", w.year(), w.week())
}

/// The Monday of the ISO week of `d`.
pub fn week_monday(d: NaiveDate) -> NaiveDate {
    let w = d.iso_week();
    NaiveDate::from_isoywd_opt(w.year(), w.week(), Weekday::Mon).expect("valid ISO week")
}

const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

pub fn date_to_days(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

pub fn days_to_date(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_CE_DAYS).expect("date in range")
}

/// Authors are counted by a 64-bit hash of their normalised identity, not the string: 8 bytes per
/// distinct author keeps the aggregator's memory small as a run grows (a collision needs ~4 billion
/// distinct authors in one group to become likely).
/// A 64-bit hash of an author id (distinct-author counts without keeping the ids).
pub(crate) type AuthorHash = u64;

pub(crate) fn author_key(a: Option<&str>) -> Option<AuthorHash> {
    a.map(crate::route::author_key)
        .filter(|a| !a.is_empty())
        .map(|a| xxhash_rust::xxh3::xxh3_64(a.as_bytes()))
}

#[derive(Clone, Debug, Default)]
struct BrandAcc {
    kind: Option<BrandKind>,
    mentions: i64,
    pos: i64,
    neu: i64,
    neg: i64,
    score_sum: f64,
    engagement: i64,
    weight_sum: f64,
    weighted_score_sum: f64,
}

/// Mentions of one topic in a group: count, negative count, distinct authors (shared with
/// `internal_service_weekly`).
#[derive(Clone, Debug, Default)]
pub(crate) struct TopicAcc {
    pub(crate) mentions: i64,
    pub(crate) negative: i64,
    pub(crate) authors: HashSet<AuthorHash>,
}

#[derive(Clone, Debug, Default)]
struct GroupAcc {
    responses: i64,
    pos: i64,
    neu: i64,
    neg: i64,
    score_sum: f64,
    authors: HashSet<AuthorHash>,
    attrition: i64,
    topics: BTreeMap<String, TopicAcc>,
    /// Latest 0–10 score per author: (event time, arrival order, score).
    latest_score: HashMap<AuthorHash, (i64, u64, f64)>,
    anonymous_scores: Vec<f64>,
    /// Authors of the signals without a provider (secondary suppression of internal_service_weekly).
    no_provider_authors: HashSet<AuthorHash>,
}

type BrandKey = (NaiveDate, String, String, String);
/// (week monday, department, client_type)
type GroupKey = (NaiveDate, String, String);

/// Collects every signal of a run, then builds the aggregate tables.
pub struct Aggregator {
    cfg: AggregateConfig,
    brands: BrandMatcher,
    brand_acc: BTreeMap<(Option<NaiveDate>, String, String, String), BrandAcc>,
    groups: BTreeMap<(Option<NaiveDate>, String, String), GroupAcc>,
    services: crate::services::weekly::ServiceAggregator,
    seen: u64,
}

impl AggregateConfig {
    pub fn build(self) -> Aggregator {
        let brands = BrandMatcher::new(&self.brands, &self.competitors);
        Aggregator {
            cfg: self,
            brands,
            brand_acc: BTreeMap::new(),
            groups: BTreeMap::new(),
            services: Default::default(),
            seen: 0,
        }
    }
}

impl Aggregator {
    /// Sees every signal of the run once (raw author identities may be used in memory, never output).
    pub fn observe(&mut self, signal: &Signal) {
        let (author, brand) = self.prepare(signal);
        self.observe_prepared(signal, author, brand);
    }

    /// What [`Aggregator::observe`] derives from the raw author and the text: the author's hash and,
    /// for an external signal, its brand. A sharded run stores these instead of the raw values
    /// ([`crate::shard`]) and the commit replays them through [`Aggregator::observe_prepared`].
    pub fn prepare(&self, signal: &Signal) -> (Option<u64>, Option<(String, BrandKind)>) {
        let r = &signal.record;
        let brand = (signal.routing.segment == Segment::External)
            .then(|| self.brands.assign(r.brand.as_deref(), &r.text));
        (author_key(r.author.as_deref()), brand)
    }

    /// [`Aggregator::observe`] with the author hash and brand already derived (see [`Aggregator::prepare`]).
    pub fn observe_prepared(
        &mut self,
        signal: &Signal,
        author: Option<u64>,
        brand: Option<(String, BrandKind)>,
    ) {
        self.seen += 1;
        let r = &signal.record;
        // Event days are resolved in `finish` (null event times take the run date, known only then).
        let day = r
            .event_time
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.date_naive());
        let sc = &signal.scored;
        match signal.routing.segment {
            Segment::External => {
                let (brand, kind) =
                    brand.unwrap_or_else(|| self.brands.assign(r.brand.as_deref(), &r.text));
                let channel = r
                    .channel
                    .as_deref()
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .unwrap_or(NO_CHANNEL);
                let key = (
                    day,
                    brand,
                    channel.to_string(),
                    signal.language.as_str().to_string(),
                );
                let a = self.brand_acc.entry(key).or_default();
                a.kind = Some(kind);
                a.mentions += 1;
                match sc.sentiment {
                    Sentiment::Positive => a.pos += 1,
                    Sentiment::Neutral => a.neu += 1,
                    Sentiment::Negative => a.neg += 1,
                }
                let s = sc.sentiment_score as f64;
                a.score_sum += s;
                let e = signal
                    .enrichment
                    .engagement
                    .or_else(|| crate::enrich::engagement(r))
                    .unwrap_or(0)
                    .max(0);
                a.engagement = a.engagement.saturating_add(e);
                let w = 1.0 + e as f64;
                a.weight_sum += w;
                a.weighted_score_sum += s * w;
            }
            Segment::Internal => {
                let dept = r
                    .department
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .unwrap_or(NO_DEPARTMENT);
                let key = (
                    day.map(week_monday),
                    dept.to_string(),
                    signal.routing.client_type.as_str().to_string(),
                );
                let seq = self.seen;
                let g = self.groups.entry(key).or_default();
                g.responses += 1;
                match sc.sentiment {
                    Sentiment::Positive => g.pos += 1,
                    Sentiment::Neutral => g.neu += 1,
                    Sentiment::Negative => g.neg += 1,
                }
                g.score_sum += sc.sentiment_score as f64;
                self.services.observe(signal, author);
                if let Some(a) = author {
                    g.authors.insert(a);
                    if signal.enrichment.provider.is_none() {
                        g.no_provider_authors.insert(a);
                    }
                }
                if signal.enrichment.attrition_risk == Some(true) {
                    g.attrition += 1;
                }
                for t in &signal.enrichment.topics {
                    let ta = g.topics.entry(t.clone()).or_default();
                    ta.mentions += 1;
                    let aspects = signal.enrichment.aspects.as_deref();
                    if crate::services::aspects::topic_sentiment(aspects, t, sc.sentiment)
                        == Sentiment::Negative
                    {
                        ta.negative += 1;
                    }
                    if let Some(a) = author {
                        ta.authors.insert(a);
                    }
                }
                // A 0–10 score on a signal about an internal service rates that service (internal
                // NPS in internal_service_weekly), not the employer: it is not an eNPS answer.
                if let Some(score) = r
                    .score
                    .filter(|s| s.is_finite() && (0.0..=10.0).contains(s))
                    .filter(|_| signal.enrichment.provider.is_none())
                {
                    match author {
                        Some(a) => {
                            let t = r.event_time.unwrap_or(i64::MIN);
                            let e = g.latest_score.entry(a).or_insert((t, seq, score));
                            if (t, seq) >= (e.0, e.1) {
                                *e = (t, seq, score);
                            }
                        }
                        None => g.anonymous_scores.push(score),
                    }
                }
            }
        }
    }

    /// Final tables as (relative table dir, batch), e.g. ("aggregates/brand_daily", batch).
    /// `out` is the published output root, read for earlier runs' aggregates (spike history).
    /// Both tables are always returned (possibly empty, so a re-run replaces stale rows).
    pub fn finish(self, out: &Path, date: NaiveDate) -> anyhow::Result<Vec<(String, RecordBatch)>> {
        use crate::services::weekly::INTERNAL_SERVICE_WEEKLY;
        let brand_daily = self.brand_daily(out, date)?;
        let engagement_rule = publishable_weeks(&out.join(ENGAGEMENT_WEEKLY), date)?;
        let weekly = self.engagement_weekly(date, &engagement_rule);
        let service_rule = publishable_weeks(&out.join(INTERNAL_SERVICE_WEEKLY), date)?;
        let outside = self.published_groups_outside_services(date, &engagement_rule);
        let services =
            self.services
                .finish(out, date, self.cfg.min_group_size, &service_rule, &outside)?;
        Ok(vec![
            (BRAND_DAILY.to_string(), brand_daily),
            (ENGAGEMENT_WEEKLY.to_string(), weekly),
            (INTERNAL_SERVICE_WEEKLY.to_string(), services),
        ])
    }

    fn brand_daily(&self, out: &Path, date: NaiveDate) -> anyhow::Result<RecordBatch> {
        // Resolve null event days to the run date, merging keys.
        let mut rows: BTreeMap<BrandKey, BrandAcc> = BTreeMap::new();
        for ((day, brand, channel, lang), a) in &self.brand_acc {
            let key = (
                day.unwrap_or(date),
                brand.clone(),
                channel.clone(),
                lang.clone(),
            );
            let r = rows.entry(key).or_default();
            r.kind = r.kind.or(a.kind);
            r.mentions += a.mentions;
            r.pos += a.pos;
            r.neu += a.neu;
            r.neg += a.neg;
            r.score_sum += a.score_sum;
            r.engagement = r.engagement.saturating_add(a.engagement);
            r.weight_sum += a.weight_sum;
            r.weighted_score_sum += a.weighted_score_sum;
        }

        // Tracked mentions per day (share of voice denominator).
        let mut tracked_per_day: HashMap<NaiveDate, i64> = HashMap::new();
        for ((day, ..), a) in &rows {
            if a.kind.unwrap_or(BrandKind::Other) != BrandKind::Other {
                *tracked_per_day.entry(*day).or_default() += a.mentions;
            }
        }

        // History: earlier partitions + this run, (mentions, negative) per key and day.
        let mut history: HashMap<BrandKey, (i64, i64)> = HashMap::new();
        let mut observed: BTreeSet<NaiveDate> = BTreeSet::new();
        if let Some(min_day) = rows.keys().map(|k| k.0).min() {
            let from = min_day - Duration::days(SPIKE_WINDOW_DAYS);
            for (pdate, dir) in partitions(&out.join(BRAND_DAILY))? {
                if pdate >= date || pdate < from {
                    continue;
                }
                for batch in read_parquet_dir(&dir)? {
                    read_history(&batch, &mut history, &mut observed)
                        .with_context(|| format!("reading spike history from {}", dir.display()))?;
                }
            }
        }
        for (k, a) in &rows {
            let h = history.entry(k.clone()).or_default();
            h.0 += a.mentions;
            h.1 += a.neg;
            observed.insert(k.0);
        }

        let k = self.cfg.spike_k;
        let n = rows.len();
        let mut day_col = Vec::with_capacity(n);
        let (mut brand, mut btype, mut channel, mut lang) = (vec![], vec![], vec![], vec![]);
        let (mut mentions, mut pos, mut neu, mut neg) = (vec![], vec![], vec![], vec![]);
        let (mut neg_share, mut net, mut mean, mut eng, mut ews, mut sov) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut spike, mut reason, mut hist_days) = (vec![], vec![], vec![]);
        for ((day, b, c, l), a) in &rows {
            let kind = a.kind.unwrap_or(BrandKind::Other);
            day_col.push(date_to_days(*day));
            brand.push(b.clone());
            btype.push(kind.as_str());
            channel.push(c.clone());
            lang.push(l.clone());
            mentions.push(a.mentions);
            pos.push(a.pos);
            neu.push(a.neu);
            neg.push(a.neg);
            let share = a.neg as f64 / a.mentions as f64;
            neg_share.push(share);
            net.push(net_sentiment(a.pos, a.neg));
            mean.push(a.score_sum / a.mentions as f64);
            eng.push(a.engagement);
            ews.push(a.weighted_score_sum / a.weight_sum);
            sov.push(match (kind, tracked_per_day.get(day)) {
                (BrandKind::Other, _) | (_, None) | (_, Some(0)) => None,
                (_, Some(t)) => Some(a.mentions as f64 / *t as f64),
            });

            // Spike test against the 7 days before `day`.
            let window: Vec<NaiveDate> = observed
                .range(*day - Duration::days(SPIKE_WINDOW_DAYS)..*day)
                .copied()
                .collect();
            hist_days.push(window.len() as i64);
            let mut reasons = Vec::new();
            if window.len() >= SPIKE_MIN_HISTORY_DAYS && a.mentions >= SPIKE_MIN_MENTIONS {
                let key = |d: NaiveDate| (d, b.clone(), c.clone(), l.clone());
                let hist: Vec<(i64, i64)> = window
                    .iter()
                    .map(|d| history.get(&key(*d)).copied().unwrap_or((0, 0)))
                    .collect();
                let m: Vec<f64> = hist.iter().map(|h| h.0 as f64).collect();
                let (mu, sd) = mean_sd(&m);
                let sd = sd.max(SPIKE_MIN_SIGMA_MENTIONS);
                if a.mentions as f64 > mu + k * sd {
                    reasons.push(format!(
                        "mentions {} > {:.1} + {}×{:.1}",
                        a.mentions, mu, k, sd
                    ));
                }
                let shares: Vec<f64> = hist
                    .iter()
                    .filter(|h| h.0 > 0)
                    .map(|h| h.1 as f64 / h.0 as f64)
                    .collect();
                if shares.len() >= SPIKE_MIN_HISTORY_DAYS {
                    let (mu, sd) = mean_sd(&shares);
                    let sd = sd.max(SPIKE_MIN_SIGMA_SHARE);
                    if share > mu + k * sd {
                        reasons.push(format!(
                            "negative share {:.2} > {:.2} + {}×{:.2}",
                            share, mu, k, sd
                        ));
                    }
                }
            }
            spike.push(!reasons.is_empty());
            reason.push((!reasons.is_empty()).then(|| reasons.join("; ")));
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(day_col)),
            Arc::new(StringArray::from(brand)),
            Arc::new(StringArray::from(btype)),
            Arc::new(StringArray::from(channel)),
            Arc::new(StringArray::from(lang)),
            Arc::new(Int64Array::from(mentions)),
            Arc::new(Int64Array::from(pos)),
            Arc::new(Int64Array::from(neu)),
            Arc::new(Int64Array::from(neg)),
            Arc::new(Float64Array::from(neg_share)),
            Arc::new(Float64Array::from(net)),
            Arc::new(Float64Array::from(mean)),
            Arc::new(Int64Array::from(eng)),
            Arc::new(Float64Array::from(ews)),
            Arc::new(Float64Array::from(sov)),
            Arc::new(BooleanArray::from(spike)),
            Arc::new(StringArray::from(reason)),
            Arc::new(Int64Array::from(hist_days)),
        ];
        Ok(RecordBatch::try_new(brand_daily_schema(), cols)?)
    }

    /// Per engagement_weekly group this run publishes: the authors of its signals without a
    /// provider (what `group − published provider cells` pools besides suppressed cells).
    fn published_groups_outside_services(
        &self,
        date: NaiveDate,
        publishable: &dyn Fn(NaiveDate) -> bool,
    ) -> HashMap<GroupKey, HashSet<AuthorHash>> {
        let k = self.cfg.min_group_size.max(1);
        let run_week = week_monday(date);
        let mut groups: BTreeMap<GroupKey, Vec<&GroupAcc>> = BTreeMap::new();
        for ((w, d, c), g) in &self.groups {
            let w = w.unwrap_or(run_week);
            if publishable(w) {
                groups.entry((w, d.clone(), c.clone())).or_default().push(g);
            }
        }
        groups
            .into_iter()
            .filter_map(|(key, parts)| {
                let g = merge_groups(&parts);
                (g.authors.len() >= k).then_some((key, g.no_provider_authors))
            })
            .collect()
    }

    fn engagement_weekly(
        &self,
        date: NaiveDate,
        publishable: &dyn Fn(NaiveDate) -> bool,
    ) -> RecordBatch {
        let k = self.cfg.min_group_size.max(1);
        // Resolve null event weeks to the run date's week, merging groups.
        let run_week = week_monday(date);
        let mut groups: BTreeMap<GroupKey, Vec<&GroupAcc>> = BTreeMap::new();
        for ((w, d, c), g) in &self.groups {
            if !publishable(w.unwrap_or(run_week)) {
                continue;
            }
            groups
                .entry((w.unwrap_or(run_week), d.clone(), c.clone()))
                .or_default()
                .push(g);
        }
        let mut week = vec![];
        let mut week_start = vec![];
        let (mut dept, mut ctype, mut suppressed, mut kcol) = (vec![], vec![], vec![], vec![]);
        let (mut respondents, mut responses, mut neg_share, mut net, mut mean) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut topics_col, mut attrition, mut enps_col, mut enps_n) =
            (vec![], vec![], vec![], vec![]);
        for ((monday, d, c), parts) in &groups {
            let g = merge_groups(parts);
            week.push(iso_week_label(*monday));
            week_start.push(date_to_days(*monday));
            dept.push(d.clone());
            ctype.push(c.clone());
            kcol.push(k as i64);
            let publish = g.authors.len() >= k;
            suppressed.push(!publish);
            if !publish {
                respondents.push(None);
                responses.push(None);
                neg_share.push(None);
                net.push(None);
                mean.push(None);
                topics_col.push(None);
                attrition.push(None);
                enps_col.push(None);
                enps_n.push(None);
                continue;
            }
            respondents.push(Some(g.authors.len() as i64));
            responses.push(Some(g.responses));
            neg_share.push(Some(g.neg as f64 / g.responses as f64));
            net.push(net_sentiment(g.pos, g.neg));
            mean.push(Some(g.score_sum / g.responses as f64));
            let mut stats: Vec<TopicStat> = g
                .topics
                .iter()
                .filter(|(_, t)| t.authors.len() >= k)
                .map(|(name, t)| TopicStat {
                    topic: name.clone(),
                    mentions: t.mentions,
                    negative_share: (t.negative as f64 / t.mentions as f64 * 10_000.0).round()
                        / 10_000.0,
                })
                .collect();
            stats.sort_by(|a, b| {
                b.mentions
                    .cmp(&a.mentions)
                    .then_with(|| a.topic.cmp(&b.topic))
            });
            topics_col.push(Some(
                serde_json::to_string(&stats).expect("topic stats serialise"),
            ));
            attrition.push(Some(g.attrition));
            let scores: Vec<f64> = g
                .latest_score
                .values()
                .map(|v| v.2)
                .chain(g.anonymous_scores.iter().copied())
                .collect();
            enps_n.push(Some(scores.len() as i64));
            enps_col.push(if scores.len() >= k {
                enps(&scores)
            } else {
                None
            });
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(week)),
            Arc::new(Date32Array::from(week_start)),
            Arc::new(StringArray::from(dept)),
            Arc::new(StringArray::from(ctype)),
            Arc::new(BooleanArray::from(suppressed)),
            Arc::new(Int64Array::from(kcol)),
            Arc::new(Int64Array::from(respondents)),
            Arc::new(Int64Array::from(responses)),
            Arc::new(Float64Array::from(neg_share)),
            Arc::new(Float64Array::from(net)),
            Arc::new(Float64Array::from(mean)),
            Arc::new(StringArray::from(topics_col)),
            Arc::new(Int64Array::from(attrition)),
            Arc::new(Float64Array::from(enps_col)),
            Arc::new(Int64Array::from(enps_n)),
        ];
        RecordBatch::try_new(engagement_weekly_schema(), cols)
            .expect("columns match engagement_weekly_schema()")
    }
}

fn merge_groups(parts: &[&GroupAcc]) -> GroupAcc {
    if parts.len() == 1 {
        return parts[0].clone();
    }
    let mut g = GroupAcc::default();
    for p in parts {
        g.responses += p.responses;
        g.pos += p.pos;
        g.neu += p.neu;
        g.neg += p.neg;
        g.score_sum += p.score_sum;
        g.authors.extend(p.authors.iter().copied());
        g.attrition += p.attrition;
        for (name, t) in &p.topics {
            let e = g.topics.entry(name.clone()).or_default();
            e.mentions += t.mentions;
            e.negative += t.negative;
            e.authors.extend(t.authors.iter().copied());
        }
        for (a, v) in &p.latest_score {
            let e = g.latest_score.entry(*a).or_insert(*v);
            if (v.0, v.1) >= (e.0, e.1) {
                *e = *v;
            }
        }
        g.anonymous_scores.extend(&p.anonymous_scores);
        g.no_provider_authors
            .extend(p.no_provider_authors.iter().copied());
    }
    g
}

/// The rule against differencing weekly tables (`engagement_weekly`, `internal_service_weekly`):
/// a run dated `date` publishes a week only when the week is complete (its Sunday is before
/// `date`) and no partition of the table dated before `date` has it already. So each week is
/// published once, from one set of signals: two nights never carry two versions of a week that a
/// reader could subtract. A re-run of the same date replaces its own partition and may publish the
/// same weeks again. Signals of a week in progress, or of a week published earlier (late
/// arrivals), stay in `signals/` but are not aggregated by this run.
pub fn publishable_weeks(
    table_dir: &Path,
    date: NaiveDate,
) -> anyhow::Result<impl Fn(NaiveDate) -> bool> {
    let done = crate::services::weekly::weeks_published_before(table_dir, date)?;
    Ok(move |monday: NaiveDate| monday + Duration::days(7) <= date && !done.contains(&monday))
}

/// Mean and population standard deviation.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mu = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / n;
    (mu, var.sqrt())
}

fn read_history(
    batch: &RecordBatch,
    history: &mut HashMap<BrandKey, (i64, i64)>,
    observed: &mut BTreeSet<NaiveDate>,
) -> anyhow::Result<()> {
    let day = col::<Date32Array>(batch, "day")?;
    let brand = col::<StringArray>(batch, "brand")?;
    let channel = col::<StringArray>(batch, "channel")?;
    let lang = col::<StringArray>(batch, "language")?;
    let mentions = col::<Int64Array>(batch, "mentions")?;
    let negative = col::<Int64Array>(batch, "negative")?;
    for i in 0..batch.num_rows() {
        if day.is_null(i) {
            continue;
        }
        let d = days_to_date(day.value(i));
        observed.insert(d);
        let key = (
            d,
            brand.value(i).to_string(),
            channel.value(i).to_string(),
            lang.value(i).to_string(),
        );
        let h = history.entry(key).or_default();
        h.0 += mentions.value(i);
        h.1 += negative.value(i);
    }
    Ok(())
}

/// A column by name, downcast; an error naming the column when it is missing or of another type.
pub fn col<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> anyhow::Result<&'a T> {
    batch
        .column_by_name(name)
        .with_context(|| format!("column {name:?} is missing"))?
        .as_any()
        .downcast_ref::<T>()
        .with_context(|| format!("column {name:?} has an unexpected type"))
}

/// `date=YYYY-MM-DD` partitions under a table directory, oldest first (missing table → empty).
pub fn partitions(table_dir: &Path) -> anyhow::Result<Vec<(NaiveDate, PathBuf)>> {
    let mut v = Vec::new();
    let rd = match std::fs::read_dir(table_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", table_dir.display())),
    };
    for e in rd {
        let e = e?;
        let name = e.file_name();
        let Some(d) = name.to_str().and_then(|n| n.strip_prefix("date=")) else {
            continue;
        };
        if let (Ok(d), true) = (NaiveDate::parse_from_str(d, "%Y-%m-%d"), e.path().is_dir()) {
            v.push((d, e.path()));
        }
    }
    // A Delta table keeps replaced files until vacuumed: only partitions with live files count.
    if let Some(live) = crate::publish::delta::visible_files(table_dir)? {
        v.retain(|(_, dir)| live.iter().any(|f| f.starts_with(dir)));
    }
    v.sort();
    Ok(v)
}

/// Every batch of every `*.parquet` file directly in `dir` (files starting with `.` or `_` are
/// skipped: temporary files of an atomic write). A missing directory reads as empty.
pub fn read_parquet_dir(dir: &Path) -> anyhow::Result<Vec<RecordBatch>> {
    let mut files = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let p = e?.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.ends_with(".parquet")
                    && !name.starts_with('.')
                    && !name.starts_with('_')
                    && p.is_file()
                {
                    files.push(p);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    }
    if let Some(live) = crate::publish::delta::visible_files(dir)? {
        files.retain(|f| live.contains(f));
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let file =
            std::fs::File::open(&f).with_context(|| format!("cannot open {}", f.display()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{} is not a Parquet file", f.display()))?
            .build()?;
        for b in reader {
            out.push(b.with_context(|| format!("reading {}", f.display()))?);
        }
    }
    Ok(out)
}
