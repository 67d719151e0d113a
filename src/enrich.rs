//! PLACEHOLDER (owned by the insights engineer): topics, attrition risk, engagement, pseudonyms.
use crate::record::{Enrichment, InputRecord, Lang, Routing, Scored, Segment};
use std::path::PathBuf;

#[derive(Clone, Debug, Default)]
pub struct EnrichConfig {
    pub brands: Vec<String>,
    pub competitors: Vec<String>,
    /// Topic taxonomy file; None = the built-in default (pipelines/topics.toml).
    pub topics_path: Option<PathBuf>,
    /// HMAC key for internal author pseudonyms (from PULSO_PSEUDONYM_KEY); None = internal authors left empty.
    pub pseudonym_key: Option<Vec<u8>>,
}

pub struct Enricher {
    cfg: EnrichConfig,
}

impl EnrichConfig {
    pub fn build(self) -> anyhow::Result<Enricher> {
        Ok(Enricher { cfg: self })
    }
}

impl Enricher {
    pub fn enrich(&self, record: &InputRecord, routing: &Routing, lang: Lang, scored: &Scored) -> Enrichment {
        let _ = (lang, scored, &self.cfg);
        let author_id = match routing.segment {
            Segment::Internal => None,
            Segment::External => record.author.clone(),
        };
        Enrichment { author_id, ..Default::default() }
    }
}
