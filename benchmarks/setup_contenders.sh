#!/usr/bin/env bash
# Contenders for benchmarks/bench_perplexity.py, kept out of the project venv.
# torch first, so lm-eval resolves to the CPU build already installed; llama-cpp-python
# builds llama.cpp from source (~6 min on 2 cores when idle), with its OpenAI server.
set -euo pipefail
VENV=${VENV:-/work/venv-contenders}
python3 -m venv "$VENV"
"$VENV/bin/pip" install torch==2.13.0
"$VENV/bin/pip" install lm-eval 'lm-eval[hf]' 'lm-eval[api]'
# A native build (-march=native) enables AMX/AVX-512 paths that crash with a general protection
# fault in libggml-cpu on this VM, so build for AVX2 explicitly. The AVX2 wheel that
# scripts/install_llamacpp.sh built and cached (same version and flags) is reused when present.
CACHED=$(ls ${LOGITSCOPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/logitscope}/wheels/llama_cpp_python-*-avx2-*/*.whl 2>/dev/null | tail -1 || true)
if [ -n "$CACHED" ]; then
  "$VENV/bin/pip" install "$CACHED[server]"
else
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 "$VENV/bin/pip" install --no-cache-dir 'llama-cpp-python[server]'
fi
"$VENV/bin/python" -c "import lm_eval, llama_cpp, llama_cpp.server.app, transformers; print('contenders ready')"
