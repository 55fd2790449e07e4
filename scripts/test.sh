#!/usr/bin/env bash
# Run the whole test suite (sets up .venv first if needed). Extra arguments go to pytest.
#   bash scripts/test.sh
#   bash scripts/test.sh -m "not slow"     # the fast part only
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-demo
# The llama.cpp engine's tests (tests/test_llamacpp.py) run when a wheel built earlier is cached
# (seconds); a build from source (~10-15 min on 2 cores) is not CI's job, so they skip otherwise.
bash scripts/install_llamacpp.sh --cached-only
# Browser tests drive Debian's chromium; install it when missing and we may (root + apt).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing chromium for the browser tests" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
export LOGITSCOPE_THREADS=${LOGITSCOPE_THREADS:-2}
exec .venv/bin/python -m pytest "$@"
