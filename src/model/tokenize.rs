//! Text → token ids, with pulso's own truncation (special tokens kept, truncation flagged).
//!
//! `tokenizer.json` is read with the Hugging Face `tokenizers` crate; the padding and truncation the
//! file may carry are switched off, because batches are padded by the scorer and truncation must be
//! reported per text. Without `tokenizer.json` the family's vocabulary files are read with
//! `rust_tokenizers` (BERT/DistilBERT `vocab.txt`, RoBERTa `vocab.json` + `merges.txt`, XLM-R
//! `sentencepiece.bpe.model`), honouring `do_lower_case` / `strip_accents` / `add_prefix_space` from
//! `tokenizer_config.json`.

use super::config::{Family, ModelConfig};
use anyhow::{anyhow, bail};
use rust_tokenizers::tokenizer::{
    BertTokenizer, RobertaTokenizer, Tokenizer as RtTokenizer, TruncationStrategy,
    XLMRobertaTokenizer,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokenizers::{PostProcessor, TruncationDirection};

/// One tokenized text, special tokens included, at most `max_tokens` long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<i64>,
    /// The text had more tokens than allowed and was cut.
    pub truncated: bool,
}

// One tokenizer per model replica: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Hf {
        tok: Box<tokenizers::Tokenizer>,
        added: usize,
    },
    Bert(BertTokenizer),
    Roberta(RobertaTokenizer),
    XlmR(XLMRobertaTokenizer),
}

/// A tokenizer for one model; shared (read-only) by all scorer threads.
pub struct TextTokenizer {
    backend: Backend,
    /// Which file(s) it was read from, for messages.
    pub source: String,
    /// `model_max_length` from tokenizer_config.json when it is a real limit.
    pub model_max_length: Option<usize>,
}

/// The files a model folder needs for its tokenizer, in order of preference (used by downloads too).
pub fn tokenizer_files(family: Family) -> &'static [&'static str] {
    match family {
        Family::Bert | Family::DistilBert => &["vocab.txt"],
        Family::Roberta => &["vocab.json", "merges.txt"],
        Family::XlmRoberta => &["sentencepiece.bpe.model"],
    }
}

fn read_tokenizer_config(dir: &Path) -> serde_json::Map<String, Value> {
    let p = dir.join("tokenizer_config.json");
    std::fs::read_to_string(&p)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

impl TextTokenizer {
    /// Loads the tokenizer of the model in `dir`.
    pub fn load(dir: &Path, config: &ModelConfig) -> anyhow::Result<TextTokenizer> {
        let tcfg = read_tokenizer_config(dir);
        let model_max_length = tcfg
            .get("model_max_length")
            .and_then(Value::as_f64)
            .filter(|m| (3.0..1e6).contains(m))
            .map(|m| m as usize);
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            let mut tok = tokenizers::Tokenizer::from_file(&json)
                .map_err(|e| anyhow!("cannot read tokenizer {}: {e}", json.display()))?;
            tok.with_padding(None);
            tok.with_truncation(None)
                .map_err(|e| anyhow!("{}: {e}", json.display()))?;
            let added = tok
                .get_post_processor()
                .map(|p| p.added_tokens(false))
                .unwrap_or(0);
            return Ok(TextTokenizer {
                backend: Backend::Hf {
                    tok: Box::new(tok),
                    added,
                },
                source: json.display().to_string(),
                model_max_length,
            });
        }
        let flag = |key: &str| tcfg.get(key).and_then(Value::as_bool);
        let need = |name: &str| -> anyhow::Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                bail!(
                    "{} has no tokenizer.json and no {name}; a {} model needs tokenizer.json or {}",
                    dir.display(),
                    config.family,
                    tokenizer_files(config.family).join(" + ")
                )
            }
        };
        let (backend, source) = match config.family {
            Family::Bert | Family::DistilBert => {
                let vocab = need("vocab.txt")?;
                let lower = flag("do_lower_case")
                    .or_else(|| config.get_bool("do_lower_case"))
                    .unwrap_or(true);
                let strip = flag("strip_accents").unwrap_or(lower);
                let t = BertTokenizer::from_file(&vocab, lower, strip)
                    .map_err(|e| anyhow!("cannot read {}: {e}", vocab.display()))?;
                (Backend::Bert(t), vocab.display().to_string())
            }
            Family::Roberta => {
                let vocab = need("vocab.json")?;
                let merges = need("merges.txt")?;
                let lower = flag("do_lower_case").unwrap_or(false);
                let prefix = flag("add_prefix_space").unwrap_or(false);
                let t =
                    RobertaTokenizer::from_file(&vocab, &merges, lower, prefix).map_err(|e| {
                        anyhow!(
                            "cannot read {} / {}: {e}",
                            vocab.display(),
                            merges.display()
                        )
                    })?;
                (
                    Backend::Roberta(t),
                    format!("{} + {}", vocab.display(), merges.display()),
                )
            }
            Family::XlmRoberta => {
                let spm = need("sentencepiece.bpe.model")?;
                let lower = flag("do_lower_case").unwrap_or(false);
                let t = XLMRobertaTokenizer::from_file(&spm, lower)
                    .map_err(|e| anyhow!("cannot read {}: {e}", spm.display()))?;
                (Backend::XlmR(t), spm.display().to_string())
            }
        };
        Ok(TextTokenizer {
            backend,
            source,
            model_max_length,
        })
    }

    /// Tokenizes one text with special tokens, cut to `max_tokens` (special tokens kept).
    pub fn encode(&self, text: &str, max_tokens: usize) -> anyhow::Result<Encoded> {
        match &self.backend {
            Backend::Hf { tok, added } => {
                let budget = max_tokens.saturating_sub(*added).max(1);
                let mut enc = tok
                    .encode_fast(text, false)
                    .map_err(|e| anyhow!("tokenizer failed: {e}"))?;
                let truncated = enc.len() > budget;
                if truncated {
                    enc.truncate(budget, 0, TruncationDirection::Right);
                    enc.take_overflowing();
                }
                let enc = tok
                    .post_process(enc, None, true)
                    .map_err(|e| anyhow!("tokenizer failed: {e}"))?;
                Ok(Encoded {
                    ids: enc.get_ids().iter().map(|&i| i as i64).collect(),
                    truncated,
                })
            }
            Backend::Bert(t) => Ok(rt_encode(t, text, max_tokens)),
            Backend::Roberta(t) => Ok(rt_encode(t, text, max_tokens)),
            Backend::XlmR(t) => Ok(rt_encode(t, text, max_tokens)),
        }
    }

    /// Tokenizes many texts (in parallel on the rayon pool when there are enough of them).
    pub fn encode_all(&self, texts: &[&str], max_tokens: usize) -> anyhow::Result<Vec<Encoded>> {
        use rayon::prelude::*;
        if texts.len() < 64 {
            let _cpu = crate::cputime::Span::new(crate::cputime::Stage::Tokenize);
            return texts.iter().map(|t| self.encode(t, max_tokens)).collect();
        }
        let chunks: Vec<Vec<Encoded>> = texts
            .par_chunks(32)
            .map(|c| {
                let _cpu = crate::cputime::Span::new(crate::cputime::Stage::Tokenize);
                c.iter().map(|t| self.encode(t, max_tokens)).collect()
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(chunks.into_iter().flatten().collect())
    }
}

fn rt_encode<T, V>(t: &T, text: &str, max_tokens: usize) -> Encoded
where
    T: RtTokenizer<V>,
    V: rust_tokenizers::vocab::Vocab,
{
    let out = t.encode(text, None, max_tokens, &TruncationStrategy::LongestFirst, 0);
    Encoded {
        ids: out.token_ids,
        truncated: out.num_truncated_tokens > 0,
    }
}

#[allow(dead_code)]
fn _assert_sync() {
    fn is_sync<T: Send + Sync>() {}
    is_sync::<TextTokenizer>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_per_family() {
        assert_eq!(
            tokenizer_files(Family::Roberta),
            &["vocab.json", "merges.txt"]
        );
        assert_eq!(
            tokenizer_files(Family::XlmRoberta),
            &["sentencepiece.bpe.model"]
        );
    }

    #[test]
    fn missing_files_error_is_clear() {
        let dir = std::env::temp_dir().join(format!("pulso-tok-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = ModelConfig::from_value(serde_json::json!({"model_type": "bert", "id2label": {"0": "negative", "1": "positive"}})).unwrap();
        let e = TextTokenizer::load(&dir, &cfg).err().unwrap().to_string();
        assert!(
            e.contains("tokenizer.json") && e.contains("vocab.txt"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
