#!/usr/bin/env python3
"""Write the validation sets as JSON Lines for `pulso eval --input FILE`.

  python models/train/export_eval.py [--out build/eval]

Each line: {"text", "label": "negative|neutral|positive", "lang", "domain"} (`pulso eval --by lang`). Files:
  xlmt_pt_val.jsonl xlmt_es_val.jsonl xlmt_en_val.jsonl   (xlm-t val splits, the target)
  glassdoor_pt_val.jsonl glassdoor_en_val.jsonl            (employee reviews, held out)
  restmex_es_val.jsonl                                     (es tourism reviews, 3-class, held out)
  reviews_pt_val.jsonl                                     (pt product/book/restaurant reviews, BINARY:
                                                            no neutral gold; macro-F1 over neg/pos)
Built from build/data/val/ (run prepare_data.py first; it is re-run here if missing).
Macro-F1 in the model card = mean F1 over the classes present in the gold labels.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMES = ["negative", "neutral", "positive"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO / "build" / "data"))
    ap.add_argument("--out", default=str(REPO / "build" / "eval"))
    a = ap.parse_args()
    val = Path(a.data) / "val"
    if not val.exists():
        subprocess.run([sys.executable, str(Path(__file__).parent / "prepare_data.py")], check=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for p in sorted(val.glob("*.jsonl")):
        n = 0
        with open(p, encoding="utf-8") as fi, open(out / p.name, "w", encoding="utf-8") as fo:
            for line in fi:
                r = json.loads(line)
                fo.write(json.dumps({"text": r["text"], "label": NAMES[r["label"]], "lang": r["lang"],
                                     "domain": r["domain"]}, ensure_ascii=False) + "\n")
                n += 1
        print(f"{out / p.name}: {n}")


if __name__ == "__main__":
    main()
