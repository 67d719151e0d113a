"""Example nightly Spark job: read a table, score its text with pulso, write Parquet or Delta.

    spark-submit --archives pulso.tar.gz#pulso --py-files deploy/spark/pulso_spark.py \\
      --conf spark.pulso.binary=pulso/bin/pulso --conf spark.pulso.model=pulso/models/pulso-multi \\
      deploy/spark/nightly_job.py --input s3://lake/raw/mentions/date=2026-11-14 \\
      --output s3://lake/scored/mentions --format delta --date 2026-11-14

The input is a Parquet or Delta path, or a catalog table (`--input-format table`), with a text
column (`--text-column`, default `text`). The output gets every input column, pulso's score
columns and `run_date`; it is partitioned by `run_date`, and re-running a night replaces that
night's partition only (Parquet: dynamic partition overwrite; Delta: replaceWhere), so a retried
job never duplicates rows. Rows whose text is null or blank are kept, with null scores and
`unscored_reason` set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from pyspark.sql import SparkSession, functions as F

import pulso_spark


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="Parquet/Delta path, or a table name with --input-format table")
    p.add_argument("--input-format", default="parquet", choices=["parquet", "delta", "table"])
    p.add_argument("--output", required=True, help="output path (partitioned by run_date)")
    p.add_argument("--format", default="parquet", choices=["parquet", "delta"])
    p.add_argument("--date", default=dt.date.today().isoformat(), help="run date, YYYY-MM-DD (default today)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--binary", help="pulso binary on the workers (default: spark.pulso.binary or pulso on PATH)")
    p.add_argument("--model", help="model folder on the workers (default: spark.pulso.model)")
    p.add_argument("--precision", default=None, help="fp32 (default), bf16 or auto")
    p.add_argument("--partitions", type=int, default=None,
                   help="repartition the input first (one pulso process per partition; aim for "
                        "partitions of 100k+ rows so model loading stays a small cost)")
    a = p.parse_args(argv)
    dt.date.fromisoformat(a.date)
    return a


def read_input(spark, a):
    if a.input_format == "table":
        return spark.table(a.input)
    return spark.read.format(a.input_format).load(a.input)


def run(spark, a) -> dict:
    df = read_input(spark, a)
    if a.partitions:
        df = df.repartition(a.partitions)
    scored = pulso_spark.score(
        df, binary=a.binary, model=a.model, text_column=a.text_column, precision=a.precision
    ).withColumn("run_date", F.lit(a.date).cast("date"))
    w = scored.write.partitionBy("run_date")
    if a.format == "delta":
        (w.format("delta").mode("overwrite")
          .option("replaceWhere", f"run_date = '{a.date}'").save(a.output))
    else:
        spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
        w.mode("overwrite").parquet(a.output)
    # Count from what was written (one more scan of the night's partition, no second scoring).
    written = spark.read.format(a.format).load(a.output).where(F.col("run_date") == F.lit(a.date))
    counts = {r["unscored_reason"] or "scored": r["count"]
              for r in written.groupBy("unscored_reason").count().collect()}
    return {"date": a.date, "output": a.output, "rows": sum(counts.values()), "by_outcome": counts}


def main(argv=None) -> int:
    a = parse_args(argv)
    spark = SparkSession.builder.appName(f"pulso-nightly-{a.date}").getOrCreate()
    summary = run(spark, a)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
