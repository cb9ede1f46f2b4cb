#!/usr/bin/env bash
# Drift check: the fast unit tests (not `slow`, not the browser, server and notebook tiers) in
# a second environment, so that a breaking release is seen here before a user meets it.
#   bash scripts/ci_drift.sh newest   # the lock, then the newest transformers, tokenizers,
#                                     # plotly, ipywidgets and anywidget (and what they need)
#   bash scripts/ci_drift.sh lowest   # every runtime dependency at pyproject.toml's lower bound
# torch stays the locked CPU wheel in both (see pyproject.toml).  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: ci_drift.sh newest|lowest [pytest args]}; shift
[ -x .venv/bin/uv ] || bash scripts/setup.sh
env=.drift/$kind
rm -rf "$env"
.venv/bin/uv venv -q --python .venv/bin/python "$env"
source scripts/torch_source.sh   # CPU torch: TORCH_SOURCE
UV=(.venv/bin/uv pip install -q --python "$env/bin/python" "${TORCH_SOURCE[@]}")
case $kind in
  newest)
    "${UV[@]}" -r requirements-lock.txt
    "${UV[@]}" --upgrade transformers tokenizers plotly ipywidgets anywidget
    "${UV[@]}" --no-deps -e . ;;
  lowest)
    .venv/bin/python - > "$env/lower.txt" <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
torch = re.search(r"^torch==(\S+)", open("requirements-lock.txt").read(), re.M).group(1)
for d in deps:
    name, low = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([^,;\s]+)", d).groups()
    print(f"{name}=={torch if name == 'torch' else low}")
PY
    "${UV[@]}" --constraint "$env/lower.txt" -e ".[test]" ;;
  *) echo "ci_drift.sh: the first argument is newest or lowest, got '$kind'" >&2; exit 2 ;;
esac
echo "drift ($kind): $("$env/bin/python" -c 'import importlib.metadata as m
print(", ".join(f"{p} {m.version(p)}" for p in ("torch", "transformers", "tokenizers", "plotly", "ipywidgets", "anywidget", "numpy", "huggingface-hub")))')"
if [ "$kind" = lowest ]; then   # the declared floors are what was installed, or the run is void
  "$env/bin/python" - "$env/lower.txt" <<'PY'
import importlib.metadata as m, sys
from packaging.version import Version
bad = [ln for ln in open(sys.argv[1]).read().split()
       if Version(m.version(ln.split("==")[0])) != Version(ln.split("==")[1])]
sys.exit(f"lower bounds not installed as declared: {bad}" if bad else 0)
PY
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0 WORKBENCH_THREADS=${WORKBENCH_THREADS:-2}
exec "$env/bin/python" -m pytest tests -m "not tier and not slow" -p no:cacheprovider -q "$@"
