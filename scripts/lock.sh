#!/usr/bin/env bash
# Refresh requirements-lock.txt: every package `scripts/setup.sh` installs, at exact versions,
# resolved from pyproject.toml (.[test]) for CPython 3.11 on Linux x86_64 (this machine, CI and
# Binder), with PyTorch's CPU wheel.  Review the diff, run `bash scripts/test.sh`, commit.
#   bash scripts/lock.sh                 # keep the locked versions; add/drop what pyproject changed
#   bash scripts/lock.sh --upgrade       # the newest releases within pyproject's ranges
#   bash scripts/lock.sh --upgrade-package transformers   # (arguments go to `uv pip compile`)
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-$(command -v uv || echo .venv/bin/uv)}
[ -x "$UV" ] || { echo "lock.sh needs uv: bash scripts/setup.sh (or pip install uv)" >&2; exit 1; }
TORCH=$(grep -oE '^torch==[^ ]+' requirements-lock.txt 2>/dev/null || echo "torch==2.13.0+cpu")
source scripts/torch_source.sh   # CPU torch: TORCH_SOURCE
pin=$(mktemp); trap 'rm -f "$pin" requirements-lock.body' EXIT; echo "$TORCH" > "$pin"
# uv keeps the versions of an existing output file unless told to upgrade them
grep -v '^uv==' requirements-lock.txt > requirements-lock.body 2>/dev/null || true
"$UV" pip compile pyproject.toml --extra test --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 "${TORCH_SOURCE[@]}" --constraint "$pin" \
  --no-header --no-annotate --no-emit-find-links --no-emit-index-url -q -o requirements-lock.body "$@"
UVV=$("$UV" --version | awk '{print $2}')
{
  echo "# The tested set: every package scripts/setup.sh installs, at the versions the suite ran on."
  echo "# CPython 3.11, Linux x86_64; torch is PyTorch's CPU wheel (download.pytorch.org/whl/cpu)."
  echo "# Refresh: bash scripts/lock.sh   (uv pip compile of pyproject.toml [test]; see the script)"
  grep -v '^uv==' requirements-lock.body
  echo "uv==$UVV"
} > requirements-lock.txt
echo "requirements-lock.txt: $(grep -c '==' requirements-lock.txt) packages"
