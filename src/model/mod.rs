//! Model families, tokenizers and the masked forward pass.
//!
//! A model is a folder in Hugging Face layout (or a hub id, downloaded once into a cache, see
//! [`hub`]): `config.json`, weights `model.safetensors` or `rust_model.ot`, and `tokenizer.json` or
//! the family's vocabulary files. Supported: sequence-classification checkpoints of the BERT,
//! DistilBERT, RoBERTa and XLM-RoBERTa families whose labels are negative/positive,
//! negative/neutral/positive or 1..5 stars (see [`labels`]).
//!
//! - [`ModelSpec`]: everything but the weights (config, tokenizer, labels, token limit); shared by
//!   all scorer threads.
//! - [`Network`]: one replica of the weights and graph (`Send`, one per worker thread).
//! - [`Classifier`]: both together, single-threaded, for tests and tools that want raw class
//!   probabilities ([`Classifier::probabilities`]).
//!
//! The batching, replicas and precision choice live in [`crate::score`].

pub mod config;
pub mod cuda;
pub mod fast;
pub mod hub;
pub mod labels;
pub mod network;
pub mod tokenize;

pub use config::{Family, ModelConfig};
pub use labels::LabelScheme;
pub use network::Network;
pub use tokenize::{Encoded, TextTokenizer};

use crate::record::Scored;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The shipped default model's folder name under `models/`: the multilingual (pt/es/en) one.
/// `models/pulso-mini` (English vocabulary, about twice as fast) stays available by path.
pub const DEFAULT_MODEL: &str = "pulso-multi";

/// The model used when none is named: `PULSO_MODEL` if set; else the shipped
/// `models/`[`DEFAULT_MODEL`], looked for next to the executable (its folder, its parent and
/// grandparent, so `target/release/pulso` finds `<repo>/models/pulso-multi`), then in the source
/// tree it was built from. None when no such folder exists.
pub fn default_model() -> Option<PathBuf> {
    if let Ok(m) = std::env::var("PULSO_MODEL") {
        if !m.trim().is_empty() {
            return Some(PathBuf::from(m));
        }
    }
    let exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok().or(Some(e)));
    default_model_candidates(exe.as_deref())
        .into_iter()
        .find(|p| p.join("config.json").is_file())
}

/// Where [`default_model`] looks, in order (without `PULSO_MODEL`).
pub fn default_model_candidates(exe: Option<&Path>) -> Vec<PathBuf> {
    let rel = Path::new("models").join(DEFAULT_MODEL);
    let mut out = Vec::new();
    if let Some(dir) = exe.and_then(Path::parent) {
        for anc in dir.ancestors().take(3) {
            out.push(anc.join(&rel));
        }
    }
    out.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(&rel));
    out
}

/// Turns a model reference into a local folder and a display name: an existing folder is used as
/// is (name = folder name); an `owner/name` hub id is downloaded into the cache (name = the id).
pub fn resolve(model: &str) -> anyhow::Result<(PathBuf, String)> {
    let p = Path::new(model);
    if p.is_dir() {
        let name = p
            .canonicalize()
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| model.to_string());
        return Ok((p.to_path_buf(), name));
    }
    if p.is_file() {
        bail!("{model} is a file; pass the model folder (the one holding config.json)");
    }
    // `models/pulso-mini` looks like a hub id too; if its first part is a local folder, the user
    // meant a local path that is not there.
    let first_is_local_dir = model
        .split('/')
        .next()
        .map(|f| Path::new(f).is_dir())
        .unwrap_or(false);
    if hub::looks_like_hub_id(model) && !first_is_local_dir {
        let dir = hub::fetch(model)?;
        return Ok((dir, model.to_string()));
    }
    bail!(
        "model folder {model} does not exist (and it is not a Hugging Face hub id owner/name); \
         pass a folder with config.json, weights and tokenizer"
    )
}

/// The weights file of a model folder: `model.safetensors`, else `rust_model.ot`.
pub fn weights_file(dir: &Path) -> anyhow::Result<PathBuf> {
    for w in hub::WEIGHT_FILES {
        let p = dir.join(w);
        if p.is_file() {
            return Ok(p);
        }
    }
    let hint = if dir.join("pytorch_model.bin").is_file() {
        " (it has pytorch_model.bin: re-save it with save_pretrained(..., safe_serialization=True))"
    } else {
        ""
    };
    bail!(
        "{} has no model.safetensors or rust_model.ot{hint}",
        dir.display()
    )
}

/// Everything about a model except its weights in memory. Cheap to share between threads.
pub struct ModelSpec {
    /// Folder name, or the hub id.
    pub name: String,
    pub dir: PathBuf,
    pub config: ModelConfig,
    pub weights: PathBuf,
    pub tokenizer: TextTokenizer,
    pub labels: LabelScheme,
    /// Tokens per text including special tokens; longer texts are cut and flagged.
    pub max_tokens: usize,
}

impl ModelSpec {
    /// Resolves `model` (folder or hub id) and reads config, tokenizer and labels.
    ///
    /// `max_tokens`: None = the model's limit; larger values are capped at the model's limit.
    pub fn open(model: &str, max_tokens: Option<usize>) -> anyhow::Result<ModelSpec> {
        let (dir, name) = resolve(model)?;
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            bail!(
                "{} has no config.json; is it a Hugging Face model folder?",
                dir.display()
            );
        }
        let config = ModelConfig::from_file(&config_path)?;
        let labels =
            LabelScheme::from_labels(&config.labels).with_context(|| format!("model {name}"))?;
        let weights = weights_file(&dir)?;
        let tokenizer = TextTokenizer::load(&dir, &config)?;
        let mut limit = config.max_model_tokens;
        if let Some(m) = tokenizer.model_max_length {
            limit = limit.min(m);
        }
        let max_tokens = match max_tokens {
            Some(m) if m < 3 => {
                bail!("max_tokens {m} is too small (at least 3: special tokens plus text)")
            }
            Some(m) => m.min(limit),
            None => limit,
        };
        Ok(ModelSpec {
            name,
            dir,
            config,
            weights,
            tokenizer,
            labels,
            max_tokens,
        })
    }

    pub fn family(&self) -> Family {
        self.config.family
    }

    /// Tokenizes texts (special tokens included, cut to `max_tokens`).
    pub fn encode(&self, texts: &[&str]) -> anyhow::Result<Vec<Encoded>> {
        self.tokenizer.encode_all(texts, self.max_tokens)
    }

    /// Loads one replica of the weights.
    pub fn load_network(&self, device: tch::Device, bf16: bool) -> anyhow::Result<Network> {
        Network::load(&self.config, &self.weights, device, bf16)
    }
}

/// How [`Classifier::load`] places the model.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    pub device: tch::Device,
    /// Convert the weights to bf16 (probabilities are still computed in fp32).
    pub bf16: bool,
    pub max_tokens: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: tch::Device::Cpu,
            bf16: false,
            max_tokens: None,
        }
    }
}

/// A model ready to run on the calling thread: the lower-level API under [`crate::score::Scorer`].
pub struct Classifier {
    pub spec: Arc<ModelSpec>,
    net: Network,
}

impl Classifier {
    pub fn load(model: &str, opts: LoadOptions) -> anyhow::Result<Classifier> {
        let spec = Arc::new(ModelSpec::open(model, opts.max_tokens)?);
        let net = spec.load_network(opts.device, opts.bf16)?;
        Ok(Classifier { spec, net })
    }

    pub fn encode(&self, texts: &[&str]) -> anyhow::Result<Vec<Encoded>> {
        self.spec.encode(texts)
    }

    /// Raw class probabilities (in `id2label` order) for `texts`, run as ONE padded batch.
    pub fn probabilities(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let enc = self.encode(texts)?;
        self.probabilities_encoded(&enc)
    }

    /// Raw class probabilities for already tokenized texts, as one padded batch.
    pub fn probabilities_encoded(&self, enc: &[Encoded]) -> anyhow::Result<Vec<Vec<f32>>> {
        let seqs: Vec<&[i64]> = enc.iter().map(|e| e.ids.as_slice()).collect();
        self.net.forward(&seqs)
    }

    /// Scores texts one padded batch at a time (no replicas; see `Scorer` for the fast path).
    pub fn score(&self, texts: &[&str]) -> anyhow::Result<Vec<Scored>> {
        let enc = self.encode(texts)?;
        let probs = self.probabilities_encoded(&enc)?;
        Ok(probs
            .iter()
            .zip(&enc)
            .map(|(p, e)| self.spec.labels.to_scored(p, e.truncated))
            .collect())
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.net
    }
}

/// True when the CPU has fast bf16 matrix instructions: AVX512-BF16 (every CPU with AMX-BF16 has it too),
/// enabled by the OS. Asked of the CPU with `CPUID`/`XGETBV` (`is_x86_feature_detected!`), as libtorch's
/// oneDNN and cpuinfo ask when they pick kernels — not read from `/proc/cpuinfo`, which can show flags the
/// process is not given (`benches/avx2only` hides them through CPUID, as a hypervisor's CPU model can).
/// Without it bf16 is emulated and far slower than fp32 (0.9 against 74 GFLOP/s per core in
/// `benches/isa_check.py` on an AVX2 view of this project's Xeon).
///
/// A libtorch capped below AVX-512 (`ONEDNN_MAX_CPU_ISA` / `DNNL_MAX_CPU_ISA` = `AVX2` or lower,
/// `ATEN_CPU_CAPABILITY` = `avx2` / `default`, as when measuring what AVX2-only users get) runs bf16
/// emulated, so the caps count as "no fast bf16" too ([`isa_caps_forbid_bf16`]).
pub fn cpu_has_fast_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    let cpu = std::arch::is_x86_feature_detected!("avx512bf16");
    #[cfg(not(target_arch = "x86_64"))]
    let cpu = false;
    cpu && !isa_caps_forbid_bf16(|k| std::env::var(k).ok())
}

/// True when the environment caps libtorch's kernels below the ISAs with fast bf16: oneDNN's
/// `ONEDNN_MAX_CPU_ISA` (or `DNNL_MAX_CPU_ISA`) set to an SSE/AVX/AVX2 level, or ATen's
/// `ATEN_CPU_CAPABILITY` set to `default` or `avx2`.
pub fn isa_caps_forbid_bf16(env: impl Fn(&str) -> Option<String>) -> bool {
    let onednn = ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"]
        .iter()
        .filter_map(|k| env(k))
        .any(|v| {
            let v = v.trim().to_ascii_uppercase();
            v.starts_with("SSE") || v == "AVX" || v.starts_with("AVX2")
        });
    let aten = env("ATEN_CPU_CAPABILITY")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "default" | "avx2"))
        .unwrap_or(false);
    onednn || aten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_caps_turn_fast_bf16_off() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(isa_caps_forbid_bf16(env(&[("ONEDNN_MAX_CPU_ISA", "AVX2")])));
        assert!(isa_caps_forbid_bf16(env(&[(
            "DNNL_MAX_CPU_ISA",
            "avx2_vnni"
        )])));
        assert!(isa_caps_forbid_bf16(env(&[(
            "ATEN_CPU_CAPABILITY",
            "avx2"
        )])));
        assert!(isa_caps_forbid_bf16(env(&[(
            "ATEN_CPU_CAPABILITY",
            "default"
        )])));
        assert!(!isa_caps_forbid_bf16(env(&[(
            "ONEDNN_MAX_CPU_ISA",
            "AVX512_CORE_AMX"
        )])));
        assert!(!isa_caps_forbid_bf16(env(&[(
            "ATEN_CPU_CAPABILITY",
            "avx512"
        )])));
        assert!(!isa_caps_forbid_bf16(env(&[])));
    }

    #[test]
    fn default_model_candidates_from_exe() {
        let c = default_model_candidates(Some(Path::new("/repo/target/release/pulso")));
        assert_eq!(
            c[0],
            PathBuf::from("/repo/target/release/models/pulso-multi")
        );
        assert_eq!(c[1], PathBuf::from("/repo/target/models/pulso-multi"));
        assert_eq!(c[2], PathBuf::from("/repo/models/pulso-multi"));
        assert_eq!(
            c.last().unwrap(),
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/pulso-multi")
        );
    }

    #[test]
    fn missing_local_folder_is_not_downloaded() {
        let e = resolve("src/no-such-model").unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
