//! Aspect-level sentiment: every sentence scored with the model, topics and providers per sentence.
//!
//! [`SentenceBatch`] adds the sentences of every multi-sentence text to the texts of a chunk, so
//! [`crate::score::Scorer::score`] sees them in the same call and its token-budget batching packs
//! the (short) sentences together with the whole texts. A text of one sentence is not scored twice:
//! its sentence reuses the whole text's score.

use crate::enrich::{words, Taxonomy};
use crate::record::{Aspect, Scored, Segment, Sentiment};
use crate::services::provider::{Departments, ProviderMatch};
use crate::services::sentences;
use std::ops::Range;

/// The sentences of a chunk of texts, and where their scores land in the scorer's output.
#[derive(Debug, Default)]
pub struct SentenceBatch {
    /// Per text: its sentence ranges and, for texts of 2+ sentences, the index of the first
    /// sentence's score in the combined output.
    split: Vec<(Vec<Range<usize>>, Option<usize>)>,
    extra: usize,
}

/// One sentence of a text with its score.
#[derive(Clone, Debug)]
pub struct ScoredSentence {
    pub range: Range<usize>,
    pub scored: Scored,
}

impl SentenceBatch {
    /// Splits `texts` into sentences (`enabled = false`: no sentences, nothing extra to score).
    pub fn new(texts: &[&str], enabled: bool) -> SentenceBatch {
        let mut b = SentenceBatch::default();
        if !enabled {
            return b;
        }
        let n = texts.len();
        for t in texts {
            let s = sentences::split(t);
            if s.len() > 1 {
                b.split.push((s.clone(), Some(n + b.extra)));
                b.extra += s.len();
            } else {
                b.split.push((s, None));
            }
        }
        b
    }

    /// The texts to score: the whole texts, then every sentence of the multi-sentence ones.
    pub fn texts<'a>(&self, texts: &[&'a str]) -> Vec<&'a str> {
        let mut v: Vec<&'a str> = texts.to_vec();
        for (t, (ranges, first)) in texts.iter().zip(&self.split) {
            if first.is_some() {
                v.extend(ranges.iter().map(|r| &t[r.clone()]));
            }
        }
        v
    }

    /// Sentences scored on top of the whole texts.
    pub fn extra(&self) -> usize {
        self.extra
    }

    /// Splits the scorer's output back: per text, its own score and its scored sentences (empty
    /// when aspects are off).
    pub fn unpack(
        &self,
        mut all: Vec<Scored>,
        n_texts: usize,
    ) -> Vec<(Scored, Vec<ScoredSentence>)> {
        let tail = all.split_off(n_texts);
        let mut out = Vec::with_capacity(n_texts);
        for (i, whole) in all.into_iter().enumerate() {
            let sents = match self.split.get(i) {
                None => vec![],
                Some((ranges, None)) => ranges
                    .iter()
                    .map(|r| ScoredSentence {
                        range: r.clone(),
                        scored: whole,
                    })
                    .collect(),
                Some((ranges, Some(first))) => ranges
                    .iter()
                    .enumerate()
                    .map(|(k, r)| ScoredSentence {
                        range: r.clone(),
                        scored: tail[first - n_texts + k],
                    })
                    .collect(),
            };
            out.push((whole, sents));
        }
        out
    }
}

/// Aspects of one text: for each sentence, one entry per topic it raises and per provider it is
/// about. A sentence is about the providers it names (never the requester's own department); a
/// sentence that names none is about the last provider named before it, or — when the provider
/// came from a column — about the record's provider.
pub fn aspects(
    text: &str,
    sentences: &[ScoredSentence],
    segment: Segment,
    taxonomy: &Taxonomy,
    departments: &Departments,
    department: Option<&str>,
    record_provider: Option<&ProviderMatch>,
) -> Vec<Aspect> {
    let mut out = Vec::new();
    let mut current: Option<String> = record_provider
        .filter(|p| !p.from_text)
        .map(|p| p.provider.clone());
    for (i, s) in sentences.iter().enumerate() {
        let tokens = words(&text[s.range.clone()]);
        let entry = |topic: Option<String>, provider: Option<String>| Aspect {
            topic,
            provider,
            sentiment: s.scored.sentiment,
            sentiment_score: s.scored.sentiment_score,
            sentence: i as u32,
        };
        for t in taxonomy.topics(segment, &tokens) {
            out.push(entry(Some(t), None));
        }
        if segment != Segment::Internal {
            continue;
        }
        let mut named: Vec<String> = Vec::new();
        for (_, p, _) in departments.mentions(&tokens, department) {
            if !named.contains(&p) {
                named.push(p);
            }
        }
        if named.is_empty() {
            if let Some(p) = &current {
                out.push(entry(None, Some(p.clone())));
            }
        } else {
            for p in &named {
                out.push(entry(None, Some(p.clone())));
            }
            current = named.last().cloned();
        }
    }
    out
}

/// How a signal feels about one topic or provider, from its aspects: negative when more of the
/// sentences raising it are negative than positive, positive when the reverse, else neutral.
/// Without aspects (turned off, or none for this name) the record's own sentiment.
pub fn vote<'a>(
    aspects: Option<&'a [Aspect]>,
    matches: impl Fn(&'a Aspect) -> bool,
    record: Sentiment,
) -> Sentiment {
    let Some(a) = aspects else { return record };
    let (mut pos, mut neg, mut any) = (0, 0, false);
    for x in a.iter().filter(|x| matches(x)) {
        any = true;
        match x.sentiment {
            Sentiment::Positive => pos += 1,
            Sentiment::Negative => neg += 1,
            Sentiment::Neutral => {}
        }
    }
    if !any {
        return record;
    }
    match neg.cmp(&pos) {
        std::cmp::Ordering::Greater => Sentiment::Negative,
        std::cmp::Ordering::Less => Sentiment::Positive,
        std::cmp::Ordering::Equal => Sentiment::Neutral,
    }
}

/// The sentiment of a signal about a topic (see [`vote`]).
pub fn topic_sentiment(aspects: Option<&[Aspect]>, topic: &str, record: Sentiment) -> Sentiment {
    vote(aspects, |a| a.topic.as_deref() == Some(topic), record)
}

/// The sentiment of a signal about a provider (see [`vote`]).
pub fn provider_sentiment(
    aspects: Option<&[Aspect]>,
    provider: &str,
    record: Sentiment,
) -> Sentiment {
    vote(aspects, |a| a.provider.as_deref() == Some(provider), record)
}
