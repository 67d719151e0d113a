//! `aggregates/internal_service_weekly`: how departments rate the internal services they use.
//!
//! One row per ISO week × provider × requester department × client_type (`level = "cell"`), plus
//! one provider total per week (`level = "provider"`, department and client_type `(all)`).
//! Signals without a provider are not counted. Metrics:
//!
//! * `responses` (signals), `respondents` (distinct authors);
//! * `negative_share`, `net_sentiment`: over responses, each response's sentiment **about the
//!   provider** from its aspects ([`crate::services::aspects::provider_sentiment`]);
//! * `csat_mean`, `csat_top2_share` (share of 4–5), `csat_responses`: over `rating` values 1–5;
//! * `internal_nps`, `nps_respondents`: `100 × (promoters ≥ 9 − detractors ≤ 6) / respondents`
//!   over each author's latest 0–10 `score`;
//! * `top_topics` (cells only): JSON like `engagement_weekly`, negative share from aspect sentiment;
//! * `net_sentiment_change`, `negative_share_change`, `csat_mean_change`: this row minus the same
//!   key's row of the week before (this run or an earlier partition), null unless both published.
//!
//! Anonymity (`k = min_group_size`):
//! * a cell with fewer than `k` distinct authors is suppressed (`suppression = "min_group_size"`);
//! * **secondary suppression**: if a provider total is published, the cells hidden under it must
//!   pool at least `k` distinct authors, or `total − published cells` would reveal a small cell;
//!   the smallest published cells are suppressed too (`suppression = "complementary"`) until they do.
//!   The same holds across tables: an `engagement_weekly` group (week × department × client_type)
//!   minus its published provider cells must be empty or pool at least `k` authors;
//! * within a published row, CSAT, NPS and each topic need `k` contributors; on a total, CSAT and
//!   NPS are published only when the contributors hidden in cells are 0 or at least `k`; totals
//!   carry no topics.
//!
//! Publishing rule against differencing (shared with `engagement_weekly`, see
//! [`crate::aggregate::publishable_weeks`]): a week is published once it is complete (its Sunday is
//! before the run date) and only once (weeks already in an earlier partition are not written again).

use crate::aggregate::{
    date_to_days, days_to_date, enps, iso_week_label, net_sentiment, partitions, read_parquet_dir,
    week_monday, TopicStat, NO_DEPARTMENT,
};
use crate::record::{Segment, Sentiment, Signal};
use crate::services::aspects::{provider_sentiment, topic_sentiment};
use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::{Duration, NaiveDate};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Table directory, relative to the output root.
pub const INTERNAL_SERVICE_WEEKLY: &str = "aggregates/internal_service_weekly";
/// Department and client_type of provider totals.
pub const ALL: &str = "(all)";

/// Schema of `aggregates/internal_service_weekly/date=*/part-*.parquet` (see module docs).
pub fn schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let i = |n: &str| Field::new(n, DataType::Int64, true);
        let f = |n: &str| Field::new(n, DataType::Float64, true);
        let s = |n: &str, null| Field::new(n, DataType::Utf8, null);
        Arc::new(Schema::new(vec![
            s("week", false),
            Field::new("week_start", DataType::Date32, false),
            s("provider", false),
            s("department", false),
            s("client_type", false),
            s("level", false),
            Field::new("suppressed", DataType::Boolean, false),
            s("suppression", true),
            Field::new("min_group_size", DataType::Int64, false),
            i("responses"),
            i("respondents"),
            f("negative_share"),
            f("net_sentiment"),
            f("csat_mean"),
            f("csat_top2_share"),
            i("csat_responses"),
            f("internal_nps"),
            i("nps_respondents"),
            s("top_topics", true),
            f("net_sentiment_change"),
            f("negative_share_change"),
            f("csat_mean_change"),
        ]))
    })
    .clone()
}

pub(crate) use crate::aggregate::AuthorHash;
use crate::aggregate::TopicAcc;

/// Accumulated signals of one cell (or a merge of cells).
#[derive(Clone, Debug, Default)]
pub struct CellAcc {
    responses: i64,
    pos: i64,
    neg: i64,
    authors: HashSet<AuthorHash>,
    ratings: Vec<f64>,
    raters: HashSet<AuthorHash>,
    anonymous_raters: i64,
    latest_score: HashMap<AuthorHash, (i64, u64, f64)>,
    anonymous_scores: Vec<f64>,
    topics: BTreeMap<String, TopicAcc>,
}

impl CellAcc {
    fn merge(&mut self, o: &CellAcc) {
        self.responses += o.responses;
        self.pos += o.pos;
        self.neg += o.neg;
        self.authors.extend(o.authors.iter().copied());
        self.ratings.extend(&o.ratings);
        self.raters.extend(o.raters.iter().copied());
        self.anonymous_raters += o.anonymous_raters;
        for (a, v) in &o.latest_score {
            let e = self.latest_score.entry(*a).or_insert(*v);
            if (v.0, v.1) >= (e.0, e.1) {
                *e = *v;
            }
        }
        self.anonymous_scores.extend(&o.anonymous_scores);
        for (n, t) in &o.topics {
            let e = self.topics.entry(n.clone()).or_default();
            e.mentions += t.mentions;
            e.negative += t.negative;
            e.authors.extend(t.authors.iter().copied());
        }
    }
    /// Distinct raters (authorless ratings count as nobody: they cannot prove distinct people).
    fn rater_count(&self) -> usize {
        self.raters.len()
    }
    fn scores(&self) -> Vec<f64> {
        self.latest_score
            .values()
            .map(|v| v.2)
            .chain(self.anonymous_scores.iter().copied())
            .collect()
    }
    fn scorer_count(&self) -> usize {
        self.latest_score.len()
    }
}

/// (week monday or None for a null event time, provider, department, client_type)
type Key = (Option<NaiveDate>, String, String, String);

/// Collects the signals that have a provider.
#[derive(Default)]
pub struct ServiceAggregator {
    cells: BTreeMap<Key, CellAcc>,
    seq: u64,
}

/// A row about to be written.
#[derive(Clone, Debug, Default)]
struct Row {
    monday: Option<NaiveDate>,
    provider: String,
    department: String,
    client_type: String,
    level: &'static str,
    suppression: Option<&'static str>,
    responses: Option<i64>,
    respondents: Option<i64>,
    negative_share: Option<f64>,
    net: Option<f64>,
    csat_mean: Option<f64>,
    csat_top2: Option<f64>,
    csat_n: Option<i64>,
    nps: Option<f64>,
    nps_n: Option<i64>,
    topics: Option<String>,
    net_change: Option<f64>,
    neg_change: Option<f64>,
    csat_change: Option<f64>,
}

impl ServiceAggregator {
    /// Sees one signal (`author` is the raw author, kept in memory only as a hash).
    pub fn observe(&mut self, signal: &Signal, author: Option<AuthorHash>) {
        let Some(provider) = signal.enrichment.provider.as_deref() else {
            return;
        };
        if signal.routing.segment != Segment::Internal {
            return;
        }
        self.seq += 1;
        let r = &signal.record;
        let week = r
            .event_time
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| week_monday(t.date_naive()));
        let dept = r
            .department
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .unwrap_or(NO_DEPARTMENT);
        let key = (
            week,
            provider.to_string(),
            dept.to_string(),
            signal.routing.client_type.as_str().to_string(),
        );
        let aspects = signal.enrichment.aspects.as_deref();
        let c = self.cells.entry(key).or_default();
        c.responses += 1;
        match provider_sentiment(aspects, provider, signal.scored.sentiment) {
            Sentiment::Positive => c.pos += 1,
            Sentiment::Negative => c.neg += 1,
            Sentiment::Neutral => {}
        }
        if let Some(a) = author {
            c.authors.insert(a);
        }
        if let Some(rt) = r
            .rating
            .filter(|v| v.is_finite() && (1.0..=5.0).contains(v))
        {
            c.ratings.push(rt);
            match author {
                Some(a) => {
                    c.raters.insert(a);
                }
                None => c.anonymous_raters += 1,
            }
        }
        if let Some(sc) = r
            .score
            .filter(|v| v.is_finite() && (0.0..=10.0).contains(v))
        {
            match author {
                Some(a) => {
                    let t = r.event_time.unwrap_or(i64::MIN);
                    let e = c.latest_score.entry(a).or_insert((t, self.seq, sc));
                    if (t, self.seq) >= (e.0, e.1) {
                        *e = (t, self.seq, sc);
                    }
                }
                None => c.anonymous_scores.push(sc),
            }
        }
        for t in &signal.enrichment.topics {
            let e = c.topics.entry(t.clone()).or_default();
            e.mentions += 1;
            if topic_sentiment(aspects, t, signal.scored.sentiment) == Sentiment::Negative {
                e.negative += 1;
            }
            if let Some(a) = author {
                e.authors.insert(a);
            }
        }
    }

    /// The table for a run dated `date`, given the weeks it may publish (see
    /// [`crate::aggregate::publishable_weeks`]), the output root (for last week's rows) and, per
    /// (week, department, client_type) that `engagement_weekly` publishes, the authors of its
    /// signals without a provider (see [`suppression`]).
    pub fn finish(
        &self,
        out: &Path,
        date: NaiveDate,
        k: usize,
        publishable: &dyn Fn(NaiveDate) -> bool,
        outside: &HashMap<(NaiveDate, String, String), HashSet<AuthorHash>>,
    ) -> anyhow::Result<RecordBatch> {
        let k = k.max(1);
        let run_week = week_monday(date);
        // (monday, provider) → (department, client_type) → cell
        let mut groups: Groups = BTreeMap::new();
        for ((w, p, d, c), acc) in &self.cells {
            let monday = w.unwrap_or(run_week);
            if !publishable(monday) {
                continue;
            }
            groups
                .entry((monday, p.clone()))
                .or_default()
                .entry((d.clone(), c.clone()))
                .or_default()
                .merge(acc);
        }
        let sup = suppression(&groups, k, outside);
        let mut rows: Vec<Row> = Vec::new();
        for ((monday, provider), cells) in &groups {
            rows.extend(group_rows(*monday, provider, cells, k, &sup));
        }
        add_changes(&mut rows, out, date)?;
        Ok(to_batch(&rows, k))
    }
}

fn csat(acc: &CellAcc) -> (f64, f64) {
    let n = acc.ratings.len() as f64;
    let mean = acc.ratings.iter().sum::<f64>() / n;
    let top2 = acc.ratings.iter().filter(|r| **r >= 4.0).count() as f64 / n;
    (mean, top2)
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// Published metrics of a row whose authors reached `k`.
fn fill(row: &mut Row, acc: &CellAcc, k: usize, csat_ok: bool, nps_ok: bool, topics: bool) {
    row.responses = Some(acc.responses);
    row.respondents = Some(acc.authors.len() as i64);
    row.negative_share = Some(acc.neg as f64 / acc.responses as f64);
    row.net = net_sentiment(acc.pos, acc.neg);
    row.csat_n = Some(acc.ratings.len() as i64);
    if csat_ok && !acc.ratings.is_empty() {
        let (m, t) = csat(acc);
        row.csat_mean = Some(m);
        row.csat_top2 = Some(t);
    }
    row.nps_n = Some(acc.scorer_count() as i64);
    if nps_ok {
        row.nps = enps(&acc.scores());
    }
    if topics {
        let mut stats: Vec<TopicStat> = acc
            .topics
            .iter()
            .filter(|(_, t)| t.authors.len() >= k)
            .map(|(name, t)| TopicStat {
                topic: name.clone(),
                mentions: t.mentions,
                negative_share: round4(t.negative as f64 / t.mentions as f64),
            })
            .collect();
        stats.sort_by(|a, b| {
            b.mentions
                .cmp(&a.mentions)
                .then_with(|| a.topic.cmp(&b.topic))
        });
        row.topics = Some(serde_json::to_string(&stats).expect("topic stats serialise"));
    }
}

/// Rows of one (week, provider): its cells, then the provider total, with primary and secondary
/// suppression applied.
/// Cell key across providers: (monday, provider, department, client_type).
type CellKey = (NaiveDate, String, String, String);
/// (monday, provider) → (department, client_type) → cell.
type Groups = BTreeMap<(NaiveDate, String), BTreeMap<(String, String), CellAcc>>;
/// Last week's (net_sentiment, negative_share, csat_mean).
type Previous = (Option<f64>, Option<f64>, Option<f64>);

/// Which cells are suppressed and why. Primary: fewer than `k` authors. Secondary, repeated until
/// nothing changes: (a) under a published provider total the hidden cells must pool at least `k`
/// authors; (b) under a published `engagement_weekly` group (`outside`: its authors of signals
/// without a provider), the group minus its published provider cells must be empty or pool at
/// least `k` authors. Each time, the smallest published cell of the group is suppressed.
fn suppression(
    groups: &Groups,
    k: usize,
    outside: &HashMap<(NaiveDate, String, String), HashSet<AuthorHash>>,
) -> HashMap<CellKey, &'static str> {
    let mut sup: HashMap<CellKey, &'static str> = HashMap::new();
    let mut all: Vec<(CellKey, &CellAcc)> = Vec::new();
    for ((m, p), cells) in groups {
        for ((d, c), acc) in cells {
            let key = (*m, p.clone(), d.clone(), c.clone());
            if acc.authors.len() < k {
                sup.insert(key.clone(), "min_group_size");
            }
            all.push((key, acc));
        }
    }
    // The smallest published cell among `members`.
    let smallest = |sup: &HashMap<CellKey, &'static str>, members: &[&(CellKey, &CellAcc)]| {
        members
            .iter()
            .filter(|(key, _)| !sup.contains_key(key))
            .min_by(|a, b| {
                (a.1.authors.len(), a.1.responses, &a.0).cmp(&(
                    b.1.authors.len(),
                    b.1.responses,
                    &b.0,
                ))
            })
            .map(|x| x.0.clone())
    };
    // Members of each provider total and of each engagement_weekly group, computed once.
    type Members<'a> = Vec<&'a (CellKey, &'a CellAcc)>;
    let mut by_provider: BTreeMap<(NaiveDate, &str), Members> = BTreeMap::new();
    let mut by_group: HashMap<(NaiveDate, &str, &str), Members> = HashMap::new();
    for x in &all {
        by_provider
            .entry((x.0 .0, x.0 .1.as_str()))
            .or_default()
            .push(x);
        by_group
            .entry((x.0 .0, x.0 .2.as_str(), x.0 .3.as_str()))
            .or_default()
            .push(x);
    }
    let published_totals: Vec<&Members> = by_provider
        .values()
        .filter(|members| {
            let total: HashSet<AuthorHash> = members
                .iter()
                .flat_map(|(_, c)| c.authors.iter().copied())
                .collect();
            total.len() >= k // a suppressed total reveals nothing
        })
        .collect();
    let empty = Vec::new();
    loop {
        let mut changed = false;
        // (a) provider totals
        for members in &published_totals {
            let hidden: HashSet<AuthorHash> = members
                .iter()
                .filter(|(key, _)| sup.contains_key(key))
                .flat_map(|(_, c)| c.authors.iter().copied())
                .collect();
            if !hidden.is_empty() && hidden.len() < k {
                if let Some(key) = smallest(&sup, members) {
                    sup.insert(key, "complementary");
                    changed = true;
                }
            }
        }
        // (b) engagement_weekly groups (department × client_type, all providers)
        for ((m, d, c), no_provider) in outside {
            let members = by_group
                .get(&(*m, d.as_str(), c.as_str()))
                .unwrap_or(&empty);
            let mut hidden: HashSet<AuthorHash> = no_provider.clone();
            for (key, acc) in members.iter() {
                if sup.contains_key(key) {
                    hidden.extend(acc.authors.iter().copied());
                }
            }
            if !hidden.is_empty() && hidden.len() < k {
                if let Some(key) = smallest(&sup, members) {
                    sup.insert(key, "complementary");
                    changed = true;
                }
            }
        }
        if !changed {
            return sup;
        }
    }
}

/// Rows of one (week, provider): its cells, then the provider total.
fn group_rows(
    monday: NaiveDate,
    provider: &str,
    cells: &BTreeMap<(String, String), CellAcc>,
    k: usize,
    sup: &HashMap<CellKey, &'static str>,
) -> Vec<Row> {
    let mut total = CellAcc::default();
    for c in cells.values() {
        total.merge(c);
    }
    let total_published = total.authors.len() >= k;
    let suppressed: BTreeMap<&(String, String), &'static str> = cells
        .keys()
        .filter_map(|key| {
            sup.get(&(monday, provider.to_string(), key.0.clone(), key.1.clone()))
                .map(|why| (key, *why))
        })
        .collect();
    let mut rows = Vec::new();
    // Contributors hidden from the total's CSAT and NPS.
    let (mut hidden_raters, mut hidden_scorers) = (0usize, 0usize);
    for (key, c) in cells {
        let mut row = Row {
            monday: Some(monday),
            provider: provider.to_string(),
            department: key.0.clone(),
            client_type: key.1.clone(),
            level: "cell",
            ..Default::default()
        };
        let csat_ok = c.rater_count() >= k;
        let nps_ok = c.scorer_count() >= k;
        match suppressed.get(key) {
            Some(why) => {
                row.suppression = Some(why);
                hidden_raters += c.rater_count() + c.anonymous_raters as usize;
                hidden_scorers += c.scorer_count() + c.anonymous_scores.len();
            }
            None => {
                fill(&mut row, c, k, csat_ok, nps_ok, true);
                if !csat_ok {
                    hidden_raters += c.rater_count() + c.anonymous_raters as usize;
                }
                if !nps_ok {
                    hidden_scorers += c.scorer_count() + c.anonymous_scores.len();
                }
            }
        }
        rows.push(row);
    }
    let mut row = Row {
        monday: Some(monday),
        provider: provider.to_string(),
        department: ALL.to_string(),
        client_type: ALL.to_string(),
        level: "provider",
        ..Default::default()
    };
    if total_published {
        let csat_ok = total.rater_count() >= k && (hidden_raters == 0 || hidden_raters >= k);
        let nps_ok = total.scorer_count() >= k && (hidden_scorers == 0 || hidden_scorers >= k);
        fill(&mut row, &total, k, csat_ok, nps_ok, false);
        if !csat_ok {
            // The count alone would let a reader subtract raters too.
            row.csat_n = None;
        }
        if !nps_ok {
            row.nps_n = None;
        }
    } else {
        row.suppression = Some("min_group_size");
    }
    rows.push(row);
    rows
}

/// Fills the `*_change` columns from the previous week's row of the same key: this run first,
/// then the latest earlier partition that has it.
fn add_changes(rows: &mut [Row], out: &Path, date: NaiveDate) -> anyhow::Result<()> {
    type PKey = (NaiveDate, String, String, String);
    let mut prev: HashMap<PKey, Previous> = HashMap::new();
    for (pdate, dir) in partitions(&out.join(INTERNAL_SERVICE_WEEKLY))? {
        if pdate >= date {
            continue;
        }
        for b in read_parquet_dir(&dir)? {
            let get = |n: &str| b.column_by_name(n);
            let (Some(ws), Some(p), Some(d), Some(c), Some(net), Some(neg), Some(cs)) = (
                get("week_start"),
                get("provider"),
                get("department"),
                get("client_type"),
                get("net_sentiment"),
                get("negative_share"),
                get("csat_mean"),
            ) else {
                continue;
            };
            let (Some(ws), Some(p), Some(d), Some(c), Some(net), Some(neg), Some(cs)) = (
                ws.as_any().downcast_ref::<Date32Array>(),
                p.as_any().downcast_ref::<StringArray>(),
                d.as_any().downcast_ref::<StringArray>(),
                c.as_any().downcast_ref::<StringArray>(),
                net.as_any().downcast_ref::<Float64Array>(),
                neg.as_any().downcast_ref::<Float64Array>(),
                cs.as_any().downcast_ref::<Float64Array>(),
            ) else {
                continue;
            };
            let opt = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
            for i in 0..b.num_rows() {
                prev.insert(
                    (
                        days_to_date(ws.value(i)),
                        p.value(i).to_string(),
                        d.value(i).to_string(),
                        c.value(i).to_string(),
                    ),
                    (opt(net, i), opt(neg, i), opt(cs, i)),
                );
            }
        }
    }
    for r in rows.iter() {
        if let Some(m) = r.monday {
            prev.insert(
                (
                    m,
                    r.provider.clone(),
                    r.department.clone(),
                    r.client_type.clone(),
                ),
                (r.net, r.negative_share, r.csat_mean),
            );
        }
    }
    let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(round4(a - b)),
        _ => None,
    };
    for r in rows.iter_mut() {
        let Some(m) = r.monday else { continue };
        if let Some(p) = prev.get(&(
            m - Duration::days(7),
            r.provider.clone(),
            r.department.clone(),
            r.client_type.clone(),
        )) {
            r.net_change = diff(r.net, p.0);
            r.neg_change = diff(r.negative_share, p.1);
            r.csat_change = diff(r.csat_mean, p.2);
        }
    }
    Ok(())
}

fn to_batch(rows: &[Row], k: usize) -> RecordBatch {
    let monday = |r: &Row| r.monday.expect("rows have a week");
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| iso_week_label(monday(r))),
        )),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| date_to_days(monday(r))),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.provider.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.department.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.client_type.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.level))),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| Some(r.suppression.is_some())),
        )),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.suppression))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|_| k as i64))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.responses))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.respondents))),
        Arc::new(Float64Array::from_iter(
            rows.iter().map(|r| r.negative_share),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.net))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.csat_mean))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.csat_top2))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.csat_n))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.nps))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.nps_n))),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.topics.as_deref()),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.net_change))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.neg_change))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.csat_change))),
    ];
    RecordBatch::try_new(schema(), cols).expect("columns match internal_service_weekly schema")
}

/// Weeks (Mondays) present in partitions of `table_dir` dated before `date`.
pub fn weeks_published_before(
    table_dir: &Path,
    date: NaiveDate,
) -> anyhow::Result<BTreeSet<NaiveDate>> {
    let mut weeks = BTreeSet::new();
    for (pdate, dir) in partitions(table_dir)? {
        if pdate >= date {
            continue;
        }
        for b in read_parquet_dir(&dir)? {
            if let Some(a) = b
                .column_by_name("week_start")
                .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
            {
                for i in 0..a.len() {
                    if !a.is_null(i) {
                        weeks.insert(days_to_date(a.value(i)));
                    }
                }
            }
        }
    }
    Ok(weeks)
}
