//! PLACEHOLDER (owned by the model/score engineer): batching and worker replicas over the model.
use crate::record::Scored;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    #[default]
    Auto,
    Fp32,
    Bf16,
}

/// What the scorer needs to be built.
#[derive(Clone, Debug)]
pub struct ScorerConfig {
    /// A local folder in Hugging Face layout, or a hub id.
    pub model: String,
    pub device: DeviceChoice,
    pub precision: PrecisionChoice,
    /// Tokens per text (longer texts are truncated and flagged); None = the model's limit.
    pub max_tokens: Option<usize>,
    /// Total CPU threads pulso may use for inference.
    pub threads: usize,
}

/// What was loaded, for manifests and messages.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub path: PathBuf,
    pub family: String,
    pub labels: Vec<String>,
    pub device: String,
    pub precision: String,
    pub threads: usize,
    pub replicas: usize,
    pub max_tokens: usize,
}

pub struct Scorer {
    info: ModelInfo,
}

impl ScorerConfig {
    pub fn build(self) -> anyhow::Result<Scorer> {
        anyhow::bail!("scorer not implemented yet")
    }
}

impl Scorer {
    /// Scores texts; output is in input order.
    pub fn score(&self, texts: &[&str]) -> anyhow::Result<Vec<Scored>> {
        let _ = texts;
        anyhow::bail!("scorer not implemented yet")
    }
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }
}
