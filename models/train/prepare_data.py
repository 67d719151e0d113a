#!/usr/bin/env python3
"""Build the pulso-mini training / validation sets from ../shared/data.

Output (NOT committed; build/ is git-ignored):
  build/data/train.jsonl       one example per line (already capped / upsampled)
  build/data/val/<name>.jsonl  validation sets
  build/data/stats.json        counts per source, dedup counts
Each line: {"text", "label" (0 neg, 1 neu, 2 pos), "binary" (bool: source has no
neutral class -> 2-class loss), "lang" (pt|es|en), "domain" (tweet|review|employee),
"source"}.

Data root: $PULSO_DATA or <repo_root>/../shared/data; output under $PULSO_BUILD (default <repo>/build); $PULSO_MIX
overrides source counts of the mix (name=N,...). Deterministic (seed 13).
"""
import csv
import html
import json
import os
import random
import re
import sys
import unicodedata
import zlib
from collections import Counter, defaultdict
from pathlib import Path

csv.field_size_limit(sys.maxsize)

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("PULSO_DATA", REPO.parent / "shared" / "data"))
OUT = Path(os.environ.get("PULSO_BUILD", REPO / "build")) / "data"
SEED = 13
NEG, NEU, POS = 0, 1, 2
LABEL_NAMES = ["negative", "neutral", "positive"]


def ex(text, label, lang, domain, source, binary=False):
    text = html.unescape(text).replace("\r", " ").replace("\n", " ").strip()
    return {"text": text, "label": label, "binary": binary, "lang": lang,
            "domain": domain, "source": source}


# ---------------------------------------------------------------- normalisation
URL_RE = re.compile(r"https?://\S+|www\.\S+")
USER_RE = re.compile(r"@\w+")
NONWORD_RE = re.compile(r"[^\w\s]|_")
WS_RE = re.compile(r"\s+")


def norm(text):
    t = text.lower()
    t = t.replace("\\u2019", "'")
    t = URL_RE.sub(" ", t)
    t = USER_RE.sub(" ", t)
    t = unicodedata.normalize("NFKD", t)
    t = "".join(c for c in t if not unicodedata.combining(c))
    t = NONWORD_RE.sub(" ", t)
    return WS_RE.sub(" ", t).strip()


def shingles(n, k=4):
    s = n.replace(" ", "")  # spacing-insensitive char shingles
    if len(s) <= k:
        return {s}
    return {zlib.crc32(s[i:i + k].encode()) for i in range(len(s) - k + 1)}


class NearDupIndex:
    """Exact (normalised) + prefix/suffix keys + char-4-gram Jaccard against a
    reference set (the validation texts).  Candidates for Jaccard come from an
    inverted index of word bigrams that are rare in the reference set."""

    def __init__(self, texts, jaccard=0.7, prefix_len=40):
        self.jac = jaccard
        self.plen = prefix_len
        self.exact = set()
        self.prefix = set()
        self.suffix = set()
        self.sh = []
        self.inv = defaultdict(list)
        for i, t in enumerate(texts):
            n = norm(t)
            self.exact.add(n)
            if len(n) >= self.plen:
                self.prefix.add(n[: self.plen])
                self.suffix.add(n[-self.plen:])
            self.sh.append(shingles(n))
            for bg in self._bigrams(n):
                self.inv[bg].append(i)
        # drop very common bigrams (stop-phrases)
        self.inv = {k: v for k, v in self.inv.items() if len(v) <= 25}

    @staticmethod
    def _bigrams(n):
        w = n.split()
        if len(w) == 1:
            return {w[0]}
        return {w[i] + " " + w[i + 1] for i in range(len(w) - 1)}

    def match(self, text):
        """Return None, 'exact' or 'near'."""
        n = norm(text)
        if not n:
            return None
        if n in self.exact:
            return "exact"
        if len(n) >= self.plen and (n[: self.plen] in self.prefix or n[-self.plen:] in self.suffix):
            return "near"
        cand = Counter()
        for bg in self._bigrams(n):
            for i in self.inv.get(bg, ()):
                cand[i] += 1
        if not cand:
            return None
        s = shingles(n)
        for i, _ in cand.most_common(5):
            o = self.sh[i]
            inter = len(s & o)
            if inter and inter / len(s | o) >= self.jac:
                return "near"
        return None


# ---------------------------------------------------------------- loaders
def read_lines(p):
    with open(p, encoding="utf-8") as f:
        return f.read().split("\n")


def load_xlmt(lang_dir, lang, split):
    d = DATA / "xlm-t-sentiment" / lang_dir
    texts = read_lines(d / f"{split}_text.txt")
    labels = read_lines(d / f"{split}_labels.txt")
    out = []
    for t, l in zip(texts, labels):
        if t.strip() == "" or l.strip() == "":
            continue
        out.append(ex(t, int(l), lang, "tweet", f"xlmt_{lang}"))
    return out


def load_semeval():
    out = []
    d = DATA / "semeval-2013-2016-task4a-en"
    m = {"negative": NEG, "neutral": NEU, "positive": POS}
    for p in sorted(d.glob("*.tsv")):
        for line in read_lines(p):
            parts = line.rstrip("\t").split("\t")
            if len(parts) < 3 or parts[1] not in m:
                continue
            text = "\t".join(parts[2:]).strip().strip('"')
            if "\\u" in text:
                try:
                    text = text.encode("latin-1", "backslashreplace").decode("unicode_escape")  # noqa
                except Exception:
                    pass
            out.append(ex(text, m[parts[1]], "en", "tweet", "semeval"))
    return out


def load_airline():
    m = {"negative": NEG, "neutral": NEU, "positive": POS}
    with open(DATA / "twitter-us-airline-sentiment-en" / "Tweets.csv", encoding="utf-8") as f:
        return [ex(r["text"], m[r["airline_sentiment"]], "en", "tweet", "airline")
                for r in csv.DictReader(f) if r["airline_sentiment"] in m]


def load_sst2(path, lang, source):
    out = []
    with open(path, encoding="utf-8") as f:
        r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(r)
        for row in r:
            if len(row) < 2 or row[-1] not in ("0", "1"):
                continue
            out.append(ex(row[0], POS if row[-1] == "1" else NEG, lang, "review", source, binary=True))
    return out


def load_uci():
    out = []
    d = DATA / "uci-sentiment-labelled-sentences-en"
    for fn in ["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"]:
        for line in read_lines(d / fn):
            if "\t" not in line:
                continue
            t, l = line.rsplit("\t", 1)
            if l.strip() in ("0", "1"):
                out.append(ex(t, POS if l.strip() == "1" else NEG, "en", "review", "uci", binary=True))
    return out


PT_BENCH_DOMAIN = {"Computer-BR": "tweet", "MTMSLA": "tweet", "OPCovidBR": "tweet"}


def load_pt_bench(split):
    out = []
    d = DATA / "pt-sentiment-benchmarks"
    for sub in sorted(p for p in d.iterdir() if p.is_dir()):
        files = list(sub.glob(f"*_{split}.csv"))
        for p in files:
            with open(p, encoding="utf-8") as f:
                for r in csv.DictReader(f):
                    try:
                        l = float(r["label"])
                    except (ValueError, TypeError):
                        continue
                    out.append(ex(r["text"], POS if l > 0 else NEG, "pt",
                                  PT_BENCH_DOMAIN.get(sub.name, "review"),
                                  f"ptbench_{sub.name}", binary=True))
    return out


def stars3(s):
    s = int(float(s))
    return NEG if s <= 2 else (NEU if s == 3 else POS)


def load_restmex():
    """Returns list of (example) with 3-class labels from 1-5 polarity, text = title. opinion."""
    out = []
    with open(DATA / "rest-mex-2021-es" / "rest-mex_2021_Sentiment_data_train.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            try:
                lab = stars3(r["Label"])
            except ValueError:
                continue
            title = r["Title"].strip().strip('"')
            op = r["Opinion"].strip().strip('"')
            text = f"{title}. {op}" if title else op
            out.append(ex(text, lab, "es", "review", "restmex"))
    return out


def load_glassdoor_en():
    """Rows grouped by review: (summary, pros, cons, stars)."""
    rows = []
    with open(DATA / "glassdoor-employee-reviews-en" / "Glassdoor Reviews Cleaned and Processed.csv",
              encoding="utf-8", errors="replace") as f:
        for r in csv.DictReader(f):
            try:
                s = int(float(r["rating Overall"]))
            except ValueError:
                continue
            rows.append((r["summary"], r["pros"], r["Cons"], s))
    return rows


def load_glassdoor_pt():
    rows = []
    with open(DATA / "glassdoor-employee-reviews-pt" / "glassdoor_reviews_annotated.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append((r["review_id"], r["review_text"], int(r["sentiment"]) + 1))
    return rows


# ---------------------------------------------------------------- helpers
def sample(items, n, rng):
    """Cap (without replacement) or upsample (with repetition) to n items."""
    items = list(items)
    if n <= len(items):
        return rng.sample(items, n)
    out = items * (n // len(items))
    out += rng.sample(items, n - len(out))
    return out


def stratified_cap(items, n, rng):
    """Cap to n keeping the label proportions roughly (used for big sets)."""
    by = defaultdict(list)
    for e in items:
        by[e["label"]].append(e)
    tot = len(items)
    out = []
    for lab, lst in sorted(by.items()):
        k = min(len(lst), round(n * len(lst) / tot))
        out += rng.sample(lst, k)
    return out


def split_groups(keys, frac, rng):
    keys = sorted(set(keys))
    rng.shuffle(keys)
    k = int(len(keys) * frac)
    return set(keys[:k])


def main():
    rng = random.Random(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "val").mkdir(exist_ok=True)
    stats = {"sources": {}, "dedup": {}}

    # ------------------------------------------------------------ validation
    val = {}
    for lang_dir, lang in [("portuguese", "pt"), ("spanish", "es"), ("english", "en")]:
        val[f"xlmt_{lang}_val"] = load_xlmt(lang_dir, lang, "val")

    gpt = load_glassdoor_pt()
    # no licence, scraped; SOURCE.md: "treat as internal evaluation only" -> whole set is validation
    val["glassdoor_pt_val"] = [ex(t, l, "pt", "employee", "glassdoor_pt") for i, t, l in gpt if t.strip()]

    gen = load_glassdoor_en()
    idx = list(range(len(gen)))
    rng.shuffle(idx)
    gen_val_idx = set(idx[:1200])
    val["glassdoor_en_val"] = [ex(gen[i][0], stars3(gen[i][3]), "en", "employee", "glassdoor_en")
                               for i in sorted(gen_val_idx) if gen[i][0].strip()]
    gen_train_rows = [gen[i] for i in sorted(idx[1200:])]

    rmx = load_restmex()
    rng.shuffle(rmx)
    val["restmex_es_val"] = rmx[:800]
    rmx_train = rmx[800:]

    # pt reviews: official test splits of the pt benchmarks review corpora (binary)
    ptb_test = [e for e in load_pt_bench("test") if e["domain"] == "review"]
    val["reviews_pt_val"] = stratified_cap(ptb_test, 1000, rng)

    val_texts = [e["text"] for v in val.values() for e in v]
    index = NearDupIndex(val_texts)
    # also guard against the xlm-t test splits being reachable via other pools: they
    # are withheld from this snapshot, so we can only dedupe against what we have.

    # ------------------------------------------------------------ training pools
    pools = {}
    for lang_dir, lang in [("portuguese", "pt"), ("spanish", "es"), ("english", "en")]:
        pools[f"xlmt_{lang}"] = load_xlmt(lang_dir, lang, "train")
    g_en = []
    for s, p, c, st in gen_train_rows:
        if s.strip():
            g_en.append(ex(s, stars3(st), "en", "employee", "glassdoor_en_summary"))
    pools["glassdoor_en_summary"] = g_en
    g_pc = []
    for s, p, c, st in gen_train_rows:
        # pros/cons segments: polarity is given by the section; 2-class loss
        if len(p.split()) >= 3:
            g_pc.append(ex(p, POS, "en", "employee", "glassdoor_en_proscons", binary=True))
        if len(c.split()) >= 3:
            g_pc.append(ex(c, NEG, "en", "employee", "glassdoor_en_proscons", binary=True))
    pools["glassdoor_en_proscons"] = g_pc
    pools["restmex"] = rmx_train
    pools["ptbench"] = load_pt_bench("train")
    pools["sst2_pt"] = load_sst2(DATA / "sst2-pt-plue" / "train.tsv", "pt", "sst2_pt")
    pools["sst2_en"] = load_sst2(DATA / "sst2-en" / "train.tsv", "en", "sst2_en")
    pools["semeval"] = load_semeval()
    pools["airline"] = load_airline()
    pools["uci"] = load_uci()

    # ------------------------------------------------------------ dedup
    seen_train = set()
    clean = {}
    for name, items in pools.items():
        c = Counter()
        kept = []
        for e in items:
            n = norm(e["text"])
            if len(n) < 2:
                c["empty"] += 1
                continue
            m = index.match(e["text"])
            if m:
                c[f"{m}_dup_of_val"] += 1
                continue
            key = (n, e["label"])
            if n in seen_train:
                c["dup_within_train"] += 1
                continue
            seen_train.add(n)
            kept.append(e)
        clean[name] = kept
        stats["dedup"][name] = {"raw": len(items), "kept": len(kept), **c}
        print(f"{name:24s} raw {len(items):6d} kept {len(kept):6d} {dict(c)}")

    # phrases in SST-2 train are often tiny fragments: keep sentence-ish ones
    for k in ("sst2_en", "sst2_pt"):
        clean[k] = [e for e in clean[k] if len(e["text"].split()) >= 5]

    # ------------------------------------------------------------ mix (caps / upsampling)
    # Roughly equal weight per language (~14k each); in-domain xlm-t tweets upsampled.
    MIX = {
        # pt
        "xlmt_pt": 6000, "ptbench": 4000, "sst2_pt": 2600,
        # glassdoor_pt is NOT trained on: its SOURCE.md says "treat as internal evaluation only"
        # es
        "xlmt_es": 7400, "restmex": 6000,
        # en
        "xlmt_en": 3700, "semeval": 5000, "airline": 1500, "sst2_en": 1000, "uci": 800,
        "glassdoor_en_summary": 1500, "glassdoor_en_proscons": 800,
    }
    # PULSO_MIX="name=N,...": override some of the counts above (pulso-multi's second training phase used
    # glassdoor_en_summary=3609,glassdoor_en_proscons=2400: more English employee reviews, see its card)
    for kv in filter(None, os.environ.get("PULSO_MIX", "").split(",")):
        k, v = kv.split("=")
        if k not in MIX:
            sys.exit(f"PULSO_MIX: unknown source {k!r}; known: {', '.join(MIX)}")
        MIX[k] = int(v)
    train = []
    for name, n in MIX.items():
        items = clean[name]
        if name == "restmex":
            # very skewed to 4-5 stars: upsample negatives/neutrals, cap positives
            by = defaultdict(list)
            for e in items:
                by[e["label"]].append(e)
            part = sample(by[NEG], 1500, rng) + sample(by[NEU], 1800, rng) + sample(by[POS], n - 3300, rng)
        elif name in ("semeval", "airline", "ptbench", "sst2_pt", "sst2_en"):
            part = stratified_cap(items, n, rng) if n < len(items) else sample(items, n, rng)
        else:
            part = sample(items, n, rng)
        train += part
        stats["sources"][name] = {"pool": len(items), "used": len(part),
                                  "labels": dict(Counter(LABEL_NAMES[e["label"]] for e in part))}
    rng.shuffle(train)

    with open(OUT / "train.jsonl", "w", encoding="utf-8") as f:
        for e in train:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    for name, items in val.items():
        with open(OUT / "val" / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for e in items:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
        stats.setdefault("val", {})[name] = {"n": len(items),
                                             "labels": dict(Counter(LABEL_NAMES[e["label"]] for e in items))}
    stats["train_total"] = len(train)
    stats["train_by_lang"] = dict(Counter(e["lang"] for e in train))
    stats["train_by_domain"] = dict(Counter(e["domain"] for e in train))
    tot = Counter()
    for d in stats["dedup"].values():
        for k, v in d.items():
            if k.endswith("_dup_of_val") or k == "dup_within_train":
                tot[k] += v
    stats["dedup_total"] = dict(tot)
    with open(OUT / "stats.json", "w") as f:
        json.dump(stats, f, indent=1, ensure_ascii=False)
    print("train", len(train), stats["train_by_lang"], stats["train_by_domain"])
    print("val", {k: len(v) for k, v in val.items()})
    print("dedup totals", dict(tot))


if __name__ == "__main__":
    main()
