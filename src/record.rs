//! The record types every stage passes along: what was read, how it was routed, how it scored.
//!
//! One input record becomes exactly one [`Signal`] or one [`Reject`]; nothing else leaves the pipeline.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// Which side of the company a signal comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Segment {
    Internal,
    External,
}

impl Segment {
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Internal => "internal",
            Segment::External => "external",
        }
    }
    pub const ALL: [Segment; 2] = [Segment::Internal, Segment::External];
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who the author is to the company.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    Employee,
    Contractor,
    Supplier,
    Partner,
    Investor,
    Consumer,
    Business,
    Unknown,
}

impl ClientType {
    pub const ALL: [ClientType; 8] = [
        ClientType::Employee,
        ClientType::Contractor,
        ClientType::Supplier,
        ClientType::Partner,
        ClientType::Investor,
        ClientType::Consumer,
        ClientType::Business,
        ClientType::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Employee => "employee",
            ClientType::Contractor => "contractor",
            ClientType::Supplier => "supplier",
            ClientType::Partner => "partner",
            ClientType::Investor => "investor",
            ClientType::Consumer => "consumer",
            ClientType::Business => "business",
            ClientType::Unknown => "unknown",
        }
    }

    /// Parses a client type, accepting a few common synonyms (`temp`, `outsourced`, `shareholder`, `b2b`).
    pub fn parse(s: &str) -> Option<ClientType> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "employee" | "staff" | "leader" | "manager" => ClientType::Employee,
            "contractor" | "temp" | "temporary" | "outsourced" | "freelancer" => {
                ClientType::Contractor
            }
            "supplier" | "vendor" => ClientType::Supplier,
            "partner" => ClientType::Partner,
            "investor" | "shareholder" => ClientType::Investor,
            "consumer" | "customer" => ClientType::Consumer,
            "business" | "b2b" => ClientType::Business,
            "unknown" => ClientType::Unknown,
            _ => return None,
        })
    }

    /// The segment a client type belongs to when nothing else decides.
    pub fn natural_segment(self) -> Segment {
        match self {
            ClientType::Consumer | ClientType::Business | ClientType::Unknown => Segment::External,
            _ => Segment::Internal,
        }
    }
}

impl fmt::Display for ClientType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Three-way sentiment label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    Negative,
    Neutral,
    Positive,
}

impl Sentiment {
    pub const ALL: [Sentiment; 3] = [Sentiment::Negative, Sentiment::Neutral, Sentiment::Positive];
    pub fn as_str(self) -> &'static str {
        match self {
            Sentiment::Negative => "negative",
            Sentiment::Neutral => "neutral",
            Sentiment::Positive => "positive",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Sentiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Detected language of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Pt,
    Es,
    En,
    Other,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Pt => "pt",
            Lang::Es => "es",
            Lang::En => "en",
            Lang::Other => "other",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record as read from a source, with its fields already extracted and typed.
#[derive(Clone, Debug, Default)]
pub struct InputRecord {
    /// Source name from the pipeline file.
    pub source: Arc<str>,
    /// `file:line` (text formats) or `file:row N` (Parquet).
    pub location: String,
    /// The record as read (the CSV line, the JSON line, the Parquet row as JSON).
    pub raw: String,
    pub id: String,
    pub text: String,
    /// Event time, microseconds since the Unix epoch, UTC.
    pub event_time: Option<i64>,
    pub author: Option<String>,
    pub department: Option<String>,
    /// Language declared by the source, if any (detection still runs).
    pub language: Option<String>,
    pub brand: Option<String>,
    pub channel: Option<String>,
    pub likes: Option<i64>,
    pub shares: Option<i64>,
    pub replies: Option<i64>,
    pub reach: Option<i64>,
    pub rating: Option<f64>,
    pub score: Option<f64>,
    /// Provider column value as read (`[source.columns] provider`), before the value map.
    pub provider: Option<String>,
}

/// Result of routing one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    pub segment: Segment,
    pub client_type: ClientType,
    /// Which rule fired, e.g. `source:employee_survey`, `roster`, `domain:steelworks.example`, `default:external`.
    pub reason: String,
}

/// Model output for one text.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Scored {
    pub sentiment: Sentiment,
    pub p_negative: f32,
    pub p_neutral: f32,
    pub p_positive: f32,
    /// In [-1, 1]: p_positive - p_negative (or the star expectation mapped linearly).
    pub sentiment_score: f32,
    /// The text was longer than the model's token limit and was cut.
    pub truncated: bool,
}

/// Per-signal enrichment: topics, risk flags, engagement, pseudonymised author.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Enrichment {
    pub topics: Vec<String>,
    /// Internal only: intent-to-leave language with negative sentiment.
    pub attrition_risk: Option<bool>,
    /// External only: likes + shares + replies where present.
    pub engagement: Option<i64>,
    /// External only.
    pub brand_mentioned: Option<bool>,
    /// External only.
    pub competitor_mentioned: Option<bool>,
    /// What is published as `author_id`: a keyed pseudonym for internal authors, the handle for external ones.
    pub author_id: Option<String>,
    /// The internal service the signal is about (see [`crate::services`]).
    pub provider: Option<String>,
    /// Why: `column:<name>`, `map:<value>` or `text:<term>`.
    pub provider_reason: Option<String>,
    /// Sentiment per topic and provider, one entry per (sentence, topic or provider); None when
    /// aspects are turned off (`[pipeline] aspects = false`).
    pub aspects: Option<Vec<Aspect>>,
}

/// One aspect: a topic or a provider raised in one sentence, with that sentence's sentiment.
#[derive(Clone, Debug, PartialEq)]
pub struct Aspect {
    /// Exactly one of `topic` and `provider` is set.
    pub topic: Option<String>,
    pub provider: Option<String>,
    pub sentiment: Sentiment,
    pub sentiment_score: f32,
    /// 0-based index of the sentence in the text.
    pub sentence: u32,
}

/// A scored, routed, enriched record ready for the sink.
#[derive(Clone, Debug)]
pub struct Signal {
    pub record: InputRecord,
    pub routing: Routing,
    pub language: Lang,
    pub scored: Scored,
    pub enrichment: Enrichment,
}

/// Why a record was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    MalformedRow(String),
    InvalidUtf8,
    MissingField(String),
    EmptyText,
    BadTimestamp(String),
    BadNumber(String),
    Duplicate,
    /// A quote that opens a field and never closes where it should (the detail says why).
    UnbalancedQuote(String),
    /// A number outside what the field allows: (field, explanation).
    NumberOutOfRange(String, String),
    /// A timestamp that parses but lies outside the accepted window: (value, explanation).
    TimestampOutOfRange(String, String),
    /// An array or object where a single value is expected: (field, what was found).
    NotScalar(String, String),
}

impl RejectReason {
    /// The stable code written to the `reason` column (`missing_field:text`, ...).
    pub fn code(&self) -> String {
        match self {
            RejectReason::MalformedRow(_) => "malformed_row".into(),
            RejectReason::InvalidUtf8 => "invalid_utf8".into(),
            RejectReason::MissingField(f) => format!("missing_field:{f}"),
            RejectReason::EmptyText => "empty_text".into(),
            RejectReason::BadTimestamp(_) => "bad_timestamp".into(),
            RejectReason::BadNumber(f) => format!("bad_number:{f}"),
            RejectReason::Duplicate => "duplicate".into(),
            RejectReason::UnbalancedQuote(_) => "unbalanced_quote".into(),
            RejectReason::NumberOutOfRange(f, _) => format!("bad_number:{f}"),
            RejectReason::TimestampOutOfRange(..) => "bad_timestamp".into(),
            RejectReason::NotScalar(f, _) => format!("not_scalar:{f}"),
        }
    }

    /// A human explanation for messages and the rejects `detail` column.
    pub fn detail(&self) -> String {
        match self {
            RejectReason::MalformedRow(d) => d.clone(),
            RejectReason::InvalidUtf8 => "the record is not valid UTF-8; re-export the file as UTF-8".into(),
            RejectReason::MissingField(f) => format!("field '{f}' is missing or null"),
            RejectReason::EmptyText => "text is empty or only whitespace".into(),
            RejectReason::BadTimestamp(v) => format!("cannot parse timestamp {v:?}; use RFC 3339, RFC 2822, 'YYYY-MM-DD HH:MM:SS' (in the source's timezone, default UTC), a date, or epoch seconds/milliseconds/microseconds"),
            RejectReason::BadNumber(f) => format!("field '{f}' is not a number"),
            RejectReason::Duplicate => "same source and id seen earlier in this run".into(),
            RejectReason::UnbalancedQuote(d) => format!(
                "{d}; this line is rejected and reading resumes on the next line. Fix the quoting in the export (a quote inside a field is written \"\")"
            ),
            RejectReason::NumberOutOfRange(f, d) => format!("field '{f}': {d}"),
            RejectReason::TimestampOutOfRange(v, d) => format!("timestamp {v:?} {d}"),
            RejectReason::NotScalar(f, what) => format!(
                "field '{f}' is {what}, not a single value; map [source.columns] {f} to a field holding a string or number"
            ),
        }
    }
}

/// A record that could not become a signal, with the reason.
#[derive(Clone, Debug)]
pub struct Reject {
    pub source: Arc<str>,
    pub location: String,
    pub raw: String,
    pub reason: RejectReason,
}
