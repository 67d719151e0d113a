#!/usr/bin/env python3
"""N shards on one machine vs one process with the same total threads, and the per-record cost of
the shard split and of the commit (issue 12). Writes build/bench/shards.json and prints a summary.

    python3 benches/shards.py --pulso target/ci/pulso [--records 1500] [--threads 2] [--shards 2]

Scoring uses the shipped model (models/pulso-multi) so records per core-second are real; the split
and commit costs use the tiny fixture model on a larger input so reading and staging dominate.
"""
import argparse, json, os, pathlib, shutil, subprocess, sys, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORDS = ("great slow delivery price support love hate Acme late manager meeting entrega ótimo "
         "malo Globex app crashes refund quick friendly rude waited hours again never").split()

PIPELINE = """
[pipeline]
name = "bench-shards"
output = "out"
[model]
path = "{model}"
[organization]
internal_domains = ["acme.com"]
brands = ["Acme"]
competitors = ["Globex"]
[[source]]
name = "mentions"
path = "data/mentions_*.jsonl"
format = "jsonl"
segment = "external"
client_type = "consumer"
[source.columns]
id = "id"
text = "text"
timestamp = "ts"
author = "user"
channel = "platform"
likes = "likes"
"""


def make_input(d: pathlib.Path, records: int, files: int = 4):
    data = d / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    x = 88172645463325252
    per = (records + files - 1) // files
    n = 0
    for f in range(files):
        with open(data / f"mentions_{f}.jsonl", "w") as fh:
            for _ in range(per):
                if n >= records:
                    break
                words = []
                for _ in range(6 + n % 18):
                    x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
                    x ^= x >> 7
                    x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
                    words.append(WORDS[x % len(WORDS)])
                rid = n if n % 50 else n // 2  # a few duplicate ids
                fh.write(json.dumps({"id": f"m{rid}", "ts": f"2026-11-{8 + n % 7:02d}T10:{n % 60:02d}:00Z",
                                     "user": f"@u{n % 977}", "platform": f"p{n % 3}", "likes": n % 13,
                                     "text": " ".join(words)}) + "\n")
                n += 1


def pulso(args, env=None):
    t = time.monotonic()
    p = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=env)
    wall = time.monotonic() - t
    if p.returncode not in (0, 1):
        sys.exit(f"{' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return wall


def peak_rss_kb(args, env=None):
    """Runs under /usr/bin/time -v when present; returns (wall, max RSS in KB or None)."""
    if not shutil.which("time") and not pathlib.Path("/usr/bin/time").exists():
        return pulso(args, env), None
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-v", *map(str, args)], capture_output=True, text=True,
                       env=env)
    wall = time.monotonic() - t
    if p.returncode not in (0, 1):
        sys.exit(p.stderr)
    rss = [int(l.split()[-1]) for l in p.stderr.splitlines() if "Maximum resident set size" in l]
    return wall, (rss[0] if rss else None)


def rows(root: pathlib.Path):
    import pyarrow.parquet as pq
    out = {}
    for t in ["signals", "rejects", "aggregates"]:
        for p in sorted((root / t).glob("**/*.parquet")):
            key = str(p.parent.relative_to(root))
            rs = [tuple(sorted((k, repr(v)) for k, v in r.items())) for r in pq.ParquetFile(p).read().to_pylist()]
            out.setdefault(key, []).extend(rs)
    return {k: (v if k.startswith("aggregates") else sorted(v)) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pulso", default=str(ROOT / "target/ci/pulso"))
    ap.add_argument("--records", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--split-records", type=int, default=40000)
    a = ap.parse_args()
    work = ROOT / "build/bench/shards"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PULSO_MODEL", "PULSO_FAULT")}
    env["PULSO_PSEUDONYM_KEY"] = "bench-key-0123456789abcdef"
    res = {"records": a.records, "threads": a.threads, "shards": a.shards, "cores": os.cpu_count()}

    # 1. Throughput: one process with T threads vs N concurrent shards with T/N threads each.
    model = ROOT / "models/pulso-multi"
    (work / "pipeline.toml").write_text(PIPELINE.format(model=model))
    make_input(work, a.records)
    common = ["--date", "2026-11-14", "--no-progress", "--run-id", "bench"]
    p = str(work / "pipeline.toml")
    one, rss1 = peak_rss_kb([a.pulso, "run", p, "--out", work / "single", "--threads", a.threads, *common], env)
    res["single_wall_s"] = one
    res["single_peak_rss_mb"] = rss1 and rss1 / 1024
    per = max(1, a.threads // a.shards)
    t = time.monotonic()
    procs = []
    for i in range(a.shards):
        args = ["/usr/bin/time", "-v", a.pulso, "run", p, "--out", work / "sharded", "--threads", per,
                "--shard", f"{i}/{a.shards}", *common]
        procs.append(subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    shard_rss = []
    for pr in procs:
        _, err = pr.communicate()
        if pr.returncode != 0:
            sys.exit(err)
        shard_rss += [int(l.split()[-1]) / 1024 for l in err.splitlines() if "Maximum resident" in l]
    shards_wall = time.monotonic() - t
    commit_wall = pulso([a.pulso, "commit", p, "--out", work / "sharded", "--date", "2026-11-14",
                         "--run-id", "bench"], env)
    res.update(shards_wall_s=shards_wall, commit_wall_s=commit_wall, shard_peak_rss_mb=shard_rss,
               throughput_ratio=one / (shards_wall + commit_wall),
               records_per_core_second=a.records / (one * a.threads),
               records_per_second_single=a.records / one)
    try:
        same = rows(work / "single") == rows(work / "sharded")
    except ImportError:
        same = None
    res["identical_output"] = same

    # 2. Cost of the split: a shard that owns ~1% of the records still reads and hashes them all.
    tiny = ROOT / "tests/fixtures/models/tiny-bert"
    sp = work / "split"
    sp.mkdir()
    (sp / "pipeline.toml").write_text(PIPELINE.format(model=tiny))
    make_input(sp, a.split_records)
    q = str(sp / "pipeline.toml")
    full = pulso([a.pulso, "run", q, "--out", sp / "full", "--threads", 1, *common], env)
    slice_ = pulso([a.pulso, "run", q, "--out", sp / "s100", "--threads", 1, "--shard", "0/100", *common], env)
    empty = pulso([a.pulso, "score", "--model", tiny, "--threads", 1, "/dev/null"], env)  # process + model load
    res["split"] = {"records": a.split_records, "full_run_tiny_s": full, "shard_0_of_100_s": slice_,
                    "startup_and_model_load_s": empty,
                    "read_hash_us_per_record": max(0.0, slice_ - empty) / a.split_records * 1e6}
    # 3. Cost of the commit per record: 10 shards staged, then one commit.
    for i in range(10):
        pulso([a.pulso, "run", q, "--out", sp / "s", "--threads", 1, "--shard", f"{i}/10", *common], env)
    c = pulso([a.pulso, "commit", q, "--out", sp / "s", "--date", "2026-11-14", "--run-id", "bench"], env)
    res["commit"] = {"shards": 10, "records": a.split_records, "wall_s": c,
                     "us_per_record": c / a.split_records * 1e6}
    try:
        res["commit"]["identical_output"] = rows(sp / "full") == rows(sp / "s")
    except ImportError:
        pass
    score_us = 1e6 / res["records_per_second_single"]
    res["split"]["fraction_of_scoring_time"] = res["split"]["read_hash_us_per_record"] / score_us
    (ROOT / "build/bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "build/bench/shards.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
