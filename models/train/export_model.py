#!/usr/bin/env python3
"""Package a trained checkpoint as a shipped model folder (HF layout, rust-bert compatible).

  python models/train/export_model.py --ckpt build/runs/main/best [--out models/pulso-mini] [--fp16]
  python models/train/export_model.py --ckpt build/runs/e5/best --out models/pulso-multi --fp16
  python models/train/export_model.py --reference-only --out models/pulso-multi   # only the test reference

* config.json: BertForSequenceClassification, id2label {0: negative, 1: neutral, 2: positive}
* model.safetensors: standard HF names (bert.embeddings.*, bert.encoder.*, bert.pooler.*,
  classifier.*), fp32 unless --fp16 (or > 100 MB)
* tokenizer.json with "padding": null (the Rust side pads per batch with a mask), truncation 128
* tokenizer_config.json / special_tokens_map.json (/ vocab.txt for WordPiece) (AutoTokenizer works)
* tests/fixtures/<name>_expected.json (when --out is under models/): transformers' probabilities
  for a fixed set of texts, which tests/it/shipped_model.rs checks pulso against (1e-4), and the
  token ids of a few hundred validation and unusual texts (tokenizer parity, Rust vs Python)
"""
import argparse
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file, load_file

REPO = Path(__file__).resolve().parents[2]
ID2LABEL = {0: "negative", 1: "neutral", 2: "positive"}


# Texts for tests/it/shipped_model.rs: pt/es/en, short and long (one past 128 tokens), emoji, mixed.
REFERENCE_TEXTS = [
    "Péssimo atendimento, nunca mais compro nessa loja",
    "Amei o produto, chegou antes do prazo! 😍",
    "Meu gestor não dá feedback e a carga de trabalho está absurda",
    "El pedido llegó tarde y nadie contesta",
    "Muy buena atención, gracias 👍",
    "Estoy buscando otro trabajo, el ambiente es horrible",
    "The delivery was late again and support never answered",
    "Love the new update, great job team!",
    "ok",
    "Muito bom o atendimento, pero el envío tardó",
    "@user the app keeps crashing when I try to pay #fail",
    " ".join(["O atendimento foi bom, mas a entrega atrasou uma semana e ninguém respondeu meus e-mails."] * 12),
]


TOKEN_TEXTS_EXTRA = [
    "não tenho do que reclamar da Acme", "no está mal", "Me sinto valorizado pelo meu gestor",
    "  espaços   duplos\te tab ", "ÇÃÕ ÁÉÍ ñÑ ü", "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ", "e\u0301 combinado", "x" * 300,
    "#FalhaNoSistema @SuporteTI https://acme.com.br/x?y=1", "R$ 1.234,56 — €99…", "😍🔥💯👍🏽", "",
    "Anticonstitucionalissimamente", "日本語とEnglish mixed", "\u200bzero\u200bwidth", "tabs\tand\nnewlines",
]


def token_texts(n=300):
    import glob
    import random
    texts = []
    for p in sorted(glob.glob(str(REPO / "build" / "data" / "val" / "*.jsonl"))):
        with open(p, encoding="utf-8") as f:
            texts += [json.loads(l)["text"] for l in f if l.strip()]
    random.Random(5).shuffle(texts)
    return texts[:n] + TOKEN_TEXTS_EXTRA


def write_reference(out, model, tok, size):
    """tests/fixtures/<name>_expected.json: transformers' probabilities for REFERENCE_TEXTS, each
    text alone (truncation at 128), so the Rust test can check pulso against them to 1e-4."""
    cases = []
    with torch.no_grad():
        for t in REFERENCE_TEXTS:
            enc = tok([t], truncation=True, max_length=128, return_tensors="pt")
            probs = model.eval()(**enc).logits.float().softmax(-1)[0].tolist()
            cases.append({"text": t, "input_ids": enc["input_ids"][0].tolist(), "probs": probs})
    tokens = [{"text": t, "input_ids": tok([t], truncation=True, max_length=128)["input_ids"][0]}
              for t in token_texts()]
    name = out.resolve().name
    ref = {"model": f"models/{name}", "model_safetensors_bytes": size, "max_length": 128,
           "transformers_version": __import__("transformers").__version__, "cases": cases,
           "tokens": tokens}
    dst = REPO / "tests" / "fixtures" / f"{name.replace('-', '_')}_expected.json"
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False)  # one line: ~300 id lists
    print("wrote", dst)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=str(REPO / "build" / "runs" / "main" / "best"))
    ap.add_argument("--out", default=str(REPO / "models" / "pulso-mini"))
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--reference-only", action="store_true",
                    help="only (re)write tests/fixtures/pulso_mini_expected.json for the model in --out")
    a = ap.parse_args()
    from transformers import BertForSequenceClassification, AutoTokenizer
    if a.reference_only:
        from transformers import AutoModelForSequenceClassification
        out = Path(a.out)
        write_reference(out, AutoModelForSequenceClassification.from_pretrained(out),
                        AutoTokenizer.from_pretrained(out), os.path.getsize(out / "model.safetensors"))
        return
    ck, out = Path(a.ckpt), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model = BertForSequenceClassification.from_pretrained(ck)
    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    # position_ids buffer is not needed (transformers re-creates it; rust-bert ignores it)
    sd = {k: v for k, v in sd.items() if not k.endswith("position_ids")}
    for need in ("bert.embeddings.word_embeddings.weight", "bert.pooler.dense.weight",
                 "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"):
        assert need in sd, need
    dtype = torch.float16 if a.fp16 else torch.float32
    sd = {k: v.to(dtype) for k, v in sd.items()}
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    size = os.path.getsize(out / "model.safetensors")
    if size > 100 * 1024 * 1024 and not a.fp16:
        sd = {k: v.half() for k, v in sd.items()}
        save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
        size = os.path.getsize(out / "model.safetensors")
    cfg = model.config
    cfg.architectures = ["BertForSequenceClassification"]
    cfg.id2label = ID2LABEL
    cfg.label2id = {v: k for k, v in ID2LABEL.items()}
    cfg.problem_type = "single_label_classification"
    cfg._name_or_path = out.resolve().name
    cfg.torch_dtype = "float16" if sd["classifier.weight"].dtype == torch.float16 else "float32"
    cfg.to_json_file(str(out / "config.json"))
    # rust-bert reads id2label keys as strings -> fine (JSON keys are strings)
    tok = AutoTokenizer.from_pretrained(ck)
    tok.model_max_length = 128
    tok.save_pretrained(out)
    for extra in ("added_tokens.json",):
        if (out / extra).exists() and json.load(open(out / extra)) == {}:
            (out / extra).unlink()
    tj = json.load(open(out / "tokenizer.json", encoding="utf-8"))
    tj["padding"] = None
    tj["truncation"] = {"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0}
    with open(out / "tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=2)
    # sanity: reload with Auto* classes
    from transformers import AutoModelForSequenceClassification
    m2 = AutoModelForSequenceClassification.from_pretrained(out)
    t2 = AutoTokenizer.from_pretrained(out)
    enc = t2(["Ótimo atendimento, recomendo!", "Muy mal servicio."], padding=True, return_tensors="pt")
    with torch.no_grad():
        l1 = model.eval()(**enc).logits
        l2 = m2.eval()(**enc).logits
    print("max |logit diff| after export:", float((l1 - l2).abs().max()))
    if out.resolve().parent == (REPO / "models").resolve():
        write_reference(out, m2, t2, size)
    print("model.safetensors bytes:", size, "params:", sum(v.numel() for v in sd.values()))
    print(json.dumps({"files": sorted(p.name for p in out.iterdir())}))


if __name__ == "__main__":
    main()
