#!/usr/bin/env python3
"""Does a 6-layer student keep the 12-layer model's quality (within 0.01 macro-F1)?

  python models/train/e5_student.py --teacher build/runs/e5/best --out build/runs/e5-student \
      [--finetune-steps 0] [--threads 2]

1. Builds two students from the fine-tuned teacher by keeping every other encoder layer
   (odd layers 1,3,...,11 and even layers 0,2,...,10; embeddings, pooler and classifier copied).
2. Evaluates teacher and students on every validation set (build/data/val).
3. With --finetune-steps N, fine-tunes the better student for N more steps (train.py, same data)
   and evaluates it too.
Writes <out>/student.json: per set macro-F1 of each candidate, the mean deltas against the
teacher, and the verdict (ship the student only if every mean delta is within 0.01).
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
from train import evaluate_sets  # noqa: E402


def make_student(teacher, keep, out):
    from transformers import AutoTokenizer, BertForSequenceClassification
    t = BertForSequenceClassification.from_pretrained(teacher)
    cfg = t.config.to_dict()
    cfg["num_hidden_layers"] = len(keep)
    from transformers import BertConfig
    s = BertForSequenceClassification(BertConfig.from_dict(cfg))
    sd = t.state_dict()
    new = {}
    for k, v in sd.items():
        if ".encoder.layer." in k:
            i = int(k.split(".encoder.layer.")[1].split(".")[0])
            if i not in keep:
                continue
            j = keep.index(i)
            k = k.replace(f".encoder.layer.{i}.", f".encoder.layer.{j}.")
        new[k] = v
    missing, unexpected = s.load_state_dict(new, strict=False)
    assert not [m for m in missing if "position_ids" not in m] and not unexpected, (missing, unexpected)
    out = Path(out)
    s.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(teacher).save_pretrained(out)
    return out


def evaluate(model_dir, paths):
    from transformers import AutoTokenizer, BertForSequenceClassification
    m = BertForSequenceClassification.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    return {k: v["macro_f1"] for k, v in evaluate_sets(m, tok, paths).items()}


def summary(res, ref):
    xl = [k for k in res if k.startswith("xlmt_")]
    return {"mean_all": round(sum(res.values()) / len(res), 4),
            "mean_xlmt": round(sum(res[k] for k in xl) / len(xl), 4),
            "delta_mean_all": round(sum(res.values()) / len(res) - sum(ref.values()) / len(ref), 4),
            "delta_mean_xlmt": round(sum(res[k] - ref[k] for k in xl) / len(xl), 4),
            "worst_set_delta": round(min(res[k] - ref[k] for k in res), 4)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", default=str(REPO / "build" / "runs" / "e5" / "best"))
    ap.add_argument("--out", default=str(REPO / "build" / "runs" / "e5-student"))
    ap.add_argument("--data", default=str(REPO / "build" / "data"))
    ap.add_argument("--finetune-steps", type=int, default=0)
    ap.add_argument("--finetune-student", choices=["odd", "even", "best"], default="odd",
                    help="which student to fine-tune: odd keeps the last layer (the shipped measurement); "
                         "best = the better one before fine-tuning")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--teacher-results", default=None,
                    help="train.py --eval-only --results JSON of the teacher (skips re-evaluating it)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted(glob.glob(str(Path(a.data) / "val" / "*.jsonl")))
    if a.teacher_results:
        results = {"teacher": {k: v["macro_f1"] for k, v in json.load(open(a.teacher_results)).items()}}
    else:
        results = {"teacher": evaluate(a.teacher, paths)}
    print("teacher", results["teacher"], flush=True)
    for name, keep in (("odd", [1, 3, 5, 7, 9, 11]), ("even", [0, 2, 4, 6, 8, 10])):
        d = make_student(a.teacher, keep, out / name)
        results[f"student_{name}"] = evaluate(d, paths)
        print(name, results[f"student_{name}"], flush=True)
    ref = results["teacher"]
    best = max(("odd", "even"), key=lambda n: summary(results[f"student_{n}"], ref)["mean_all"])
    if a.finetune_student != "best":
        best = a.finetune_student
    if a.finetune_steps:
        ft = out / f"{best}-ft"
        subprocess.run([sys.executable, str(Path(__file__).parent / "train.py"), "--init", str(out / best),
                        "--out", str(ft), "--steps", str(a.finetune_steps), "--batch-size", "16", "--lr", "5e-5",
                        "--warmup-steps", "150", "--train-max-len", "96", "--threads", str(a.threads),
                        "--eval-minutes", "10", "--resume"], check=True)
        results[f"student_{best}_finetuned"] = evaluate(ft / "best", paths)
    report = {"results": results, "summary": {k: summary(v, ref) for k, v in results.items()}}
    cands = [k for k in results if k != "teacher"]
    ok = [k for k in cands if report["summary"][k]["delta_mean_all"] >= -0.01
          and report["summary"][k]["delta_mean_xlmt"] >= -0.01]
    report["verdict"] = (f"ship {ok[0]} (within 0.01 of the 12-layer model)" if ok else
                         "ship the 12-layer model: no 6-layer student is within 0.01")
    (out / "student.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["summary"], indent=1))
    print(report["verdict"])


if __name__ == "__main__":
    main()
