#!/usr/bin/env python3
"""Lexicon baselines (VADER-style scorer) on the same validation sets as the model.

  python models/train/baselines.py [--out build/baselines.json]

* en: VADER lexicon (lexicon-vader-en, MIT) + its emoji descriptions
* pt: LeIA (lexicon-leia-pt, MIT): VADER lexicon adapted to pt-BR, booster + negation lists
* es: ElhPolar v1 (lexicon-elhpolar-es, LGPLLR): positive/negative lemma list, scored +-2
  (VADER scale), with a tiny suffix-stripping fallback (plural / gender) since it holds lemmas

Scorer (simplified VADER): per-token valence; boosters (+-0.293) from the previous 3 tokens;
negation in the previous 3 tokens multiplies by -0.74; ALL-CAPS word emphasis +0.733 when the
text is mixed case; "but/mas/pero" re-weights (before x0.5, after x1.5); '!' adds up to 4*0.292;
compound = s / sqrt(s^2 + 15).  3 classes: compound >= 0.05 positive, <= -0.05 negative,
else neutral.  Binary sets are scored with the same 3-class rule (neutral counts as wrong).
Reads build/data/val/*.jsonl (run prepare_data.py first).
"""
import argparse
import glob
import json
import math
import os
import re
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import metrics, read_jsonl, label_id  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("PULSO_DATA", REPO.parent / "shared" / "data"))

B_INCR, B_DECR = 0.293, -0.293
N_SCALAR = -0.74
C_INCR = 0.733

EN_BOOST = {w: B_INCR for w in """absolutely amazingly awfully completely considerable considerably decidedly deeply
effing enormous enormously entirely especially exceptional exceptionally extreme extremely fabulously flipping
flippin frackin fracking fricking frickin frigging friggin fully fuckin fucking fuggin fugging greatly hella highly
hugely incredible incredibly intensely major majorly more most particularly purely quite really remarkably so
substantially thoroughly total totally tremendous tremendously uber unbelievably unusually utter utterly very""".split()}
EN_BOOST.update({w: B_DECR for w in """almost barely hardly just enough kind of kinda kindof kind-of less little
marginal marginally occasional occasionally partly scarce scarcely slight slightly somewhat sort of sorta sortof
sort-of""".split()})
EN_NEG = set("""aint arent cannot cant couldnt darent didnt doesnt ain't aren't can't couldn't daren't didn't doesn't
dont hadnt hasnt havent isnt mightnt mustnt neither don't hadn't hasn't haven't isn't mightn't mustn't neednt
needn't never none nope nor not nothing nowhere oughtnt shant shouldnt uhuh wasnt werent oughtn't shan't
shouldn't uh-uh wasn't weren't without wont wouldnt won't wouldn't rarely seldom despite no""".split())

ES_BOOST = {w: B_INCR for w in """muy mucho mucha muchos muchas super re tan tanto demasiado demasiada bastante
realmente totalmente completamente absolutamente increiblemente extremadamente sumamente mas""".split()}
ES_BOOST.update({w: B_DECR for w in "poco poca algo apenas casi ligeramente medio menos".split()})
ES_NEG = set("no nunca jamas ni tampoco nada nadie sin ningun ninguno ninguna".split())
BUT = {"en": {"but"}, "pt": {"mas", "porem", "contudo", "entretanto"}, "es": {"pero", "sino", "aunque"}}

TOKEN_RE = re.compile(r"\S+")
EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def strip_accents(s):
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def load_vader_file(p, accents=False):
    lex = {}
    with open(p, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                try:
                    k = parts[0].lower()
                    lex[strip_accents(k) if accents else k] = float(parts[1])
                except ValueError:
                    pass
    return lex


def load_emoji(p):
    m = {}
    with open(p, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                m[parts[0]] = parts[1]
    return m


class Scorer:
    def __init__(self, lang):
        self.lang = lang
        self.phrases = {}
        if lang == "en":
            d = DATA / "lexicon-vader-en"
            self.lex = load_vader_file(d / "vader_lexicon.txt")
            self.emoji = load_emoji(d / "emoji_utf8_lexicon.txt")
            self.boost, self.neg = EN_BOOST, EN_NEG
            self.fold = False
        elif lang == "pt":
            d = DATA / "lexicon-leia-pt"
            self.lex = load_vader_file(d / "vader_lexicon_ptbr.txt", accents=True)
            self.emoji = load_emoji(d / "emoji_utf8_lexicon_ptbr.txt")
            self.boost = {}
            with open(d / "booster.txt", encoding="utf-8") as f:
                for line in f:
                    parts = line.strip().rsplit(" ", 1)
                    if len(parts) == 2:
                        self.boost[strip_accents(parts[0].lower())] = B_INCR if parts[1] == "INCR" else B_DECR
            with open(d / "negate.txt", encoding="utf-8") as f:
                self.neg = {strip_accents(l.strip().lower()) for l in f if l.strip() and " " not in l.strip()}
            self.fold = True
        elif lang == "es":
            d = DATA / "lexicon-elhpolar-es"
            self.lex = {}
            with open(d / "ElhPolar_esV1.lex", encoding="utf-8") as f:
                for line in f:
                    parts = line.strip().split("\t")
                    if len(parts) != 2 or parts[1] not in ("positive", "negative"):
                        continue
                    v = 2.0 if parts[1] == "positive" else -2.0
                    k = strip_accents(parts[0].lower())
                    if "_" in k:
                        self.phrases[k.replace("_", " ")] = v
                    else:
                        self.lex[k] = v
            self.emoji = {}
            self.boost, self.neg = ES_BOOST, ES_NEG
            self.fold = True
        else:
            raise ValueError(lang)

    def lookup(self, w):
        v = self.lex.get(w)
        if v is not None or self.lang != "es":
            return v
        for suf, rep in (("es", ""), ("s", ""), ("a", "o"), ("as", "o"), ("os", "o"), ("mente", "")):
            if w.endswith(suf) and len(w) > len(suf) + 2:
                v = self.lex.get(w[: -len(suf)] + rep)
                if v is not None:
                    return v
        return None

    def compound(self, text):
        for e, desc in self.emoji.items():
            if e in text:
                text = text.replace(e, f" {desc} ")
        raw = TOKEN_RE.findall(text)
        toks = []
        for t in raw:
            low = t.lower()
            if low in self.lex:  # emoticons like ":)" keep their punctuation
                toks.append((t, low))
                continue
            s = EDGE_PUNCT.sub("", t)
            if s:
                toks.append((s, low if not s else s.lower()))
        words = [strip_accents(w) if self.fold else w for _, w in toks]
        if self.phrases:
            joined = " " + " ".join(words) + " "
            extra = [v for p, v in self.phrases.items() if f" {p} " in joined]
        else:
            extra = []
        is_cap_diff = any(o.isupper() for o, _ in toks) and not all(o.isupper() for o, _ in toks)
        vals = []
        for i, w in enumerate(words):
            if w in self.boost:
                vals.append(0.0)
                continue
            v = self.lookup(w)
            if v is None:
                vals.append(0.0)
                continue
            orig = toks[i][0]
            if orig.isupper() and is_cap_diff and len(orig) > 1:
                v += C_INCR if v > 0 else -C_INCR
            for j in range(1, 4):
                if i - j < 0:
                    break
                pw = words[i - j]
                if pw in self.boost:
                    b = self.boost[pw] * (1.0 if j == 1 else (0.95 if j == 2 else 0.9))
                    v += b if v > 0 else -b
                if pw in self.neg:
                    v *= N_SCALAR
            vals.append(v)
        for bi, w in enumerate(words):
            if w in BUT[self.lang]:
                vals = [v * 0.5 if k < bi else (v * 1.5 if k > bi else v) for k, v in enumerate(vals)]
                break
        s = sum(vals) + sum(extra)
        if s:
            ep = min(text.count("!"), 4) * 0.292
            s += ep if s > 0 else -ep
        return s / math.sqrt(s * s + 15)

    def predict(self, text):
        c = self.compound(text)
        return 2 if c >= 0.05 else (0 if c <= -0.05 else 1)


def lang_of(name):
    for l in ("pt", "es", "en"):
        if f"_{l}_" in name or name.endswith(f"_{l}"):
            return l
    raise ValueError(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--val-glob", default=str(REPO / "build" / "data" / "val" / "*.jsonl"))
    ap.add_argument("--out", default=str(REPO / "build" / "baselines.json"))
    args = ap.parse_args()
    scorers = {}
    res = {}
    for p in sorted(glob.glob(args.val_glob)):
        name = Path(p).stem
        lang = lang_of(name)
        sc = scorers.setdefault(lang, Scorer(lang))
        rows = read_jsonl(p)
        gold = [label_id(r["label"]) for r in rows]
        pred = [sc.predict(r["text"]) for r in rows]
        res[name] = {"lexicon": {"en": "VADER", "pt": "LeIA", "es": "ElhPolar"}[lang], **metrics(gold, pred)}
        print(f"{name:20s} {res[name]['lexicon']:8s} macroF1 {res[name]['macro_f1']:.4f} acc {res[name]['accuracy']:.4f} n {len(rows)}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
