# `make run` sets everything up and runs the main job on seeds/; `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
RAG := $(VENV)/bin/rag
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run test bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(RAG) reindex seeds/
	$(RAG) search "What did Blinken say about China?" --k 3

test: setup
	$(PY) -m pytest -q
