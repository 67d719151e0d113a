#!/usr/bin/env python3
"""Label agreement between `pulso score` and transformers on the same model folder and texts.

  python models/train/agreement.py --model models/pulso-multi --pulso target/ci/pulso \
      [--inputs build/eval/xlmt_pt_val.jsonl ...] [--threads 2]

Scores every text of the inputs with both (transformers: truncation 128, dynamic padding with the
attention mask, argmax; pulso: its default precision) and prints agreement and the largest
probability difference, as JSON.
"""
import argparse
import glob
import json
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
LABELS = ["negative", "neutral", "positive"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(REPO / "models" / "pulso-multi"))
    ap.add_argument("--pulso", default=str(REPO / "target" / "ci" / "pulso"))
    ap.add_argument("--inputs", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="auto", help="pulso's --precision (auto, fp32, bf16)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    paths = a.inputs or sorted(glob.glob(str(REPO / "build" / "eval" / "*.jsonl")))
    texts = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            texts += [json.loads(l)["text"] for l in f if l.strip()]
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model).eval()
    enc = tok(texts, truncation=True, max_length=128)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(enc[i]))
    hf = [None] * len(texts)
    with torch.no_grad():
        for s in range(0, len(order), 64):
            idx = order[s:s + 64]
            L = max(len(enc[i]) for i in idx)
            ids = torch.full((len(idx), L), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros(len(idx), L, dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, :len(enc[i])] = torch.tensor(enc[i])
                mask[r, :len(enc[i])] = 1
            probs = model(input_ids=ids, attention_mask=mask).logits.float().softmax(-1)
            for r, i in enumerate(idx):
                hf[i] = probs[r].tolist()
    stdin = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    out = subprocess.run([a.pulso, "score", "--model", a.model, "--threads", str(a.threads), "--no-progress",
                          "--precision", a.precision],
                         input=stdin.encode(), capture_output=True, check=True)
    rows = [json.loads(l) for l in out.stdout.decode().splitlines() if l.strip()]
    assert len(rows) == len(texts), (len(rows), len(texts))
    agree = 0
    diffs = []
    for i, (h, r) in enumerate(zip(hf, rows)):
        agree += LABELS[max(range(3), key=lambda k: h[k])] == r["sentiment"]
        d = max(abs(h[0] - r["p_negative"]), abs(h[1] - r["p_neutral"]), abs(h[2] - r["p_positive"]))
        diffs.append((d, i))
    diffs.sort(reverse=True)
    res = {"model": a.model, "precision": a.precision, "texts": len(texts), "label_agreement": round(agree / len(texts), 5),
           "max_abs_prob_diff": diffs[0][0],
           "texts_with_diff_over_1e-4": sum(1 for d, _ in diffs if d > 1e-4),
           "worst": [{"diff": d, "tokens": len(enc[i]), "pulso_truncated": rows[i].get("truncated"),
                      "text": texts[i][:200]} for d, i in diffs[:5]],
           "files": [Path(p).name for p in paths]}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
