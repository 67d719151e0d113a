#!/usr/bin/env python3
"""Prune the 250k-piece XLM-R vocabulary of the converted e5 model to what pulso's languages need.

  python models/train/e5_prune.py [--base build/e5/base] [--out build/e5/pruned]
  python models/train/e5_prune.py --keep-from models/pulso-multi/tokenizer.json --out build/e5/pruned-shipped

Kept pieces (ids keep their relative order; the four specials keep ids 0-3):
  * every piece the tokenizer emits on the training and validation text (build/data) and the demo data;
  * an allow-list so unseen text still tokenises without `<unk>`: every single-character piece (with
    and without the ▁ word marker), pieces of up to 3 characters made only of digits or punctuation
    or symbols, every piece holding an emoji or other symbol (Unicode category S*), `<mask>`.
Out-of-vocabulary policy: the Unigram model picks the best segmentation among the kept pieces, so a
word whose original pieces were dropped falls back to smaller kept pieces (down to single characters)
rather than to `<unk>`. Checked here and written to prune.json:
  * identical ids (after remapping) on every text of the corpus the vocabulary was built from (with
    --keep-from, whose fixed vocabulary may lack a piece the current corpus uses: the same decoded text);
  * on held-out text (data not in the corpus + hand-written rare words): the pruned tokenizer
    decodes back to the same string as the full one, and produces no more `<unk>` than it.
"""
import argparse
import glob
import json
import os
import unicodedata
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("PULSO_DATA", REPO.parent / "shared" / "data"))


def log(*a):
    print("[e5_prune]", *a, flush=True)


def corpus_texts():
    texts = []
    for p in [REPO / "build" / "data" / "train.jsonl", *sorted(glob.glob(str(REPO / "build" / "data" / "val" / "*.jsonl")))]:
        with open(p, encoding="utf-8") as f:
            texts += [json.loads(l)["text"] for l in f if l.strip()]
    for p in sorted((REPO / "pipelines" / "demo").glob("*")):
        if p.suffix in (".csv", ".jsonl", ".txt"):
            texts += [l for l in p.read_text(encoding="utf-8", errors="replace").splitlines() if l.strip()]
    return texts


def heldout_texts():
    """Text the vocabulary was not built from: other files of the shared data, plus rare words."""
    texts = ["Pneumoultramicroscopicossilicovulcanoconiótico", "desinstitucionalización",
             "Anticonstitucionalissimamente", "xyzzy-quux_42 #FalhaNoSistema @SuporteTI",
             "ünïcödé façade naïve coöperate", "Ελληνικά και русский текст 中文 日本語", "🤬🤬 😍🔥💯",
             "https://exemplo.com.br/pagina?id=123&x=y", "R$ 1.234,56 €99 US$ 5", "lol kkkkkkk jajajaja hahaha"]
    for p in [DATA / "tweeteval-sentiment", DATA / "sst2-en", DATA / "uci-sentiment-labelled-sentences-en"]:
        for f in sorted(p.rglob("*")):
            if f.is_file() and f.suffix in (".txt", ".tsv", ".csv") and f.stat().st_size < 20_000_000:
                lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
                texts += [l for l in lines[:3000] if l.strip()]
    return texts


def allowed(piece):
    core = piece.replace("▁", "")
    if len(core) <= 1:
        return True
    if len(core) <= 3 and all(unicodedata.category(c)[0] in "NPS" for c in core):
        return True
    return any(unicodedata.category(c)[0] == "S" for c in core)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default=str(REPO / "build" / "e5" / "base"))
    ap.add_argument("--out", default=str(REPO / "build" / "e5" / "pruned"))
    ap.add_argument("--keep-from", default=None,
                    help="keep exactly the pieces of this pruned tokenizer.json (e.g. models/pulso-multi's) instead "
                         "of choosing them from the corpus: a run that starts from it can be averaged with that "
                         "model (soup.py), whose embedding rows are then the same pieces in the same order")
    args = ap.parse_args()
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    base, out = Path(args.base), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tj = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    full = Tokenizer.from_file(str(base / "tokenizer.json"))

    texts = corpus_texts()
    log(f"corpus: {len(texts)} texts")
    enc_full = full.encode_batch(texts, add_special_tokens=False)
    used = set()
    for e in enc_full:
        used.update(e.ids)
    specials = {0, 1, 2, 3}
    mask_id = next(t["id"] for t in tj["added_tokens"] if t["content"] == "<mask>")
    allow = {i for i, (p, _) in enumerate(vocab) if allowed(p)}
    if args.keep_from:
        want = json.loads(Path(args.keep_from).read_text(encoding="utf-8"))["model"]["vocab"]
        index = {p: i for i, (p, _) in enumerate(vocab)}
        missing = [p for p, _ in want if p not in index]
        if missing:
            raise SystemExit(f"e5_prune: {len(missing)} pieces of {args.keep_from} are not in {base}'s vocabulary "
                             f"(e.g. {missing[:5]}): it was not pruned from this tokenizer")
        keep = sorted(index[p] for p, _ in want)
        if [vocab[i] for i in keep] != [list(v) for v in want]:
            raise SystemExit(f"e5_prune: {args.keep_from}'s pieces are not in the base vocabulary's order (or "
                             "their scores differ): it was not pruned from this tokenizer")
        outside = used - set(keep)
        log(f"--keep-from {args.keep_from}: {len(keep)} pieces; the corpus uses {len(outside)} pieces outside "
            "them (those words fall back to smaller pieces, checked below)")
    else:
        keep = sorted(specials | used | allow | {mask_id})
    assert keep[:4] == [0, 1, 2, 3]
    remap = {old: new for new, old in enumerate(keep)}
    log(f"used by corpus {len(used)}, allow-list {len(allow)}, kept {len(keep)} of {len(vocab)}")

    tj["model"]["vocab"] = [vocab[i] for i in keep]
    for t in tj["added_tokens"]:
        t["id"] = remap[t["id"]]
    (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    pruned = Tokenizer.from_file(str(out / "tokenizer.json"))

    # 1. identical on the corpus
    enc_pruned = pruned.encode_batch(texts, add_special_tokens=False)
    if args.keep_from:
        # a fixed vocabulary may lack a piece the corpus uses: then the text must decode the same, not have
        # the same ids (the fallback to smaller pieces); the id differences are reported
        ids_diff = sum(1 for a, b in zip(enc_full, enc_pruned) if [remap.get(i) for i in a.ids] != b.ids)
        diff = sum(1 for a, b in zip(enc_full, enc_pruned)
                   if "".join(a.tokens).replace("▁", " ") != "".join(b.tokens).replace("▁", " "))
        log(f"corpus texts segmented differently under the fixed vocabulary: {ids_diff}")
    else:
        diff = sum(1 for a, b in zip(enc_full, enc_pruned) if [remap[i] for i in a.ids] != b.ids)
    # 2. held-out text: lossless fallback, no extra <unk>
    held = heldout_texts()
    hf = full.encode_batch(held, add_special_tokens=False)
    hp = pruned.encode_batch(held, add_special_tokens=False)
    unk_full = sum(e.ids.count(3) for e in hf)
    unk_pruned = sum(e.ids.count(3) for e in hp)
    decode_diff = sum(1 for a, b in zip(hf, hp)
                      if "".join(a.tokens).replace("▁", " ") != "".join(b.tokens).replace("▁", " "))
    pieces_full = sum(len(e.ids) for e in hf)
    pieces_pruned = sum(len(e.ids) for e in hp)
    words_fallback = sum(1 for a, b in zip(hf, hp) if len(a.ids) != len(b.ids))
    stats = {"vocab_full": len(vocab), "vocab_kept": len(keep), "used_by_corpus": len(used),
             "allow_list": len(allow), "corpus_texts": len(texts), "corpus_mismatches": diff,
             "heldout_texts": len(held), "heldout_unk_full": unk_full, "heldout_unk_pruned": unk_pruned,
             "heldout_decode_mismatches": decode_diff, "heldout_pieces_full": pieces_full,
             "heldout_pieces_pruned": pieces_pruned, "heldout_texts_resegmented": words_fallback}
    log(stats)
    if diff or decode_diff or unk_pruned > unk_full:
        raise SystemExit(f"e5_prune: out-of-vocabulary policy check failed: {stats}")

    # weights: gather the kept embedding rows
    sd = load_file(str(base / "model.safetensors"))
    key = next(k for k in sd if k.endswith("word_embeddings.weight"))
    sd[key] = sd[key][torch.tensor(keep)].contiguous()
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((base / "config.json").read_text())
    cfg["vocab_size"] = len(keep)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    fast = PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"), bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", cls_token="<s>", sep_token="</s>",
                                   mask_token="<mask>", model_max_length=512)
    fast.save_pretrained(out)
    (out / "prune.json").write_text(json.dumps({**stats, "kept_ids": keep}))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
