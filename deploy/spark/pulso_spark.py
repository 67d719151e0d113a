"""Score a Spark DataFrame with pulso: one `pulso score --arrow` process per task, via mapInArrow.

Each Spark task starts one pulso process, streams its partition's Arrow batches into the process's
standard input and yields the batches pulso writes on its standard output (the input columns plus
the score columns). Memory per task stays at about one Arrow batch
(`spark.sql.execution.arrow.maxRecordsPerBatch`, 10,000 rows by default) plus the model.

    from pulso_spark import score
    scored = score(df, binary="/opt/pulso/bin/pulso", model="/opt/pulso/models/pulso-multi")

Settings, first found wins: the keyword argument, the Spark conf (`spark.pulso.binary`,
`spark.pulso.model`, `spark.pulso.precision`, `spark.pulso.threads`), then the defaults (`pulso`
on the worker's PATH; the model pulso finds beside its binary). Relative paths are looked up in
the task's working directory (where YARN and Kubernetes unpack `--archives`) and then in
SparkFiles' root (where `--files` / `--archives` land in local and standalone mode).

Before it starts pulso, each task checks that the binary and the model exist on its worker; if
not, the task fails with an error naming the path, the setting and how to ship it (see
README.md beside this file). If pulso fails, the task's error carries the end of pulso's stderr.

Needs pyarrow on the workers (PySpark's Arrow support needs it anyway) and PySpark 3.3 or later.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Iterator, Optional

import pyarrow as pa

# The columns pulso adds (see `pulso score --arrow`), as a Spark DDL schema; names and types are
# those of pulso's signals table.
SCORE_COLUMNS_DDL = (
    "sentiment string, p_negative float, p_neutral float, p_positive float, "
    "sentiment_score float, language string, truncated boolean, unscored_reason string"
)
SCORE_COLUMNS = [c.split()[0] for c in SCORE_COLUMNS_DDL.split(", ")]
_STRING_SCORE_COLUMNS = ("sentiment", "language", "unscored_reason")
# Where pulso itself looks for its default model, relative to the folder of its binary.
_DEFAULT_MODEL_CANDIDATES = ("models/pulso-multi", "../models/pulso-multi", "../../models/pulso-multi")
_STDERR_TAIL = 4000


class PulsoWorkerError(RuntimeError):
    """pulso cannot run on this worker (binary or model missing), or it failed."""


@dataclass
class PulsoSettings:
    """What each task needs to start pulso. Built on the driver, shipped to the tasks."""

    binary: str = "pulso"
    binary_setting: str = "spark.pulso.binary"
    model: Optional[str] = None
    model_setting: str = "spark.pulso.model"
    precision: str = "fp32"
    # CPU threads per pulso process; None = the task's CPUs (spark.task.cpus).
    threads: Optional[int] = None
    text_column: str = "text"
    # Extra environment for pulso (e.g. LD_LIBRARY_PATH to libtorch, PULSO_TOKEN_BUDGET).
    env: dict = field(default_factory=dict)


def _spark_files_root() -> Optional[str]:
    try:
        from pyspark import SparkFiles

        return SparkFiles.getRootDirectory()
    except Exception:  # noqa: BLE001 - no SparkContext/worker info: no SparkFiles root
        return None


def _locate(path: str) -> list[str]:
    """Where a setting's path may be on this worker, in lookup order."""
    if os.path.isabs(path):
        return [path]
    out = [os.path.abspath(path)]
    root = _spark_files_root()
    if root:
        out.append(os.path.join(root, path))
    return out


def _where() -> str:
    return f"worker {socket.gethostname()} (working directory {os.getcwd()})"


def resolve_binary(s: PulsoSettings) -> str:
    """The pulso binary on this worker, or PulsoWorkerError naming the path and the setting."""
    if os.sep not in s.binary and not os.path.exists(s.binary):
        found = shutil.which(s.binary)
        if found:
            return found
        looked = f"{s.binary!r} on PATH ({os.environ.get('PATH', '')})"
        candidates = _locate(s.binary)
    else:
        candidates = _locate(s.binary)
        looked = ", ".join(candidates)
    for c in candidates:
        if os.path.isfile(c):
            if not os.access(c, os.X_OK):
                raise PulsoWorkerError(
                    f"the pulso binary {c} on {_where()} is not executable (setting "
                    f"{s.binary_setting}); ship it inside an archive (--archives keeps the mode bits; "
                    "--files may not) or chmod +x it in the init script"
                )
            return c
    raise PulsoWorkerError(
        f"the pulso binary is not on {_where()}: looked for {looked} (set by {s.binary_setting}); "
        "ship it with spark-submit --archives pulso.tar.gz#pulso and point spark.pulso.binary "
        "(or binary=) at pulso/bin/pulso, or install it at that path on every node (init script); "
        "see deploy/spark/README.md"
    )


def _is_model_dir(p: str) -> bool:
    return os.path.isfile(os.path.join(p, "config.json"))


def resolve_model(s: PulsoSettings, binary: str) -> str:
    """The model folder on this worker, or PulsoWorkerError naming the path and the setting."""
    if s.model:
        candidates = _locate(s.model)
    else:
        bindir = os.path.dirname(os.path.realpath(binary))
        candidates = [os.path.normpath(os.path.join(bindir, c)) for c in _DEFAULT_MODEL_CANDIDATES]
    for c in candidates:
        if _is_model_dir(c):
            return c
    what = f"{s.model!r}" if s.model else "no model given, and the default pulso-multi"
    raise PulsoWorkerError(
        f"the pulso model is not on {_where()}: {what} not found (looked for config.json in "
        f"{', '.join(candidates)}; set by {s.model_setting}); ship the model folder inside the "
        "pulso archive (--archives) and point spark.pulso.model (or model=) at it, or copy it to "
        "every node (init script); see deploy/spark/README.md"
    )


def _task_cpus() -> int:
    try:
        from pyspark import TaskContext

        tc = TaskContext.get()
        if tc is not None:
            return max(1, int(tc.cpus()))
    except Exception:  # noqa: BLE001 - outside a task, or an old PySpark
        pass
    return 1


def _match_text_string_type(batch: pa.RecordBatch, text_type: pa.DataType) -> pa.RecordBatch:
    """pulso writes its string columns as utf8; when Spark sends large strings
    (spark.sql.execution.arrow.useLargeVarTypes), it expects large strings back."""
    if not (pa.types.is_large_string(text_type) or pa.types.is_string_view(text_type)):
        return batch
    cols = []
    for name, col in zip(batch.schema.names, batch.columns):
        cols.append(col.cast(text_type) if name in _STRING_SCORE_COLUMNS else col)
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def score_batches(batches: Iterator[pa.RecordBatch], s: PulsoSettings) -> Iterator[pa.RecordBatch]:
    """The mapInArrow function: one pulso process for this task's batches.

    A writer thread feeds the input batches to pulso's stdin while this generator yields what pulso
    writes, so each side only ever holds about one batch (the pipes apply back-pressure).
    """
    binary = resolve_binary(s)
    model = resolve_model(s, binary)
    it = iter(batches)
    first = next(it, None)
    if first is None:
        return
    threads = s.threads or _task_cpus()
    cmd = [
        binary, "score", "--arrow",
        "--model", model,
        "--precision", s.precision,
        "--threads", str(threads),
        "--text-column", s.text_column,
    ]
    env = dict(os.environ)
    env.update({k: str(v) for k, v in s.env.items()})
    text_type = first.schema.field(s.text_column).type if s.text_column in first.schema.names else None
    # stderr goes to a file: a pipe nobody reads could fill and stall pulso.
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env)
        feed_error: list[BaseException] = []

        def feed() -> None:
            try:
                with pa.ipc.new_stream(proc.stdin, first.schema) as w:
                    w.write_batch(first)
                    for b in it:
                        w.write_batch(b)
            except (BrokenPipeError, OSError, pa.ArrowIOError):
                pass  # pulso stopped reading: its exit status and stderr say why
            except BaseException as e:  # noqa: BLE001 - an upstream failure: re-raised below
                feed_error.append(e)
            finally:
                try:
                    proc.stdin.close()
                except OSError:
                    pass

        feeder = threading.Thread(target=feed, name="pulso-feed", daemon=True)
        feeder.start()

        def failure(what: str) -> PulsoWorkerError:
            try:
                proc.wait(timeout=10)  # a broken output stream usually means pulso has exited
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode != 0:
                what = "failed"
            err.seek(0)
            tail = err.read().decode("utf-8", "replace")[-_STDERR_TAIL:].strip()
            return PulsoWorkerError(
                f"pulso {what} on {_where()} (exit status {proc.returncode}; command: {' '.join(cmd)})"
                + (f"; pulso's stderr:\n{tail}" if tail else "; pulso wrote nothing on stderr")
            )

        try:
            try:
                reader = pa.ipc.open_stream(proc.stdout)
                for out in reader:
                    yield _match_text_string_type(out, text_type) if text_type is not None else out
            except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as e:
                if feed_error:
                    raise feed_error[0]
                raise failure(f"stopped mid-stream ({e})") from None
            rc = proc.wait()
            feeder.join()
            if feed_error:
                raise feed_error[0]
            if rc != 0:
                raise failure("failed")
        finally:
            if proc.poll() is None:  # the consumer stopped early (e.g. a limit)
                proc.kill()
                proc.wait()
            feeder.join(timeout=10)


def output_schema(df, text_column: str = "text"):
    """The schema of `score(df)`: df's columns, then the score columns."""
    from pyspark.sql.types import StructType

    names = set(df.columns)
    if text_column not in names:
        raise ValueError(
            f"the DataFrame has no column {text_column!r} (its columns: {', '.join(df.columns)}); "
            f"pass text_column=... or rename the text column"
        )
    clash = [c for c in SCORE_COLUMNS if c in names]
    if clash:
        raise ValueError(
            f"the DataFrame already has column(s) {', '.join(clash)}, which pulso adds; "
            "drop or rename them before scoring"
        )
    return StructType(df.schema.fields + StructType.fromDDL(SCORE_COLUMNS_DDL).fields)


def settings_from(spark, **kw) -> PulsoSettings:
    """Settings from keyword arguments, then the Spark conf, then the defaults."""
    conf = spark.conf

    def pick(key: str, conf_key: str, default):
        if kw.get(key) is not None:
            return kw[key], f"the {key}= argument of pulso_spark.score"
        v = conf.get(conf_key, None)
        if v not in (None, ""):
            return v, conf_key
        return default, f"{conf_key} (not set: default {default!r})" if default else conf_key

    binary, binary_setting = pick("binary", "spark.pulso.binary", "pulso")
    model, model_setting = pick("model", "spark.pulso.model", None)
    precision, _ = pick("precision", "spark.pulso.precision", "fp32")
    threads, _ = pick("threads", "spark.pulso.threads", None)
    return PulsoSettings(
        binary=str(binary),
        binary_setting=binary_setting,
        model=str(model) if model else None,
        model_setting=model_setting,
        precision=str(precision),
        threads=int(threads) if threads else None,
        text_column=kw.get("text_column") or "text",
        env=dict(kw.get("env") or {}),
    )


def score(
    df,
    binary: Optional[str] = None,
    model: Optional[str] = None,
    text_column: str = "text",
    precision: Optional[str] = None,
    threads: Optional[int] = None,
    env: Optional[dict] = None,
):
    """`df` with pulso's score columns added (see SCORE_COLUMNS_DDL), one pulso process per task.

    precision: fp32 (default, deterministic), bf16 or auto. threads: CPU threads per pulso process
    (default: spark.task.cpus). env: extra environment for pulso on the workers.
    """
    s = settings_from(
        df.sparkSession,
        binary=binary,
        model=model,
        text_column=text_column,
        precision=precision,
        threads=threads,
        env=env,
    )
    schema = output_schema(df, s.text_column)
    return df.mapInArrow(lambda batches: score_batches(batches, s), schema)
