#!/usr/bin/env bash
# libtorch as torch-sys sees it in this repository's builds: the PyPI torch wheel's include/ and lib/
# with libtorch_cuda.so left out, so `pulso` links libtorch's CPU library only and loads the CUDA
# one when a run may use a GPU (src/model/cuda.rs). Linked, the CUDA libraries cost every process
# about 0.5 s of start-up on a CPU host.
#
# usage: scripts/libtorch_view.sh PYTHON OUT    (the Makefile sets LIBTORCH=OUT, LIBTORCH_CXX11_ABI=0)
set -euo pipefail
PY=${1:?python interpreter of the venv holding torch}
OUT=${2:?output folder}
torch=$("$PY" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torch").origin))')
version=$("$PY" -c 'import importlib.metadata as m; print(m.version("torch"))')
abi=$("$PY" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
if [ "$abi" != 0 ]; then
  echo "libtorch_view: $torch uses the C++11 ABI; the Makefile's LIBTORCH_CXX11_ABI=0 would not match it" >&2
  exit 2
fi
[ -f "$torch/lib/libtorch_cpu.so" ] || { echo "libtorch_view: no $torch/lib/libtorch_cpu.so" >&2; exit 2; }
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp/lib"
ln -s "$torch/include" "$OUT.tmp/include"
for f in "$torch"/lib/*; do
  case "$(basename "$f")" in
    libtorch_cuda*.so) ;;
    *) ln -s "$f" "$OUT.tmp/lib/" ;;
  esac
done
# torch-sys checks this against the libtorch version it was written for.
echo "$version" >"$OUT.tmp/build-version"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "libtorch view $OUT: torch $version from $torch, without libtorch_cuda.so"
