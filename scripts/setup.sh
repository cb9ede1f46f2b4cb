#!/usr/bin/env bash
# Create .venv and install the workbench with its test extras (idempotent, CPU torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPIP=".venv/bin/python -m pip"
$VPIP install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # CPU torch: a local wheel when the machine has one (pip's find-links), else PyTorch's CPU index.
  # An unpinned `pip install torch` would pull several GB of CUDA packages.
  if ls ${PIP_FIND_LINKS:-/opt/wheels}/torch-2.13.0*.whl >/dev/null 2>&1; then
    $VPIP install -q "torch==2.13.0"
  else
    $VPIP install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
$VPIP install -q -e ".[test]"
echo "workbench installed in .venv ($(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
