//! Run statistics and the final summary table (per source and segment).

use crate::record::{Reject, Segment, Sentiment, Signal};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Per (source, segment) signal statistics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupStats {
    pub signals: u64,
    pub sum_score: f64,
    pub negatives: u64,
}

impl GroupStats {
    pub fn mean_score(&self) -> Option<f64> {
        (self.signals > 0).then(|| self.sum_score / self.signals as f64)
    }
    pub fn negative_share(&self) -> Option<f64> {
        (self.signals > 0).then(|| self.negatives as f64 / self.signals as f64)
    }
}

/// Counts of a run, kept as records flow.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    /// (source, segment) → stats.
    pub groups: BTreeMap<(String, Segment), GroupStats>,
    /// source → reason code → count.
    pub rejects: BTreeMap<String, BTreeMap<String, u64>>,
    /// source → records read.
    pub records: BTreeMap<String, u64>,
    pub truncated: u64,
}

impl RunStats {
    pub fn observe_signal(&mut self, s: &Signal) {
        let g = self
            .groups
            .entry((s.record.source.to_string(), s.routing.segment))
            .or_default();
        g.signals += 1;
        g.sum_score += s.scored.sentiment_score as f64;
        if s.scored.sentiment == Sentiment::Negative {
            g.negatives += 1;
        }
        if s.scored.truncated {
            self.truncated += 1;
        }
    }

    pub fn observe_reject(&mut self, r: &Reject) {
        *self
            .rejects
            .entry(r.source.to_string())
            .or_default()
            .entry(r.reason.code())
            .or_default() += 1;
    }

    pub fn total_signals(&self) -> u64 {
        self.groups.values().map(|g| g.signals).sum()
    }

    pub fn total_rejects(&self) -> u64 {
        self.rejects.values().flat_map(|m| m.values()).sum()
    }

    pub fn segment_signals(&self, seg: Segment) -> u64 {
        self.groups
            .iter()
            .filter(|((_, s), _)| *s == seg)
            .map(|(_, g)| g.signals)
            .sum()
    }

    pub fn rejects_by_reason(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for per in self.rejects.values() {
            for (k, v) in per {
                *m.entry(k.clone()).or_default() += v;
            }
        }
        m
    }

    /// The summary table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 6]> = vec![[
            "source".into(),
            "segment".into(),
            "records".into(),
            "rejected".into(),
            "mean score".into(),
            "negative".into(),
        ]];
        for (source, read) in &self.records {
            let rejected: u64 = self
                .rejects
                .get(source)
                .map(|m| m.values().sum())
                .unwrap_or(0);
            let mut first = true;
            for seg in Segment::ALL {
                let Some(g) = self.groups.get(&(source.clone(), seg)) else {
                    continue;
                };
                rows.push([
                    if first { source.clone() } else { String::new() },
                    seg.to_string(),
                    g.signals.to_string(),
                    if first {
                        rejected.to_string()
                    } else {
                        String::new()
                    },
                    g.mean_score()
                        .map(|m| format!("{m:+.3}"))
                        .unwrap_or_default(),
                    g.negative_share()
                        .map(|m| format!("{:.1}%", m * 100.0))
                        .unwrap_or_default(),
                ]);
                first = false;
            }
            if first {
                rows.push([
                    source.clone(),
                    "-".into(),
                    "0".into(),
                    rejected.to_string(),
                    String::new(),
                    String::new(),
                ]);
            }
            let _ = read;
        }
        for seg in Segment::ALL {
            let g = self.groups.iter().filter(|((_, s), _)| *s == seg).fold(
                GroupStats::default(),
                |mut a, (_, g)| {
                    a.signals += g.signals;
                    a.sum_score += g.sum_score;
                    a.negatives += g.negatives;
                    a
                },
            );
            rows.push([
                "TOTAL".into(),
                seg.to_string(),
                g.signals.to_string(),
                String::new(),
                g.mean_score()
                    .map(|m| format!("{m:+.3}"))
                    .unwrap_or_default(),
                g.negative_share()
                    .map(|m| format!("{:.1}%", m * 100.0))
                    .unwrap_or_default(),
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for (k, r) in rows.iter().enumerate() {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i < 2 {
                        format!("{c:<w$}", w = widths[i])
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
            if k == 0 {
                let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 10));
            }
        }
        out
    }
}
