#!/usr/bin/env python3
"""Training throughput probe (forward + backward + clip + AdamW, word embeddings frozen, as train.py does):
two settings alternate in blocks of 3 steps on one fixed batch (16 x 40 tokens, 8 rows padded to 30), so
contention from other jobs on a shared machine hits both alike. Prints examples per wall second and per
process-CPU second.

  python models/train/speed_probe.py --model build/runs/e5/best --compare precision --threads 1 --seconds 60
  python models/train/speed_probe.py --model build/runs/e5/best --compare threads --seconds 100   # 1 vs 2, bf16
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train as T  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--compare", choices=["precision", "threads"], default="precision")
    ap.add_argument("--threads", type=int, default=2, help="threads for --compare precision")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    from transformers import BertForSequenceClassification
    torch.set_num_threads(a.threads)
    model = BertForSequenceClassification.from_pretrained(a.model)
    for p in model.bert.embeddings.word_embeddings.parameters():
        p.requires_grad = False
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-7)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 40000, (16, 40), generator=g)
    mask = torch.ones_like(ids)
    mask[8:, 30:] = 0
    y = torch.randint(0, 3, (16,), generator=g)
    binary = torch.zeros(16, dtype=torch.bool)
    # setting name -> (threads, bf16 autocast)
    settings = ({"fp32": (a.threads, False), "bf16": (a.threads, True)} if a.compare == "precision"
                else {"threads1": (1, True), "threads2": (2, True)})
    model.train()

    def step(threads, bf):
        torch.set_num_threads(threads)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
            logits = model(input_ids=ids, attention_mask=mask).logits
        T.loss_fn(logits.float(), y, binary).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for s in settings.values():  # warm-up, not counted
        step(*s)
    acc = {k: [0, 0.0, 0.0] for k in settings}
    t_end = time.time() + a.seconds
    while time.time() < t_end:
        for k, s in settings.items():
            w, c = time.time(), time.process_time()
            for _ in range(3):
                step(*s)
            acc[k][0] += 48
            acc[k][1] += time.time() - w
            acc[k][2] += time.process_time() - c
    res = {k: {"examples": n, "ex_per_wall_s": round(n / w, 2), "ex_per_cpu_s": round(n / c, 2)}
           for k, (n, w, c) in acc.items()}
    print(json.dumps(res))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
