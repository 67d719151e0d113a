#!/usr/bin/env python3
"""Model soup: the weighted mean of the weights of fine-tuned models that share one starting point.

  python models/train/soup.py --out build/soup MODEL_DIR MODEL_DIR [...] [--weights 0.5,0.5]

Why: two fine-tuning runs from the same pretrained encoder (and, with train.py's --seed kept and only
--data-seed changed, the same new pooler and head) end in one basin of the loss, and the mean of their
weights usually scores like the ensemble of the two at the cost of one model (Wortsman et al., "Model
soups", ICML 2022). It also averages out part of the checkpoint-to-checkpoint noise that a 324-tweet
validation split cannot see through.

Every ingredient must have the same architecture (config.json fields that fix the shapes) and the same
vocabulary (the pieces of tokenizer.json's model, so row i of the word embeddings is the same piece
everywhere; e5_prune.py --keep-from makes a starting point with the shipped model's pieces);
the script refuses otherwise, naming the field or file that differs. Weights are read as fp32 (an fp16
ingredient such as the shipped models/pulso-multi is upcast), averaged in fp64, written as fp32
safetensors with the first ingredient's config and tokenizer files; export_model.py makes the fp16
folder that ships.
"""
import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

SHAPE_KEYS = ["model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "vocab_size", "max_position_embeddings", "type_vocab_size", "num_labels", "id2label"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def sha256(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def vocab(d):
    """The pieces (and scores) of a folder's tokenizer, in id order."""
    tj = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    v = tj["model"]["vocab"]
    return [tuple(p) for p in v] if isinstance(v, list) else sorted(v.items(), key=lambda kv: kv[1])


def shape_fields(cfg):
    out = {k: cfg.get(k) for k in SHAPE_KEYS}
    if out["num_labels"] is None and cfg.get("id2label"):
        out["num_labels"] = len(cfg["id2label"])
    return out


def soup(dirs, weights):
    """Return (state_dict of fp32 tensors, first config). Raises SystemExit naming what differs."""
    if len(dirs) < 2:
        sys.exit("soup.py: give at least two model folders")
    if len(weights) != len(dirs):
        sys.exit(f"soup.py: {len(weights)} weights for {len(dirs)} models")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        sys.exit("soup.py: weights must be >= 0 and not all 0")
    total = sum(weights)
    weights = [w / total for w in weights]
    cfgs = [json.loads((d / "config.json").read_text()) for d in dirs]
    ref = shape_fields(cfgs[0])
    for d, c in zip(dirs[1:], cfgs[1:]):
        got = shape_fields(c)
        for k in SHAPE_KEYS:
            if got[k] != ref[k]:
                sys.exit(f"soup.py: {d}/config.json has {k} = {got[k]!r}, {dirs[0]} has {ref[k]!r}: "
                         "only models fine-tuned from the same starting point can be averaged")
    vocab_ref = vocab(dirs[0])
    for d in dirs[1:]:
        v = vocab(d)
        if v != vocab_ref:
            first = next((i for i, (a, b) in enumerate(zip(v, vocab_ref)) if a != b), min(len(v), len(vocab_ref)))
            sys.exit(f"soup.py: {d}/tokenizer.json's vocabulary differs from {dirs[0]}'s ({len(v)} vs "
                     f"{len(vocab_ref)} pieces, first difference at id {first}): the embedding rows would not "
                     "line up")
    acc = None
    for d, w in zip(dirs, weights):
        sd = load_file(str(d / "model.safetensors"))
        if acc is None:
            acc = {k: v.to(torch.float64) * w for k, v in sd.items()}
            continue
        if set(sd) != set(acc):
            missing = sorted(set(acc) ^ set(sd))[:5]
            sys.exit(f"soup.py: {d}/model.safetensors holds other tensors than {dirs[0]}'s (e.g. {missing})")
        for k, v in sd.items():
            if v.shape != acc[k].shape:
                sys.exit(f"soup.py: tensor {k} is {tuple(v.shape)} in {d}, {tuple(acc[k].shape)} in {dirs[0]}")
            acc[k] += v.to(torch.float64) * w
    return {k: v.to(torch.float32).contiguous() for k, v in acc.items()}, cfgs[0], weights


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="Hugging Face model folders (model.safetensors)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--weights", default=None, help="comma-separated, one per model (default: uniform)")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")] if args.weights else [1.0] * len(args.models)
    sd, cfg, weights = soup(args.models, weights)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg["torch_dtype"] = "float32"
    (args.out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    for f in TOKENIZER_FILES:
        if (args.models[0] / f).exists():
            shutil.copyfile(args.models[0] / f, args.out / f)
    save_file(sd, str(args.out / "model.safetensors"), metadata={"format": "pt"})
    recipe = {"ingredients": [{"path": str(d), "weight": w,
                               "model.safetensors sha256": sha256(d / "model.safetensors")}
                              for d, w in zip(args.models, weights)]}
    (args.out / "soup.json").write_text(json.dumps(recipe, indent=1) + "\n")
    print(f"soup of {len(args.models)} models -> {args.out} ({len(sd)} tensors)")


if __name__ == "__main__":
    main()
