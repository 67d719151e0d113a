#!/usr/bin/env bash
# Installs pulso so the folder can be copied to any host with the same OS (no .venv, no Rust):
#
#   PREFIX/bin/pulso                 rpath $ORIGIN/../lib
#   PREFIX/lib/*.so*                 the libtorch libraries it loads, rpath $ORIGIN
#   PREFIX/models/pulso-multi        the shipped model (found next to the executable)
#
# usage: scripts/install.sh BIN PREFIX [full|cpu]
#   full  every library the binary loads from the venv (libtorch + CUDA): GPU hosts (~2.9 GB)
#   cpu   libtorch_cpu, libc10, libgomp, libcudart and libcupti (libtorch_cpu links those two small
#         CUDA runtime libraries): CPU hosts (~0.55 GB). `--device cuda` fails there with an error
#         that says so. (For a binary built with CUDA linked in, also a stub libtorch_cuda.so with
#         the two symbols tch's CUDA-linking shim references.)
set -euo pipefail
BIN=${1:?binary}
PREFIX=${2:?prefix}
VARIANT=${3:-full}
command -v patchelf >/dev/null || {
  echo "install: patchelf is needed (Debian: apt-get install patchelf)" >&2
  exit 2
}
[ -x "$BIN" ] || { echo "install: $BIN not found; run make build (or make build-ci) first" >&2; exit 2; }
rm -rf "$PREFIX/bin/pulso" "$PREFIX/lib" "$PREFIX/models/pulso-multi"
mkdir -p "$PREFIX/bin" "$PREFIX/lib" "$PREFIX/models"

# Every library the binary resolves outside the system folders (the venv's torch and nvidia libs).
outside() { ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | grep -v -E '^/(usr/)?lib(64)?/'; }
missing=$(ldd "$BIN" | grep 'not found' || true)
[ -z "$missing" ] || { echo "install: unresolved libraries: $missing" >&2; exit 2; }
# A Makefile build links libtorch_cpu only and dlopens libtorch_cuda.so for GPU runs
# (src/model/cuda.rs): the full variant carries it and everything it loads.
TORCH_LIB=$(dirname "$(ldd "$BIN" | awk '$1 == "libtorch_cpu.so" {print $3}')")
CUDA_LINKED=$(ldd "$BIN" | awk '$1 == "libtorch_cuda.so" {print "yes"}')
{
  outside "$BIN"
  if [ "$VARIANT" = full ] && [ -z "$CUDA_LINKED" ] && [ -f "$TORCH_LIB/libtorch_cuda.so" ]; then
    echo "$TORCH_LIB/libtorch_cuda.so"
    outside "$TORCH_LIB/libtorch_cuda.so"
  fi
} | sort -u >"$PREFIX/.libs"
mapfile -t LIBS <"$PREFIX/.libs"
rm -f "$PREFIX/.libs"

keep() {
  case "$VARIANT" in
    full) return 0 ;;
    cpu) case "$(basename "$1")" in
        libtorch_cpu.so | libc10.so | libgomp-*.so* | libcudart.so.* | libcupti.so.*) return 0 ;;
        *) return 1 ;;
      esac ;;
    *) echo "install: variant must be full or cpu" >&2; exit 2 ;;
  esac
}
for l in "${LIBS[@]}"; do
  if keep "$l"; then
    cp -L "$l" "$PREFIX/lib/"
    patchelf --set-rpath '$ORIGIN' "$PREFIX/lib/$(basename "$l")"
  fi
done
if [ "$VARIANT" = cpu ] && [ -n "$CUDA_LINKED" ]; then
  # A binary built with CUDA linked in (LIBTORCH_USE_PYTORCH=1): tch links libtorch_cuda through a
  # shim that names two of its functions; on a CPU host they are never reached (CUDA is reported
  # unavailable), so a stub library satisfies the loader.
  tmp=$(mktemp -d)
  cat >"$tmp/stub.c" <<'EOF'
/* Stand-ins for at::cuda::warp_size() and at::cuda::getCurrentCUDABlasHandle() on CPU hosts. */
int _ZN2at4cuda9warp_sizeEv(void) { return 0; }
void *_ZN2at4cuda24getCurrentCUDABlasHandleEv(void) { return 0; }
EOF
  cc -shared -fPIC -O2 -Wl,-soname,libtorch_cuda.so -o "$PREFIX/lib/libtorch_cuda.so" "$tmp/stub.c"
  rm -rf "$tmp"
fi
cp "$BIN" "$PREFIX/bin/pulso"
patchelf --set-rpath '$ORIGIN/../lib' "$PREFIX/bin/pulso"
MODEL_SRC=$(dirname "$0")/../models/pulso-multi
cp -r "$MODEL_SRC" "$PREFIX/models/pulso-multi"
echo "installed $VARIANT pulso into $PREFIX ($(du -sh "$PREFIX" | cut -f1)): $PREFIX/bin/pulso"
