//! PLACEHOLDER (owned by the model/score engineer): model families, tokenizers, masked forward pass.
use std::path::PathBuf;

/// The model used when none is named: `PULSO_MODEL`, else the shipped `models/pulso-mini`.
pub fn default_model() -> Option<PathBuf> {
    None
}
