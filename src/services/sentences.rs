//! Sentence segmentation for pt / es / en, so each sentence can be scored on its own.
//!
//! Boundaries come from Unicode sentence boundaries (UAX #29, the `unicode-segmentation` crate:
//! already in the dependency tree through the tokenizers, maintained by unicode-rs, no rules file
//! to ship). UAX #29 is language-neutral; three corrections make it fit short feedback texts:
//!
//! * **abbreviations**: a segment that ends in a known pt / es / en abbreviation (`Sr.`, `Dra.`,
//!   `p. ex.`, `Ud.`, `Mr.`, `e.g.`, `etc.` before a capital, `nº.`) or a single-letter initial
//!   (`J. Smith`) is joined with the next one (UAX #29 already keeps `etc. and` and `3.5` whole);
//! * **emoji-only and punctuation-only segments** (`👍`, `!!!`, `:)`) carry no words to score or
//!   to match a topic; they are joined to the sentence before them (or after, at the start);
//! * whitespace around a sentence is not part of it.
//!
//! (`srx` was the alternative: SRX rules per language are more configurable, but it needs a rules
//! file and a regex engine per rule, for the same result on this kind of text.)

use std::ops::Range;
use unicode_segmentation::UnicodeSegmentation;

/// Abbreviations (lowercase, without the final dot) after which a dot does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    // pt
    "sr", "sra", "srta", "dr", "dra", "prof", "profa", "eng", "av", "nº", "pág", "pag", "tel", "ex",
    "p. ex", "obs", "aprox", "depto", "dept", "cia", "ltda", "séc", "vol", "ref", "att", "atte",
    // es
    "sres", "ud", "uds", "vd", "vds", "lic", "ing", "núm", "num", "pp", "dpto", "aprox", "p. ej",
    "ej", "etc", "sta", "mtro", "mtra", // en
    "mr", "mrs", "ms", "jr", "vs", "e.g", "i.e", "approx", "inc", "ltd", "corp", "fig", "jan",
    "feb", "apr", "jun", "jul", "aug", "sept", "oct", "nov",
    "dec",
    // Left out on purpose: words that are also pt / es words ("no", "mar", "co", "st" ...).
];

/// Emoji and other pictographs (not letters, digits, punctuation that opens a sentence).
fn is_emoji_like(c: char) -> bool {
    !c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace() && !"¿¡«“‘„–—…".contains(c)
}

fn has_word(s: &str) -> bool {
    s.chars().any(char::is_alphanumeric)
}

/// Whether `seg` (trimmed) ends with an abbreviation or initial that does not end a sentence.
fn ends_with_abbreviation(seg: &str) -> bool {
    let t = seg.trim_end();
    let Some(body) = t.strip_suffix('.') else {
        return false;
    };
    // The last "word" before the dot, dots inside kept (e.g., i.e, p. ex).
    let lower = body.to_lowercase();
    let last = lower
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .next()
        .unwrap_or("");
    if last.chars().count() == 1 && last.chars().all(char::is_alphabetic) {
        return true; // an initial: "J. Smith"
    }
    ABBREVIATIONS.iter().any(|a| {
        if a.contains(' ') {
            lower.ends_with(a)
        } else {
            last == *a
        }
    })
}

/// Byte ranges of the sentences of `text`, in order, trimmed, never empty. A text with no
/// sentence break gives one range (the trimmed text).
///
/// ```
/// let t = "Great team. But the pay is a joke!";
/// let s: Vec<&str> = pulso::services::sentences::split(t).into_iter().map(|r| &t[r]).collect();
/// assert_eq!(s, ["Great team.", "But the pay is a joke!"]);
/// ```
pub fn split(text: &str) -> Vec<Range<usize>> {
    let mut raw: Vec<Range<usize>> = text
        .split_sentence_bound_indices()
        .map(|(i, s)| i..i + s.len())
        .collect();
    // Join abbreviations with what follows.
    let mut joined: Vec<Range<usize>> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let mut r = raw[i].clone();
        while i + 1 < raw.len() && ends_with_abbreviation(&text[r.clone()]) {
            i += 1;
            r.end = raw[i].end;
        }
        joined.push(r);
        i += 1;
    }
    raw = joined;
    // Emoji that UAX #29 puts at the start of the next sentence ("Adorei! 👍 Voltarei.") close
    // the sentence before them.
    for i in 1..raw.len() {
        let seg = &text[raw[i].clone()];
        let lead: usize = seg
            .char_indices()
            .find(|(_, c)| !(is_emoji_like(*c) || (c.is_whitespace())))
            .map(|(b, _)| b)
            .unwrap_or(seg.len());
        if lead > 0 && seg[..lead].chars().any(is_emoji_like) && lead < seg.len() {
            raw[i - 1].end += lead;
            raw[i].start += lead;
        }
    }
    // Join word-less segments (emoji, punctuation) to their neighbour.
    let mut out: Vec<Range<usize>> = Vec::with_capacity(raw.len());
    let mut pending_start: Option<usize> = None;
    for r in raw {
        if !has_word(&text[r.clone()]) {
            match out.last_mut() {
                Some(prev) => prev.end = r.end,
                None => {
                    pending_start.get_or_insert(r.start);
                }
            }
            continue;
        }
        let start = pending_start.take().unwrap_or(r.start);
        out.push(start..r.end);
    }
    if out.is_empty() {
        let t = text.trim();
        if t.is_empty() {
            return vec![];
        }
        let s = text.len() - text.trim_start().len();
        #[allow(clippy::single_range_in_vec_init)] // one sentence: the trimmed text
        return vec![s..s + t.len()];
    }
    if let (Some(s), Some(last)) = (pending_start, out.last_mut()) {
        last.start = last.start.min(s);
    }
    // Trim whitespace.
    out.into_iter()
        .filter_map(|r| {
            let seg = &text[r.clone()];
            let lead = seg.len() - seg.trim_start().len();
            let t = seg.trim();
            (!t.is_empty()).then(|| r.start + lead..r.start + lead + t.len())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(t: &str) -> Vec<&str> {
        split(t).into_iter().map(|r| &t[r]).collect()
    }

    #[test]
    fn three_languages() {
        assert_eq!(
            parts("A equipe é ótima. Mas o salário é uma piada!"),
            ["A equipe é ótima.", "Mas o salário é uma piada!"]
        );
        assert_eq!(
            parts("¿Por qué nadie contesta? El soporte técnico es lento."),
            ["¿Por qué nadie contesta?", "El soporte técnico es lento."]
        );
        assert_eq!(
            parts("Great team.\nBut the pay is a joke"),
            ["Great team.", "But the pay is a joke"]
        );
    }

    #[test]
    fn abbreviations_initials_and_numbers() {
        assert_eq!(
            parts("Falei com a Dra. Souza ontem. Ela ajudou."),
            ["Falei com a Dra. Souza ontem.", "Ela ajudou."]
        );
        assert_eq!(
            parts("El Sr. Pérez y la Sra. Gómez llegaron. Todo bien."),
            ["El Sr. Pérez y la Sra. Gómez llegaron.", "Todo bien."]
        );
        assert_eq!(
            parts("Mr. Smith from J. Doe Inc. called. Refund is 3.5 USD, e.g. nothing."),
            [
                "Mr. Smith from J. Doe Inc. called.",
                "Refund is 3.5 USD, e.g. nothing."
            ]
        );
    }

    #[test]
    fn emoji_and_punctuation_only_segments_join_a_neighbour() {
        assert_eq!(parts("Adorei! 👍 Voltarei."), ["Adorei! 👍", "Voltarei."]);
        assert_eq!(parts("Bom. ¿Y ahora? 😡😡"), ["Bom.", "¿Y ahora? 😡😡"]);
        assert_eq!(parts("!!! Péssimo."), ["!!! Péssimo."]);
        assert_eq!(parts("👍👍"), ["👍👍"]);
        assert!(split("   ").is_empty());
        assert_eq!(parts("  one sentence only  "), ["one sentence only"]);
    }
}
