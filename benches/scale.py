#!/usr/bin/env python3
"""Scale run: is `pulso run`'s memory flat in the input size?

Generates synthetic JSON Lines inputs of 100,000 and 1,000,000 records (realistic short texts) into
build/bench/scale/, writes a pipeline file for each, runs `pulso run` under `/usr/bin/time -v`, and
reports peak RSS per size and the ratio 1M / 100k. Targets: 1M within 10% of 100k, under 2 GB.

MODEL: on a 2-core machine the real model cannot score 1M records in reasonable time, so this run
uses the tiny fixture model `tests/fixtures/models/tiny-bert` (2 layers, hidden 32) by default. It
measures the pipeline's memory flatness (reader chunks, dedup, scorer queues, Parquet writer,
aggregates), NOT model speed; records/s printed here are not model throughput. Use --model to try
another folder.

Texts: tweets from --data (XLM-T pt/es/en, SemEval en, US airline en; default /work/shared/data),
read at run time, never stored in the repo; a small built-in pt/es/en template set if the folder
is missing. Ids are unique (no duplicates rejected); authors mix internal (acme.com), supplier and
external handles; timestamps fall on the run date; likes/shares/brand vary.

Usage: benches/scale.py [--pulso target/release/pulso] [--sizes 100000,1000000] [--threads N]
       [--model DIR] [--quick]  (--quick: 10,000 and 100,000 records)
Writes build/bench/scale/scale_results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATE = "2026-11-14"

TEMPLATES = [
    "A entrega atrasou de novo, não recomendo a {b}",
    "Amei o atendimento da {b}, equipe muito atenciosa!",
    "O app da {b} trava toda vez que tento pagar",
    "Meu gestor não dá feedback e a carga de trabalho está absurda",
    "El pedido de {b} llegó tarde y nadie contesta",
    "Muy buena atención en {b}, gracias",
    "Estoy buscando otro trabajo, el ambiente es horrible",
    "The delivery from {b} was late again and support never answered",
    "Love the new {b} update, great job team!",
    "I'm thinking about quitting, no raise for three years",
]
AUTHORS_INTERNAL = ["ana.souza", "rui.lima", "maria.gomez", "john.smith", "paula.reis", "diego.ruiz"]
BRANDS = ["Acme", "AcmePay", "Globex", None, None, None]


def load_texts(data: Path) -> list[str]:
    texts: list[str] = []
    for lang in ("english", "portuguese", "spanish"):
        p = data / "xlm-t-sentiment" / lang / "train_text.txt"
        if p.is_file():
            texts += [l.strip() for l in p.read_text(encoding="utf-8").splitlines() if l.strip()]
    for p in sorted(glob.glob(str(data / "semeval-2013-2016-task4a-en" / "*.tsv"))):
        for l in Path(p).read_text(encoding="utf-8").splitlines():
            parts = l.split("\t")
            if len(parts) >= 3 and parts[-1].strip():
                texts.append(parts[-1].strip())
    return texts


def generate(path: Path, n: int, texts: list[str], seed: int) -> None:
    rng = random.Random(seed)
    start = datetime.fromisoformat(DATE).replace(tzinfo=timezone.utc)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(n):
            r = rng.random()
            if r < 0.25:
                author = f"{rng.choice(AUTHORS_INTERNAL)}{rng.randrange(5000)}@acme.com"
            elif r < 0.30:
                author = f"compras{rng.randrange(100)}@steelworks.example"
            else:
                author = f"@user{rng.randrange(200_000)}"
            brand = rng.choice(BRANDS)
            t = rng.choice(texts) if texts else rng.choice(TEMPLATES).format(b=brand or "Acme")
            rec = {
                "id": f"m{i:08d}",
                "text": t,
                "ts": (start + timedelta(seconds=rng.randrange(86_400))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "author": author,
                "brand": brand,
                "likes": rng.randrange(1000),
                "shares": rng.randrange(100),
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(path)


PIPELINE = """[pipeline]
name = "scale"
output = "out"

[model]
path = "{model}"

[organization]
internal_domains = ["acme.com"]
supplier_domains = ["steelworks.example"]
brands = ["Acme", "AcmePay"]
competitors = ["Globex"]

[[source]]
name = "mentions"
path = "mentions.jsonl"
format = "jsonl"
segment = "auto"
[source.columns]
id = "id"
text = "text"
timestamp = "ts"
author = "author"
brand = "brand"
likes = "likes"
shares = "shares"
"""


def run_one(binary: Path, d: Path, threads: int | None) -> dict:
    if (d / "out").exists():
        shutil.rmtree(d / "out")
    cmd = ["/usr/bin/time", "-v", str(binary), "run", str(d / "pipeline.toml"), "--date", DATE, "--no-progress"]
    if threads:
        cmd += ["--threads", str(threads)]
    env = dict(os.environ, PULSO_PSEUDONYM_KEY=os.environ.get("PULSO_PSEUDONYM_KEY", "scale-bench-key-not-secret"))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    (d / "run.stdout").write_text(p.stdout)
    (d / "run.stderr").write_text(p.stderr)
    if p.returncode not in (0, 1):
        sys.exit(f"scale.py: {' '.join(cmd[2:])} failed with exit code {p.returncode}:\n{p.stderr[-3000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    if not m:
        sys.exit(f"scale.py: no 'Maximum resident set size' in /usr/bin/time output:\n{p.stderr[-2000:]}")
    run_line = next((l for l in p.stdout.splitlines() if l.startswith("run ")), "")
    # CPU seconds per stage from the published manifest (`cpu_s`, summed over threads).
    cpu = None
    for mp in sorted((d / "out" / "_pulso" / "log").glob("*.json")):
        try:
            cpu = json.loads(mp.read_text()).get("cpu_s") or cpu
        except (OSError, ValueError):
            pass
    sig = re.search(r"(\d+) signals, (\d+) rejected", run_line)
    return {
        "exit_code": p.returncode,
        "peak_rss_kb": int(m.group(1)),
        "wall_s": wall,
        "signals": int(sig.group(1)) if sig else None,
        "rejected": int(sig.group(2)) if sig else None,
        "summary_line": run_line,
        "cpu_s": cpu,
        "cmd": " ".join(cmd),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pulso", default=str(REPO / "target" / "release" / "pulso"))
    ap.add_argument("--model", default=str(REPO / "tests" / "fixtures" / "models" / "tiny-bert"))
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--threads", type=int, default=None, help="pulso --threads (default: pulso's default, all cores)")
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", default=str(REPO / "build" / "bench" / "scale"))
    ap.add_argument("--quick", action="store_true", help="10,000 and 100,000 records")
    a = ap.parse_args()
    if a.quick:
        a.sizes = "10000,100000"
    if not Path("/usr/bin/time").is_file():
        sys.exit("scale.py: /usr/bin/time is missing; install it (apt-get install -y time)")
    binary = Path(a.pulso).resolve()
    if not binary.is_file():
        sys.exit(f"scale.py: pulso binary {binary} not found; run `cargo build --release` first")
    root = Path(a.out)
    root.mkdir(parents=True, exist_ok=True)
    # Snapshot the binary so a rebuild during the run cannot change what is measured.
    snap = root / "pulso-under-test"
    shutil.copy2(binary, snap)
    binary = snap
    model = Path(a.model).resolve()
    sizes = [int(s) for s in a.sizes.split(",")]
    texts = load_texts(Path(a.data))
    results = []
    for n in sizes:
        d = root / f"n{n}"
        d.mkdir(parents=True, exist_ok=True)
        src = d / "mentions.jsonl"
        stamp = d / ".generated"
        want = f"{n} {len(texts)} v1"
        if not (src.is_file() and stamp.is_file() and stamp.read_text() == want):
            t = time.perf_counter()
            generate(src, n, texts, seed=n)
            stamp.write_text(want)
            print(f"# generated {n:,} records into {src} in {time.perf_counter() - t:.1f} s", flush=True)
        (d / "pipeline.toml").write_text(PIPELINE.format(model=str(model).replace("\\", "/")))
        r = run_one(binary, d, a.threads)
        r.update(records=n, input_mb=src.stat().st_size / 1e6)
        results.append(r)
        print(f"  {n:>9,} records: peak RSS {r['peak_rss_kb'] / 1024:,.1f} MiB, wall {r['wall_s']:.1f} s, "
              f"exit {r['exit_code']}, {r['summary_line']}", flush=True)

    base = results[0]
    print()
    tiny = "tests/fixtures/models" in str(model)
    print(f"Scale run (model: {model.name}"
          f"{', a tiny fixture: measures pipeline memory, not model speed' if tiny else ''}; "
          f"threads: {a.threads or 'pulso default'}).")
    print()
    print(f"| Records | Input (MB) | Signals | Wall (s) | Peak RSS (MiB) | RSS / {base['records']:,} |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        sig = f"{r['signals']:,}" if r["signals"] is not None else "?"
        print(f"| {r['records']:,} | {r['input_mb']:,.0f} | {sig} | "
              f"{r['wall_s']:.1f} | {r['peak_rss_kb'] / 1024:,.1f} | {r['peak_rss_kb'] / base['peak_rss_kb']:.2f} |")
    stages = ("read", "route", "tokenize", "model", "enrich", "aggregate", "write", "other")
    if any(r.get("cpu_s") for r in results):
        print()
        print("CPU seconds per stage (manifest `cpu_s`, summed over threads; other = model load, probe, dedup, "
              "bookkeeping):")
        print()
        print("| Records | " + " | ".join(stages) + " | process total | model share | model share without other |")
        print("|---:|" + "---:|" * (len(stages) + 3))
        for r in results:
            c = r.get("cpu_s") or {}
            tot = c.get("process_total") or 0.0
            share = f"{100 * c.get('model', 0.0) / tot:.1f}%" if tot else "–"
            work = tot - c.get("other", 0.0)
            share2 = f"{100 * c.get('model', 0.0) / work:.1f}%" if work > 0 else "–"
            print(f"| {r['records']:,} | " + " | ".join(f"{c.get(k, 0.0):,.2f}" for k in stages)
                  + f" | {tot:,.2f} | {share} | {share2} |")
    last = results[-1]
    ratio = last["peak_rss_kb"] / base["peak_rss_kb"]
    flat = "met" if ratio <= 1.10 else "NOT met"
    small = "met" if last["peak_rss_kb"] < 2 * 1024 * 1024 else "NOT met"
    print()
    print(f"Targets: {last['records']:,} within 10% of {base['records']:,}: ratio {ratio:.3f} ({flat}); "
          f"under 2 GB: {last['peak_rss_kb'] / 1024:,.0f} MiB ({small}).")
    (root / "scale_results.json").write_text(json.dumps(
        {"when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "model": str(model),
         "threads": a.threads, "results": results, "ratio": ratio}, indent=2))
    print(f"\n(written {root / 'scale_results.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
