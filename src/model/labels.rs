//! Mapping a model's classes (`id2label`) onto pulso's negative / neutral / positive.

use crate::record::{Scored, Sentiment};
use anyhow::bail;

/// How the classes of a model map onto three-way sentiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelScheme {
    /// Negative and positive only; `p_neutral` is always 0.
    TwoClass { negative: usize, positive: usize },
    ThreeClass {
        negative: usize,
        neutral: usize,
        positive: usize,
    },
    /// "1 star" .. "5 stars": `stars[k]` is the class index of k+1 stars.
    Stars { stars: [usize; 5] },
}

/// What a single label name means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meaning {
    Sentiment(Sentiment),
    Star(usize),
    Generic(usize),
}

fn meaning(label: &str) -> Option<Meaning> {
    let l = label.trim().to_ascii_lowercase();
    let l = l.as_str();
    match l {
        "negative" | "neg" | "negativo" | "negativa" => {
            return Some(Meaning::Sentiment(Sentiment::Negative))
        }
        "neutral" | "neu" | "neutro" | "neutra" => {
            return Some(Meaning::Sentiment(Sentiment::Neutral))
        }
        "positive" | "pos" | "positivo" | "positiva" => {
            return Some(Meaning::Sentiment(Sentiment::Positive))
        }
        _ => {}
    }
    if let Some(n) = l
        .strip_prefix("label_")
        .or_else(|| l.strip_prefix("label "))
    {
        return n.parse().ok().map(Meaning::Generic);
    }
    let rest = l.strip_suffix("stars").or_else(|| l.strip_suffix("star"))?;
    let n: usize = rest.trim().parse().ok()?;
    (1..=5).contains(&n).then_some(Meaning::Star(n))
}

impl LabelScheme {
    /// Works out the scheme from `id2label` names (in id order).
    pub fn from_labels(labels: &[String]) -> anyhow::Result<LabelScheme> {
        let meanings: Vec<Option<Meaning>> = labels.iter().map(|l| meaning(l)).collect();
        let unsupported = || {
            anyhow::anyhow!(
                "the model's labels {labels:?} are not a supported sentiment label set; supported: 2 classes \
                 negative/positive (or LABEL_0/LABEL_1 = negative/positive), 3 classes negative/neutral/positive \
                 in any order (or LABEL_0..LABEL_2 = negative/neutral/positive), or 5 classes \"1 star\"..\"5 stars\""
            )
        };
        let find = |want: Meaning| -> Option<usize> {
            let hits: Vec<usize> = meanings
                .iter()
                .enumerate()
                .filter(|(_, m)| **m == Some(want))
                .map(|(i, _)| i)
                .collect();
            (hits.len() == 1).then(|| hits[0])
        };
        let s = |x| Meaning::Sentiment(x);
        match labels.len() {
            2 => {
                if let (Some(negative), Some(positive)) =
                    (find(s(Sentiment::Negative)), find(s(Sentiment::Positive)))
                {
                    return Ok(LabelScheme::TwoClass { negative, positive });
                }
                if let (Some(negative), Some(positive)) =
                    (find(Meaning::Generic(0)), find(Meaning::Generic(1)))
                {
                    return Ok(LabelScheme::TwoClass { negative, positive });
                }
            }
            3 => {
                if let (Some(negative), Some(neutral), Some(positive)) = (
                    find(s(Sentiment::Negative)),
                    find(s(Sentiment::Neutral)),
                    find(s(Sentiment::Positive)),
                ) {
                    return Ok(LabelScheme::ThreeClass {
                        negative,
                        neutral,
                        positive,
                    });
                }
                if let (Some(negative), Some(neutral), Some(positive)) = (
                    find(Meaning::Generic(0)),
                    find(Meaning::Generic(1)),
                    find(Meaning::Generic(2)),
                ) {
                    return Ok(LabelScheme::ThreeClass {
                        negative,
                        neutral,
                        positive,
                    });
                }
            }
            5 => {
                let mut stars = [0usize; 5];
                for (k, slot) in stars.iter_mut().enumerate() {
                    *slot = find(Meaning::Star(k + 1)).ok_or_else(unsupported)?;
                }
                return Ok(LabelScheme::Stars { stars });
            }
            _ => {}
        }
        Err(unsupported())
    }

    pub fn num_classes(&self) -> usize {
        match self {
            LabelScheme::TwoClass { .. } => 2,
            LabelScheme::ThreeClass { .. } => 3,
            LabelScheme::Stars { .. } => 5,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            LabelScheme::TwoClass { .. } => "2-class",
            LabelScheme::ThreeClass { .. } => "3-class",
            LabelScheme::Stars { .. } => "5-star",
        }
    }

    /// Maps raw class probabilities onto [`Scored`].
    pub fn to_scored(&self, probs: &[f32], truncated: bool) -> Scored {
        let (p_negative, p_neutral, p_positive, sentiment_score) = match *self {
            LabelScheme::TwoClass { negative, positive } => {
                let (n, p) = (probs[negative], probs[positive]);
                (n, 0.0, p, p - n)
            }
            LabelScheme::ThreeClass {
                negative,
                neutral,
                positive,
            } => {
                let (n, u, p) = (probs[negative], probs[neutral], probs[positive]);
                (n, u, p, p - n)
            }
            LabelScheme::Stars { stars } => {
                let ps: Vec<f32> = stars.iter().map(|&i| probs[i]).collect();
                let total: f32 = ps.iter().sum();
                let expect: f32 = ps
                    .iter()
                    .enumerate()
                    .map(|(k, p)| (k as f32 + 1.0) * p)
                    .sum::<f32>()
                    / total.max(f32::MIN_POSITIVE);
                (ps[0] + ps[1], ps[2], ps[3] + ps[4], (expect - 3.0) / 2.0)
            }
        };
        let mapped = [p_negative, p_neutral, p_positive];
        let mut best = 0;
        for i in 1..3 {
            if mapped[i] > mapped[best] {
                best = i;
            }
        }
        Scored {
            sentiment: Sentiment::ALL[best],
            p_negative,
            p_neutral,
            p_positive,
            sentiment_score: sentiment_score.clamp(-1.0, 1.0),
            truncated,
        }
    }
}

/// Fails unless `labels` is a supported set (used where only validation is wanted).
pub fn check_labels(labels: &[String]) -> anyhow::Result<()> {
    if labels.is_empty() {
        bail!("the model has no labels");
    }
    LabelScheme::from_labels(labels).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn two_class_any_case_and_generic() {
        let s = LabelScheme::from_labels(&l(&["POSITIVE", "NEGATIVE"])).unwrap();
        assert_eq!(
            s,
            LabelScheme::TwoClass {
                negative: 1,
                positive: 0
            }
        );
        let r = s.to_scored(&[0.8, 0.2], false);
        assert_eq!(r.sentiment, Sentiment::Positive);
        assert_eq!(r.p_neutral, 0.0);
        assert!((r.sentiment_score - 0.6).abs() < 1e-6);
        let g = LabelScheme::from_labels(&l(&["LABEL_0", "LABEL_1"])).unwrap();
        assert_eq!(
            g,
            LabelScheme::TwoClass {
                negative: 0,
                positive: 1
            }
        );
    }

    #[test]
    fn three_class_any_order() {
        let s = LabelScheme::from_labels(&l(&["Neutral", "Positive", "Negative"])).unwrap();
        assert_eq!(
            s,
            LabelScheme::ThreeClass {
                negative: 2,
                neutral: 0,
                positive: 1
            }
        );
        let r = s.to_scored(&[0.5, 0.2, 0.3], true);
        assert_eq!(r.sentiment, Sentiment::Neutral);
        assert!((r.p_negative - 0.3).abs() < 1e-6 && (r.p_positive - 0.2).abs() < 1e-6);
        assert!((r.sentiment_score + 0.1).abs() < 1e-6);
        assert!(r.truncated);
        let g = LabelScheme::from_labels(&l(&["LABEL_0", "LABEL_1", "LABEL_2"])).unwrap();
        assert_eq!(
            g,
            LabelScheme::ThreeClass {
                negative: 0,
                neutral: 1,
                positive: 2
            }
        );
    }

    #[test]
    fn stars() {
        let s =
            LabelScheme::from_labels(&l(&["1 star", "2 stars", "3 stars", "4 stars", "5 stars"]))
                .unwrap();
        let r = s.to_scored(&[0.1, 0.1, 0.2, 0.3, 0.3], false);
        assert!((r.p_negative - 0.2).abs() < 1e-6);
        assert!((r.p_neutral - 0.2).abs() < 1e-6);
        assert!((r.p_positive - 0.6).abs() < 1e-6);
        // E = 0.1 + 0.2 + 0.6 + 1.2 + 1.5 = 3.6 -> (3.6 - 3) / 2 = 0.3
        assert!((r.sentiment_score - 0.3).abs() < 1e-5);
        assert_eq!(r.sentiment, Sentiment::Positive);
        let all_one = s.to_scored(&[1.0, 0.0, 0.0, 0.0, 0.0], false);
        assert!((all_one.sentiment_score + 1.0).abs() < 1e-6);
    }

    #[test]
    fn unknown_sets_name_labels() {
        let e = LabelScheme::from_labels(&l(&["joy", "anger", "fear"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("joy") && e.contains("negative/neutral/positive"),
            "{e}"
        );
        assert!(LabelScheme::from_labels(&l(&["negative", "negative"])).is_err());
        assert!(LabelScheme::from_labels(&l(&["a", "b", "c", "d"])).is_err());
    }
}
