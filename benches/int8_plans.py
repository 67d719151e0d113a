#!/usr/bin/env python3
"""Where does int8 lose labels? `pulso score --precision int8` under several PULSO_INT8_PLAN values.

For each plan: records/s of the whole process, label agreement with `pulso score --precision fp32` on
the same texts (the bench's realistic mix, benches/peer.py's builder; fp32 pulso agrees with the
Hugging Face pipeline on 100% of them, see benches/RESULTS.md), and macro-F1 on the xlm-t validation
splits against fp32's. The plans run one after another in one invocation, fp32 first, so the
records/s are comparable with each other (not with another run's).

Usage: benches/int8_plans.py --pulso target/ci/pulso --model models/pulso-multi [--n 5000]
       [--plans 'PLAN1|PLAN2|...'] [--threads 2] [--out build/int8_plans]
       benches/int8_plans.py --sensitivity ffn_in [--extra 'outliers=8'] [--n 1000] ...
With --sensitivity PART, each layer's PART alone runs in int8 (everything else fp32), so the table says
which layers' int8 error moves the labels: label flips and mean total-variation distance of the three
probabilities from fp32's. Keep the worst layers in fp32 (`fp32=PART:LAYER,...`) and measure the plan.
Plan syntax: src/model/fast.rs (`Int8Plan::parse`), e.g. per_token;smooth=0.5;fp32=pooler,classifier.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402  (the bench's text builder, xlm-t splits and macro-F1)

DEFAULT_PLANS = "|".join([
    "per_token;fp32=qkv,pooler,classifier",  # the default plan
    "per_token;fp32=qkv,ffn_in,pooler,classifier",
    "per_token;smooth=0.5;fp32=qkv,pooler,classifier",
    "per_token;smooth=0.5;fp32=pooler,classifier",
])


def score(binary: str, model: str, path: Path, threads: int, precision: str, plan: str | None,
          out: Path, probs: bool = False):
    env = dict(os.environ)
    env.pop("PULSO_INT8_PLAN", None)
    if plan is not None:
        env["PULSO_INT8_PLAN"] = plan
    cmd = [binary, "score", str(path), "--model", model, "--threads", str(threads), "--precision", precision]
    t0 = time.perf_counter()
    with open(out, "wb") as fo:
        p = subprocess.run(cmd, stdout=fo, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"int8_plans.py: {' '.join(cmd)} (plan {plan!r}) failed:\n{p.stderr.decode()[-2000:]}")
    rows = [json.loads(l) for l in out.read_text(encoding="utf-8").splitlines() if l.strip()]
    labels = [r["sentiment"] for r in rows]
    if probs:
        return wall, labels, [(r["p_negative"], r["p_neutral"], r["p_positive"]) for r in rows]
    return wall, labels


PARTS = ["qkv", "attn_out", "ffn_in", "ffn_out"]


def sensitivity(a, bench: Path, n: int, out: Path) -> int:
    """One layer's `a.sensitivity` part in int8 at a time; see the module docs."""
    layers = json.loads((Path(a.model) / "config.json").read_text())["num_hidden_layers"]
    extra = "".join(f"{i.strip()};" for i in (a.extra or "").split(";") if i.strip())
    _, ref_l, ref_p = score(a.pulso, a.model, bench, a.threads, "fp32", None, out / "fp32.jsonl", True)

    def row(tag: str, keep: list[str]) -> dict:
        plan = f"per_token;{extra}fp32=" + ",".join(keep + ["pooler", "classifier"])
        _, lab, pr = score(a.pulso, a.model, bench, a.threads, "int8", plan, out / f"sens_{tag}.jsonl", True)
        tv = [0.5 * sum(abs(x - y) for x, y in zip(p, q)) for p, q in zip(pr, ref_p)]
        return {"int8": tag, "plan": plan, "flips": sum(x != y for x, y in zip(lab, ref_l)),
                "mean_tv": sum(tv) / len(tv), "max_tv": max(tv)}

    others = [p for p in PARTS if p != a.sensitivity]
    rows = [row(f"{a.sensitivity}:{l}", others + [f"{a.sensitivity}:{j}" for j in range(layers) if j != l])
            for l in range(layers)]
    rows.append(row(f"{a.sensitivity} (every layer)", others))
    print(f"# {n} texts, {a.threads} threads, model {a.model}, plan items {extra or '(none); '}"
          f"CPU {peer.cpu_model()}; each row: only that part in int8, the rest fp32")
    print("| int8 | label flips vs fp32 | mean TV distance | max TV distance |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| `{r['int8']}` | {r['flips']} | {r['mean_tv']:.5f} | {r['max_tv']:.4f} |")
    (out / f"sensitivity_{a.sensitivity}.json").write_text(json.dumps(rows, indent=2))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pulso", default="target/ci/pulso")
    ap.add_argument("--model", default="models/pulso-multi")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plans", default=DEFAULT_PLANS, help="int8 plans separated by |")
    ap.add_argument("--data", default=str(peer.REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(peer.REPO / "build" / "int8_plans"))
    ap.add_argument("--sensitivity", choices=PARTS, help="per-layer sensitivity of one part (module docs)")
    ap.add_argument("--extra", help="with --sensitivity: plan items for the int8 layer, e.g. 'smooth=0.5' or 'outliers=8'")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    texts, _ = peer.build_texts(Path(a.data), a.n)
    bench = out / "texts.jsonl"
    with open(bench, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    if a.sensitivity:
        return sensitivity(a, bench, len(texts), out)
    val = peer.xlmt_val(Path(a.data))
    val_files = {}
    for lang, (vt, _) in val.items():
        val_files[lang] = out / f"val_{lang}.jsonl"
        with open(val_files[lang], "w", encoding="utf-8") as f:
            for t in vt:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")

    def run(precision: str, plan: str | None, tag: str) -> dict:
        wall, labels = score(a.pulso, a.model, bench, a.threads, precision, plan, out / f"{tag}.jsonl")
        f1 = {}
        for lang, p in val_files.items():
            _, vl = score(a.pulso, a.model, p, a.threads, precision, plan, out / f"{tag}_val_{lang}.jsonl")
            f1[lang] = peer.macro_f1(val[lang][1], vl)
        return {"plan": plan, "precision": precision, "wall_s": wall, "rec_s": len(texts) / wall,
                "labels": labels, "f1": f1}

    ref = run("fp32", None, "fp32")
    rows = []
    for i, plan in enumerate(p.strip() for p in a.plans.split("|") if p.strip()):
        r = run("int8", plan, f"int8_{i}")
        r["agreement"] = peer.agreement(ref["labels"], r["labels"])
        r["f1_delta"] = {k: r["f1"][k] - ref["f1"][k] for k in ref["f1"]}
        rows.append(r)
    print(f"# {len(texts)} texts, {a.threads} threads, model {a.model}, CPU {peer.cpu_model()}")
    print(f"# fp32: {ref['rec_s']:.1f} records/s; xlm-t macro-F1 pt {ref['f1']['pt']:.4f} "
          f"es {ref['f1']['es']:.4f} en {ref['f1']['en']:.4f}")
    print("| int8 plan | records/s | × fp32 | agreement vs fp32 | macro-F1 Δ pt / es / en |")
    print("|---|---:|---:|---:|---|")
    for r in rows:
        d = r["f1_delta"]
        print(f"| `{r['plan']}` | {r['rec_s']:.1f} | {r['rec_s'] / ref['rec_s']:.2f} | "
              f"{100 * r['agreement']:.2f}% | {d['pt']:+.4f} / {d['es']:+.4f} / {d['en']:+.4f} |")
    for r in [ref] + rows:
        r.pop("labels")
    (out / "int8_plans.json").write_text(json.dumps({"fp32": ref, "int8": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
