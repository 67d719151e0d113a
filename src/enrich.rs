//! Per-signal enrichment: topics, attrition risk, engagement, brand/competitor mentions, pseudonyms.
//!
//! * **Topics** come from a taxonomy file (default: `pipelines/topics.toml`, built into the binary).
//!   Matching is case- and accent-insensitive and on whole words; a trailing `*` makes a word a prefix
//!   (`atras*` matches `atraso`, `atrasada`). Internal topics are only tried on internal signals,
//!   external topics on external ones. Every language's terms are tried on every text (see the file).
//! * **attrition_risk** (internal only): an `[attrition]` phrase matches *and* the model scored the text
//!   negative. `None` for external signals.
//! * **engagement** (external only): likes + shares + replies, summing the ones present (negative
//!   counts are taken as 0); `None` when all three are absent.
//! * **brand_mentioned / competitor_mentioned** (external only): a tracked name appears as whole words
//!   in the text or in the record's `brand` field (case- and accent-insensitive).
//! * **author_id**: internal authors → `hex(HMAC-SHA256(key, lowercase(trim(author))))[..32]` (the first
//!   16 bytes of the MAC, 32 hex chars), keyed by `PULSO_PSEUDONYM_KEY`; without a key internal
//!   `author_id` is `None` and [`Enricher::warnings`] reports it once. External authors keep their
//!   handle as given. The raw internal author never leaves this module through [`Enrichment`].

use crate::record::{Enrichment, InputRecord, Lang, Routing, Scored, Segment, Sentiment};
use crate::wordhash::WordMap;
use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// The built-in taxonomy (`pipelines/topics.toml`).
pub const DEFAULT_TOPICS_TOML: &str = include_str!("../pipelines/topics.toml");

/// Number of hex characters kept from the HMAC (16 bytes).
pub const PSEUDONYM_HEX_LEN: usize = 32;

#[derive(Clone, Debug, Default)]
pub struct EnrichConfig {
    pub brands: Vec<String>,
    pub competitors: Vec<String>,
    /// Topic taxonomy file; None = the built-in default (pipelines/topics.toml).
    pub topics_path: Option<PathBuf>,
    /// HMAC key for internal author pseudonyms (from PULSO_PSEUDONYM_KEY); None = internal authors left empty.
    pub pseudonym_key: Option<Vec<u8>>,
}

// ------------------------------------------------------------------------------------------------
// Text normalisation and term matching
// ------------------------------------------------------------------------------------------------

/// Lowercases and strips accents (NFD, combining marks dropped): `"Demissão"` → `"demissao"`.
///
/// ```
/// assert_eq!(pulso::enrich::normalize("Demissão AGORA"), "demissao agora");
/// assert_eq!(pulso::enrich::normalize("ÁRVORE Ñandú"), "arvore nandu");
/// ```
pub fn normalize(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    // Same result as `s.nfd()` without combining marks, lowercased: canonical reordering only
    // moves combining marks, and those are dropped.
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            decompose_canonical(c, |d| {
                if !is_combining_mark(d) {
                    out.extend(d.to_lowercase());
                }
            });
        }
    }
    out
}

/// The words of a text after [`normalize`]: maximal runs of letters and digits.
pub fn words(s: &str) -> Vec<String> {
    let n = normalize(s);
    n.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Clone, Debug)]
struct TermWord {
    word: String,
    prefix: bool,
}

/// Parses a term ("plano de saúde", "atras*") into normalised words with prefix flags.
fn parse_term(term: &str) -> Option<Vec<TermWord>> {
    let mut out = Vec::new();
    for raw in term.split_whitespace() {
        let (body, prefix) = match raw.strip_suffix('*') {
            Some(b) => (b, true),
            None => (raw, false),
        };
        let ws = words(body);
        let last = ws.len().saturating_sub(1);
        for (i, w) in ws.into_iter().enumerate() {
            out.push(TermWord {
                word: w,
                prefix: prefix && i == last,
            });
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Finds terms (whole words, optional prefix words) in tokenised text. Each term carries a label id.
#[derive(Clone, Debug, Default)]
pub struct TermMatcher {
    terms: Vec<(Vec<TermWord>, usize)>,
    exact_first: WordMap<String, Vec<usize>>,
    prefix_first: WordMap<String, Vec<usize>>,
    /// Byte lengths of the prefix words in `prefix_first`, ascending: only those prefixes of a
    /// token are looked up.
    prefix_lens: Vec<usize>,
}

impl TermMatcher {
    /// Adds a term for `label`; returns false when the term has no words (e.g. only punctuation).
    pub fn add(&mut self, term: &str, label: usize) -> bool {
        let Some(t) = parse_term(term) else {
            return false;
        };
        let idx = self.terms.len();
        let first = &t[0];
        let map = if first.prefix {
            &mut self.prefix_first
        } else {
            &mut self.exact_first
        };
        map.entry(first.word.clone()).or_default().push(idx);
        if first.prefix {
            if let Err(i) = self.prefix_lens.binary_search(&first.word.len()) {
                self.prefix_lens.insert(i, first.word.len());
            }
        }
        self.terms.push((t, label));
        true
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    fn term_at(&self, term: usize, tokens: &[String], pos: usize) -> bool {
        let ws = &self.terms[term].0;
        if pos + ws.len() > tokens.len() {
            return false;
        }
        ws.iter().zip(&tokens[pos..]).all(|(w, t)| {
            if w.prefix {
                t.starts_with(&w.word)
            } else {
                *t == w.word
            }
        })
    }

    /// Every (word position, label) where a term matches, in text order.
    pub fn find(&self, tokens: &[String]) -> Vec<(usize, usize)> {
        let mut hits = Vec::new();
        for (pos, tok) in tokens.iter().enumerate() {
            if let Some(c) = self.exact_first.get(tok) {
                for &t in c {
                    if self.term_at(t, tokens, pos) {
                        hits.push((pos, self.terms[t].1));
                    }
                }
            }
            for &end in &self.prefix_lens {
                if end > tok.len() {
                    break;
                }
                if tok.is_char_boundary(end) {
                    if let Some(c) = self.prefix_first.get(&tok[..end]) {
                        for &t in c {
                            if self.term_at(t, tokens, pos) {
                                hits.push((pos, self.terms[t].1));
                            }
                        }
                    }
                }
            }
        }
        hits
    }

    /// Distinct labels found, in label order.
    pub fn labels(&self, tokens: &[String]) -> BTreeSet<usize> {
        self.find(tokens).into_iter().map(|(_, l)| l).collect()
    }

    pub fn any(&self, tokens: &[String]) -> bool {
        !self.find(tokens).is_empty()
    }
}

// ------------------------------------------------------------------------------------------------
// Taxonomy
// ------------------------------------------------------------------------------------------------

/// A parsed topic taxonomy: internal topics, external topics, intent-to-leave phrases.
#[derive(Clone, Debug)]
pub struct Taxonomy {
    internal_names: Vec<String>,
    internal: TermMatcher,
    external_names: Vec<String>,
    external: TermMatcher,
    attrition: TermMatcher,
}

fn collect_terms(
    what: &str,
    v: &toml::Value,
    matcher: &mut TermMatcher,
    label: usize,
) -> anyhow::Result<usize> {
    let table = v
        .as_table()
        .with_context(|| format!("[{what}] must be a table of term lists (pt = [...], ...)"))?;
    let mut n = 0;
    for (key, list) in table {
        let Some(arr) = list.as_array() else { continue };
        for item in arr {
            let term = item
                .as_str()
                .with_context(|| format!("[{what}] {key}: terms must be strings, found {item}"))?;
            if !matcher.add(term, label) {
                bail!("[{what}] {key}: term {term:?} has no letters or digits");
            }
            n += 1;
        }
    }
    Ok(n)
}

impl Taxonomy {
    /// Parses a taxonomy in the `pipelines/topics.toml` format.
    pub fn parse(src: &str) -> anyhow::Result<Taxonomy> {
        let doc: Ordered<Ordered<toml::Value>> =
            toml::from_str(src).context("topic taxonomy is not valid TOML")?;
        let mut tax = Taxonomy {
            internal_names: vec![],
            internal: TermMatcher::default(),
            external_names: vec![],
            external: TermMatcher::default(),
            attrition: TermMatcher::default(),
        };
        for (section, value) in &doc.0 {
            match section.as_str() {
                "internal" | "external" => {
                    for (name, terms) in &value.0 {
                        let (names, matcher) = if section == "internal" {
                            (&mut tax.internal_names, &mut tax.internal)
                        } else {
                            (&mut tax.external_names, &mut tax.external)
                        };
                        let label = names.len();
                        names.push(name.clone());
                        if collect_terms(&format!("{section}.{name}"), terms, matcher, label)? == 0 {
                            bail!("[{section}.{name}] has no terms");
                        }
                    }
                }
                "attrition" => {
                    let table = toml::Value::Table(value.0.iter().cloned().collect());
                    collect_terms("attrition", &table, &mut tax.attrition, 0)?;
                }
                other => bail!("unknown section [{other}] in topic taxonomy (expected [internal.<topic>], [external.<topic>], [attrition])"),
            }
        }
        Ok(tax)
    }

    /// The built-in taxonomy.
    pub fn builtin() -> Taxonomy {
        Taxonomy::parse(DEFAULT_TOPICS_TOML).expect("pipelines/topics.toml is valid")
    }

    pub fn internal_topics(&self) -> &[String] {
        &self.internal_names
    }
    pub fn external_topics(&self) -> &[String] {
        &self.external_names
    }

    /// Topics for a text (already split with [`words`]), in taxonomy order.
    pub fn topics(&self, segment: Segment, tokens: &[String]) -> Vec<String> {
        let (names, m) = match segment {
            Segment::Internal => (&self.internal_names, &self.internal),
            Segment::External => (&self.external_names, &self.external),
        };
        m.labels(tokens)
            .into_iter()
            .map(|l| names[l].clone())
            .collect()
    }

    /// Whether intent-to-leave language appears (sentiment not considered).
    pub fn intent_to_leave(&self, tokens: &[String]) -> bool {
        self.attrition.any(tokens)
    }
}

/// A TOML table with its keys in file order (topic order in the file is the order in `topics`).
pub(crate) struct Ordered<V>(pub(crate) Vec<(String, V)>);

impl<'de, V: serde::Deserialize<'de>> serde::Deserialize<'de> for Ordered<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = m.next_entry::<String, V>()? {
                    v.push((k, x));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

// ------------------------------------------------------------------------------------------------
// Brands
// ------------------------------------------------------------------------------------------------

/// Whether a brand name is one of ours, a competitor's, or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BrandKind {
    Brand,
    Competitor,
    Other,
}

impl BrandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BrandKind::Brand => "brand",
            BrandKind::Competitor => "competitor",
            BrandKind::Other => "other",
        }
    }
}

/// The brand value used when a signal names no brand at all.
pub const NO_BRAND: &str = "(none)";

/// Tracked brands and competitors, matched as whole words, case- and accent-insensitive.
#[derive(Clone, Debug, Default)]
pub struct BrandMatcher {
    /// Configured spelling and kind, indexed by label.
    names: Vec<(String, BrandKind)>,
    /// Normalised words of each name (for comparing a `brand` field with a name).
    name_words: Vec<Vec<String>>,
    matcher: TermMatcher,
}

impl BrandMatcher {
    /// Names with no letters or digits are skipped (reported by [`EnrichConfig::build`]).
    pub fn new(brands: &[String], competitors: &[String]) -> BrandMatcher {
        let mut m = BrandMatcher::default();
        let all = brands
            .iter()
            .map(|b| (b, BrandKind::Brand))
            .chain(competitors.iter().map(|c| (c, BrandKind::Competitor)));
        for (name, kind) in all {
            let ws = words(name);
            if ws.is_empty() || m.name_words.contains(&ws) {
                continue;
            }
            // Brand names are literal: a '*' in a name is not a wildcard.
            let literal = ws.join(" ");
            m.matcher.add(&literal, m.names.len());
            m.names.push((name.trim().to_string(), kind));
            m.name_words.push(ws);
        }
        m
    }

    pub fn names(&self) -> impl Iterator<Item = (&str, BrandKind)> {
        self.names.iter().map(|(n, k)| (n.as_str(), *k))
    }

    /// The kind of a brand value as it appears in the aggregates.
    pub fn kind_of(&self, brand: &str) -> BrandKind {
        let ws = words(brand);
        self.name_words
            .iter()
            .position(|n| *n == ws)
            .map(|i| self.names[i].1)
            .unwrap_or(BrandKind::Other)
    }

    /// (brand mentioned, competitor mentioned) in the text or the `brand` field.
    pub fn mentions(&self, text_tokens: &[String], brand_field: Option<&str>) -> (bool, bool) {
        let mut brand = false;
        let mut comp = false;
        let field_tokens = brand_field.map(words).unwrap_or_default();
        for (_, l) in self
            .matcher
            .find(text_tokens)
            .into_iter()
            .chain(self.matcher.find(&field_tokens))
        {
            match self.names[l].1 {
                BrandKind::Brand => brand = true,
                BrandKind::Competitor => comp = true,
                BrandKind::Other => {}
            }
        }
        (brand, comp)
    }

    /// Which brand a signal belongs to: the record's `brand` field when present (spelled as configured
    /// when it names a tracked brand), else the tracked name mentioned earliest in the text (ties:
    /// brands before competitors, then configuration order), else [`NO_BRAND`].
    pub fn assign(&self, brand_field: Option<&str>, text: &str) -> (String, BrandKind) {
        if let Some(b) = brand_field.map(str::trim).filter(|b| !b.is_empty()) {
            let ws = words(b);
            if let Some(i) = self.name_words.iter().position(|n| *n == ws) {
                return (self.names[i].0.clone(), self.names[i].1);
            }
            return (b.to_string(), BrandKind::Other);
        }
        if self.matcher.is_empty() {
            return (NO_BRAND.to_string(), BrandKind::Other);
        }
        let tokens = words(text);
        match self.matcher.find(&tokens).into_iter().min() {
            Some((_, l)) => (self.names[l].0.clone(), self.names[l].1),
            None => (NO_BRAND.to_string(), BrandKind::Other),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Pseudonyms
// ------------------------------------------------------------------------------------------------

/// `hex(HMAC-SHA256(key, lowercase(trim(author))))`, first 16 bytes (32 hex chars).
///
/// Reproducible outside pulso, e.g. in Python:
/// `hmac.new(key, author.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]`.
pub fn pseudonymize(key: &[u8], author: &str) -> String {
    pseudonymize_with(&keyed_mac(key), author)
}

fn keyed_mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// [`pseudonymize`] with the key already absorbed (a clone of a keyed MAC skips two SHA-256 blocks).
fn pseudonymize_with(keyed: &Hmac<Sha256>, author: &str) -> String {
    let mut mac = keyed.clone();
    mac.update(author.trim().to_lowercase().as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..PSEUDONYM_HEX_LEN / 2])
}

// ------------------------------------------------------------------------------------------------
// Enricher
// ------------------------------------------------------------------------------------------------

/// Enriches signals; cheap to share between threads (`&self` only).
pub struct Enricher {
    taxonomy: Taxonomy,
    brands: BrandMatcher,
    key: Option<Hmac<Sha256>>,
    config_warnings: Vec<String>,
    internal_without_key: AtomicU64,
}

impl EnrichConfig {
    pub fn build(self) -> anyhow::Result<Enricher> {
        let taxonomy = match &self.topics_path {
            None => Taxonomy::builtin(),
            Some(p) => {
                let src = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read topic taxonomy {}", p.display()))?;
                Taxonomy::parse(&src)
                    .with_context(|| format!("in topic taxonomy {}", p.display()))?
            }
        };
        let mut config_warnings = Vec::new();
        for n in self.brands.iter().chain(&self.competitors) {
            if words(n).is_empty() {
                config_warnings.push(format!(
                    "brand/competitor name {n:?} has no letters or digits and is ignored"
                ));
            }
        }
        if let Some(k) = &self.pseudonym_key {
            if k.is_empty() {
                bail!("PULSO_PSEUDONYM_KEY is set but empty; set it to a secret of at least 16 bytes, or unset it");
            }
            if k.len() < 16 {
                config_warnings.push(format!(
                    "PULSO_PSEUDONYM_KEY is only {} bytes; use at least 16 random bytes so pseudonyms cannot be guessed",
                    k.len()
                ));
            }
        }
        Ok(Enricher {
            taxonomy,
            brands: BrandMatcher::new(&self.brands, &self.competitors),
            key: self.pseudonym_key.as_deref().map(keyed_mac),
            config_warnings,
            internal_without_key: AtomicU64::new(0),
        })
    }
}

impl Enricher {
    pub fn enrich(
        &self,
        record: &InputRecord,
        routing: &Routing,
        lang: Lang,
        scored: &Scored,
    ) -> Enrichment {
        let _ = lang; // every language's terms apply to every text (see pipelines/topics.toml)
        let tokens = words(&record.text);
        let topics = self.taxonomy.topics(routing.segment, &tokens);
        match routing.segment {
            Segment::Internal => {
                let attrition = self.taxonomy.intent_to_leave(&tokens)
                    && scored.sentiment == Sentiment::Negative;
                let author_id = match (&self.key, record.author.as_deref().map(str::trim)) {
                    (_, None) | (_, Some("")) => None,
                    (Some(k), Some(a)) => Some(pseudonymize_with(k, &crate::route::author_key(a))),
                    (None, Some(_)) => {
                        self.internal_without_key.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                };
                Enrichment {
                    topics,
                    attrition_risk: Some(attrition),
                    engagement: None,
                    brand_mentioned: None,
                    competitor_mentioned: None,
                    author_id,
                    ..Default::default()
                }
            }
            Segment::External => {
                let (b, c) = self.brands.mentions(&tokens, record.brand.as_deref());
                Enrichment {
                    topics,
                    attrition_risk: None,
                    engagement: engagement(record),
                    brand_mentioned: Some(b),
                    competitor_mentioned: Some(c),
                    author_id: record.author.clone(),
                    ..Default::default()
                }
            }
        }
    }

    /// Whether internal authors are pseudonymised (a key was given).
    pub fn has_pseudonym_key(&self) -> bool {
        self.key.is_some()
    }

    /// Warnings for the run, each to be printed once (call after the last `enrich`, e.g. before the
    /// manifest is written): configuration problems, and — when internal signals with an author were
    /// seen without `PULSO_PSEUDONYM_KEY` — one line saying their `author_id` was left empty.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.config_warnings.clone();
        let n = self.internal_without_key.load(Ordering::Relaxed);
        if n > 0 {
            w.push(format!(
                "PULSO_PSEUDONYM_KEY is not set: author_id was left empty for {n} internal signal(s); \
                 set the key to publish stable pseudonyms (HMAC-SHA256) instead"
            ));
        }
        w
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }
}

/// likes + shares + replies over the ones present (negative counts as 0); None when all are absent.
pub fn engagement(r: &InputRecord) -> Option<i64> {
    let parts = [r.likes, r.shares, r.replies];
    if parts.iter().all(Option::is_none) {
        return None;
    }
    Some(
        parts
            .iter()
            .flatten()
            .map(|v| (*v).max(0))
            .fold(0i64, i64::saturating_add),
    )
}
