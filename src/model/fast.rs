//! pulso's own BERT encoder forward: fused QKV, libtorch's fused attention, and int8 linear layers.
//!
//! rust-bert's BERT modules keep their `Linear`s private, so neither int8 weights nor a fused
//! attention kernel can be slotted into them. For the BERT family (both shipped models) this
//! module runs the same computation as Hugging Face's `BertForSequenceClassification` directly on
//! the tensors of the rust-bert [`VarStore`](tch::nn::VarStore) (shallow clones: the weights are
//! held once):
//!
//! - embeddings (word + absolute position + token type 0) and LayerNorm;
//! - per layer: one fused Q/K/V matmul, `scaled_dot_product_attention` with the padding mask
//!   (or the explicit softmax(QKᵀ/√d + mask)·V when [`Attention::Explicit`] is asked for), output
//!   projection + residual + LayerNorm, FFN with exact (erf) GELU, residual + LayerNorm;
//! - tanh pooler on the first token and the classifier.
//!
//! int8 ([`Int8Plan`]): dynamic quantisation on libtorch's FBGEMM kernel
//! (`fbgemm_linear_int8_weight_fp32_activation`: uint8 activations quantised per call × int8
//! weights, int32 accumulation, fp32 in and out). That kernel takes ONE weight scale and quantises
//! the whole activation tensor with one scale; both are made finer here without another kernel:
//! - per output channel weights: each weight row is divided by its max |w| before quantising and
//!   the output column multiplied back (`W = diag(s)·W'`, so `x·Wᵀ = (x·W'ᵀ)·diag(s)`);
//! - per token activations (optional): each input row is divided by its max |x| and the output row
//!   multiplied back. This keeps one outlier token from crushing the resolution of the others.
//!
//! Which linear layers stay fp32 is part of the plan (by part and layer), because the loss of
//! agreement concentrates in a few of them (measured in the model card's precision section).

use anyhow::{bail, Context};
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// The six kinds of linear layer in a BERT classifier, for [`Int8Plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The fused query/key/value projection.
    Qkv,
    /// Attention output projection.
    AttnOut,
    /// First FFN matmul (hidden → intermediate).
    FfnIn,
    /// Second FFN matmul (intermediate → hidden).
    FfnOut,
    Pooler,
    Classifier,
}

impl Part {
    pub const ALL: [Part; 6] = [
        Part::Qkv,
        Part::AttnOut,
        Part::FfnIn,
        Part::FfnOut,
        Part::Pooler,
        Part::Classifier,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Part::Qkv => "qkv",
            Part::AttnOut => "attn_out",
            Part::FfnIn => "ffn_in",
            Part::FfnOut => "ffn_out",
            Part::Pooler => "pooler",
            Part::Classifier => "classifier",
        }
    }

    fn parse(s: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Which linear layers run in int8, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Plan {
    /// (part, layer) pairs kept in fp32; layer None = that part in every layer (pooler and
    /// classifier have no layer).
    pub keep_fp32: Vec<(Part, Option<usize>)>,
    /// Scale activations per token (row) instead of one scale per call.
    pub per_token: bool,
    /// SmoothQuant migration strength α for the int8 layers that read a LayerNorm output (Q/K/V
    /// and the FFN input): input channel j is divided by s_j = max|x_j|^α / max|W_·j|^(1−α) and
    /// the weight column multiplied by it, so outlier channels no longer set every token's
    /// activation scale. max|x_j| comes from an fp32 forward over calibration texts
    /// ([`FastBert::activation_stats`]). None = no migration.
    pub smooth: Option<f64>,
    /// Mixed-precision decomposition (LLM.int8()) for the int8 layers that read a LayerNorm
    /// output: the `outliers` input channels with the largest calibration max |x| (per layer) are
    /// multiplied in fp32, the rest in int8, so the outlier channels no longer set each token's
    /// activation scale. 0 = off. Needs calibration like [`Int8Plan::smooth`].
    pub outliers: usize,
    /// LayerNorm folding for the int8 layers that read a LayerNorm output (Q/K/V and the FFN
    /// input): the LayerNorm's shift β and scale γ move into the linear layer
    /// (`W' = W·diag(γ)`, `b' = b + W·β`, exact in real arithmetic), and the layer quantises the
    /// normalised activations `(x − β)/γ` instead of `x`. Their per-channel offsets and scales are
    /// what make some channels outliers, so each token's activation scale no longer follows them.
    /// Needs no calibration; replaces `smooth` and `outliers`.
    pub fold_ln: bool,
    /// The guard's margin (0 = off): a text whose two most probable classes are closer than this
    /// in int8 is scored again in fp32 and keeps the fp32 probabilities (`Network`'s guard in
    /// src/model/network.rs). int8's rounding moves probabilities by about 0.01, so it can only
    /// swap labels that are that close; the guard re-scores those few texts (a few percent) instead
    /// of giving up int8 for all. Plan item `guard=M`.
    pub guard: f32,
}

/// The default int8 plan: per-token activations; the fused Q/K/V projection in fp32 (its input,
/// the LayerNorm output, has the outlier channels that cost most agreement: on pulso-mini, 1,000
/// bench texts, agreement with fp32 98.8% with it in int8, 99.5% without); pooler and classifier
/// in fp32 (two tiny matmuls once per text); and the guard at 0.05: a text whose two top classes
/// are within 0.05 in int8 is scored again in fp32 (3.1% of the 5,000 bench texts, where it takes
/// the label changes against fp32 from 65 to 19, session 13). See the model card's precision section.
pub const DEFAULT_INT8_PLAN: &str = "per_token;guard=0.05;fp32=qkv,pooler,classifier";

impl Default for Int8Plan {
    fn default() -> Self {
        Int8Plan::parse(DEFAULT_INT8_PLAN).expect("default plan parses")
    }
}

impl Int8Plan {
    /// Parses `per_token|per_call;[fold_ln;][guard=M;][smooth=α;][outliers=K;]fp32=PART[:LAYER],...` (the
    /// `PULSO_INT8_PLAN` syntax), e.g. `per_token;fold_ln;fp32=pooler,classifier,ffn_out:11`.
    /// Parts: qkv, attn_out, ffn_in, ffn_out, pooler, classifier; `all` keeps everything fp32 (a
    /// test of the plumbing).
    pub fn parse(s: &str) -> anyhow::Result<Int8Plan> {
        let mut plan = Int8Plan {
            keep_fp32: Vec::new(),
            per_token: true,
            smooth: None,
            outliers: 0,
            fold_ln: false,
            guard: 0.0,
        };
        for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "per_token" => plan.per_token = true,
                "per_call" => plan.per_token = false,
                "fold_ln" => plan.fold_ln = true,
                _ if item.starts_with("smooth=") => {
                    let v = &item["smooth=".len()..];
                    let alpha: f64 = v.parse().ok().filter(|a| (0.0..=1.0).contains(a)).with_context(|| {
                        format!("int8 plan: smooth={v}: give the migration strength α between 0 and 1, e.g. smooth=0.5")
                    })?;
                    plan.smooth = Some(alpha);
                }
                _ if item.starts_with("guard=") => {
                    let v = &item["guard=".len()..];
                    plan.guard = v.parse().ok().filter(|m: &f32| (0.0..=1.0).contains(m)).with_context(|| {
                        format!("int8 plan: guard={v}: give the probability margin between 0 and 1 under which a text is re-scored in fp32, e.g. guard=0.05 (0 = off)")
                    })?;
                }
                _ if item.starts_with("outliers=") => {
                    let v = &item["outliers=".len()..];
                    plan.outliers = v.parse().ok().filter(|&k| k <= 1024).with_context(|| {
                        format!("int8 plan: outliers={v}: give how many input channels stay fp32, e.g. outliers=8")
                    })?;
                }
                _ => {
                    let Some(list) = item.strip_prefix("fp32=") else {
                        bail!("int8 plan item {item:?}: use per_token, per_call, fold_ln, guard=M, smooth=α, outliers=K or fp32=PART[:LAYER],...");
                    };
                    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        if p == "all" {
                            for part in Part::ALL {
                                plan.keep_fp32.push((part, None));
                            }
                            continue;
                        }
                        let (name, layer) = match p.split_once(':') {
                            Some((n, l)) => (
                                n,
                                Some(l.parse::<usize>().with_context(|| {
                                    format!("int8 plan: layer {l:?} in {p:?} is not a number")
                                })?),
                            ),
                            None => (p, None),
                        };
                        let part = Part::parse(name).with_context(|| {
                            format!(
                                "int8 plan: unknown part {name:?}; use one of qkv, attn_out, ffn_in, \
                                 ffn_out, pooler, classifier"
                            )
                        })?;
                        plan.keep_fp32.push((part, layer));
                    }
                }
            }
        }
        if plan.fold_ln && plan.needs_calibration() {
            bail!("int8 plan: fold_ln replaces smooth=α and outliers=K (their statistics are of the unfolded input): use one of them");
        }
        Ok(plan)
    }

    /// The plan from `PULSO_INT8_PLAN`, else [`DEFAULT_INT8_PLAN`].
    pub fn from_env() -> anyhow::Result<Int8Plan> {
        match std::env::var("PULSO_INT8_PLAN") {
            Ok(s) if !s.trim().is_empty() => Int8Plan::parse(&s).context("reading PULSO_INT8_PLAN"),
            _ => Ok(Int8Plan::default()),
        }
    }

    /// Whether building this plan needs calibration statistics ([`FastBert::activation_stats`]).
    pub fn needs_calibration(&self) -> bool {
        self.smooth.is_some() || self.outliers > 0
    }

    fn is_int8(&self, part: Part, layer: Option<usize>) -> bool {
        !self
            .keep_fp32
            .iter()
            .any(|&(p, l)| p == part && (l.is_none() || l == layer))
    }
}

/// The plan in [`Int8Plan::parse`]'s syntax (what the manifest records); parses back to itself.
impl std::fmt::Display for Int8Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut items: Vec<String> = vec![if self.per_token {
            "per_token"
        } else {
            "per_call"
        }
        .into()];
        if self.fold_ln {
            items.push("fold_ln".into());
        }
        if let Some(a) = self.smooth {
            items.push(format!("smooth={a}"));
        }
        if self.outliers > 0 {
            items.push(format!("outliers={}", self.outliers));
        }
        if self.guard > 0.0 {
            items.push(format!("guard={}", self.guard));
        }
        if !self.keep_fp32.is_empty() {
            let parts: Vec<String> = self
                .keep_fp32
                .iter()
                .map(|(p, l)| match l {
                    Some(l) => format!("{}:{l}", p.as_str()),
                    None => p.as_str().to_string(),
                })
                .collect();
            items.push(format!("fp32={}", parts.join(",")));
        }
        f.write_str(&items.join(";"))
    }
}

/// [`FastBert::forward_packed`] rounds its token rows up to a multiple of this. Measured with
/// libtorch 2.4's MKL sgemm (AVX2 on AMD EPYC): a row's result is the same at any offset and any
/// row count that is a multiple of 4, and differs by up to 1 ulp otherwise; 16 leaves room for
/// wider row blocks on other CPUs (the padded forwards bucket lengths by 16 for the same reason).
pub const ROW_ALIGN: usize = 16;

/// How attention is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attention {
    /// Padding removed ([`FastBert::forward_packed`]): the linear layers run on the batch's real
    /// tokens only, and attention runs per group of equal-length texts with libtorch's fused kernel
    /// and no padding, so a text's scores do not depend on its batch mates.
    Packed,
    /// `scaled_dot_product_attention` (libtorch's fused CPU kernel, flash-style, with the mask).
    Fused,
    /// softmax(QKᵀ/√d + mask)·V as separate ops (what rust-bert does).
    Explicit,
}

enum Linear {
    Float {
        w: Tensor,
        b: Tensor,
    },
    Int8 {
        q: Tensor,
        packed: Tensor,
        col_offsets: Tensor,
        scale: f64,
        /// Per-output-channel scale (the row max |w|).
        chan: Tensor,
        b: Tensor,
        zero: Tensor,
        per_token: bool,
        /// SmoothQuant: 1/s per input channel, applied to the input before quantising.
        inv_smooth: Option<Tensor>,
        /// Mixed-precision decomposition: the outlier input channels (i64 indices) and their
        /// fp32 weight columns [out, K]; their int8 columns are zero.
        outliers: Option<(Tensor, Tensor)>,
    },
}

impl Linear {
    fn float(w: &Tensor, b: &Tensor) -> Linear {
        Linear::Float {
            w: w.shallow_clone(),
            b: b.shallow_clone(),
        }
    }

    /// Symmetric int8, per output channel (see the module docs), for FBGEMM. `calib`: the
    /// input's max |x| per channel, for SmoothQuant ([`Int8Plan::smooth`]) and the outlier
    /// channels ([`Int8Plan::outliers`]).
    fn int8(
        w: &Tensor,
        b: &Tensor,
        per_token: bool,
        calib: Option<(&Tensor, &Int8Plan)>,
    ) -> anyhow::Result<Linear> {
        let w = w.to_kind(Kind::Float);
        let smooth = calib.and_then(|(amax, plan)| Some((amax, plan.smooth?)));
        let (w, inv_smooth) = match smooth {
            Some((amax, alpha)) => {
                let wmax = w.abs().amax([0i64].as_slice(), false).clamp_min(1e-5);
                let s = amax
                    .to_kind(Kind::Float)
                    .clamp_min(1e-5)
                    .pow_tensor_scalar(alpha)
                    / wmax.pow_tensor_scalar(1.0 - alpha);
                (&w * s.unsqueeze(0), Some(s.reciprocal()))
            }
            None => (w, None),
        };
        // The outlier channels by calibration max |x| (after smoothing, which divides them).
        let k = calib
            .map_or(0, |(_, plan)| plan.outliers)
            .min(w.size()[1] as usize);
        let (w, outliers) = match calib {
            Some((amax, _)) if k > 0 => {
                // Not `*=`: to_kind of a Float tensor is the same tensor (the calibration stats).
                let a = match &inv_smooth {
                    Some(inv) => amax.to_kind(Kind::Float) * inv,
                    None => amax.to_kind(Kind::Float),
                };
                let (_, idx) = a.topk(k as i64, 0, true, true);
                let (idx, _) = idx.sort(0, false);
                let w_out = w.index_select(1, &idx).contiguous();
                (w.index_fill(1, &idx, 0.0), Some((idx, w_out)))
            }
            _ => (w, None),
        };
        let chan = w.abs().amax([1i64].as_slice(), false).clamp_min(1e-12);
        let scale = 1.0 / 127.0;
        let q = (&w / chan.unsqueeze(1) / scale)
            .round()
            .clamp(-127, 127)
            .to_kind(Kind::Int8)
            .contiguous();
        // FBGEMM's column offsets: per output row, the sum of its quantised weights minus
        // zero_point × K; the zero point is 0 here.
        let col_offsets = q
            .to_kind(Kind::Int)
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Int)
            .contiguous();
        let packed = q
            .f_fbgemm_pack_quantized_matrix()
            .context("packing int8 weights for FBGEMM (is this libtorch built with FBGEMM?)")?;
        let b = b.to_kind(Kind::Float);
        Ok(Linear::Int8 {
            zero: Tensor::zeros_like(&b),
            q,
            packed,
            col_offsets,
            scale,
            chan,
            b,
            per_token,
            inv_smooth,
            outliers,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Linear::Float { w, b } => x.linear(w, Some(b)),
            Linear::Int8 {
                q,
                packed,
                col_offsets,
                scale,
                chan,
                b,
                zero,
                per_token,
                inv_smooth,
                outliers,
            } => {
                let size = x.size();
                let k = *size.last().unwrap_or(&1);
                let mut x2 = x.reshape([-1, k]);
                if let Some(inv) = inv_smooth {
                    // Not in place: `x2` may be a view of `x`, which the residual still reads.
                    x2 = &x2 * inv;
                }
                // The outlier channels in fp32; zeroed (a copy, not in place) for the int8 part.
                let y_out = outliers.as_ref().map(|(idx, w_out)| {
                    let y = x2.index_select(1, idx).matmul(&w_out.tr());
                    x2 = x2.index_fill(1, idx, 0.0);
                    y
                });
                let rows = x2.size()[0];
                let (xin, tok) = if *per_token {
                    // Each row divided by its max |x| lands in [-1, 1]; one extra row holding 1 and
                    // −1 pins the kernel's per-call range to exactly [-1, 1], so its one activation
                    // scale and zero point never depend on the batch mates, and a text's int8
                    // scores are the same in any batch.
                    // max |x| per row as max(max, −min), without an |x| copy: amax and amin are
                    // each 4× faster than abs + amax here (libtorch 2.4, AVX2; `aminmax` is 3×
                    // slower, not vectorised).
                    let dim = [1i64];
                    let t = x2
                        .amax(dim.as_slice(), true)
                        .maximum(&x2.amin(dim.as_slice(), true).neg())
                        .clamp_min(1e-12);
                    let buf = Tensor::empty([rows + 1, k], (Kind::Float, x2.device()));
                    let _ = x2.div_out(&buf.narrow(0, 0, rows), &t);
                    let mut pin = buf.get(rows);
                    let _ = pin.fill_(0.0);
                    let _ = pin.get(0).fill_(1.0);
                    if k > 1 {
                        let _ = pin.get(1).fill_(-1.0);
                    }
                    (buf, Some(t))
                } else {
                    (x2, None)
                };
                let mut y = xin.fbgemm_linear_int8_weight_fp32_activation(
                    q,
                    packed,
                    col_offsets,
                    tch::Scalar::float(*scale),
                    tch::Scalar::int(0),
                    zero,
                );
                if xin.size()[0] > rows {
                    y = y.narrow(0, 0, rows);
                }
                if let Some(t) = tok {
                    y *= t;
                }
                // b + y · chan in one pass.
                let mut y = b.addcmul(&y, chan);
                if let Some(yo) = y_out {
                    y += yo;
                }
                let mut out = size.clone();
                let n = y.size()[1];
                *out.last_mut().unwrap() = n;
                y.view(out.as_slice())
            }
        }
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// The output, and with `normalised` also `(out − β)/γ` (the input normalised, before the
    /// affine part) for a folded int8 layer that reads it ([`Int8Plan::fold_ln`]).
    fn forward_pair(&self, x: &Tensor, normalised: bool) -> (Tensor, Option<Tensor>) {
        if !normalised {
            return (self.forward(x), None);
        }
        let n = *x.size().last().unwrap_or(&1);
        let z = x.layer_norm(
            [n].as_slice(),
            None::<&Tensor>,
            None::<&Tensor>,
            self.eps,
            false,
        );
        (self.b.addcmul(&z, &self.w), Some(z))
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let n = *x.size().last().unwrap_or(&1);
        x.layer_norm(
            [n].as_slice(),
            Some(&self.w),
            Some(&self.b),
            self.eps,
            false,
        )
    }
}

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    ln1: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    ln2: LayerNorm,
    /// Q/K/V (resp. the FFN input) has its input LayerNorm folded in and reads the normalised
    /// activations ([`Int8Plan::fold_ln`]).
    qkv_folded: bool,
    ffn_in_folded: bool,
}

impl Layer {
    /// Everything after attention: output projection + residual, LayerNorm, FFN + residual,
    /// LayerNorm, on row-wise [rows, hidden] (or [B, L, hidden]) tensors. Returns the layer's output
    /// and, with `next_folded`, that output normalised for a folded Q/K/V of the next layer.
    fn after_attention(
        &self,
        ctx: &Tensor,
        x: &Tensor,
        next_folded: bool,
    ) -> (Tensor, Option<Tensor>) {
        let (a, an) = self
            .ln1
            .forward_pair(&(self.attn_out.forward(ctx) + x), self.ffn_in_folded);
        let f = self.ffn_in.forward(an.as_ref().unwrap_or(&a)).gelu("none");
        self.ln2
            .forward_pair(&(self.ffn_out.forward(&f) + &a), next_folded)
    }
}

/// Per layer, max |x| per input channel of the two LayerNorm-fed projections (SmoothQuant's
/// calibration; see [`Int8Plan::smooth`]).
pub struct ActStats {
    /// Input of the fused Q/K/V projection (the previous layer's output LayerNorm).
    pub qkv_in: Vec<Tensor>,
    /// Input of the FFN's first matmul (the attention block's LayerNorm).
    pub ffn_in: Vec<Tensor>,
}

/// A BERT sequence classifier over the weights of a loaded rust-bert model.
pub struct FastBert {
    word: Tensor,
    pos: Tensor,
    tok_type: Tensor,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    pooler: Linear,
    classifier: Linear,
    heads: i64,
    attention: Attention,
    int8: bool,
}

impl FastBert {
    /// Builds the forward from the variables of a rust-bert `BertForSequenceClassification`
    /// (Hugging Face names: `bert.embeddings.*`, `bert.encoder.layer.N.*`, `bert.pooler.*`,
    /// `classifier.*`). `int8`: the linear layers the plan does not keep in fp32 are quantised
    /// now (the float weights stay in the var store). `stats`: the calibration statistics a plan
    /// with [`Int8Plan::smooth`] needs (from [`FastBert::activation_stats`] of an fp32 build).
    pub fn new(
        vars: &HashMap<String, Tensor>,
        layers: usize,
        heads: usize,
        eps: f64,
        int8: Option<&Int8Plan>,
        attention: Attention,
        stats: Option<&ActStats>,
    ) -> anyhow::Result<FastBert> {
        if let (Some(plan), None) = (int8, stats) {
            if plan.needs_calibration() {
                bail!("int8 plan with smooth=α or outliers=K needs calibration statistics (an fp32 forward over calibration texts)");
            }
        }
        if let Some(st) = stats {
            if st.qkv_in.len() != layers || st.ffn_in.len() != layers {
                bail!(
                    "calibration statistics cover {} layers, the model has {layers}",
                    st.qkv_in.len()
                );
            }
        }
        // Calibration statistics for a LayerNorm-fed projection of layer i, if the plan needs them.
        let calib =
            |which: &dyn Fn(&ActStats) -> &Vec<Tensor>, i: usize| -> Option<(Tensor, &Int8Plan)> {
                let plan = int8.filter(|p| p.needs_calibration())?;
                Some((which(stats?)[i].shallow_clone(), plan))
            };
        let get = |n: &str| -> anyhow::Result<Tensor> {
            vars.get(n)
                .map(|t| t.shallow_clone())
                .with_context(|| format!("BERT weights lack {n}"))
        };
        let ln = |p: &str| -> anyhow::Result<LayerNorm> {
            Ok(LayerNorm {
                w: get(&format!("{p}.weight"))?,
                b: get(&format!("{p}.bias"))?,
                eps,
            })
        };
        // W·diag(γ) and b + W·β for a linear layer reading LayerNorm `ln` (fold_ln).
        let fold = |w: Tensor, b: Tensor, ln: &str| -> anyhow::Result<(Tensor, Tensor)> {
            let g = get(&format!("{ln}.weight"))?.to_kind(Kind::Float);
            let be = get(&format!("{ln}.bias"))?.to_kind(Kind::Float);
            let w = w.to_kind(Kind::Float);
            let b = b.to_kind(Kind::Float) + w.matmul(&be);
            Ok((&w * g.unsqueeze(0), b))
        };
        let folds =
            |part: Part, i: usize| int8.is_some_and(|p| p.fold_ln && p.is_int8(part, Some(i)));
        // The LayerNorm whose output layer i's Q/K/V reads.
        let qkv_ln = |i: usize| {
            if i == 0 {
                "bert.embeddings.LayerNorm".to_string()
            } else {
                format!("bert.encoder.layer.{}.output.LayerNorm", i - 1)
            }
        };
        let lin = |p: &str, part: Part, layer: Option<usize>| -> anyhow::Result<Linear> {
            let w = get(&format!("{p}.weight"))?;
            let b = get(&format!("{p}.bias"))?;
            let (w, b) = match (part, layer) {
                (Part::FfnIn, Some(i)) if folds(part, i) => fold(
                    w,
                    b,
                    &format!("bert.encoder.layer.{i}.attention.output.LayerNorm"),
                )?,
                _ => (w, b),
            };
            let cal = match (part, layer) {
                (Part::FfnIn, Some(i)) => calib(&|s: &ActStats| &s.ffn_in, i),
                _ => None,
            };
            match int8 {
                Some(plan) if plan.is_int8(part, layer) => {
                    Linear::int8(&w, &b, plan.per_token, cal.as_ref().map(|(t, p)| (t, *p)))
                }
                _ => Ok(Linear::float(&w, &b)),
            }
        };
        let mut ls = Vec::with_capacity(layers);
        for i in 0..layers {
            let p = format!("bert.encoder.layer.{i}");
            let w = |n: &str| get(&format!("{p}.attention.self.{n}.weight"));
            let b = |n: &str| get(&format!("{p}.attention.self.{n}.bias"));
            let qkv_w = Tensor::cat(&[w("query")?, w("key")?, w("value")?], 0);
            let qkv_b = Tensor::cat(&[b("query")?, b("key")?, b("value")?], 0);
            let (qkv_w, qkv_b) = if folds(Part::Qkv, i) {
                fold(qkv_w, qkv_b, &qkv_ln(i))?
            } else {
                (qkv_w, qkv_b)
            };
            let qkv = match int8 {
                Some(plan) if plan.is_int8(Part::Qkv, Some(i)) => {
                    let cal = calib(&|s: &ActStats| &s.qkv_in, i);
                    Linear::int8(
                        &qkv_w,
                        &qkv_b,
                        plan.per_token,
                        cal.as_ref().map(|(t, p)| (t, *p)),
                    )?
                }
                _ => Linear::Float { w: qkv_w, b: qkv_b },
            };
            ls.push(Layer {
                qkv,
                attn_out: lin(
                    &format!("{p}.attention.output.dense"),
                    Part::AttnOut,
                    Some(i),
                )?,
                ln1: ln(&format!("{p}.attention.output.LayerNorm"))?,
                ffn_in: lin(&format!("{p}.intermediate.dense"), Part::FfnIn, Some(i))?,
                ffn_out: lin(&format!("{p}.output.dense"), Part::FfnOut, Some(i))?,
                ln2: ln(&format!("{p}.output.LayerNorm"))?,
                qkv_folded: folds(Part::Qkv, i),
                ffn_in_folded: folds(Part::FfnIn, i),
            });
        }
        Ok(FastBert {
            word: get("bert.embeddings.word_embeddings.weight")?,
            pos: get("bert.embeddings.position_embeddings.weight")?,
            tok_type: get("bert.embeddings.token_type_embeddings.weight")?,
            emb_ln: ln("bert.embeddings.LayerNorm")?,
            layers: ls,
            pooler: lin("bert.pooler.dense", Part::Pooler, None)?,
            classifier: lin("classifier", Part::Classifier, None)?,
            heads: heads as i64,
            attention,
            int8: int8.is_some(),
        })
    }

    pub fn is_int8(&self) -> bool {
        self.int8
    }

    /// Whether layer `i` (if any) reads normalised activations into a folded Q/K/V.
    fn qkv_folded(&self, i: usize) -> bool {
        self.layers.get(i).is_some_and(|l| l.qkv_folded)
    }

    /// The attention this forward was built with ([`Attention::Packed`] takes
    /// [`FastBert::forward_packed`]).
    pub fn attention(&self) -> Attention {
        self.attention
    }

    /// Logits [B, labels] for `seqs` without padding. The batch's tokens are packed into one
    /// [T, hidden] matrix for the embeddings, the linear layers, GELU and LayerNorm (all row-wise),
    /// and attention runs once per run of consecutive texts of one length, on exactly their tokens.
    /// T is rounded up to [`ROW_ALIGN`] with filler rows (`pad_id`) that no text attends to: MKL's
    /// sgemm rounds a row the same way wherever it sits only when the row count is a multiple of
    /// its row block, so with the rounding a text scores bit for bit the same in any batch
    /// (tests/it/shards.rs compares shards with one process row for row). The last layer computes
    /// keys and values for every token but the rest only for each text's first token, the one the
    /// pooler reads ([`FastBert::cls_only`]); those rows (one per text) are rounded the same way.
    pub fn forward_packed(&self, seqs: &[&[i64]], pad_id: i64) -> Tensor {
        self.packed(seqs, pad_id, None)
    }

    /// SmoothQuant's calibration statistics: per layer, max |x| per channel at the inputs of the
    /// Q/K/V and FFN-input projections over the real tokens of `seqs` (run in this build's precision:
    /// call it on an fp32 build).
    pub fn activation_stats(&self, seqs: &[&[i64]], pad_id: i64) -> ActStats {
        let mut st = ActStats {
            qkv_in: Vec::new(),
            ffn_in: Vec::new(),
        };
        for chunk in seqs.chunks(32) {
            let mut part = ActStats {
                qkv_in: Vec::new(),
                ffn_in: Vec::new(),
            };
            let _ = self.packed(chunk, pad_id, Some(&mut part));
            if st.qkv_in.is_empty() {
                st = part;
            } else {
                for (a, b) in st.qkv_in.iter_mut().zip(&part.qkv_in) {
                    *a = a.maximum(b);
                }
                for (a, b) in st.ffn_in.iter_mut().zip(&part.ffn_in) {
                    *a = a.maximum(b);
                }
            }
        }
        st
    }

    fn packed(&self, seqs: &[&[i64]], pad_id: i64, mut rec: Option<&mut ActStats>) -> Tensor {
        let device = self.word.device();
        let kind = self.word.kind();
        let mut ids: Vec<i64> = Vec::new();
        let mut pos: Vec<i64> = Vec::new();
        let mut first: Vec<i64> = Vec::with_capacity(seqs.len());
        // (first row, texts, length) of each run of consecutive equal-length texts.
        let mut runs: Vec<(i64, i64, i64)> = Vec::new();
        for s in seqs {
            let start = ids.len() as i64;
            first.push(start);
            if s.is_empty() {
                ids.push(pad_id);
                pos.push(0);
            } else {
                ids.extend_from_slice(s);
                pos.extend(0..s.len() as i64);
            }
            let len = ids.len() as i64 - start;
            match runs.last_mut() {
                Some((_, n, l)) if *l == len => *n += 1,
                _ => runs.push((start, 1, len)),
            }
        }
        let real = ids.len();
        let rows = real.div_ceil(ROW_ALIGN) * ROW_ALIGN;
        ids.resize(rows, pad_id);
        pos.resize(rows, 0);
        let ids = Tensor::from_slice(&ids).to_device(device);
        let pos = Tensor::from_slice(&pos).to_device(device);
        let x = Tensor::embedding(&self.word, &ids, -1, false, false)
            + Tensor::embedding(&self.pos, &pos, -1, false, false)
            + self.tok_type.get(0);
        // `xn`: x normalised, when the next Q/K/V is folded (fold_ln).
        let (mut x, mut xn) = self.emb_ln.forward_pair(&x, self.qkv_folded(0));
        let h = x.size()[1];
        let d = h / self.heads;
        // An all-zero additive mask per length (tch passes None as an undefined tensor, which
        // libtorch 2.4's CPU kernel rejects); adding 0 changes nothing.
        let mut masks: HashMap<i64, Tensor> = HashMap::new();
        for &(_, _, l) in &runs {
            masks
                .entry(l)
                .or_insert_with(|| Tensor::zeros([1, 1, 1, l], (kind, device)));
        }
        let filler =
            (rows > real).then(|| Tensor::zeros([(rows - real) as i64, h], (kind, device)));
        let amax = |t: &Tensor| {
            t.narrow(0, 0, real as i64)
                .abs()
                .amax([0i64].as_slice(), false)
                .to_kind(Kind::Float)
        };
        // One row per text for the pooler (filler rows repeat row 0), rounded like the token rows.
        let b = first.len();
        first.resize(b.div_ceil(ROW_ALIGN) * ROW_ALIGN, 0);
        let first = Tensor::from_slice(&first).to_device(device);
        let last = self.layers.len().saturating_sub(1);
        let mut per_text = false;
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(r) = rec.as_deref_mut() {
                r.qkv_in.push(amax(&x));
            }
            let qkv = layer.qkv.forward(xn.as_ref().unwrap_or(&x));
            if i == last && rec.is_none() {
                // Only the first token of each text reaches the pooler, so after the last layer's
                // keys and values the rest of the layer runs on those rows alone.
                x = self.cls_only(layer, &qkv, &x, &runs, &first, b);
                per_text = true;
                break;
            }
            let mut parts: Vec<Tensor> = Vec::with_capacity(runs.len() + 1);
            for &(start, n, l) in &runs {
                let t = qkv
                    .narrow(0, start, n * l)
                    .view([n, l, 3, self.heads, d])
                    .permute([2, 0, 3, 1, 4]); // [3, n, H, l, D]
                let ctx = Tensor::scaled_dot_product_attention(
                    &t.get(0),
                    &t.get(1),
                    &t.get(2),
                    Some(&masks[&l]),
                    0.0,
                    false,
                    None,
                );
                parts.push(ctx.transpose(1, 2).reshape([n * l, h]));
            }
            if let Some(f) = &filler {
                parts.push(f.shallow_clone());
            }
            let ctx = Tensor::cat(&parts, 0);
            let (a, an) = layer
                .ln1
                .forward_pair(&(layer.attn_out.forward(&ctx) + &x), layer.ffn_in_folded);
            if let Some(r) = rec.as_deref_mut() {
                r.ffn_in.push(amax(&a));
            }
            let f = layer.ffn_in.forward(an.as_ref().unwrap_or(&a)).gelu("none");
            (x, xn) = layer
                .ln2
                .forward_pair(&(layer.ffn_out.forward(&f) + &a), self.qkv_folded(i + 1));
        }
        // `x` now holds one row per text (and the filler rows of `first`) when the last layer ran
        // on those rows alone; otherwise (calibration, a model without layers) every token's row.
        let x = if per_text {
            x
        } else {
            x.index_select(0, &first)
        };
        let pooled = self.pooler.forward(&x).tanh();
        self.classifier.forward(&pooled).narrow(0, 0, b as i64)
    }

    /// The last layer after its Q/K/V projection (`qkv`, every token), for the first token of
    /// each text only: that token's query attends to all of its text's keys and values, and the
    /// attention output, FFN and LayerNorms run on one row per text (the rows `first` picks, a
    /// multiple of [`ROW_ALIGN`], the `b` texts first). In real arithmetic this is exactly the full
    /// layer followed by picking those rows; it skips the attention-output and FFN matmuls of
    /// every other token (for a 12-layer model about 6% of the encoder's matmul FLOPs).
    fn cls_only(
        &self,
        layer: &Layer,
        qkv: &Tensor,
        x: &Tensor,
        runs: &[(i64, i64, i64)],
        first: &Tensor,
        b: usize,
    ) -> Tensor {
        let (kind, device) = (x.kind(), x.device());
        let h = x.size()[1];
        let d = h / self.heads;
        let mut parts: Vec<Tensor> = Vec::with_capacity(runs.len() + 1);
        for &(start, n, l) in runs {
            let t = qkv
                .narrow(0, start, n * l)
                .view([n, l, 3, self.heads, d])
                .permute([2, 0, 3, 1, 4]); // [3, n, H, l, D]
            let q = t.get(0).narrow(2, 0, 1); // [n, H, 1, D]: the first token's query
            let mask = Tensor::zeros([1, 1, 1, l], (kind, device));
            let ctx = Tensor::scaled_dot_product_attention(
                &q,
                &t.get(1),
                &t.get(2),
                Some(&mask),
                0.0,
                false,
                None,
            );
            parts.push(ctx.reshape([n, h]));
        }
        let rows = first.size()[0];
        if rows > b as i64 {
            parts.push(Tensor::zeros([rows - b as i64, h], (kind, device)));
        }
        let ctx = Tensor::cat(&parts, 0);
        layer
            .after_attention(&ctx, &x.index_select(0, first), false)
            .0
    }

    /// Logits for `ids` [B, L] with `mask` [B, L] (1 = real token), in the weights' kind.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        let (b, l) = (ids.size()[0], ids.size()[1]);
        let kind = self.word.kind();
        let positions = Tensor::arange(l, (Kind::Int64, ids.device()));
        let x = Tensor::embedding(&self.word, ids, -1, false, false)
            + Tensor::embedding(&self.pos, &positions, -1, false, false).unsqueeze(0)
            + self.tok_type.get(0);
        let (mut x, mut xn) = self.emb_ln.forward_pair(&x, self.qkv_folded(0));
        let h = x.size()[2];
        let d = h / self.heads;
        // Additive mask [B, 1, 1, L]: 0 for real tokens, a large negative for padding.
        let add_mask = ((mask.to_kind(kind) - 1.0) * 10000.0).view([b, 1, 1, l]);
        for (i, layer) in self.layers.iter().enumerate() {
            let qkv = layer
                .qkv
                .forward(xn.as_ref().unwrap_or(&x))
                .view([b, l, 3, self.heads, d]);
            let qkv = qkv.permute([2, 0, 3, 1, 4]); // [3, B, H, L, D]
            let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
            let ctx = match self.attention {
                Attention::Fused | Attention::Packed => Tensor::scaled_dot_product_attention(
                    &q,
                    &k,
                    &v,
                    // Always a mask: tch passes None as an undefined tensor, which libtorch 2.4's
                    // CPU kernel rejects.
                    Some(&add_mask),
                    0.0,
                    false,
                    None,
                ),
                Attention::Explicit => {
                    let scores = q.matmul(&k.transpose(-1, -2)) / (d as f64).sqrt() + &add_mask;
                    scores.softmax(-1, kind).matmul(&v)
                }
            };
            let ctx = ctx.transpose(1, 2).reshape([b, l, h]);
            (x, xn) = layer.after_attention(&ctx, &x, self.qkv_folded(i + 1));
        }
        let pooled = self.pooler.forward(&x.select(1, 0)).tanh();
        self.classifier.forward(&pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) from a seed (an LCG: the tests run in parallel, and
    /// libtorch's global generator is shared between them).
    fn values(shape: &[i64], seed: u64) -> Tensor {
        let n: i64 = shape.iter().product();
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_slice(&v).view(shape)
    }

    /// x [16, 32] with input channel 3 fifty times larger than the rest (an LLM-style outlier),
    /// w [64, 32], b [64].
    fn case() -> (Tensor, Tensor, Tensor) {
        let x = values(&[16, 32], 1);
        let _ = x.narrow(1, 3, 1).g_mul_scalar_(50.0);
        (x, values(&[64, 32], 2) * 0.1, values(&[64], 3))
    }

    #[test]
    fn plans_print_in_their_own_syntax() {
        for text in [
            DEFAULT_INT8_PLAN,
            "per_token;fp32=qkv,pooler,classifier",
            "per_token;fold_ln;guard=0.05;fp32=pooler,classifier,ffn_out:11",
            "per_call;outliers=8;fp32=qkv",
            "per_token;smooth=0.5",
        ] {
            let plan = Int8Plan::parse(text).unwrap();
            assert_eq!(Int8Plan::parse(&plan.to_string()).unwrap(), plan, "{text}");
        }
        let p = Int8Plan::parse("guard=0.03").unwrap();
        assert!(p.per_token);
        assert_eq!(p.guard, 0.03);
        assert_eq!(p.to_string(), "per_token;guard=0.03");
        for bad in ["guard=2", "guard=x", "asym"] {
            assert!(Int8Plan::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    fn max_err(lin: &Linear, x: &Tensor, want: &Tensor) -> f64 {
        (lin.forward(x) - want).abs().max().double_value(&[])
    }

    #[test]
    fn outlier_channels_run_in_fp32() {
        let (x, w, b) = case();
        let want = x.linear(&w, Some(&b));
        let amax = x.abs().amax([0i64].as_slice(), false);
        let plan = |k: usize| Int8Plan {
            outliers: k,
            ..Int8Plan::default()
        };
        let err = |k: usize| {
            let p = plan(k);
            let lin = Linear::int8(&w, &b, true, Some((&amax, &p))).unwrap();
            max_err(&lin, &x, &want)
        };
        // Every channel an outlier: nothing is left to int8, so the result is the fp32 one.
        assert!(err(32) < 1e-4, "all channels fp32: max error {}", err(32));
        // The one outlier channel in fp32: the other channels get the int8 resolution back.
        let (plain, one) = (err(0), err(1));
        assert!(
            plain > 0.01,
            "plain int8 should show rounding here: {plain}"
        );
        assert!(
            one * 5.0 < plain,
            "outlier in fp32 {one} vs plain int8 {plain}"
        );
        // And the channel chosen is the outlier (by calibration max |x|).
        let Linear::Int8 {
            outliers: Some((idx, w_out)),
            ..
        } = Linear::int8(&w, &b, true, Some((&amax, &plan(1)))).unwrap()
        else {
            panic!("outliers=1 keeps one channel in fp32");
        };
        assert_eq!(Vec::<i64>::try_from(&idx).unwrap(), vec![3]);
        assert_eq!(w_out.size(), vec![64, 1]);
    }

    /// Per-token int8 with the pinned range: a row's result is bit for bit the same alone or
    /// beside rows of another scale and sign (before the pin, the kernel's one activation range
    /// came from the whole batch), and close to fp32.
    #[test]
    fn per_token_int8_is_batch_independent() {
        let (x, w, b) = case();
        let lin = Linear::int8(&w, &b, true, None).unwrap();
        let row = x.narrow(0, 5, 1).abs(); // all positive: alone, its range would be [0, 1]
        let mates = Tensor::cat(
            &[
                values(&[1, 32], 8).abs() * -40.0,
                row.shallow_clone(),
                Tensor::full([1, 32], 0.25, (Kind::Float, tch::Device::Cpu)),
            ],
            0,
        );
        let (alone, batched) = (lin.forward(&row), lin.forward(&mates));
        assert!(
            alone.equal(&batched.narrow(0, 1, 1)),
            "a row's int8 output changed with its batch mates: {alone:?} vs {:?}",
            batched.narrow(0, 1, 1)
        );
        let want = mates.linear(&w, Some(&b));
        let rel = ((&batched - &want).norm() / want.norm()).double_value(&[]);
        assert!(rel < 0.05, "int8 vs fp32: relative error {rel}");
    }

    /// fold_ln's algebra: the LayerNorm's normalised output through `W·diag(γ)`, `b + W·β` is
    /// the LayerNorm's output through `W`, `b` (up to fp32 rounding).
    #[test]
    fn folding_a_layernorm_into_the_next_linear_is_exact_in_fp32() {
        let (x, w, b) = case();
        let ln = LayerNorm {
            w: values(&[32], 4) * 3.0,
            b: values(&[32], 5) * 2.0,
            eps: 1e-12,
        };
        let (a, z) = ln.forward_pair(&x, true);
        let z = z.expect("normalised output asked for");
        assert!((&a - ln.forward(&x)).abs().max().double_value(&[]) < 1e-4);
        assert!(ln.forward_pair(&x, false).1.is_none());
        let want = a.linear(&w, Some(&b));
        let got = z.linear(&(&w * ln.w.unsqueeze(0)), Some(&(&b + w.matmul(&ln.b))));
        let err = (got - &want).abs().max().double_value(&[]);
        assert!(err < 1e-3, "folded vs unfolded: max difference {err}");
        let e = Int8Plan::parse("fold_ln;smooth=0.5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("fold_ln replaces"), "{e}");
        assert!(
            Int8Plan::parse("per_token;fold_ln;fp32=pooler")
                .unwrap()
                .fold_ln
        );
    }

    #[test]
    fn outliers_parse_and_need_calibration() {
        let p = Int8Plan::parse("per_token;outliers=8;fp32=pooler,classifier").unwrap();
        assert_eq!(p.outliers, 8);
        assert!(p.needs_calibration());
        assert!(!Int8Plan::default().needs_calibration());
        let e = Int8Plan::parse("outliers=x").unwrap_err().to_string();
        assert!(e.contains("outliers=x"), "{e}");
    }
}
