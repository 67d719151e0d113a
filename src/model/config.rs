//! `config.json` of a Hugging Face sequence-classification checkpoint: family, labels, limits.

use anyhow::{bail, Context};
use serde_json::{Map, Value};
use std::path::Path;

/// The model families pulso can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Bert,
    DistilBert,
    Roberta,
    XlmRoberta,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::DistilBert => "distilbert",
            Family::Roberta => "roberta",
            Family::XlmRoberta => "xlm-roberta",
        }
    }

    /// RoBERTa-style models count positions from `pad_token_id + 1`.
    pub fn is_roberta_like(self) -> bool {
        matches!(self, Family::Roberta | Family::XlmRoberta)
    }

    /// Parses a Hugging Face `model_type`.
    pub fn from_model_type(t: &str) -> Option<Family> {
        Some(
            match t.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "bert" => Family::Bert,
                "distilbert" => Family::DistilBert,
                "roberta" => Family::Roberta,
                "xlm-roberta" => Family::XlmRoberta,
                _ => return None,
            },
        )
    }

    /// Guesses the family from an `architectures` entry such as `XLMRobertaForSequenceClassification`.
    pub fn from_architecture(a: &str) -> Option<Family> {
        let a = a.to_ascii_lowercase();
        if a.starts_with("xlmroberta") {
            Some(Family::XlmRoberta)
        } else if a.starts_with("roberta") {
            Some(Family::Roberta)
        } else if a.starts_with("distilbert") {
            Some(Family::DistilBert)
        } else if a.starts_with("bert") {
            Some(Family::Bert)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What pulso reads from `config.json`, plus the raw object (used to build the rust-bert config).
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub family: Family,
    /// `id2label` in id order (ids must be 0..n).
    pub labels: Vec<String>,
    pub max_position_embeddings: usize,
    pub pad_token_id: i64,
    /// Most tokens per text the position embeddings allow (RoBERTa: `max_position_embeddings - pad - 1`).
    pub max_model_tokens: usize,
    pub raw: Map<String, Value>,
}

impl ModelConfig {
    pub fn from_file(path: &Path) -> anyhow::Result<ModelConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        Self::from_value(value).with_context(|| format!("in {}", path.display()))
    }

    pub fn from_value(value: Value) -> anyhow::Result<ModelConfig> {
        let Value::Object(raw) = value else {
            bail!("config.json is not a JSON object")
        };
        let model_type = raw.get("model_type").and_then(Value::as_str);
        let architectures: Vec<String> = raw
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let family = match model_type {
            Some(t) => Family::from_model_type(t),
            None => architectures
                .iter()
                .find_map(|a| Family::from_architecture(a)),
        };
        let Some(family) = family else {
            bail!(
                "unsupported model (model_type {:?}, architectures {:?}); pulso runs sequence-classification \
                 checkpoints of the bert, distilbert, roberta and xlm-roberta families",
                model_type.unwrap_or("missing"),
                architectures
            )
        };
        if let Some(a) = architectures
            .iter()
            .find(|a| !a.ends_with("ForSequenceClassification"))
        {
            bail!(
                "architecture {a} is not a sequence classifier; pulso needs a *ForSequenceClassification \
                 checkpoint (fine-tuned with a classification head)"
            );
        }
        if let Some(p) = raw.get("position_embedding_type").and_then(Value::as_str) {
            if p != "absolute" {
                bail!("position_embedding_type {p:?} is not supported (only \"absolute\")");
            }
        }
        let labels = parse_id2label(raw.get("id2label"))?;
        let default_pad = if family.is_roberta_like() { 1 } else { 0 };
        let pad_token_id = raw
            .get("pad_token_id")
            .and_then(Value::as_i64)
            .unwrap_or(default_pad);
        let max_position_embeddings = raw
            .get("max_position_embeddings")
            .and_then(Value::as_u64)
            .unwrap_or(512) as usize;
        let max_model_tokens = if family.is_roberta_like() {
            max_position_embeddings.saturating_sub(pad_token_id.max(0) as usize + 1)
        } else {
            max_position_embeddings
        };
        if max_model_tokens < 3 {
            bail!("max_position_embeddings {max_position_embeddings} is too small");
        }
        Ok(ModelConfig {
            family,
            labels,
            max_position_embeddings,
            pad_token_id,
            max_model_tokens,
            raw,
        })
    }

    /// A boolean field of config.json, if present.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.raw.get(key).and_then(Value::as_bool)
    }

    /// The config as rust-bert's `BertConfig` (BERT, RoBERTa, XLM-R), with HF defaults for missing keys.
    pub fn bert_config(&self) -> anyhow::Result<rust_bert::bert::BertConfig> {
        let mut m = self.raw.clone();
        let defaults: [(&str, Value); 10] = [
            ("attention_probs_dropout_prob", 0.1.into()),
            ("hidden_dropout_prob", 0.1.into()),
            ("hidden_size", 768.into()),
            ("initializer_range", 0.02.into()),
            ("intermediate_size", 3072.into()),
            ("max_position_embeddings", 512.into()),
            ("num_attention_heads", 12.into()),
            ("num_hidden_layers", 12.into()),
            ("type_vocab_size", 2.into()),
            ("vocab_size", 30522.into()),
        ];
        for (k, v) in defaults {
            m.entry(k.to_string()).or_insert(v);
        }
        let act = activation(
            m.get("hidden_act")
                .and_then(Value::as_str)
                .unwrap_or("gelu"),
        )?;
        m.insert("hidden_act".into(), Value::String(act.into()));
        m.insert("id2label".into(), self.id2label_value());
        m.remove("label2id");
        m.insert("is_decoder".into(), Value::Bool(false));
        m.insert("output_attentions".into(), Value::Bool(false));
        m.insert("output_hidden_states".into(), Value::Bool(false));
        serde_json::from_value(Value::Object(m))
            .context("config.json does not describe a BERT-like model")
    }

    /// The config as rust-bert's `DistilBertConfig`, with HF defaults for missing keys.
    pub fn distilbert_config(&self) -> anyhow::Result<rust_bert::distilbert::DistilBertConfig> {
        let mut m = self.raw.clone();
        let defaults: [(&str, Value); 13] = [
            ("attention_dropout", 0.1.into()),
            ("dim", 768.into()),
            ("dropout", 0.1.into()),
            ("hidden_dim", 3072.into()),
            ("initializer_range", 0.02.into()),
            ("max_position_embeddings", 512.into()),
            ("n_heads", 12.into()),
            ("n_layers", 6.into()),
            ("qa_dropout", 0.1.into()),
            ("seq_classif_dropout", 0.2.into()),
            ("sinusoidal_pos_embds", false.into()),
            ("tie_weights_", true.into()),
            ("vocab_size", 30522.into()),
        ];
        for (k, v) in defaults {
            m.entry(k.to_string()).or_insert(v);
        }
        let act = activation(
            m.get("activation")
                .and_then(Value::as_str)
                .unwrap_or("gelu"),
        )?;
        m.insert("activation".into(), Value::String(act.into()));
        m.insert("id2label".into(), self.id2label_value());
        m.remove("label2id");
        m.insert("is_decoder".into(), Value::Bool(false));
        m.insert("output_attentions".into(), Value::Bool(false));
        m.insert("output_hidden_states".into(), Value::Bool(false));
        m.insert("output_past".into(), Value::Bool(false));
        serde_json::from_value(Value::Object(m))
            .context("config.json does not describe a DistilBERT model")
    }

    fn id2label_value(&self) -> Value {
        Value::Object(
            self.labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), Value::String(l.clone())))
                .collect(),
        )
    }
}

/// Maps a Hugging Face activation name onto rust-bert's `Activation`.
fn activation(name: &str) -> anyhow::Result<&'static str> {
    Ok(match name {
        "gelu" => "gelu",
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => "gelu_new",
        "relu" => "relu",
        "silu" | "swish" => "swish",
        "mish" => "mish",
        "tanh" => "tanh",
        other => {
            bail!("activation {other:?} is not supported (gelu, gelu_new, relu, silu, mish, tanh)")
        }
    })
}

/// `id2label` (`{"0": "negative", ...}`) in id order.
fn parse_id2label(v: Option<&Value>) -> anyhow::Result<Vec<String>> {
    let Some(Value::Object(map)) = v else {
        bail!("config.json has no id2label; pulso needs the class names to map them onto negative/neutral/positive")
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        let id: usize = k
            .trim()
            .parse()
            .with_context(|| format!("id2label key {k:?} is not a number"))?;
        let name = v
            .as_str()
            .with_context(|| format!("id2label[{k}] is not a string"))?;
        pairs.push((id, name.to_string()));
    }
    pairs.sort();
    for (i, (id, _)) in pairs.iter().enumerate() {
        if *id != i {
            bail!(
                "id2label ids must be 0..{} without gaps, found {:?}",
                pairs.len(),
                pairs.iter().map(|p| p.0).collect::<Vec<_>>()
            );
        }
    }
    Ok(pairs.into_iter().map(|p| p.1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roberta_limits_and_family() {
        let c = ModelConfig::from_value(json!({
            "model_type": "xlm-roberta", "architectures": ["XLMRobertaForSequenceClassification"],
            "max_position_embeddings": 514, "pad_token_id": 1,
            "id2label": {"1": "neutral", "0": "negative", "2": "positive"}
        }))
        .unwrap();
        assert_eq!(c.family, Family::XlmRoberta);
        assert_eq!(c.max_model_tokens, 512);
        assert_eq!(c.labels, vec!["negative", "neutral", "positive"]);
        let b = c.bert_config().unwrap();
        assert_eq!(b.id2label.unwrap().len(), 3);
    }

    #[test]
    fn rejects_non_classifier_and_unknown() {
        let e = ModelConfig::from_value(json!({"model_type": "gpt2", "id2label": {"0": "a"}}))
            .unwrap_err();
        assert!(e.to_string().contains("unsupported model"), "{e}");
        let e = ModelConfig::from_value(json!({"model_type": "bert", "architectures": ["BertForMaskedLM"], "id2label": {"0": "a"}}))
            .unwrap_err();
        assert!(e.to_string().contains("not a sequence classifier"), "{e}");
        let e = ModelConfig::from_value(
            json!({"model_type": "bert", "id2label": {"0": "a", "2": "b"}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("without gaps"), "{e}");
    }

    #[test]
    fn distilbert_config_without_tie_weights() {
        let c = ModelConfig::from_value(json!({
            "model_type": "distilbert", "dim": 32, "hidden_dim": 37, "n_layers": 2, "n_heads": 2,
            "vocab_size": 100, "max_position_embeddings": 64, "activation": "gelu",
            "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}
        }))
        .unwrap();
        let d = c.distilbert_config().unwrap();
        assert_eq!(d.dim, 32);
        assert_eq!(c.max_model_tokens, 64);
    }
}
