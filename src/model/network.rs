//! The transformer itself: a rust-bert sequence classifier on its own VarStore, with a masked forward pass.
//!
//! rust-bert's `predict` helpers pass no attention mask, so a text's score would depend on the
//! batch it lands in. Here every batch is padded with the model's `pad_token_id` and the forward
//! pass gets a real attention mask (RoBERTa-style models also get position ids computed the
//! Hugging Face way, from the mask, so padding never shifts positions). Class probabilities are
//! always computed in fp32, whatever precision the weights are in.

use super::config::{Family, ModelConfig};
use super::fast::{ActStats, Attention, FastBert, Int8Plan};
use anyhow::{bail, Context};
use rust_bert::bert::BertForSequenceClassification;
use rust_bert::distilbert::DistilBertModelClassifier;
use rust_bert::roberta::RobertaForSequenceClassification;
use std::collections::HashMap;
use std::path::Path;
use tch::{nn::VarStore, Device, Kind, Tensor};

enum Net {
    Bert(BertForSequenceClassification),
    DistilBert(DistilBertModelClassifier),
    Roberta(RobertaForSequenceClassification),
}

/// One replica of the model: weights plus graph. `Send`, not meant to be shared between threads.
pub struct Network {
    vs: VarStore,
    net: Net,
    family: Family,
    pad_id: i64,
    num_labels: usize,
    device: Device,
    bf16: bool,
    /// BERT family: pulso's own forward over the same weights ([`super::fast`]); None = rust-bert's.
    fast: Option<FastBert>,
    /// Shape facts for rebuilding `fast` (layers, heads, LayerNorm eps).
    fast_dims: Option<(usize, usize, f64)>,
    /// int8 with a guard ([`Int8Plan::guard`]): the fp32 packed forward over the same weights and
    /// the margin under which a text's int8 probabilities are replaced by fp32 ones.
    guard: Option<(FastBert, f32)>,
    /// Texts re-scored in fp32 by the guard since the last [`Network::take_rescored`].
    rescored: std::cell::Cell<u64>,
}

/// libtorch 2.4 prints a deprecation warning the first time each of the two FBGEMM functions int8
/// runs on is called (`TORCH_WARN_ONCE`, two lines on stderr that no C API turns off). int8 is
/// what `precision = auto` runs on AVX2 CPUs, so every run would carry them: this calls both
/// once on a 1×1 matrix with stderr pointed at /dev/null (a few microseconds, before any replica
/// scores), after which libtorch stays quiet. Process-wide, once.
fn hush_fbgemm_deprecation() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        // SAFETY: dup/open/dup2/close on the process's own descriptors; fd 2 is restored before
        // returning, and the saved copy closed.
        unsafe {
            let saved = libc::dup(2);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            let hushed = saved >= 0 && null >= 0 && libc::dup2(null, 2) >= 0;
            let _ = tch::no_grad(|| -> Result<(), tch::TchError> {
                let q = Tensor::ones([1, 1], (Kind::Int8, Device::Cpu));
                let packed = q.f_fbgemm_pack_quantized_matrix()?;
                let col = Tensor::ones([1], (Kind::Int, Device::Cpu));
                let bias = Tensor::zeros([1], (Kind::Float, Device::Cpu));
                let _y = Tensor::ones([1, 1], (Kind::Float, Device::Cpu))
                    .f_fbgemm_linear_int8_weight_fp32_activation(
                        &q,
                        &packed,
                        &col,
                        tch::Scalar::float(1.0),
                        tch::Scalar::int(0),
                        &bias,
                    )?;
                Ok(())
            });
            if hushed {
                libc::dup2(saved, 2);
            }
            if saved >= 0 {
                libc::close(saved);
            }
            if null >= 0 {
                libc::close(null);
            }
        }
    });
}

/// The gap between a text's two most probable classes.
pub fn top2_margin(p: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &x in p {
        if x > a {
            b = a;
            a = x;
        } else if x > b {
            b = x;
        }
    }
    if b.is_finite() {
        a - b
    } else {
        f32::INFINITY
    }
}

/// Which forward pass the BERT family uses in fp32/bf16 on `device`: `PULSO_FORWARD` =
/// `packed` (pulso's own without padding, [`FastBert::forward_packed`]; the default on the CPU),
/// `fused` (pulso's own, padded, fused attention), `explicit` (pulso's own, padded, attention as
/// separate ops) or `rust-bert` (rust-bert's modules; the default on a GPU, where the packed
/// forward's one attention call per length has not been measured). int8 uses pulso's own (packed
/// unless `fused` or `explicit` is asked for).
///
/// History: the padded `fused` forward was 1.15× rust-bert's on an AVX2 view of the CPU (session 6)
/// but could not be the default: a text's probabilities moved by ~5e-5 on the tiny test model with
/// its batch mates, which broke the shard-equality tests (tests/it/shards.rs). `packed` removes the
/// padding instead of masking it, so nothing a text's batch mates bring reaches its rows.
pub fn forward_choice(device: Device) -> Option<Attention> {
    match std::env::var("PULSO_FORWARD").as_deref().map(str::trim) {
        Ok("rust-bert") | Ok("rustbert") => None,
        Ok("explicit") => Some(Attention::Explicit),
        Ok("fused") => Some(Attention::Fused),
        Ok("packed") => Some(Attention::Packed),
        _ if device.is_cuda() => None,
        _ => Some(Attention::Packed),
    }
}

impl Network {
    /// Builds the model named by `config` on `device` and loads `weights` (`model.safetensors` or
    /// `rust_model.ot`) into it. Fails with the list of missing or mis-shaped tensors when the file
    /// does not match the architecture.
    pub fn load(
        config: &ModelConfig,
        weights: &Path,
        device: Device,
        bf16: bool,
    ) -> anyhow::Result<Network> {
        let mut vs = VarStore::new(device);
        let root = vs.root();
        let net = match config.family {
            Family::Bert => Net::Bert(BertForSequenceClassification::new(
                &root,
                &config.bert_config()?,
            )?),
            Family::DistilBert => Net::DistilBert(DistilBertModelClassifier::new(
                &root,
                &config.distilbert_config()?,
            )?),
            Family::Roberta | Family::XlmRoberta => Net::Roberta(
                RobertaForSequenceClassification::new(&root, &config.bert_config()?)?,
            ),
        };
        load_weights(&mut vs, weights, config.family)?;
        vs.freeze();
        let raw = &config.raw;
        let fast_dims = (config.family == Family::Bert
            && raw
                .get("hidden_act")
                .and_then(|v| v.as_str())
                .unwrap_or("gelu")
                == "gelu"
            && raw
                .get("position_embedding_type")
                .and_then(|v| v.as_str())
                .unwrap_or("absolute")
                == "absolute")
            .then(|| {
                let num = |k: &str, d: f64| raw.get(k).and_then(|v| v.as_f64()).unwrap_or(d);
                (
                    num("num_hidden_layers", 12.0) as usize,
                    num("num_attention_heads", 12.0) as usize,
                    num("layer_norm_eps", 1e-12),
                )
            });
        let mut n = Network {
            vs,
            net,
            family: config.family,
            pad_id: config.pad_token_id,
            num_labels: config.labels.len(),
            device,
            bf16: false,
            fast: None,
            fast_dims,
            guard: None,
            rescored: std::cell::Cell::new(0),
        };
        n.set_bf16(bf16);
        Ok(n)
    }

    /// Switches the weights to bf16 (true) or fp32 (false); int8 is turned off.
    pub fn set_bf16(&mut self, bf16: bool) {
        if bf16 {
            self.vs.bfloat16();
        } else {
            self.vs.float();
        }
        self.bf16 = bf16;
        self.fast = None;
        self.guard = None;
        if let (Some(att), Some(_)) = (forward_choice(self.device), self.fast_dims) {
            // Cannot fail for the BERT family: the names were checked when loading.
            self.fast = self.build_fast(None, att, None).ok();
        }
    }

    /// Runs the linear layers `plan` names in int8 (FBGEMM, dynamic activations); None = back
    /// to fp32. BERT family only (pulso's own forward); CPU only. `calib`: token ids of the
    /// calibration texts a plan with `smooth=α` or `outliers=K` measures its activation ranges on (in fp32).
    pub fn set_int8(&mut self, plan: Option<&Int8Plan>, calib: &[&[i64]]) -> anyhow::Result<()> {
        let Some(plan) = plan else {
            self.set_bf16(false);
            return Ok(());
        };
        hush_fbgemm_deprecation();
        if self.fast_dims.is_none() {
            bail!(
                "precision int8 is implemented for BERT models (gelu, absolute positions); this one \
                 is {}: use precision fp32 or bf16",
                self.family
            );
        }
        if self.device.is_cuda() {
            bail!("precision int8 runs on the CPU (FBGEMM); on a GPU use fp32 or bf16");
        }
        if self.bf16 {
            self.vs.float();
            self.bf16 = false;
        }
        let att = forward_choice(self.device).unwrap_or(Attention::Packed);
        let stats = match plan.needs_calibration() {
            true if calib.is_empty() => bail!(
                "the int8 plan handles activation outliers (smooth=α or outliers=K) but no calibration texts were given"
            ),
            true => {
                let fp32 = self.build_fast(None, Attention::Packed, None)?;
                Some(tch::no_grad(|| fp32.activation_stats(calib, self.pad_id)))
            }
            false => None,
        };
        self.fast = Some(self.build_fast(Some(plan), att, stats.as_ref())?);
        self.guard = match plan.guard {
            g if g > 0.0 => Some((self.build_fast(None, Attention::Packed, None)?, g)),
            _ => None,
        };
        Ok(())
    }

    /// Texts the int8 guard re-scored in fp32 since the last call (and resets the count).
    pub fn take_rescored(&self) -> u64 {
        self.rescored.replace(0)
    }

    pub fn is_int8(&self) -> bool {
        self.fast.as_ref().is_some_and(|f| f.is_int8())
    }

    /// The forward pass in use: `packed`, `fused`, `explicit` or `rust-bert`.
    pub fn forward_name(&self) -> &'static str {
        match self.fast.as_ref().map(|f| f.attention()) {
            Some(Attention::Packed) => "packed",
            Some(Attention::Fused) => "fused",
            Some(Attention::Explicit) => "explicit",
            None => "rust-bert",
        }
    }

    fn build_fast(
        &self,
        plan: Option<&Int8Plan>,
        att: Attention,
        stats: Option<&ActStats>,
    ) -> anyhow::Result<FastBert> {
        let (layers, heads, eps) = self.fast_dims.context("not a BERT model")?;
        let vars = self.vs.variables();
        tch::no_grad(|| FastBert::new(&vars, layers, heads, eps, plan, att, stats))
    }

    pub fn is_bf16(&self) -> bool {
        self.bf16
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Class probabilities (fp32 softmax) for one batch of token-id sequences, padded here.
    pub fn forward(&self, seqs: &[&[i64]]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.forward_padded(seqs, 0)
    }

    /// [`Network::forward`] with every sequence padded to at least `min_len` tokens.
    pub fn forward_padded(&self, seqs: &[&[i64]], min_len: usize) -> anyhow::Result<Vec<Vec<f32>>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(f) = self
            .fast
            .as_ref()
            .filter(|f| f.attention() == Attention::Packed)
        {
            // No padding at all: `min_len` does not apply.
            let b = seqs.len();
            let tokens: usize = seqs.iter().map(|s| s.len()).sum();
            let probs = catch_model_panic(self.family, b, tokens, || {
                tch::no_grad(|| {
                    Ok(f.forward_packed(seqs, self.pad_id)
                        .to_kind(Kind::Float)
                        .softmax(-1, Kind::Float)
                        .to_device(Device::Cpu)
                        .contiguous())
                })
            })?;
            let rows = self.rows(&probs, b)?;
            return self.guarded(seqs, rows);
        }
        let b = seqs.len();
        let l = seqs
            .iter()
            .map(|s| s.len())
            .max()
            .unwrap_or(0)
            .max(min_len)
            .max(1);
        let mut ids = vec![self.pad_id; b * l];
        let mut mask = vec![0i64; b * l];
        for (r, s) in seqs.iter().enumerate() {
            ids[r * l..r * l + s.len()].copy_from_slice(s);
            mask[r * l..r * l + s.len()].iter_mut().for_each(|m| *m = 1);
        }
        let shape = [b as i64, l as i64];
        let probs = catch_model_panic(self.family, b, b * l, || {
            tch::no_grad(|| -> anyhow::Result<Tensor> {
                let ids = Tensor::from_slice(&ids).view(shape).to_device(self.device);
                let mask = Tensor::from_slice(&mask).view(shape).to_device(self.device);
                let logits = match (&self.fast, &self.net) {
                    (Some(f), _) => f.forward(&ids, &mask),
                    (None, Net::Bert(m)) => {
                        m.forward_t(Some(&ids), Some(&mask), None, None, None, false)
                            .logits
                    }
                    (None, Net::DistilBert(m)) => {
                        m.forward_t(Some(&ids), Some(&mask), None, false)?.logits
                    }
                    (None, Net::Roberta(m)) => {
                        // Hugging Face: positions count from pad_token_id + 1 over real tokens only.
                        let pos = mask.cumsum(1, Kind::Int64) * &mask + self.pad_id;
                        m.forward_t(Some(&ids), Some(&mask), None, Some(&pos), None, false)
                            .logits
                    }
                };
                Ok(logits
                    .to_kind(Kind::Float)
                    .softmax(-1, Kind::Float)
                    .to_device(Device::Cpu)
                    .contiguous())
            })
        })?;
        let rows = self.rows(&probs, b)?;
        self.guarded(seqs, rows)
    }

    /// The int8 guard: texts whose two most probable classes are closer than the margin (where
    /// int8's rounding can swap them) are scored again by the fp32 packed forward, whose
    /// probabilities replace theirs. Both forwards score a text independently of its batch mates,
    /// so which texts are re-scored does not depend on the batching either.
    fn guarded(&self, seqs: &[&[i64]], mut rows: Vec<Vec<f32>>) -> anyhow::Result<Vec<Vec<f32>>> {
        let Some((fp32, margin)) = &self.guard else {
            return Ok(rows);
        };
        let near: Vec<usize> = (0..rows.len())
            .filter(|&i| top2_margin(&rows[i]) < *margin)
            .collect();
        if near.is_empty() {
            return Ok(rows);
        }
        let sub: Vec<&[i64]> = near.iter().map(|&i| seqs[i]).collect();
        let tokens: usize = sub.iter().map(|s| s.len()).sum();
        let probs = catch_model_panic(self.family, sub.len(), tokens, || {
            tch::no_grad(|| {
                Ok(fp32
                    .forward_packed(&sub, self.pad_id)
                    .to_kind(Kind::Float)
                    .softmax(-1, Kind::Float)
                    .to_device(Device::Cpu)
                    .contiguous())
            })
        })?;
        for (i, p) in near.iter().zip(self.rows(&probs, sub.len())?) {
            rows[*i] = p;
        }
        self.rescored.set(self.rescored.get() + near.len() as u64);
        Ok(rows)
    }

    /// Splits [B, labels] probabilities into one row per text.
    fn rows(&self, probs: &Tensor, b: usize) -> anyhow::Result<Vec<Vec<f32>>> {
        let flat = Vec::<f32>::try_from(probs.view([-1])).context("reading probabilities")?;
        if flat.len() != b * self.num_labels {
            bail!(
                "model returned {} values for {b} texts x {} labels",
                flat.len(),
                self.num_labels
            );
        }
        Ok(flat.chunks(self.num_labels).map(|c| c.to_vec()).collect())
    }
}

/// Runs one model call, turning a libtorch panic into an error that names the batch's shape.
fn catch_model_panic(
    family: Family,
    texts: usize,
    tokens: usize,
    f: impl FnOnce() -> anyhow::Result<Tensor>,
) -> anyhow::Result<Tensor> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        anyhow::anyhow!(
            "the {family} model failed on a batch of {texts} texts, {tokens} tokens: {msg}"
        )
    })?
}

/// Reads a weights file into name → tensor.
fn read_weights(path: &Path) -> anyhow::Result<HashMap<String, Tensor>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let list = match ext {
        "safetensors" => Tensor::read_safetensors(path),
        "bin" | "pt" | "pth" => bail!(
            "{} is a PyTorch pickle; pulso reads model.safetensors or rust_model.ot (convert with \
             `model.save_pretrained(dir, safe_serialization=True)`)",
            path.display()
        ),
        _ => Tensor::load_multi(path),
    }
    .with_context(|| format!("cannot read weights {}", path.display()))?;
    Ok(list.into_iter().collect())
}

/// Copies the file's tensors into every variable of `vs`, by name, checking shapes.
///
/// Old checkpoints name LayerNorm parameters `gamma`/`beta`; those are accepted for `weight`/`bias`.
fn load_weights(vs: &mut VarStore, path: &Path, family: Family) -> anyhow::Result<()> {
    let file = read_weights(path)?;
    let vars = vs.variables();
    let mut missing = Vec::new();
    let mut misshaped = Vec::new();
    let mut pairs = Vec::with_capacity(vars.len());
    for (name, var) in &vars {
        let alias = name
            .strip_suffix(".weight")
            .map(|b| format!("{b}.gamma"))
            .or_else(|| name.strip_suffix(".bias").map(|b| format!("{b}.beta")));
        let src = file
            .get(name)
            .or_else(|| alias.as_ref().and_then(|a| file.get(a)));
        match src {
            None => missing.push(name.clone()),
            Some(src) if src.size() != var.size() => misshaped.push(format!(
                "{name}: file {:?}, model {:?}",
                src.size(),
                var.size()
            )),
            Some(src) => pairs.push((var, src)),
        }
    }
    if !missing.is_empty() || !misshaped.is_empty() {
        missing.sort();
        misshaped.sort();
        let mut prefixes: Vec<&str> = file
            .keys()
            .map(|k| k.split('.').next().unwrap_or(k))
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let show = |v: &[String]| {
            let mut s = v.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 8 {
                s.push_str(&format!(", … ({} in all)", v.len()));
            }
            s
        };
        let mut msg = format!(
            "the weights in {} do not match a {} sequence classifier with this config.json",
            path.display(),
            family
        );
        if !missing.is_empty() {
            msg.push_str(&format!("; missing tensors: {}", show(&missing)));
        }
        if !misshaped.is_empty() {
            msg.push_str(&format!("; wrong shapes: {}", show(&misshaped)));
        }
        msg.push_str(&format!(
            "; the file's top-level names are {prefixes:?} (expected e.g. {})",
            match family {
                Family::Bert => "bert.*, classifier.*",
                Family::DistilBert => "distilbert.*, pre_classifier.*, classifier.*",
                Family::Roberta | Family::XlmRoberta =>
                    "roberta.*, classifier.dense.*, classifier.out_proj.*",
            }
        ));
        bail!(msg);
    }
    tch::no_grad(|| -> anyhow::Result<()> {
        for (var, src) in pairs {
            let mut var = var.shallow_clone();
            var.f_copy_(&src.to_kind(var.kind()).to_device(var.device()))?;
        }
        Ok(())
    })
}
