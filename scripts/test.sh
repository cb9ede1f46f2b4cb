#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, unit tests, notebooks (nbval).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh  # .venv from requirements-lock.txt
bash scripts/setup_browser.sh  # Debian chromium for the browser tests
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0 WORKBENCH_THREADS=${WORKBENCH_THREADS:-2}
exec .venv/bin/python -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg \
  --nbval-current-env -p no:cacheprovider "$@"
