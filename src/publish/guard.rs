//! Guard rails checked before the commit: a source that suddenly rejects most of its rows, or
//! yields nothing where the previous run had signals, fails the run instead of replacing good
//! partitions with empty ones. `--allow-rejects` lets one run through.

use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// Default `max_reject_ratio` of a source.
pub const DEFAULT_MAX_REJECT_RATIO: f64 = 0.5;

/// What one source did in this run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceTally {
    pub records: u64,
    pub signals: u64,
    pub rejects: u64,
    /// reason code → count.
    pub reasons: BTreeMap<String, u64>,
    /// reason code → first (location, raw row).
    #[serde(skip)]
    pub examples: BTreeMap<String, (String, String)>,
    /// pulso field → the source's column for it (to name a typo'd column).
    #[serde(skip)]
    pub columns: BTreeMap<String, String>,
}

impl SourceTally {
    pub fn reject(&mut self, reason: String, location: &str, raw: &str) {
        self.rejects += 1;
        let n = self.reasons.entry(reason.clone()).or_default();
        *n += 1;
        self.examples
            .entry(reason)
            .or_insert_with(|| (location.to_string(), raw.to_string()));
    }

    /// The most frequent reason (ties: alphabetical), with its count and first example.
    pub fn top_reason(&self) -> Option<(String, u64, (String, String))> {
        let (r, n) = self
            .reasons
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
        let ex = self.examples.get(r).cloned().unwrap_or_default();
        Some((r.clone(), *n, ex))
    }
}

/// Why a run was stopped before its commit.
#[derive(Debug, Error)]
pub enum GuardError {
    #[error("source '{source_name}': {rejects} of {records} records rejected ({pct:.0}%, above max_reject_ratio {limit}); top reason {reason} ({count}×{column}), e.g. {location}: {raw}{fields}. Nothing was published; fix the source (or its [source.columns]) or pass --allow-rejects for this run")]
    TooManyRejects {
        source_name: String,
        records: u64,
        rejects: u64,
        pct: f64,
        limit: f64,
        reason: String,
        count: u64,
        location: String,
        raw: String,
        column: String,
        fields: String,
    },
    #[error("source '{source_name}' yielded no signals ({records} records read) but the previous run ({previous_run}) had {previous} from it{why}. Nothing was published; check the feed or pass --allow-rejects for this run")]
    NoSignals {
        source_name: String,
        records: u64,
        previous: u64,
        previous_run: String,
        why: String,
    },
}

/// Signals per source in a manifest (from its `inputs`).
pub fn signals_per_source(manifest: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for f in manifest["inputs"].as_array().into_iter().flatten() {
        if let (Some(s), Some(n)) = (f["source"].as_str(), f["signals"].as_u64()) {
            *m.entry(s.to_string()).or_default() += n;
        }
    }
    m
}

/// "; the row has fields a, b, c" for a JSON object row (helps spot a column typo).
fn fields_of(raw: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(o)) => format!(
            "; the row has fields {}",
            o.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        _ => String::new(),
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Checks every source (in order); the first failing one is returned.
pub fn check(
    tallies: &[(String, SourceTally)],
    limits: &BTreeMap<String, f64>,
    previous: Option<&serde_json::Value>,
) -> Result<(), Box<GuardError>> {
    let prev = previous.map(signals_per_source).unwrap_or_default();
    for (name, t) in tallies {
        let limit = limits
            .get(name)
            .copied()
            .unwrap_or(DEFAULT_MAX_REJECT_RATIO);
        if t.records > 0 && (t.rejects as f64 / t.records as f64) > limit {
            let (reason, count, (location, raw)) = t.top_reason().unwrap_or_default();
            let column = reason
                .strip_prefix("missing_field:")
                .and_then(|f| t.columns.get(f))
                .map(|c| format!("; the column configured for it is {c:?}"))
                .unwrap_or_default();
            return Err(Box::new(GuardError::TooManyRejects {
                source_name: name.clone(),
                records: t.records,
                rejects: t.rejects,
                pct: 100.0 * t.rejects as f64 / t.records as f64,
                limit,
                reason,
                count,
                location,
                column,
                fields: fields_of(&raw),
                raw: clip(&raw, 200),
            }));
        }
        let before = prev.get(name).copied().unwrap_or(0);
        if t.signals == 0 && before > 0 {
            let why = match t.top_reason() {
                Some((r, n, (loc, raw))) => {
                    format!(
                        "; top reject reason {r} ({n}×), e.g. {loc}: {}",
                        clip(&raw, 200)
                    )
                }
                None => String::new(),
            };
            return Err(Box::new(GuardError::NoSignals {
                source_name: name.clone(),
                records: t.records,
                previous: before,
                previous_run: previous
                    .and_then(|m| m["run_id"].as_str())
                    .unwrap_or("?")
                    .to_string(),
                why,
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(records: u64, signals: u64, rejects: &[(&str, &str)]) -> SourceTally {
        let mut t = SourceTally {
            records,
            signals,
            ..Default::default()
        };
        t.columns.insert("text".into(), "txt".into());
        for (i, (r, raw)) in rejects.iter().enumerate() {
            t.reject(r.to_string(), &format!("f.jsonl:{}", i + 1), raw);
        }
        t
    }

    #[test]
    fn reject_ratio_names_source_reason_and_row() {
        let t = tally(
            4,
            1,
            &[
                ("missing_field:text", r#"{"id": 1, "body": "x"}"#),
                ("missing_field:text", "{}"),
                ("empty_text", "{}"),
            ],
        );
        let e = check(&[("mentions".into(), t.clone())], &BTreeMap::new(), None)
            .unwrap_err()
            .to_string();
        for want in [
            "mentions",
            "3 of 4",
            "missing_field:text (2×",
            "f.jsonl:1",
            "fields body, id",
            "--allow-rejects",
            "\"txt\"",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        // A looser per-source limit lets it through.
        let limits = BTreeMap::from([("mentions".to_string(), 0.8)]);
        check(&[("mentions".into(), t)], &limits, None).unwrap();
    }

    #[test]
    fn zero_signals_after_a_good_run_fails() {
        let prev = serde_json::json!({"run_id": "r0", "inputs": [{"source": "s", "signals": 7}]});
        let e = check(
            &[("s".into(), tally(0, 0, &[]))],
            &BTreeMap::new(),
            Some(&prev),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("'s' yielded no signals") && e.contains("had 7"),
            "{e}"
        );
        check(
            &[("t".into(), tally(0, 0, &[]))],
            &BTreeMap::new(),
            Some(&prev),
        )
        .unwrap();
    }
}
