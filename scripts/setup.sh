#!/usr/bin/env bash
# Create .venv with exactly the tested set of packages (requirements-lock.txt, CPU torch) and
# the workbench installed editable.  Idempotent.  Uses uv (its version is in the lock too).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
UV_PIN=$(grep -oE '^uv==[^ ]+' requirements-lock.txt)
if ! { [ -x .venv/bin/uv ] && [ "uv==$(.venv/bin/uv --version | awk '{print $2}')" = "$UV_PIN" ]; }; then
  $VPY -m pip install -q --disable-pip-version-check "$UV_PIN"
fi
source scripts/torch_source.sh   # CPU torch: TORCH_SOURCE
UV=(.venv/bin/uv pip install -q --compile-bytecode --python "$VPY" "${TORCH_SOURCE[@]}")
if $VPY -c 'import platform as p, sys; sys.exit(not (sys.version_info[:2] == (3, 11) and
             p.system() == "Linux" and p.machine() in ("x86_64", "AMD64")))'; then
  "${UV[@]}" -r requirements-lock.txt
  "${UV[@]}" --no-deps -e .
else
  echo "setup: requirements-lock.txt is for CPython 3.11 on Linux x86_64; installing within" \
       "pyproject.toml's tested ranges instead (newest releases in range)" >&2
  "${UV[@]}" -e ".[test]"
fi
echo "workbench installed in .venv ($($VPY -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
