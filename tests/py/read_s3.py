"""Reads a pulso version tree straight from S3 (a moto server in the tests), as a data team would.

Usage: read_s3.py TREE_URL ENDPOINT. TREE_URL is what `pulso current s3://…` prints
(s3://bucket/out/_pulso/runs/RUN_ID). Credentials come from AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_REGION. Prints one JSON object: tool -> {"segment/date": rows} for
the signals table, for each of pyarrow, Polars and DuckDB that can read S3 here; the others are
listed under "missing" with the reason.
"""
import json
import os
import sys

tree, endpoint = sys.argv[1], sys.argv[2]
res = {"missing": {}}
key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
region = os.environ.get("AWS_REGION", "us-east-1")
host = endpoint.split("://", 1)[1]

try:
    import pyarrow.dataset as ds
    from pyarrow import fs

    s3 = fs.S3FileSystem(access_key=key, secret_key=secret, region=region,
                         endpoint_override=endpoint, scheme="http")
    t = ds.dataset(tree[len("s3://"):] + "/signals", format="parquet", partitioning="hive",
                   filesystem=s3).to_table()
    counts = {}
    for seg, d in zip(t.column("segment").to_pylist(), t.column("date").to_pylist()):
        k = f"{seg}/{d}"
        counts[k] = counts.get(k, 0) + 1
    res["pyarrow"] = counts
except Exception as e:  # noqa: BLE001 - reported, not hidden
    res["missing"]["pyarrow"] = repr(e)

try:
    import polars as pl

    df = (
        pl.scan_parquet(f"{tree}/signals/**/*.parquet", hive_partitioning=True, storage_options={
            "aws_access_key_id": key, "aws_secret_access_key": secret, "aws_region": region,
            "aws_endpoint_url": endpoint, "aws_allow_http": "true"})
        .group_by(["segment", "date"])
        .len()
        .collect()
    )
    res["polars"] = {f"{r[0]}/{r[1]}": r[2] for r in df.iter_rows()}
except Exception as e:  # noqa: BLE001
    res["missing"]["polars"] = repr(e)

try:
    import duckdb

    con = duckdb.connect()
    con.execute("LOAD httpfs")  # needs the extension locally: no download here
    con.execute(f"SET s3_endpoint='{host}'; SET s3_use_ssl=false; SET s3_url_style='path'; "
                f"SET s3_access_key_id='{key}'; SET s3_secret_access_key='{secret}'; SET s3_region='{region}'")
    rows = con.sql(
        f"select segment, cast(date as varchar) as d, count(*) from "
        f"read_parquet('{tree}/signals/*/*/*.parquet', hive_partitioning = true) group by all"
    ).fetchall()
    res["duckdb"] = {f"{s}/{d}": n for s, d, n in rows}
except Exception as e:  # noqa: BLE001
    res["missing"]["duckdb"] = repr(e)

print(json.dumps(res, sort_keys=True, default=str))
