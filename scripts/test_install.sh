#!/usr/bin/env bash
# `make install` checked as a cron host would see it: install (cpu variant by default), copy the
# folder elsewhere, hide the build tree's .venv and models (a private mount namespace where we may
# mount, else only a clean environment plus an ldd check), run `pulso score` and compare its output
# with the build tree's binary.
set -euo pipefail
BIN=${1:?binary}
VARIANT=${2:-cpu}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/pulso-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$ROOT/scripts/install.sh" "$BIN" "$tmp/prefix" "$VARIANT" >/dev/null
cp -r "$tmp/prefix" "$tmp/copied"
rm -rf "$tmp/prefix"
printf 'great product, love it\nentrega atrasada, péssimo atendimento\nel soporte fue lento\n' >"$tmp/in.txt"
want=$(env -u PULSO_MODEL "$BIN" score --threads 1 --model "$ROOT/models/pulso-multi" "$tmp/in.txt")
venv=$(readlink -f "$ROOT/.venv")
if ldd "$tmp/copied/bin/pulso" | grep -E "not found|$venv" ; then
  echo "test-install: FAIL: the installed binary resolves libraries outside its folder" >&2
  exit 1
fi
run='env -i '"$tmp"'/copied/bin/pulso score --threads 1 '"$tmp"'/in.txt'
if [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
  got=$(unshare -m --propagation private bash -c "mount -t tmpfs none '$venv' && mount -t tmpfs none '$ROOT/models' && $run")
  how="with $venv and $ROOT/models hidden"
else
  got=$($run)
  how="in a clean environment (no mount namespace here: .venv not hidden, ldd checked instead)"
fi
if [ "$got" != "$want" ]; then
  echo "test-install: FAIL: installed pulso scored differently" >&2
  diff <(echo "$want") <(echo "$got") >&2 || true
  exit 1
fi
if [ "$VARIANT" = cpu ]; then
  # No CUDA libraries in this variant: a GPU run must fail and say what to install instead.
  if err=$(env -i "$tmp/copied/bin/pulso" score --threads 1 --device cuda "$tmp/in.txt" 2>&1 >/dev/null); then
    echo "test-install: FAIL: --device cuda succeeded on the cpu variant" >&2
    exit 1
  fi
  case "$err" in
    *"full variant"*) ;;
    *) echo "test-install: FAIL: --device cuda on the cpu variant did not say what to install: $err" >&2; exit 1 ;;
  esac
fi
echo "test-install: OK ($VARIANT variant, $(du -sh "$tmp/copied" | cut -f1), copied folder $how)"
