"""Spark local-mode test of deploy/spark: pulso_spark.score through mapInArrow against plain `pulso score`.

Run by tests/it/spark.rs (and by hand: python tests/py/spark_local.py --pulso target/ci/pulso
--model models/pulso-mini --workdir /tmp/x). Asserts, then prints one JSON line of facts and
timings on stdout.

Checks: the same scores as `pulso score --precision fp32` on the same texts (every text, within
1e-4), no row lost or duplicated over several partitions and several Arrow batches per task,
input columns carried through, null/blank texts kept with a reason, a clear error naming path and
setting when the binary or the model is missing on the worker, pulso's stderr in the task error
when pulso fails, and the example nightly job (twice: a re-run replaces its night, no duplicates).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPARK_DIR = ROOT / "deploy" / "spark"
sys.path.insert(0, str(SPARK_DIR))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

TOL = 1e-4
SPECIAL = {"null": None, "empty": "", "blank": "   "}


def demo_texts() -> list[str]:
    """The demo data's texts (its files hold deliberately broken lines: those are skipped)."""
    d = ROOT / "pipelines" / "demo"
    out = []
    for name, key in (("mentions.jsonl", "text"), ("helpdesk_tickets.jsonl", "body")):
        for line in (d / name).read_text(errors="replace").splitlines():
            try:
                v = json.loads(line).get(key)
            except (ValueError, AttributeError):
                continue
            if isinstance(v, str):
                out.append(v)
    with open(d / "survey_2026-11.csv", newline="", errors="replace") as f:
        out += [r.get("comment") or "" for r in csv.DictReader(f)]
    out = [t for t in out if t.strip()]
    assert len(out) > 200, len(out)
    return out


def make_rows(n: int) -> list[tuple]:
    base = demo_texts()
    rows = [(i, f"{base[i % len(base)]} #{i}", f"src{i % 5}") for i in range(n)]
    for k, (name, t) in enumerate(SPECIAL.items()):
        rows.append((n + k, t, name))
    return rows


def plain_scores(pulso: str, model: str, rows, threads: int) -> tuple[dict, float]:
    """`pulso score` (JSON Lines) on the scorable rows: id -> record, and the seconds it took."""
    lines = "".join(
        json.dumps({"id": i, "text": t}) + "\n" for i, t, _ in rows if t is not None and t.strip()
    )
    t0 = time.perf_counter()
    p = subprocess.run(
        [pulso, "score", "--model", model, "--precision", "fp32", "--threads", str(threads)],
        input=lines.encode(), capture_output=True, check=False,
    )
    secs = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr.decode()
    out = {}
    for line in p.stdout.decode().splitlines():
        r = json.loads(line)
        out[r["id"]] = r
    return out, secs


def expect_task_error(fn, *needles) -> str:
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - Spark wraps the worker's error in its own types
        msg = str(e)
        missing = [n for n in needles if n not in msg]
        assert not missing, f"error lacks {missing}:\n{msg[:3000]}"
        # The first line of our message, for the summary.
        i = msg.find("PulsoWorkerError: ")
        return msg[i: i + 400].splitlines()[0] if i >= 0 else msg[:400]
    raise AssertionError(f"expected a task error mentioning {needles}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pulso", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--partitions", type=int, default=4)
    a = ap.parse_args()
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    rows = make_rows(a.rows)
    ref, plain_secs = plain_scores(a.pulso, a.model, rows, threads=2)
    assert len(ref) == a.rows, (len(ref), a.rows)
    t_spark = time.perf_counter()

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("pulso-spark-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.local.dir", str(work / "spark-local"))
        .config("spark.sql.warehouse.dir", str(work / "warehouse"))
        .config("spark.sql.shuffle.partitions", str(a.partitions))
        # Several Arrow batches per task (2,000 rows over 4 partitions: 2 batches each).
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "300")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.addPyFile(str(SPARK_DIR / "pulso_spark.py"))
    import pulso_spark

    t_session = time.perf_counter() - t_spark
    schema = StructType([
        StructField("id", LongType(), False),
        StructField("text", StringType(), True),
        StructField("source", StringType(), True),
    ])
    df = spark.createDataFrame(rows, schema).repartition(a.partitions)
    assert df.rdd.getNumPartitions() == a.partitions
    n_in = df.count()  # materialises the input once; JVM warm-up is not scoring time
    assert n_in == len(rows)

    scored = pulso_spark.score(df, binary=a.pulso, model=a.model, precision="fp32", threads=1)
    assert scored.columns == ["id", "text", "source"] + pulso_spark.SCORE_COLUMNS, scored.columns
    t0 = time.perf_counter()
    out = scored.collect()
    spark_secs = time.perf_counter() - t0

    # No row lost or duplicated.
    ids = [r["id"] for r in out]
    assert len(ids) == len(rows), (len(ids), len(rows))
    assert len(set(ids)) == len(ids), "duplicated rows"
    assert set(ids) == {r[0] for r in rows}, "lost rows"
    by_id = {r[0]: r for r in rows}
    max_diff = 0.0
    for r in out:
        i, t, src = by_id[r["id"]]
        assert r["text"] == t and r["source"] == src, f"row {i}: input columns changed"
        if t is None or not t.strip():
            want = "null_text" if t is None else "empty_text"
            assert r["unscored_reason"] == want, (i, r["unscored_reason"])
            assert all(r[c] is None for c in pulso_spark.SCORE_COLUMNS[:-1]), (i, r)
            continue
        j = ref[i]
        assert r["unscored_reason"] is None, (i, r["unscored_reason"])
        for c in ("sentiment", "language", "truncated"):
            assert r[c] == j[c], (i, c, r[c], j[c])
        for c in ("p_negative", "p_neutral", "p_positive", "sentiment_score"):
            max_diff = max(max_diff, abs(r[c] - j[c]))
    assert max_diff < TOL, f"max probability difference {max_diff} >= {TOL}"

    t_errors = time.perf_counter()
    # A missing binary / model on the worker: the task error names the path and the setting.
    small = df.limit(20)
    e_bin = expect_task_error(
        lambda: pulso_spark.score(small, binary="/nonexistent/pulso", model=a.model).collect(),
        "PulsoWorkerError", "/nonexistent/pulso", "binary= argument", "--archives",
    )
    e_model = expect_task_error(
        lambda: pulso_spark.score(small, binary=a.pulso, model=str(work / "no-model")).collect(),
        "PulsoWorkerError", str(work / "no-model"), "model= argument", "config.json",
    )
    spark.conf.set("spark.pulso.model", str(work / "conf-model"))
    e_conf = expect_task_error(
        lambda: pulso_spark.score(small, binary=a.pulso).collect(),
        "PulsoWorkerError", str(work / "conf-model"), "spark.pulso.model",
    )
    spark.conf.unset("spark.pulso.model")
    # pulso itself fails: its stderr is in the task's error.
    e_fail = expect_task_error(
        lambda: pulso_spark.score(small, binary=a.pulso, model=a.model, precision="bogus").collect(),
        "PulsoWorkerError", "pulso's stderr", "is not one of auto, fp32, bf16",
    )

    # Spark's large string option: the score columns come back as large strings, as Spark expects.
    spark.conf.set("spark.sql.execution.arrow.useLargeVarTypes", "true")
    large = pulso_spark.score(small, binary=a.pulso, model=a.model).collect()
    spark.conf.unset("spark.sql.execution.arrow.useLargeVarTypes")
    assert len(large) == 20
    got = {r["id"]: r["sentiment"] for r in out}
    assert all(r["sentiment"] == got[r["id"]] for r in large), "large var types changed scores"
    errors_secs = time.perf_counter() - t_errors
    t_nightly = time.perf_counter()
    # The example nightly job, on Parquet, run twice (the re-run replaces its night).
    import nightly_job

    inp = work / "in.parquet"
    sub = rows[:60] + rows[-3:]
    pq.write_table(
        pa.table({"id": [r[0] for r in sub], "text": [r[1] for r in sub], "source": [r[2] for r in sub]}),
        inp,
    )
    args = nightly_job.parse_args([
        "--input", str(inp), "--output", str(work / "scored"), "--date", "2026-11-14",
        "--binary", a.pulso, "--model", a.model, "--partitions", "2",
    ])
    first = nightly_job.run(spark, args)
    second = nightly_job.run(spark, args)
    assert first["rows"] == second["rows"] == len(sub), (first, second)
    assert second["by_outcome"] == {"scored": 60, "null_text": 1, "empty_text": 2}, second
    written = pq.read_table(work / "scored")
    assert written.num_rows == len(sub), written.num_rows

    nightly_secs = time.perf_counter() - t_nightly
    spark.stop()
    summary = {
        "rows_in": len(rows),
        "rows_out": len(out),
        "unique_ids": len(set(ids)),
        "partitions": a.partitions,
        "max_prob_diff": max_diff,
        "spark_secs": round(spark_secs, 2),
        "spark_records_per_s": round(a.rows / spark_secs, 1),
        "plain_secs": round(plain_secs, 2),
        "plain_records_per_s": round(a.rows / plain_secs, 1),
        "session_start_secs": round(t_session, 2),
        "error_checks_secs": round(errors_secs, 2),
        "nightly_secs": round(nightly_secs, 2),
        "total_secs": round(time.perf_counter() - t_start, 2),
        "missing_binary_error": e_bin,
        "missing_model_error": e_model,
        "conf_model_error": e_conf,
        "pulso_failure_error": e_fail[:200],
        "nightly": second,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
