//! What the aggregates need of one signal, staged by a shard and replayed by the commit in input
//! order, so the aggregate tables of a sharded night are computed by the same code, over the same
//! signals in the same order, as in one process (bit-identical sums included).
//!
//! Raw author identities and texts are not staged: the author is kept as the 64-bit hash the
//! aggregator counts distinct authors with, the text only as the brand it resolved to. Floats are
//! stored as their bit patterns so nothing is rounded on the way.

use crate::aggregate::Aggregator;
use crate::enrich::BrandKind;
use crate::record::{
    Aspect, ClientType, Enrichment, InputRecord, Lang, Routing, Scored, Segment, Sentiment, Signal,
};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One signal as the aggregator and the run statistics see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggRow {
    /// Order key ([`super::seq`]).
    pub q: u64,
    /// Source index in the plan.
    pub s: u16,
    /// Segment, client type, language, sentiment (indices).
    pub g: u8,
    pub c: u8,
    pub l: u8,
    pub se: u8,
    /// sentiment_score as f32 bits.
    pub sc: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    /// Resolved brand and kind (external signals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<(String, u8)>,
    /// Resolved engagement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<i64>,
    /// Author hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ar: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tp: Vec<String>,
    /// Aspects: (topic, provider, sentiment, score bits, sentence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(clippy::type_complexity)]
    pub asp: Option<Vec<(Option<String>, Option<String>, u8, u32, u32)>>,
    /// rating and 0-10 score as f64 bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
}

const LANGS: [Lang; 4] = [Lang::Pt, Lang::Es, Lang::En, Lang::Other];
const KINDS: [BrandKind; 3] = [BrandKind::Brand, BrandKind::Competitor, BrandKind::Other];

fn idx<T: PartialEq>(all: &[T], v: &T) -> u8 {
    all.iter().position(|x| x == v).unwrap_or(0) as u8
}

fn pick<T: Copy>(all: &[T], i: u8) -> T {
    all[(i as usize).min(all.len() - 1)]
}

impl AggRow {
    /// Captures `signal` (before privacy rules empty its text) with the values `agg` derives.
    pub fn capture(seq: u64, source: usize, signal: &Signal, agg: &Aggregator) -> AggRow {
        let (author, brand) = agg.prepare(signal);
        let r = &signal.record;
        let en = &signal.enrichment;
        AggRow {
            q: seq,
            s: source as u16,
            g: idx(&Segment::ALL, &signal.routing.segment),
            c: idx(&ClientType::ALL, &signal.routing.client_type),
            l: idx(&LANGS, &signal.language),
            se: idx(&Sentiment::ALL, &signal.scored.sentiment),
            sc: signal.scored.sentiment_score.to_bits(),
            tr: signal.scored.truncated,
            t: r.event_time,
            ch: r.channel.clone(),
            d: r.department.clone(),
            b: brand.map(|(b, k)| (b, idx(&KINDS, &k))),
            e: en.engagement.or_else(|| crate::enrich::engagement(r)),
            a: author,
            p: en.provider.clone(),
            ar: en.attrition_risk,
            tp: en.topics.clone(),
            asp: en.aspects.as_ref().map(|v| {
                v.iter()
                    .map(|a| {
                        (
                            a.topic.clone(),
                            a.provider.clone(),
                            idx(&Sentiment::ALL, &a.sentiment),
                            a.sentiment_score.to_bits(),
                            a.sentence,
                        )
                    })
                    .collect()
            }),
            r: r.rating.map(f64::to_bits),
            n: r.score.map(f64::to_bits),
        }
    }

    /// The signal the aggregator and [`crate::summary::RunStats`] see again, with the author hash
    /// and brand to pass to [`Aggregator::observe_prepared`]. Text and author are empty.
    #[allow(clippy::type_complexity)]
    pub fn replay(
        &self,
        sources: &[Arc<str>],
    ) -> (Signal, Option<u64>, Option<(String, BrandKind)>) {
        let segment = pick(&Segment::ALL, self.g);
        let signal = Signal {
            record: InputRecord {
                source: sources
                    .get(self.s as usize)
                    .cloned()
                    .unwrap_or_else(|| Arc::from("")),
                event_time: self.t,
                department: self.d.clone(),
                channel: self.ch.clone(),
                rating: self.r.map(f64::from_bits),
                score: self.n.map(f64::from_bits),
                ..Default::default()
            },
            routing: Routing {
                segment,
                client_type: pick(&ClientType::ALL, self.c),
                reason: String::new(),
            },
            language: pick(&LANGS, self.l),
            scored: Scored {
                sentiment: pick(&Sentiment::ALL, self.se),
                p_negative: 0.0,
                p_neutral: 0.0,
                p_positive: 0.0,
                sentiment_score: f32::from_bits(self.sc),
                truncated: self.tr,
            },
            enrichment: Enrichment {
                topics: self.tp.clone(),
                attrition_risk: self.ar,
                engagement: self.e,
                provider: self.p.clone(),
                aspects: self.asp.as_ref().map(|v| {
                    v.iter()
                        .map(|(topic, provider, s, sc, sentence)| Aspect {
                            topic: topic.clone(),
                            provider: provider.clone(),
                            sentiment: pick(&Sentiment::ALL, *s),
                            sentiment_score: f32::from_bits(*sc),
                            sentence: *sentence,
                        })
                        .collect()
                }),
                ..Default::default()
            },
        };
        let brand = self.b.clone().map(|(b, k)| (b, pick(&KINDS, k)));
        (signal, self.a, brand)
    }
}

/// Appends [`AggRow`]s to a zstd-compressed JSON Lines file.
pub struct AggRowWriter {
    path: PathBuf,
    enc: zstd::stream::write::Encoder<'static, BufWriter<std::fs::File>>,
    rows: u64,
}

impl AggRowWriter {
    pub fn create(path: &Path) -> std::io::Result<AggRowWriter> {
        let f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(AggRowWriter {
            path: path.to_path_buf(),
            enc: zstd::stream::write::Encoder::new(BufWriter::with_capacity(1 << 16, f), 3)?,
            rows: 0,
        })
    }

    pub fn push(&mut self, row: &AggRow) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.enc, row)?;
        self.enc.write_all(b"\n")?;
        self.rows += 1;
        Ok(())
    }

    /// Finishes the stream and fsyncs the file; returns (path, rows).
    pub fn finish(self) -> std::io::Result<(PathBuf, u64)> {
        let w = self.enc.finish()?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok((self.path, self.rows))
    }
}

/// Streams the [`AggRow`]s of one staged file.
pub struct AggRowReader {
    path: PathBuf,
    lines:
        std::io::Lines<BufReader<zstd::stream::read::Decoder<'static, BufReader<std::fs::File>>>>,
}

impl AggRowReader {
    pub fn open(path: &Path) -> std::io::Result<AggRowReader> {
        let f = std::fs::File::open(path)?;
        Ok(AggRowReader {
            path: path.to_path_buf(),
            lines: BufReader::with_capacity(1 << 16, zstd::stream::read::Decoder::new(f)?).lines(),
        })
    }

    /// The next row, None at the end; a damaged file is an error naming it.
    pub fn next_row(&mut self) -> anyhow::Result<Option<AggRow>> {
        use anyhow::Context;
        match self.lines.next() {
            None => Ok(None),
            Some(l) => {
                let l = l.with_context(|| format!("cannot read {}", self.path.display()))?;
                Ok(Some(serde_json::from_str(&l).with_context(|| {
                    format!("{}: damaged aggregate input row", self.path.display())
                })?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jsonl.zst");
        let mut w = AggRowWriter::create(&p).unwrap();
        let row = AggRow {
            q: super::super::seq(2, 9),
            s: 1,
            g: 1,
            c: 5,
            l: 2,
            se: 0,
            sc: (-0.3f32).to_bits(),
            tr: true,
            t: Some(1_762_000_000_000_000),
            ch: Some("x".into()),
            d: None,
            b: Some(("Acme".into(), 0)),
            e: Some(4),
            a: Some(u64::MAX),
            p: None,
            ar: None,
            tp: vec!["price".into()],
            asp: Some(vec![(Some("price".into()), None, 0, 1.5f32.to_bits(), 1)]),
            r: Some(4.5f64.to_bits()),
            n: None,
        };
        w.push(&row).unwrap();
        w.push(&row).unwrap();
        assert_eq!(w.finish().unwrap().1, 2);
        let mut r = AggRowReader::open(&p).unwrap();
        assert_eq!(r.next_row().unwrap().unwrap(), row);
        assert_eq!(r.next_row().unwrap().unwrap(), row);
        assert!(r.next_row().unwrap().is_none());
        let (sig, a, b) = row.replay(&[Arc::from("a"), Arc::from("b")]);
        assert_eq!(&*sig.record.source, "b");
        assert_eq!(sig.scored.sentiment_score, -0.3);
        assert_eq!(a, Some(u64::MAX));
        assert_eq!(b.unwrap().1, BrandKind::Brand);
    }
}
