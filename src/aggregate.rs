//! PLACEHOLDER (owned by the insights engineer): brand_daily and engagement_weekly aggregates.
use crate::record::Signal;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct AggregateConfig {
    pub brands: Vec<String>,
    pub competitors: Vec<String>,
    pub min_group_size: usize,
    pub spike_k: f64,
}

pub struct Aggregator {
    cfg: AggregateConfig,
}

impl AggregateConfig {
    pub fn build(self) -> Aggregator {
        Aggregator { cfg: self }
    }
}

impl Aggregator {
    /// Sees every signal of the run once (raw author identities may be used in memory, never output).
    pub fn observe(&mut self, signal: &Signal) {
        let _ = (signal, &self.cfg);
    }
    /// Final tables as (relative table dir, batch), e.g. ("aggregates/brand_daily", batch).
    /// `out` is the published output root, read for earlier runs' aggregates (spike history).
    pub fn finish(self, out: &Path, date: NaiveDate) -> anyhow::Result<Vec<(String, RecordBatch)>> {
        let _ = (out, date);
        Ok(vec![])
    }
}
