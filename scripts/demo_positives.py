#!/usr/bin/env python3
"""How many of the demo's plainly positive comments does a model call negative?

#15's "done" asks that `make demo`'s report no longer list plainly positive comments among the
negatives. The demo data is generated from templates whose intended sentiment is known
(scripts/make_demo_data.py): this takes every positive one (survey "pos" comments, social-mention
"pos" templates, 5-star review bodies, the positive internal-service comments and the positive
negation variants such as "não tenho do que reclamar da {b}, tudo certo"), fills the placeholders,
scores them with `pulso score` once per model given, and prints the counts per label and every text
that came out negative. It reads the generator, never the generated files, so it needs no demo run.

Usage: scripts/demo_positives.py [--pulso target/ci/pulso] MODEL [MODEL ...]
Writes the texts to build/demo_positives.txt.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SLOTS = {"b": "Acme", "o": "Acme", "c": "Globex", "n": "3", "d": "12", "city": "Recife", "dow": "segunda"}


def positives() -> list[tuple[str, str]]:
    spec = importlib.util.spec_from_file_location("demo_gen", REPO / "scripts/make_demo_data.py")
    g = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(g)
    out: list[tuple[str, str]] = []
    for topics in g.SURVEY.values():
        out += [("survey", x) for d in topics.values() if isinstance(d, dict) for x in d.get("pos", [])]
    for topics in g.M.values():
        out += [("mention", x) for d in topics.values() for x in d.get("pos", [])]
    out += [("review 5 stars", body) for xs in g.REVIEWS[5].values() for _, body in xs]
    for langs in g.SERVICE_TEXTS.values():
        out += [("internal service", x) for pos, _neg, _mixed in langs.values() for x in pos]
    # The negation variants whose meaning is positive ("nothing to complain about").
    out += [("negation", x) for xs in g.NEGATION.values() for x in xs
            if re.search(r"reclamar|no tengo quejas|can't complain", x)]
    return [(kind, re.sub(r"\{(\w+)\}", lambda m: SLOTS[m.group(1)], t)) for kind, t in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pulso", default=str(REPO / "target/ci/pulso"))
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    texts = positives()
    path = REPO / "build/demo_positives.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(t + "\n" for _, t in texts), encoding="utf-8")
    for model in args.models:
        run = subprocess.run([args.pulso, "score", str(path), "--model", model],
                             capture_output=True, text=True, check=True)
        labels = [json.loads(line)["sentiment"] for line in run.stdout.splitlines()]
        assert len(labels) == len(texts), (len(labels), len(texts))
        counts = {k: labels.count(k) for k in ("positive", "neutral", "negative")}
        print(f"{model}: {len(texts)} plainly positive demo comments -> {counts}")
        for (kind, text), label in zip(texts, labels):
            if label == "negative":
                print(f"  negative  [{kind}] {text}")


if __name__ == "__main__":
    main()
