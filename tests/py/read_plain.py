"""Reads a pulso output the way a data team would, with no options beyond Hive partitioning.

Usage: read_plain.py OUT. Prints one JSON object: tool -> {"segment/date": rows} for the signals
table, for each of DuckDB, pyarrow and Polars that is installed (missing ones are listed under
"missing").
"""
import json
import sys

out = sys.argv[1]
res = {"missing": []}

try:
    import duckdb

    rows = duckdb.sql(
        f"select segment, cast(date as varchar) as d, count(*) from "
        f"read_parquet('{out}/signals/*/*/*.parquet', hive_partitioning = true) group by all"
    ).fetchall()
    res["duckdb"] = {f"{s}/{d}": n for s, d, n in rows}
except ImportError:
    res["missing"].append("duckdb")

try:
    import pyarrow.dataset as ds

    # the partition column "date" comes from the path
    t = ds.dataset(f"{out}/signals", format="parquet", partitioning="hive").to_table()
    counts = {}
    for seg, d in zip(t.column("segment").to_pylist(), t.column("date").to_pylist()):
        k = f"{seg}/{d}"
        counts[k] = counts.get(k, 0) + 1
    res["pyarrow"] = counts
except ImportError:
    res["missing"].append("pyarrow")

try:
    import polars as pl

    df = (
        pl.scan_parquet(f"{out}/signals/**/*.parquet", hive_partitioning=True)
        .group_by(["segment", "date"])
        .len()
        .collect()
    )
    res["polars"] = {f"{r[0]}/{r[1]}": r[2] for r in df.iter_rows()}
except ImportError:
    res["missing"].append("polars")

print(json.dumps(res, sort_keys=True, default=str))
