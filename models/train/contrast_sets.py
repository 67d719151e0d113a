#!/usr/bin/env python3
"""Contrast sets for negated complaints, top marks and "no regrets" in pt/es/en (issue 15).

The shipped model reads "não tenho do que reclamar", "nota dez" and "não me arrependo" as complaints:
the complaint word dominates (model card, "Known failure modes"). This writes two disjoint sets:

* train: short templated sentences where a negation or an idiom flips the sentiment, each beside its
  contrast ("não tenho do que reclamar" positive / "tenho muito do que reclamar" negative, "nota dez" /
  "nota zero", "não me arrependo" / "me arrependo"), so the model has to read the negation rather than
  learn a phrase. Appended to the training rows with `train.py --extra-train`.
* probe: held out, written with other phrasings, verb forms and subjects that no train template uses
  ("não me arrependi", "nota máxima", "no me puedo quejar", "full marks"), plus plain positives and
  negatives without negation as a control. Scored with `--probe` on any model folders given.

Usage:
  contrast_sets.py --out build/data/contrast            # writes train.jsonl and probe.jsonl
  contrast_sets.py --probe MODEL [MODEL ...]            # accuracy on the probe, per group and language
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

NEG, NEU, POS = 0, 1, 2
SEED = 15

# ---------------------------------------------------------------- train templates
# (template, label); {s} = a subject phrase of the language below.
TRAIN = {
    "pt": [
        ("não tenho nada a reclamar d{s}", POS),
        ("tenho muito a reclamar d{s}", NEG),
        ("nenhuma reclamação sobre {s}", POS),
        ("só reclamações sobre {s}", NEG),
        ("sem queixas d{s}, tudo funcionou", POS),
        ("cheio de queixas d{s}, nada funcionou", NEG),
        ("nota dez para {s}", POS),
        ("nota zero para {s}", NEG),
        ("{s} merece nota 10", POS),
        ("{s} merece nota 0", NEG),
        ("não me arrependo de {a}", POS),
        ("me arrependo de {a}", NEG),
        ("zero arrependimento em {a}", POS),
        ("arrependimento total em {a}", NEG),
        ("{s} não decepcionou", POS),
        ("{s} decepcionou de novo", NEG),
        ("nunca tive problema com {s}", POS),
        ("sempre tenho problema com {s}", NEG),
        ("não gostei nada d{s}", NEG),
        ("gostei muito d{s}", POS),
    ],
    "es": [
        ("no tengo nada que reclamar de {s}", POS),
        ("tengo mucho que reclamar de {s}", NEG),
        ("ninguna queja con {s}", POS),
        ("solo quejas con {s}", NEG),
        ("cero quejas de {s}, todo funcionó", POS),
        ("muchas quejas de {s}, nada funcionó", NEG),
        ("un diez para {s}", POS),
        ("un cero para {s}", NEG),
        ("no me arrepiento de {a}", POS),
        ("me arrepiento de {a}", NEG),
        ("{S} no decepcionó", POS),
        ("{S} decepcionó otra vez", NEG),
        ("nunca tuve problemas con {s}", POS),
        ("siempre tengo problemas con {s}", NEG),
        ("no me gustó nada {s}", NEG),
        ("me gustó mucho {s}", POS),
    ],
    "en": [
        ("nothing to complain about {s}", POS),
        ("so much to complain about {s}", NEG),
        ("no complaints about {s}", POS),
        ("only complaints about {s}", NEG),
        ("ten out of ten for {s}", POS),
        ("zero out of ten for {s}", NEG),
        ("no regrets about {a}", POS),
        ("I regret {a}", NEG),
        ("{S} did not disappoint", POS),
        ("{S} disappointed again", NEG),
        ("never had a problem with {s}", POS),
        ("always have problems with {s}", NEG),
        ("did not like {s} at all", NEG),
        ("really liked {s}", POS),
    ],
}
# pt subjects, each with its article ("d" + "o suporte" = "do suporte" in the templates' "d{s}")
PT_SUBJ = ["o atendimento", "a entrega", "o suporte", "a equipe de TI", "o RH", "o app", "a loja",
           "o produto", "a Acme", "o setor financeiro"]
ES_SUBJ = ["el servicio", "la entrega", "el soporte", "el equipo de TI", "recursos humanos", "la app",
           "la tienda", "el producto", "Acme", "el área de finanzas"]
EN_SUBJ = ["the service", "the delivery", "the support team", "IT", "HR", "the app", "the store",
           "the product", "Acme", "the finance team"]
ACTS = {
    "pt": ["ter assinado o plano", "ter trocado de operadora", "ter comprado o notebook",
           "ter aceitado a vaga", "ter mudado de banco", "ter instalado o app"],
    "es": ["haber firmado el plan", "haber cambiado de operador", "haber comprado el portátil",
           "haber aceptado el puesto", "haber cambiado de banco", "haber instalado la app"],
    "en": ["signing up for the plan", "switching carriers", "buying the laptop", "taking the job",
           "changing banks", "installing the app"],
}
PREFIX = {"pt": ["", "", "sinceramente, ", "olha, "], "es": ["", "", "sinceramente, ", "la verdad, "],
          "en": ["", "", "honestly, ", "well, "]}
SUFFIX = {"pt": ["", "", ".", "!"], "es": ["", "", ".", "!"], "en": ["", "", ".", "!"]}


def fill(lang: str, tpl: str, rng: random.Random) -> str:
    if lang == "pt":
        subj = rng.choice(PT_SUBJ)
        text = tpl.format(s=subj, a=rng.choice(ACTS["pt"]))
    else:
        subj = rng.choice(ES_SUBJ if lang == "es" else EN_SUBJ)
        text = tpl.format(s=subj, S=subj, a=rng.choice(ACTS[lang]))
        if lang == "es":
            text = text.replace(" de el ", " del ").replace(" a el ", " al ")
    text = rng.choice(PREFIX[lang]) + text + rng.choice(SUFFIX[lang])
    return text[0].upper() + text[1:]


def train_rows(per_template: int = 12) -> list[dict]:
    """Up to per_template distinct fillings of every template (fewer where the slots run out)."""
    rng = random.Random(SEED)
    rows, seen = [], set()
    for lang, tpls in TRAIN.items():
        for tpl, label in tpls:
            kept = 0
            for _ in range(per_template * 20):
                t = fill(lang, tpl, rng)
                if t.lower() in seen:
                    continue
                seen.add(t.lower())
                rows.append({"text": t, "label": label, "binary": False, "lang": lang,
                             "domain": "contrast", "source": "contrast_sets"})
                kept += 1
                if kept == per_template:
                    break
    return rows


# ---------------------------------------------------------------- held-out probe
# (group, lang, text, label). Groups: negated complaint, top marks, no regrets, their contrasts,
# and plain controls. No train template, subject or act appears here.
PROBE = [
    ("negated complaint", "pt", "Não tenho queixa nenhuma do pessoal do jurídico", POS),
    ("negated complaint", "pt", "Chegou antes do prazo, não posso reclamar de nada", POS),
    ("negated complaint", "pt", "Reclamar do quê? O conserto ficou perfeito", POS),
    ("negated complaint", "pt", "Nada a reclamar da cantina nova", POS),
    ("negated complaint", "es", "No me puedo quejar del mantenimiento del edificio", POS),
    ("negated complaint", "es", "Ni una sola queja sobre la mudanza de oficina", POS),
    ("negated complaint", "es", "No hay nada de qué quejarse con la nómina este mes", POS),
    ("negated complaint", "en", "Not a single complaint about the onboarding", POS),
    ("negated complaint", "en", "Can't find anything to complain about in the new payroll system", POS),
    ("negated complaint", "en", "I have zero complaints with the cafeteria", POS),
    ("complaint", "pt", "Tenho várias queixas do pessoal do jurídico", NEG),
    ("complaint", "pt", "Reclamei três vezes e o conserto continua ruim", NEG),
    ("complaint", "es", "Me quejé del mantenimiento del edificio y nadie vino", NEG),
    ("complaint", "es", "Hay muchas quejas sobre la mudanza de oficina", NEG),
    ("complaint", "en", "Plenty of complaints about the onboarding", NEG),
    ("complaint", "en", "I keep complaining about the payroll system and nothing changes", NEG),
    ("top marks", "pt", "Dou nota máxima ao pessoal da manutenção", POS),
    ("top marks", "pt", "Conserto rápido, serviço dez", POS),
    ("top marks", "pt", "Nota mil para a recepção do prédio", POS),
    ("top marks", "es", "Le doy un 10 a la gente de mantenimiento", POS),
    ("top marks", "es", "Calificación perfecta para la recepción", POS),
    ("top marks", "en", "Full marks to the maintenance crew", POS),
    ("top marks", "en", "Would give the front desk a perfect score", POS),
    ("bottom marks", "pt", "Dou nota mínima ao pessoal da manutenção", NEG),
    ("bottom marks", "pt", "Se pudesse dava nota negativa para a recepção", NEG),
    ("bottom marks", "es", "Le doy un 1 a la gente de mantenimiento, pésimo", NEG),
    ("bottom marks", "en", "Lowest possible score for the front desk", NEG),
    ("no regrets", "pt", "Valeu cada centavo, não me arrependi", POS),
    ("no regrets", "pt", "Jamais me arrependeria de ter entrado nessa empresa", POS),
    ("no regrets", "pt", "Sem arrependimentos com a mudança de fornecedor", POS),
    ("no regrets", "es", "Para nada arrepentido de la compra", POS),
    ("no regrets", "es", "No me arrepentí de cambiar de proveedor", POS),
    ("no regrets", "en", "Zero regrets switching suppliers", POS),
    ("no regrets", "en", "Don't regret joining this company one bit", POS),
    ("regrets", "pt", "Me arrependi amargamente de ter entrado nessa empresa", NEG),
    ("regrets", "pt", "Que arrependimento a mudança de fornecedor", NEG),
    ("regrets", "es", "Me arrepentí de cambiar de proveedor", NEG),
    ("regrets", "en", "Deeply regret switching suppliers", NEG),
    ("not disappointing", "pt", "A reforma do escritório não deixou a desejar", POS),
    ("not disappointing", "es", "La reforma de la oficina no defraudó", POS),
    ("not disappointing", "en", "The office renovation didn't let us down", POS),
    ("plain positive", "pt", "Adorei o treinamento de segurança", POS),
    ("plain positive", "pt", "O pessoal da manutenção é muito prestativo", POS),
    ("plain positive", "es", "Excelente la atención de la recepción", POS),
    ("plain positive", "es", "El curso de inducción fue muy útil", POS),
    ("plain positive", "en", "The new laptops are fantastic", POS),
    ("plain positive", "en", "Great job on the benefits portal", POS),
    ("plain negative", "pt", "O ar-condicionado da sala quebrou de novo", NEG),
    ("plain negative", "pt", "Atendimento péssimo na recepção", NEG),
    ("plain negative", "es", "El portal de beneficios es un desastre", NEG),
    ("plain negative", "es", "Horrible la comida de la cafetería", NEG),
    ("plain negative", "en", "The VPN keeps dropping every hour", NEG),
    ("plain negative", "en", "Terrible experience with the reimbursement process", NEG),
]


def write_sets(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = train_rows()
    probe_texts = {t.lower() for _, _, t, _ in PROBE}
    clash = [r["text"] for r in rows if r["text"].lower() in probe_texts]
    if clash:
        raise SystemExit(f"contrast_sets.py: train rows equal probe texts: {clash[:3]}")
    with open(out / "train.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(out / "probe.jsonl", "w", encoding="utf-8") as f:
        for g, lang, text, label in PROBE:
            f.write(json.dumps({"text": text, "label": label, "lang": lang, "group": g},
                               ensure_ascii=False) + "\n")
    counts: dict[tuple[str, int], int] = {}
    for r in rows:
        counts[(r["lang"], r["label"])] = counts.get((r["lang"], r["label"]), 0) + 1
    print(f"{out}/train.jsonl: {len(rows)} rows {dict(sorted(counts.items()))}")
    print(f"{out}/probe.jsonl: {len(PROBE)} rows")


def probe(models: list[str]) -> None:
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.set_num_threads(2)
    for m in models:
        tok = AutoTokenizer.from_pretrained(m)
        model = BertForSequenceClassification.from_pretrained(m).eval()
        texts = [t for _, _, t, _ in PROBE]
        with torch.no_grad():
            enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
            pred = model(**enc).logits.argmax(-1).tolist()
        ok = [p == label for p, (_, _, _, label) in zip(pred, PROBE)]
        by: dict[str, list[bool]] = {}
        for o, (g, lang, _, _) in zip(ok, PROBE):
            by.setdefault(g, []).append(o)
            by.setdefault(f"lang {lang}", []).append(o)
        print(f"== {m}: probe accuracy {sum(ok)}/{len(ok)} = {sum(ok) / len(ok):.3f}")
        for k, v in by.items():
            print(f"   {k:20s} {sum(v)}/{len(v)}")
        for o, p, (g, _, t, label) in zip(ok, pred, PROBE):
            if not o:
                print(f"   wrong ({g}; got {['negative', 'neutral', 'positive'][p]}): {t}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write train.jsonl and probe.jsonl here")
    ap.add_argument("--probe", nargs="+", default=None, help="model folders to score on the probe")
    args = ap.parse_args()
    if args.out:
        write_sets(Path(args.out))
    if args.probe:
        probe(args.probe)
    if not args.out and not args.probe:
        ap.error("give --out DIR and/or --probe MODEL ...")


if __name__ == "__main__":
    main()
