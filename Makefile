# egosim: `make demo` and `make test` do all the set-up on a fresh machine.
# `make test` runs the whole suite (as CI does, .ci/run); `make test-fast` skips the
# tests marked slow. `make bench` runs benchmarks/run_all.py, `make lint` ruff.
# The pinned CPU build of torch is installed first, so that smplx / stable-baselines3
# do not pull a multi-GB CUDA build; override TORCH_SPEC for another build, e.g.
#   make test TORCH_SPEC="torch==2.14.1"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
ARGS ?=

.PHONY: demo test test-fast bench lint install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/egosim demo $(ARGS)

test: install-test
	$(BIN)/python -m pytest -q $(ARGS)

test-fast: install-test
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

bench: install
	$(BIN)/python benchmarks/run_all.py $(ARGS)

lint: install-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info outputs
