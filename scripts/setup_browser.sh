#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/test_browser.py, tests/test_export.py):
# Debian's `chromium` package, driven by Playwright (a Python test extra) with the system
# executable; Playwright's own browser download is not used.  Idempotent.  Where apt-get
# cannot run as root it only warns: the browser tests then skip (and fail under CI=true).
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"
if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
  echo "installing Debian's chromium for the browser tests..."
  $SUDO apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      chromium >/dev/null ||
    echo "setup_browser: apt-get could not install chromium" >&2
else
  echo "setup_browser: no chromium and no root apt-get here; install Chromium and set" \
       "WORKBENCH_CHROMIUM=/path/to/chromium to run the browser tests" >&2
fi
exit 0
