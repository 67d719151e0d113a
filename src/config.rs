//! The pipeline file (shape of the job) and the validated [`Plan`] built from it before any data is touched.
//!
//! Pipeline shape lives in the TOML file; runtime knobs (date, output override, threads, model
//! override) come from flags and are folded in here, so every later stage sees one checked plan.

use crate::record::{ClientType, Segment};
use crate::score::{DeviceChoice, PrecisionChoice};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A configuration problem: names the file and what to change.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// `[pipeline]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    pub name: String,
    /// Output root; relative paths resolve against the pipeline file's folder.
    pub output: Option<String>,
    /// Aspect-level sentiment (see "Internal services and aspects" below); default true.
    pub aspects: Option<bool>,
}

/// `[model]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Local folder in Hugging Face layout, or a hub id.
    pub path: Option<String>,
    pub device: Option<String>,
    pub precision: Option<String>,
    pub max_tokens: Option<usize>,
}

/// `[organization]`: who is inside the value chain, and what marketing tracks.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationSection {
    #[serde(default)]
    pub internal_domains: Vec<String>,
    #[serde(default)]
    pub supplier_domains: Vec<String>,
    #[serde(default)]
    pub partner_domains: Vec<String>,
    #[serde(default)]
    pub investor_domains: Vec<String>,
    /// CSV with columns author, client_type, department.
    pub roster: Option<String>,
    #[serde(default)]
    pub brands: Vec<String>,
    #[serde(default)]
    pub competitors: Vec<String>,
    /// HR anonymity threshold: groups with fewer distinct authors are suppressed (default 5).
    pub min_group_size: Option<usize>,
    /// Spike threshold in standard deviations above the trailing 7-day mean (default 2).
    pub spike_k: Option<f64>,
    /// Topic taxonomy file (default: the built-in pipelines/topics.toml).
    pub topics: Option<String>,
    /// Department taxonomy for `provider` detection (default: the built-in pipelines/departments.toml).
    pub departments: Option<String>,
    /// `[organization.providers]`: provider column value → provider name.
    #[serde(default)]
    pub providers: BTreeMap<String, String>,
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

/// How a source's records are routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentMode {
    Internal,
    External,
    Auto,
}

/// `[source.columns]`: pulso field → column name or dotted JSON path.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub id: Option<String>,
    pub text: String,
    pub timestamp: Option<String>,
    pub author: Option<String>,
    pub department: Option<String>,
    pub language: Option<String>,
    pub brand: Option<String>,
    pub channel: Option<String>,
    pub likes: Option<String>,
    pub shares: Option<String>,
    pub replies: Option<String>,
    pub reach: Option<String>,
    pub rating: Option<String>,
    pub score: Option<String>,
    /// The internal department or service the record is about (helpdesk queue, assigned group).
    pub provider: Option<String>,
}

/// `[[source]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    pub name: String,
    /// File path or glob, relative to the pipeline file's folder.
    pub path: String,
    pub format: Format,
    pub segment: SegmentMode,
    pub client_type: Option<String>,
    /// CSV delimiter (default ',').
    pub delimiter: Option<String>,
    /// When true, a glob that matches no file is not an error (e.g. a feed that is empty some nights).
    #[serde(default)]
    pub optional: bool,
    /// Guard rail (issue 10): fail the run when more than this share of the source's records is
    /// rejected (default 0.5; 1.0 switches the check off).
    pub max_reject_ratio: Option<f64>,
    /// Text encoding of CSV / JSON Lines files: "utf-8" (default), "latin-1" or "windows-1252".
    pub encoding: Option<String>,
    /// IANA time zone for timestamps without an offset (default UTC), e.g. "America/Sao_Paulo".
    pub timezone: Option<String>,
    pub columns: Columns,
}

/// The whole pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub pipeline: PipelineSection,
    pub model: Option<ModelSection>,
    #[serde(default)]
    pub organization: OrganizationSection,
    #[serde(default)]
    pub source: Vec<SourceSection>,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub privacy: PrivacySection,
    #[serde(default)]
    pub output: OutputSection,
}

// ---- Input limits and per-source reading options (hostile-input issue) ----

/// `[limits]`: what counts as a plausible value; anything outside is a reject.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Earliest accepted event time, a date (default "1990-01-01").
    pub earliest_timestamp: Option<String>,
    /// Event times may lie this many days after the run date (default 1).
    pub future_days: Option<u32>,
    /// Largest accepted likes / shares / replies / reach (default 1e12).
    pub max_count: Option<i64>,
}

/// How a source's bytes are read; built from `[[source]]` and `[limits]`.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// None = UTF-8.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// Zone for naive timestamps; None = UTC.
    pub timezone: Option<chrono_tz::Tz>,
    pub window: crate::timefmt::TimeWindow,
    /// Largest accepted count (likes, shares, replies, reach).
    pub max_count: i64,
    /// The pipeline file set `delimiter`; when false a CSV header may reveal another one.
    pub delimiter_explicit: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            encoding: None,
            timezone: None,
            window: crate::timefmt::TimeWindow::default(),
            max_count: DEFAULT_MAX_COUNT,
            delimiter_explicit: false,
        }
    }
}

/// Default `[limits] max_count`.
pub const DEFAULT_MAX_COUNT: i64 = 1_000_000_000_000;

/// `encoding = ...` of a source.
fn parse_encoding(e: &str) -> Result<Option<&'static encoding_rs::Encoding>, String> {
    match e.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok(None),
        // WHATWG maps latin-1 to windows-1252, a superset for the printable range.
        "latin-1" | "latin1" | "iso-8859-1" | "windows-1252" | "cp1252" => {
            Ok(Some(encoding_rs::WINDOWS_1252))
        }
        other => Err(format!(
            "encoding {other:?} is not supported: use \"utf-8\", \"latin-1\" or \"windows-1252\""
        )),
    }
}

// ---- Privacy of row-level internal output ----

/// `[privacy]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySection {
    /// "keep" (default), "drop" or "aggregates-only".
    pub internal_text: Option<String>,
}

/// What is published row by row for internal signals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InternalText {
    /// Internal signals with their text (the historical behaviour).
    #[default]
    Keep,
    /// Internal signals keep scores, topics and flags; `text` is empty.
    Drop,
    /// No row-level internal signals at all: only the aggregate tables.
    AggregatesOnly,
}

impl InternalText {
    pub fn parse(s: &str) -> Option<InternalText> {
        match s.trim() {
            "keep" => Some(InternalText::Keep),
            "drop" => Some(InternalText::Drop),
            "aggregates-only" => Some(InternalText::AggregatesOnly),
            _ => None,
        }
    }
}

/// Runtime knobs from the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub date: Option<NaiveDate>,
    pub out: Option<PathBuf>,
    pub model: Option<String>,
    pub threads: Option<usize>,
}

/// One source, validated, with its files expanded.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    pub name: String,
    pub format: Format,
    pub segment: SegmentMode,
    pub client_type: Option<ClientType>,
    pub delimiter: u8,
    pub columns: Columns,
    pub files: Vec<PathBuf>,
    /// Encoding, time zone and plausibility limits.
    pub read: ReadOptions,
}

impl SourcePlan {
    /// The fixed segment of a source, if it has one.
    pub fn fixed_segment(&self) -> Option<Segment> {
        match self.segment {
            SegmentMode::Internal => Some(Segment::Internal),
            SegmentMode::External => Some(Segment::External),
            SegmentMode::Auto => None,
        }
    }
}

/// Everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub pipeline_path: PathBuf,
    pub name: String,
    pub out: PathBuf,
    pub date: NaiveDate,
    /// Model folder or hub id.
    pub model: String,
    pub device: DeviceChoice,
    pub precision: PrecisionChoice,
    pub max_tokens: Option<usize>,
    pub threads: usize,
    pub organization: OrganizationSection,
    pub roster: Option<PathBuf>,
    pub topics: Option<PathBuf>,
    pub min_group_size: usize,
    pub spike_k: f64,
    pub sources: Vec<SourcePlan>,
    /// Internal services and aspects (see [`ServicePlan`]).
    pub services: ServicePlan,
    /// `[privacy] internal_text`.
    pub internal_text: InternalText,
    /// SHA-256 of the pipeline file bytes and the overrides that change results.
    pub config_hash: String,
    /// Guard rails checked before the commit (see [`GuardPlan`]).
    pub guard: GuardPlan,
    /// `[output] format`: plain Hive Parquet (default) or Delta tables.
    pub output_format: OutputFormat,
}

// ---- Output commit and guard rails (issue 10) -------------------------------------------------

/// Guard rails checked before a run's commit ([`crate::publish::guard`]).
#[derive(Debug, Clone, Default)]
pub struct GuardPlan {
    /// source → max_reject_ratio; sources not listed use the default (0.5).
    pub max_reject_ratio: BTreeMap<String, f64>,
}

impl GuardPlan {
    fn build(file: &PipelineFile) -> Result<GuardPlan, String> {
        let mut g = GuardPlan::default();
        for s in &file.source {
            if let Some(r) = s.max_reject_ratio {
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!(
                        "source '{}': max_reject_ratio = {r} must be between 0 and 1 (0.5 = fail the run when more than half the records are rejected)",
                        s.name
                    ));
                }
                g.max_reject_ratio.insert(s.name.clone(), r);
            }
        }
        Ok(g)
    }
}

/// `[output]`: how the tables are written (the location stays `[pipeline] output` / `--out`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// "parquet" (default: a Hive-partitioned Parquet tree) or "delta" (one Delta table per table).
    pub format: Option<String>,
}

/// The table format of a run's output ([`crate::publish::delta`] for Delta).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Parquet,
    Delta,
}

impl OutputFormat {
    fn parse(v: Option<&str>) -> Result<OutputFormat, String> {
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("parquet") => Ok(OutputFormat::Parquet),
            Some("delta") => Ok(OutputFormat::Delta),
            Some(other) => Err(format!(
                "[output] format = {other:?} is not a table format pulso writes: write format = \"parquet\" (Hive-partitioned Parquet, the default) or format = \"delta\" (Delta Lake tables)"
            )),
        }
    }
}

// ---- end of issue 10 block --------------------------------------------------------------------

impl Plan {
    /// Reads and validates a pipeline file. Nothing is written.
    pub fn build(path: &Path, ov: &Overrides) -> Result<Plan, ConfigError> {
        let bytes = std::fs::read(path).map_err(|err| ConfigError::Read {
            path: path.into(),
            err,
        })?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| ConfigError::Parse {
            path: path.into(),
            message: "the pipeline file is not valid UTF-8".into(),
        })?;
        let file: PipelineFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: format!("{e}see pipelines/demo.toml for a complete example"),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };

        if file.pipeline.name.trim().is_empty() {
            return Err(invalid("[pipeline] name is empty".into()));
        }
        let out =
            match (&ov.out, &file.pipeline.output) {
                (Some(o), _) => crate::storage::normalize(o.clone()),
                (None, Some(o)) if crate::storage::is_url(o) => {
                    crate::storage::normalize(PathBuf::from(o))
                }
                (None, Some(o)) => base.join(o),
                (None, None) => return Err(invalid(
                    "[pipeline] output is not set; add output = \"out/<name>\" or pass --out DIR"
                        .into(),
                )),
            };

        if crate::storage::is_url_path(&out) {
            // An object-store output: the URL and the store's configuration are checked now.
            crate::storage::parse(&out.to_string_lossy())
                .map_err(|e| invalid(format!("[pipeline] output: {e}")))?;
        }

        let msec = file.model.clone().unwrap_or_default();
        let model = match (&ov.model, &msec.path) {
            (Some(m), _) => m.clone(),
            (None, Some(p)) => resolve_model_ref(&base, p),
            (None, None) => match crate::model::default_model() {
                Some(p) => p.display().to_string(),
                None => {
                    return Err(invalid(
                        "no [model] path and the default model (models/pulso-multi) was not found; set [model] path, pass --model, or set PULSO_MODEL"
                            .into(),
                    ))
                }
            },
        };
        let device = match msec.device.as_deref().unwrap_or("auto") {
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "cuda" => DeviceChoice::Cuda,
            d => {
                return Err(invalid(format!(
                    "[model] device = {d:?}: use \"auto\", \"cpu\" or \"cuda\""
                )))
            }
        };
        let precision = match msec.precision.as_deref().unwrap_or("auto") {
            "auto" => PrecisionChoice::Auto,
            "fp32" => PrecisionChoice::Fp32,
            "bf16" => PrecisionChoice::Bf16,
            "int8" => PrecisionChoice::Int8,
            p => {
                return Err(invalid(format!(
                    "[model] precision = {p:?}: use \"auto\", \"fp32\", \"bf16\" or \"int8\""
                )))
            }
        };
        if let Some(0) = msec.max_tokens {
            return Err(invalid("[model] max_tokens must be at least 1".into()));
        }

        let org = file.organization.clone();
        for (what, list) in [
            ("internal_domains", &org.internal_domains),
            ("supplier_domains", &org.supplier_domains),
            ("partner_domains", &org.partner_domains),
            ("investor_domains", &org.investor_domains),
        ] {
            for d in list {
                if d.trim().is_empty() || d.contains('@') || d.contains(' ') {
                    return Err(invalid(format!(
                        "[organization] {what} has {d:?}: write bare domains like \"acme.com\""
                    )));
                }
            }
        }
        let roster = org.roster.as_ref().map(|r| base.join(r));
        if let Some(r) = &roster {
            if !r.is_file() {
                return Err(invalid(format!(
                    "[organization] roster {} does not exist",
                    r.display()
                )));
            }
        }
        let topics = org.topics.as_ref().map(|t| base.join(t));
        if let Some(t) = &topics {
            if !t.is_file() {
                return Err(invalid(format!(
                    "[organization] topics {} does not exist",
                    t.display()
                )));
            }
        }
        let min_group_size = org.min_group_size.unwrap_or(5);
        if min_group_size < 1 {
            return Err(invalid(
                "[organization] min_group_size must be at least 1".into(),
            ));
        }
        let spike_k = org.spike_k.unwrap_or(2.0);
        if !(spike_k.is_finite() && spike_k > 0.0) {
            return Err(invalid(
                "[organization] spike_k must be a positive number".into(),
            ));
        }

        let date = ov.date.unwrap_or_else(|| chrono::Utc::now().date_naive());
        check_run_date(date).map_err(&invalid)?;
        let earliest = match &file.limits.earliest_timestamp {
            None => NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            Some(e) => NaiveDate::parse_from_str(e.trim(), "%Y-%m-%d").map_err(|_| {
                invalid(format!(
                    "[limits] earliest_timestamp = {e:?} is not a date; write \"YYYY-MM-DD\""
                ))
            })?,
        };
        let latest = date
            .checked_add_days(chrono::Days::new(u64::from(
                file.limits.future_days.unwrap_or(1),
            )))
            .unwrap_or(NaiveDate::MAX);
        let window = crate::timefmt::TimeWindow::new(earliest, latest);
        let max_count = file.limits.max_count.unwrap_or(DEFAULT_MAX_COUNT);
        if max_count < 1 {
            return Err(invalid("[limits] max_count must be at least 1".into()));
        }
        let internal_text = match &file.privacy.internal_text {
            None => InternalText::Keep,
            Some(v) => InternalText::parse(v).ok_or_else(|| {
                invalid(format!(
                    "[privacy] internal_text = {v:?}: use \"keep\", \"drop\" or \"aggregates-only\""
                ))
            })?,
        };

        if file.source.is_empty() {
            return Err(invalid(
                "no [[source]] sections: add at least one source".into(),
            ));
        }
        let mut sources = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for s in &file.source {
            let ctx = |m: String| invalid(format!("source '{}': {m}", s.name));
            if s.name.trim().is_empty() {
                return Err(invalid("a [[source]] has an empty name".into()));
            }
            if !seen.insert(s.name.clone()) {
                return Err(ctx(
                    "two sources have this name; names must be unique".into()
                ));
            }
            if s.columns.text.trim().is_empty() {
                return Err(ctx("[source.columns] text is empty".into()));
            }
            let client_type = match &s.client_type {
                None => None,
                Some(c) => Some(ClientType::parse(c).ok_or_else(|| {
                    ctx(format!(
                        "client_type {c:?} is not one of employee, contractor, supplier, partner, investor, consumer, business, unknown"
                    ))
                })?),
            };
            let delimiter = match s.delimiter.as_deref() {
                None => b',',
                Some("\\t") | Some("\t") | Some("tab") => b'\t',
                Some(d) if d.len() == 1 => d.as_bytes()[0],
                Some(d) => return Err(ctx(format!("delimiter {d:?} must be one character"))),
            };
            if s.delimiter.is_some() && s.format != Format::Csv {
                return Err(ctx("delimiter only applies to format = \"csv\"".into()));
            }
            let encoding = match &s.encoding {
                None => None,
                Some(e) => parse_encoding(e).map_err(&ctx)?,
            };
            if encoding.is_some() && s.format == Format::Parquet {
                return Err(ctx(
                    "encoding only applies to csv and jsonl (Parquet strings are UTF-8)".into(),
                ));
            }
            let timezone = match &s.timezone {
                None => None,
                Some(z) if z.trim().eq_ignore_ascii_case("utc") => None,
                Some(z) => Some(z.trim().parse::<chrono_tz::Tz>().map_err(|_| {
                    ctx(format!(
                        "timezone {z:?} is not an IANA time zone name; write e.g. \"America/Sao_Paulo\", \"Europe/Madrid\" or \"UTC\""
                    ))
                })?),
            };
            let local = crate::storage::local_path(&s.path);
            let remote = local.is_none() && crate::storage::is_url(&s.path);
            let pattern = local.unwrap_or_else(|| base.join(&s.path));
            let pattern_s = if remote {
                s.path.clone()
            } else {
                pattern.to_string_lossy().to_string()
            };
            let mut files: Vec<PathBuf> = if remote {
                // Object-store URLs (issue 10): list the prefix, match the glob on the keys.
                crate::storage::glob(&s.path)
                    .map_err(|e| ctx(format!("path {:?}: {e}", s.path)))?
                    .into_iter()
                    .map(PathBuf::from)
                    .collect()
            } else {
                glob::glob(&pattern_s)
                    .map_err(|e| ctx(format!("path {:?} is not a valid glob: {e}", s.path)))?
                    .filter_map(Result::ok)
                    .filter(|p| p.is_file())
                    .collect()
            };
            files.sort();
            if files.is_empty() && !s.optional {
                return Err(ctx(format!(
                    "path {:?} matches no file (looked for {pattern_s}); fix the path or set optional = true",
                    s.path
                )));
            }
            sources.push(SourcePlan {
                name: s.name.clone(),
                format: s.format,
                segment: s.segment,
                client_type,
                delimiter,
                columns: s.columns.clone(),
                files,
                read: ReadOptions {
                    encoding,
                    timezone,
                    window,
                    max_count,
                    delimiter_explicit: s.delimiter.is_some(),
                },
            });
        }

        let threads = match ov.threads {
            Some(0) => return Err(invalid("--threads must be at least 1".into())),
            Some(t) => t,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        let guard = GuardPlan::build(&file).map_err(&invalid)?;
        let output_format = OutputFormat::parse(file.output.format.as_deref()).map_err(&invalid)?;

        let services = ServicePlan::build(&file, &base).map_err(&invalid)?;

        let mut h = Sha256::new();
        h.update(&bytes);
        h.update(model.as_bytes());
        let config_hash = hex::encode(h.finalize());

        Ok(Plan {
            pipeline_path: path.to_path_buf(),
            name: file.pipeline.name.clone(),
            out,
            date,
            model,
            device,
            precision,
            max_tokens: msec.max_tokens,
            threads,
            organization: org,
            roster,
            topics,
            min_group_size,
            spike_k,
            sources,
            services,
            internal_text,
            config_hash,
            guard,
            output_format,
        })
    }

    /// Files per source, for reports.
    pub fn inputs(&self) -> BTreeMap<String, Vec<PathBuf>> {
        self.sources
            .iter()
            .map(|s| (s.name.clone(), s.files.clone()))
            .collect()
    }
}

// ------------------------------------------------------------------------------------------------
// Internal services and aspects (issue #14): `[pipeline] aspects`, `[organization] departments`,
// `[organization.providers]` and `[source.columns] provider`.
// ------------------------------------------------------------------------------------------------

/// What the provider and aspect stages need, checked.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// Score every sentence and fill the `aspects` column (`[pipeline] aspects`, default true).
    pub aspects: bool,
    /// Department taxonomy file; None = the built-in pipelines/departments.toml.
    pub departments: Option<PathBuf>,
    /// Provider column value → provider name (`[organization.providers]`).
    pub providers: BTreeMap<String, String>,
}

impl ServicePlan {
    fn build(file: &PipelineFile, base: &Path) -> Result<ServicePlan, String> {
        let org = &file.organization;
        let departments = org.departments.as_ref().map(|t| base.join(t));
        if let Some(t) = &departments {
            if !t.is_file() {
                return Err(format!(
                    "[organization] departments {} does not exist; point it at a copy of pipelines/departments.toml or remove it",
                    t.display()
                ));
            }
        }
        for (value, provider) in &org.providers {
            if value.trim().is_empty() || provider.trim().is_empty() {
                return Err(format!(
                    "[organization.providers] {value:?} = {provider:?}: both the column value and the provider name must be non-empty"
                ));
            }
        }
        if !org.providers.is_empty() && file.source.iter().all(|s| s.columns.provider.is_none()) {
            return Err("[organization.providers] is set but no source maps a provider column; add provider = \"<column>\" to a [source.columns] table".into());
        }
        Ok(ServicePlan {
            aspects: file.pipeline.aspects.unwrap_or(true),
            departments,
            providers: org.providers.clone(),
        })
    }
}

/// A run date must be a real calendar date from 1990 to 9999 (partition keys and every reader's date type).
pub fn check_run_date(d: NaiveDate) -> Result<(), String> {
    use chrono::Datelike;
    if (1990..=9999).contains(&d.year()) {
        Ok(())
    } else {
        Err(format!(
            "the run date {d} is outside 1990-01-01 .. 9999-12-31; pass --date YYYY-MM-DD"
        ))
    }
}

/// A `[model] path` is a folder relative to the pipeline file, unless it names no existing folder
/// and looks like a hub id (`owner/name`).
fn resolve_model_ref(base: &Path, p: &str) -> String {
    let local = base.join(p);
    if local.exists() || Path::new(p).is_absolute() || p.starts_with('.') {
        return local.display().to_string();
    }
    p.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    const OK: &str = r#"
[pipeline]
name = "t"
output = "out"
[model]
path = "m"
[[source]]
name = "s"
path = "data/*.csv"
format = "csv"
segment = "auto"
[source.columns]
id = "id"
text = "text"
"#;

    #[test]
    fn resolves_relative_paths_and_globs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("data")).unwrap();
        std::fs::create_dir(d.path().join("m")).unwrap();
        write(&d.path().join("data"), "b.csv", "id,text\n");
        write(&d.path().join("data"), "a.csv", "id,text\n");
        let p = write(d.path(), "p.toml", OK);
        let plan = Plan::build(&p, &Overrides::default()).unwrap();
        assert_eq!(plan.out, d.path().join("out"));
        assert_eq!(plan.sources[0].files.len(), 2);
        assert!(plan.sources[0].files[0].ends_with("a.csv"));
        assert_eq!(plan.model, d.path().join("m").display().to_string());
        assert_eq!(plan.min_group_size, 5);
    }

    #[test]
    fn unknown_keys_and_missing_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "p.toml",
            &OK.replace("segment = \"auto\"", "segment = \"auto\"\nsegmnt = 1"),
        );
        let e = Plan::build(&p, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("segmnt"), "{e}");
        let p = write(d.path(), "q.toml", OK);
        let e = Plan::build(&p, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("matches no file"), "{e}");
        assert!(e.contains("source 's'"), "{e}");
    }

    #[test]
    fn services_block_aspects_switch_provider_map_and_departments() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("data")).unwrap();
        std::fs::create_dir(d.path().join("m")).unwrap();
        write(&d.path().join("data"), "a.csv", "id,text\n");
        let p = write(d.path(), "p.toml", OK);
        let plan = Plan::build(&p, &Overrides::default()).unwrap();
        assert!(plan.services.aspects, "aspects are on by default");
        assert!(plan.services.providers.is_empty() && plan.services.departments.is_none());

        let off = OK.replace("name = \"t\"", "name = \"t\"\naspects = false");
        let p = write(d.path(), "off.toml", &off);
        assert!(
            !Plan::build(&p, &Overrides::default())
                .unwrap()
                .services
                .aspects
        );

        // A value map without any provider column is a mistake worth naming.
        let map = format!("{OK}\n[organization.providers]\n\"TI-N1\" = \"IT\"\n");
        let p = write(d.path(), "map.toml", &map);
        let e = Plan::build(&p, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no source maps a provider column"), "{e}");
        let ok = map.replace("text = \"text\"", "text = \"text\"\nprovider = \"queue\"");
        let p = write(d.path(), "map_ok.toml", &ok);
        let plan = Plan::build(&p, &Overrides::default()).unwrap();
        assert_eq!(plan.services.providers["TI-N1"], "IT");

        let missing = OK.replace(
            "[[source]]",
            "[organization]\ndepartments = \"nope.toml\"\n[[source]]",
        );
        let p = write(d.path(), "dep.toml", &missing);
        let e = Plan::build(&p, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("departments") && e.contains("nope.toml"), "{e}");
    }

    #[test]
    fn hub_ids_are_kept() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve_model_ref(d.path(), "cardiffnlp/twitter-xlm-roberta-base-sentiment"),
            "cardiffnlp/twitter-xlm-roberta-base-sentiment"
        );
    }
}
