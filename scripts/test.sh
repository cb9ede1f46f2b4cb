#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, unit tests, notebooks (nbval), in two phases:
#   1. everything not marked `serial`, on two workers (pytest-xdist, one torch thread each; a
#      test file or a notebook stays on one worker);
#   2. the tests marked `serial` (tests/conftest.py: the chapters that assert measured speed-ups,
#      under nbval and in the browser; the server tests, load-time bounds, the sandbox suites),
#      one at a time.
# Extra arguments go to both phases (`bash scripts/test.sh -x`); WORKBENCH_WORKERS=1 runs
# phase 1 without workers.  Fails when either phase fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1  # .venv from requirements-lock.txt
bash scripts/setup_browser.sh || exit 1  # Debian chromium for the browser tests
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0
PYTEST=(.venv/bin/python -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg
        --nbval-current-env -p no:cacheprovider --durations=20)
workers=${WORKBENCH_WORKERS:-2}
xdist=(); [ "$workers" -gt 1 ] && xdist=(-n "$workers" --dist loadfile)
t0=$SECONDS
# one thread per worker and per kernel it starts (nbval's, the browser test's JupyterLab): two
# busy processes with two OpenMP threads each on two cores spin against each other
WORKBENCH_THREADS=1 OMP_NUM_THREADS=1 "${PYTEST[@]}" -m "not serial" "${xdist[@]}" "$@"; rc1=$?
t1=$SECONDS
WORKBENCH_THREADS=${WORKBENCH_THREADS:-2} "${PYTEST[@]}" -m serial "$@"; rc2=$?
if [ "$rc1" = 5 ] && [ "$rc2" = 5 ]; then echo "test.sh: no tests collected" >&2; exit 5; fi
[ "$rc1" = 5 ] && rc1=0; [ "$rc2" = 5 ] && rc2=0  # all the tests asked for are in one phase
echo "test.sh: phase 1 ($workers workers) exit $rc1 in $((t1 - t0)) s; phase 2 (serial) exit $rc2 in $((SECONDS - t1)) s"
[ "$rc1" = 0 ] && [ "$rc2" = 0 ]
