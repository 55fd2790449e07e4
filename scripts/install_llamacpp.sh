#!/usr/bin/env bash
# Install the optional llama.cpp engine (llama-cpp-python, built from source for this CPU) into .venv.
#   bash scripts/install_llamacpp.sh           # the first build that passes its smoke test:
#                                              #   native, then AVX-512 without AMX (CPUs with AVX-512), then AVX2
#   bash scripts/install_llamacpp.sh --avx2    # straight to the AVX2 build (portable to any AVX2 x86 CPU)
#   bash scripts/install_llamacpp.sh --cached-only  # install a cached wheel if one passes, never build
#                                              #   (scripts/test.sh: the engine's tests run when it is there)
# Run scripts/setup.sh first. The version is the one pinned by the `llamacpp` extra in pyproject.toml.
#
# A build takes ~6-10 min on 2 cores; each built wheel is kept under
# $LOGITSCOPE_CACHE/wheels (default ~/.cache/logitscope/wheels), keyed by version, build flags
# and (native builds only) the CPU's feature flags, so a second install takes seconds.
# Every install is checked by a smoke test in a child process (load the bundled GGUF, evaluate
# a few tokens). On the VMs of this project's kind the native build crashes in its AMX matmul
# (SIGSEGV at ldtilecfg in an OpenMP worker: the guest may not use AMX tiles), so the next
# flavour is AVX-512 with AMX off, then AVX2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PIP="$PY -m pip --disable-pip-version-check -q"
[ -x "$PY" ] || { echo "install_llamacpp: run 'bash scripts/setup.sh --no-demo' first" >&2; exit 2; }
VERSION=$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
[ -n "$VERSION" ] || { echo "install_llamacpp: no llama-cpp-python pin in pyproject.toml" >&2; exit 2; }
CACHE=$($PY -c 'from logitscope.settings import cache_dir; print(cache_dir())')/wheels

COMMON="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF"
NATIVE="-DGGML_NATIVE=ON $COMMON"
NO_AMX="-DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF"
AVX2="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF \
$NO_AMX $COMMON"
AVX512="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=ON \
-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON $NO_AMX $COMMON"

# The folder that holds (or will hold) the wheel for one flavour: version + flags (+ CPU flags when native).
wheel_dir() {
  local flavour=$1 flags=$2 cpu=""
  [ "$flavour" = native ] && cpu=$(grep -m1 '^flags' /proc/cpuinfo || true)
  echo "$CACHE/llama_cpp_python-$VERSION-$flavour-$(printf '%s|%s' "$flags" "$cpu" | sha256sum | cut -c1-12)"
}

# Build the wheel into its cache folder unless it is already there (nice: the build is CPU-heavy;
# --no-cache-dir: pip's own wheel cache would hand back a wheel built with other flags).
build() {
  local dir=$1 flags=$2
  if ls "$dir"/*.whl >/dev/null 2>&1; then echo "install_llamacpp: cached wheel in $dir" >&2; return; fi
  [ "$MODE" != --cached-only ] || return 1
  echo "install_llamacpp: building llama-cpp-python $VERSION ($flags); several minutes" >&2
  local tmp="$dir.tmp$$"
  rm -rf "$tmp"; mkdir -p "$tmp" || return 1
  CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) nice -n 10 \
    $PIP wheel --no-cache-dir --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$tmp" || return 1
  rm -rf "$dir" && mv "$tmp" "$dir"
}

# Load the bundled GGUF and evaluate a few tokens in a child process: a crash shows as a non-zero exit.
# $1: a CPU feature the build must not use ("" for none), to check that the flags took effect.
smoke() {
  timeout 300 "$PY" - "$1" <<'EOF'
import math, sys
import llama_cpp
from logitscope.loading import bundled_gguf_path
features = llama_cpp.llama_print_system_info().decode()
assert not sys.argv[1] or f"{sys.argv[1]} = 1" not in features, f"built with {sys.argv[1]}: {features}"
llm = llama_cpp.Llama(str(bundled_gguf_path()), n_ctx=64, n_threads=1, logits_all=True, verbose=False)
llm.eval(llm.tokenize(b"To be or not to", add_bos=False))
assert all(math.isfinite(x) for x in llm.scores[llm.n_tokens - 1]), "non-finite logits"
print("install_llamacpp: smoke test passed (llama-cpp-python", llama_cpp.__version__ + ")")
EOF
}

# Build (or take from the cache) one flavour, install it, and smoke-test it; a flavour that
# failed its smoke test on this CPU is marked and not tried again (delete the mark to retry).
try_flavour() {
  local flavour=$1 flags=$2 forbidden=$3 dir
  dir=$(wheel_dir "$flavour" "$flags")
  if [ -e "$dir/failed" ]; then
    echo "install_llamacpp: the $flavour build failed its smoke test on this CPU before ($dir/failed)" >&2
    return 1
  fi
  # (called inside `if`, where set -e is off: every step checks its own status)
  build "$dir" "$flags" || return 1
  $PIP install --force-reinstall --no-deps "$dir"/*.whl || return 1
  $PIP install "$dir"/*.whl || return 1  # its small pure-Python dependencies (numpy, jinja2, diskcache, ...)
  echo "install_llamacpp: testing the $flavour build" >&2
  smoke "$forbidden" && return 0
  touch "$dir/failed"
  return 1
}

has_avx512() {
  local f
  for f in avx512f avx512bw avx512vl avx512dq avx512cd avx512_vnni avx512vbmi avx512_bf16 avx_vnni; do
    grep -qw "$f" /proc/cpuinfo || return 1
  done
}

MODE=${1:-}
if [ "$MODE" != --avx2 ]; then
  try_flavour native "$NATIVE" "" && exit 0
  if has_avx512; then
    echo "install_llamacpp: trying AVX-512 without AMX" >&2
    try_flavour avx512 "$AVX512" AMX_INT8 && exit 0
  fi
  echo "install_llamacpp: trying the AVX2 build" >&2
fi
try_flavour avx2 "$AVX2" AVX512 && exit 0
if [ "$MODE" = --cached-only ]; then
  echo "install_llamacpp: no cached wheel passed its smoke test; not building (--cached-only)" >&2
  exit 0
fi
exit 1
