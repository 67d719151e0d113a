//! Language detection per record (pt, es, en, other), tuned for short, mixed social-media text.
//!
//! whatlang's trigram models are unreliable on tweets of ten words, and confuse Portuguese with
//! Spanish or Galician; a small vote of distinctive function words decides those cases.

use crate::record::Lang;
use whatlang::{Detector, Lang as WLang};

const PT: &[&str] = &[
    "não",
    "nao",
    "é",
    "uma",
    "muito",
    "você",
    "voce",
    "isso",
    "também",
    "tambem",
    "obrigado",
    "obrigada",
    "pra",
    "meu",
    "minha",
    "ao",
    "os",
    "das",
    "dos",
    "em",
    "na",
    "foi",
    "são",
    "tá",
    "vou",
    "está",
    "ótimo",
    "otimo",
    "mais",
    "já",
    "ainda",
    "equipe",
    "gente",
    "então",
    "nós",
    "seu",
    "sua",
    "pelo",
    "pela",
    "até",
    "bem",
    "estou",
    "tenho",
    "nunca",
    "sempre",
    "demais",
    "aqui",
    "ninguém",
    "empresa",
    "atendimento",
    "entrega",
];
const ES: &[&str] = &[
    "el",
    "los",
    "las",
    "del",
    "muy",
    "pero",
    "es",
    "una",
    "y",
    "estoy",
    "yo",
    "mi",
    "gracias",
    "también",
    "hay",
    "cuando",
    "porque",
    "bueno",
    "está",
    "están",
    "nos",
    "usted",
    "ustedes",
    "nunca",
    "siempre",
    "aquí",
    "nadie",
    "equipo",
    "empresa",
    "entrega",
    "atención",
    "llegó",
    "pedido",
    "trabajo",
    "ya",
    "todavía",
    "fue",
    "son",
    "al",
    "ni",
    "eso",
    "esto",
    "mucho",
    "hoy",
    "sin",
    "con",
    "desde",
    "después",
];
const EN: &[&str] = &[
    "the", "and", "is", "to", "of", "it", "this", "that", "was", "for", "my", "with", "not", "you",
    "are", "but", "have", "very", "i", "we", "our", "they", "be", "been", "just", "so", "what",
    "will", "would", "can't", "don't", "again", "still", "never", "always", "thanks", "great",
    "team", "delivery", "order", "job", "at", "on",
];

fn votes(text: &str) -> [usize; 3] {
    let mut v = [0usize; 3];
    for w in text.split(|c: char| !(c.is_alphabetic() || c == '\'')) {
        if w.is_empty() {
            continue;
        }
        let w = w.to_lowercase();
        let w = w.as_str();
        for (i, list) in [PT, ES, EN].iter().enumerate() {
            if list.contains(&w) {
                v[i] += 1;
            }
        }
    }
    v
}

fn from_whatlang(l: WLang) -> Lang {
    match l {
        WLang::Por => Lang::Pt,
        WLang::Spa => Lang::Es,
        WLang::Eng => Lang::En,
        _ => Lang::Other,
    }
}

/// Detects the language of one text.
///
/// ```
/// use pulso::{lang::detect, record::Lang};
/// assert_eq!(detect("A entrega atrasou de novo, não recomendo"), Lang::Pt);
/// assert_eq!(detect("El pedido llegó tarde y nadie contesta"), Lang::Es);
/// assert_eq!(detect("The delivery was late again"), Lang::En);
/// assert_eq!(detect("🙂🙂"), Lang::Other);
/// ```
pub fn detect(text: &str) -> Lang {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters < 2 {
        return Lang::Other;
    }
    let v = votes(text);
    let wl = whatlang::detect(text);
    if let Some(info) = &wl {
        let l = from_whatlang(info.lang());
        if l != Lang::Other && info.is_reliable() {
            // Trust a reliable answer unless the function words clearly say otherwise.
            let li = match l {
                Lang::Pt => 0,
                Lang::Es => 1,
                _ => 2,
            };
            let best = (0..3).max_by_key(|&i| v[i]).unwrap_or(li);
            if v[best] >= v[li] + 2 {
                return [Lang::Pt, Lang::Es, Lang::En][best];
            }
            return l;
        }
        if l == Lang::Other && info.is_reliable() && v.iter().max().copied().unwrap_or(0) < 2 {
            // Reliably another language, and at most one stray function word of ours.
            return Lang::Other;
        }
    }
    let total: usize = v.iter().sum();
    if total > 0 {
        let max = *v.iter().max().unwrap_or(&0);
        let winners: Vec<usize> = (0..3).filter(|&i| v[i] == max).collect();
        if winners.len() == 1 {
            return [Lang::Pt, Lang::Es, Lang::En][winners[0]];
        }
    }
    if let Some(info) = wl {
        if info.is_reliable() {
            return from_whatlang(info.lang());
        }
    }
    // Unreliable: choose among the three languages we serve, or give up.
    let det = Detector::with_allowlist(vec![WLang::Por, WLang::Spa, WLang::Eng]);
    match det.detect(text) {
        Some(info) if info.confidence() > 0.1 => from_whatlang(info.lang()),
        _ => Lang::Other,
    }
}

/// Maps a declared language or locale (`pt-BR`, `es_MX`, `English`) to a [`Lang`], if recognisable.
pub fn parse_declared(s: &str) -> Option<Lang> {
    let s = s.trim().to_ascii_lowercase();
    let head = s.split(['-', '_']).next().unwrap_or("");
    match head {
        "pt" | "por" | "portuguese" | "português" | "portugues" => Some(Lang::Pt),
        "es" | "spa" | "spanish" | "español" | "espanol" => Some(Lang::Es),
        "en" | "eng" | "english" => Some(Lang::En),
        "" | "und" | "unknown" | "auto" => None,
        _ if head.len() <= 3 && head.chars().all(|c| c.is_ascii_alphabetic()) => Some(Lang::Other),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_social_texts() {
        let cases = [
            ("Amei o app novo, muito fácil de usar", Lang::Pt),
            ("Vou pedir demissão, ninguém aguenta mais", Lang::Pt),
            (
                "Estoy buscando otro trabajo, el ambiente es horrible",
                Lang::Es,
            ),
            ("Muy buena atención, gracias", Lang::Es),
            ("I'm looking for a new job", Lang::En),
            ("Love it!", Lang::En),
            (
                "Das ist wirklich ein sehr schlechter Service und ich bin enttäuscht",
                Lang::Other,
            ),
        ];
        for (t, want) in cases {
            assert_eq!(detect(t), want, "{t}");
        }
    }

    #[test]
    fn declared_locales() {
        assert_eq!(parse_declared("pt-BR"), Some(Lang::Pt));
        assert_eq!(parse_declared("es_MX"), Some(Lang::Es));
        assert_eq!(parse_declared("English"), Some(Lang::En));
        assert_eq!(parse_declared("fr"), Some(Lang::Other));
        assert_eq!(parse_declared(""), None);
    }
}
