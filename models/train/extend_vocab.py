#!/usr/bin/env python3
"""Give an English WordPiece model (all-MiniLM-L6-v2's uncased BERT vocabulary) Portuguese and
Spanish words, so that pt/es text is not shredded into many sub-word pieces.

  python models/train/extend_vocab.py --base models/pulso-mini --out build/runs/vx/init [--add 6000]

* Candidates: whole words of the pt/es rows of build/data/train.jsonl (training data only,
  already de-duplicated against validation), after the base tokenizer's own normalizer
  (lower case, accents stripped) and pre-tokenizer.
* Score: tokens saved = frequency x (pieces under the base vocabulary - 1); words seen fewer
  than --min-freq times are skipped. The --add best-scoring words are appended to the
  WordPiece vocabulary (ids 30522...), so greedy longest-match picks them as whole words.
* Each new embedding row starts as the mean of the rows of the pieces the base vocabulary
  used for that word (so the model's behaviour on a word barely changes before training).
* Writes a HF model dir (config.json vocab_size, model.safetensors, tokenizer.json with the
  extended vocab, vocab.txt) that train.py can continue from with --unfreeze-embeddings.
"""
import argparse
import collections
import json
import shutil
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default=str(REPO / "models" / "pulso-mini"))
    ap.add_argument("--data", default=str(REPO / "build" / "data" / "train.jsonl"))
    ap.add_argument("--out", default=str(REPO / "build" / "runs" / "vx" / "init"))
    ap.add_argument("--add", type=int, default=6000, help="number of words to add")
    ap.add_argument("--min-freq", type=int, default=4)
    ap.add_argument("--langs", default="pt,es")
    a = ap.parse_args()

    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, BertForSequenceClassification

    base, out = Path(a.base), Path(a.out)
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    vocab = tok.get_vocab()
    langs = set(a.langs.split(","))

    freq = collections.Counter()
    n_rows = 0
    with open(a.data, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("lang") not in langs:
                continue
            n_rows += 1
            norm = tok.normalizer.normalize_str(r["text"])
            for w, _ in tok.pre_tokenizer.pre_tokenize_str(norm):
                if len(w) > 1 and w.isalpha():
                    freq[w] += 1

    scored = []
    pieces_of = {}
    for w, c in freq.items():
        if c < a.min_freq or w in vocab:
            continue
        pieces = [t.id for t in tok.model.tokenize(w)]
        if len(pieces) < 2 or vocab.get("[UNK]") in pieces:
            continue
        pieces_of[w] = pieces
        scored.append((c * (len(pieces) - 1), w))
    scored.sort(key=lambda x: (-x[0], x[1]))
    new_words = [w for _, w in scored[: a.add]]
    saved = sum(s for s, _ in scored[: a.add])
    total_pieces = sum(c * len(tok.model.tokenize(w)) for w, c in freq.items())
    print(f"pt/es rows {n_rows}, distinct words {len(freq)}, candidates {len(scored)}, adding {len(new_words)}; "
          f"pieces on training words {total_pieces} -> {total_pieces - saved} "
          f"({100.0 * saved / max(1, total_pieces):.1f}% fewer)")
    print("first words added:", new_words[:40])

    model = BertForSequenceClassification.from_pretrained(base)
    old_n = model.config.vocab_size
    assert old_n == len(vocab), (old_n, len(vocab))
    emb = model.get_input_embeddings().weight.detach()
    new_rows = torch.stack([emb[pieces_of[w]].mean(0) for w in new_words]) if new_words else emb[:0]
    model.resize_token_embeddings(old_n + len(new_words))
    with torch.no_grad():
        model.get_input_embeddings().weight[old_n:] = new_rows
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)

    tj = json.load(open(base / "tokenizer.json", encoding="utf-8"))
    tv = tj["model"]["vocab"]
    for i, w in enumerate(new_words):
        tv[w] = old_n + i
    with open(out / "tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=2)
    by_id = sorted(tv.items(), key=lambda kv: kv[1])
    assert [i for _, i in by_id] == list(range(len(by_id)))
    with open(out / "vocab.txt", "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t, _ in by_id))
    for extra in ("tokenizer_config.json", "special_tokens_map.json"):
        if (base / extra).exists():
            shutil.copy(base / extra, out / extra)

    # sanity: the fast tokenizer sees the new words whole, and the model loads
    t2 = AutoTokenizer.from_pretrained(out)
    probe = new_words[:3]
    for w in probe:
        ids = t2(w, add_special_tokens=False)["input_ids"]
        assert ids == [vocab.get(w, tv[w])], (w, ids)
    m2 = BertForSequenceClassification.from_pretrained(out)
    assert m2.config.vocab_size == len(tv)
    with open(out / "extend_vocab.json", "w") as f:
        json.dump({"base": str(base), "added": len(new_words), "min_freq": a.min_freq, "langs": sorted(langs),
                   "training_pieces_before": total_pieces, "training_pieces_after": total_pieces - saved,
                   "words": new_words}, f, ensure_ascii=False, indent=1)
    print(f"wrote {out} (vocab {len(tv)})")


if __name__ == "__main__":
    main()
