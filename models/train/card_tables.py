#!/usr/bin/env python3
"""Print the model-card result tables (markdown) from eval JSON files, so that every
number in a MODEL_CARD.md comes from a recorded run.

  python models/train/card_tables.py build/eval_python.json build/baselines.json      # one model
  python models/train/card_tables.py --model pulso-multi=build/eval_python_multi.json \
      --model pulso-mini=build/eval_python.json --baselines build/baselines.json          # side by side
"""
import argparse
import json

ORDER = ["xlmt_pt_val", "xlmt_es_val", "xlmt_en_val", "glassdoor_pt_val", "glassdoor_en_val",
         "restmex_es_val", "reviews_pt_val"]
DESC = {"xlmt_pt_val": "pt, tweet (xlm-t val)", "xlmt_es_val": "es, tweet (xlm-t val)",
        "xlmt_en_val": "en, tweet (xlm-t val)", "glassdoor_pt_val": "pt, employee (Glassdoor pt, full set, never trained on)",
        "glassdoor_en_val": "en, employee (Glassdoor summary, held out)",
        "restmex_es_val": "es, review (REST-MEX, held out)", "reviews_pt_val": "pt, review (pt benchmarks test, binary)"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", help="legacy form: MODEL_JSON BASELINES_JSON")
    ap.add_argument("--model", action="append", default=[], help="NAME=eval.json (repeatable)")
    ap.add_argument("--baselines", default=None)
    a = ap.parse_args()
    models = [m.split("=", 1) for m in a.model]
    if a.files:
        models.append(("pulso-mini", a.files[0]))
        a.baselines = a.baselines or (a.files[1] if len(a.files) > 1 else None)
    evals = {name: json.load(open(p)) for name, p in models}
    base = json.load(open(a.baselines)) if a.baselines else {}
    names = list(evals)
    head = "| set | n | " + " | ".join(f"{n} macro-F1 | {n} acc" for n in names) + " | lexicon | lexicon macro-F1 |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for k in ORDER:
        if not any(k in e for e in evals.values()):
            continue
        n = next(e[k]["n"] for e in evals.values() if k in e)
        cells = []
        for name in names:
            m = evals[name].get(k)
            cells.append(f"{m['macro_f1']:.3f} | {m['accuracy']:.3f}" if m else "- | -")
        b = base.get(k, {})
        lex = f"{b['macro_f1']:.3f}" if "macro_f1" in b else "-"
        print(f"| {DESC[k]} | {n} | " + " | ".join(cells) + f" | {b.get('lexicon', '-')} | {lex} |")
    for name in names:
        print()
        print(f"Per-class F1 ({name}):")
        print()
        print("| set | negative | neutral | positive |")
        print("|---|---|---|---|")
        for k in ORDER:
            if k in evals[name]:
                p = evals[name][k]["f1_per_class"]
                print(f"| {k} | {p.get('negative', '-')} | {p.get('neutral', '-')} | {p.get('positive', '-')} |")


if __name__ == "__main__":
    main()
