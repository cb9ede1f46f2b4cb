#!/usr/bin/env bash
# Both drift runs side by side, one core and one torch thread each (the fast unit tests are
# small-model work that a second thread barely speeds up); their logs are printed in turn and
# the script fails when either run fails.  The sandbox suites run in the lowest run only: they
# test the operating system and the standard library (no tracked package), and two of them at
# once see each other's files in the shared world-writable directories.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
[ -x .venv/bin/uv ] || bash scripts/setup.sh
WORKBENCH_THREADS=1 bash scripts/ci_drift.sh newest --ignore-glob="tests/test_sandbox*" > build/drift-newest.log 2>&1 & newest=$!
WORKBENCH_THREADS=1 bash scripts/ci_drift.sh lowest > build/drift-lowest.log 2>&1 & lowest=$!
wait "$newest"; rc_newest=$?
wait "$lowest"; rc_lowest=$?
cat build/drift-newest.log build/drift-lowest.log
echo "drift runs: newest exit $rc_newest, lowest exit $rc_lowest"
[ "$rc_newest" = 0 ] && [ "$rc_lowest" = 0 ]
