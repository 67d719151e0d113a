#!/usr/bin/env python3
"""Print the model-card result tables (markdown) from eval JSON files, so that every
number in MODEL_CARD.md comes from a recorded run.

  python models/train/card_tables.py build/eval_python.json build/baselines.json
"""
import json
import sys

ORDER = ["xlmt_pt_val", "xlmt_es_val", "xlmt_en_val", "glassdoor_pt_val", "glassdoor_en_val",
         "restmex_es_val", "reviews_pt_val"]
DESC = {"xlmt_pt_val": "pt, tweet (xlm-t val)", "xlmt_es_val": "es, tweet (xlm-t val)",
        "xlmt_en_val": "en, tweet (xlm-t val)", "glassdoor_pt_val": "pt, employee (Glassdoor pt, full set, never trained on)",
        "glassdoor_en_val": "en, employee (Glassdoor summary, held out)",
        "restmex_es_val": "es, review (REST-MEX, held out)", "reviews_pt_val": "pt, review (pt benchmarks test, binary)"}


def main():
    model = json.load(open(sys.argv[1]))
    base = json.load(open(sys.argv[2]))
    print("| set | n | pulso-mini macro-F1 | pulso-mini acc | lexicon | lexicon macro-F1 | lexicon acc |")
    print("|---|---|---|---|---|---|---|")
    for k in ORDER:
        if k not in model:
            continue
        m, b = model[k], base.get(k, {})
        print(f"| {DESC[k]} | {m['n']} | {m['macro_f1']:.3f} | {m['accuracy']:.3f} | {b.get('lexicon','-')} | "
              f"{b.get('macro_f1', float('nan')):.3f} | {b.get('accuracy', float('nan')):.3f} |")
    print()
    print("Per-class F1 (pulso-mini):")
    print()
    print("| set | negative | neutral | positive |")
    print("|---|---|---|---|")
    for k in ORDER:
        if k in model:
            p = model[k]["f1_per_class"]
            print(f"| {k} | {p.get('negative','-')} | {p.get('neutral','-')} | {p.get('positive','-')} |")


if __name__ == "__main__":
    main()
