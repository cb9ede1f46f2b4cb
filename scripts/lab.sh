#!/usr/bin/env bash
# The main job: set-up, then JupyterLab on notebooks/ with the embedded models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec .venv/bin/jupyter lab --notebook-dir=notebooks --ip="${LAB_IP:-127.0.0.1}" --port="${LAB_PORT:-8888}" "$@"
