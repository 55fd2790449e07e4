#!/usr/bin/env bash
# Run the whole test suite (sets up .venv first if needed). Extra arguments go to pytest.
#   bash scripts/test.sh
#   bash scripts/test.sh -m "not slow"     # the fast part only
# Without arguments, the numeric parity tests (-m parity) then run a second time on the CPU's
# AVX2 kernels, so a float32 comparison that holds on one kernel set only fails on any machine
# (docs/errors.md#tolerances-the-float32-noise-budget).
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
# axe-core for the accessibility checks (tests/test_web_layout.py) from npm into tests/node_modules, pinned by
# tests/package-lock.json; the tests read it from disk, so they run offline afterwards. Test-only: the page never loads it.
if [ ! -f tests/node_modules/axe-core/axe.min.js ] && command -v npm >/dev/null 2>&1; then
  echo "test: installing axe-core (npm ci --prefix tests)" >&2
  npm ci --prefix tests --no-audit --no-fund --loglevel=error >/dev/null
fi
export LOGITSCOPE_THREADS=${LOGITSCOPE_THREADS:-2}
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest
echo "test: the parity tests again on the AVX2 kernels (ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2)" >&2
ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 exec .venv/bin/python -m pytest -m parity -q
