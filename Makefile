# Two commands do all set-up on a fresh machine with python3 and make:
#   make demo   create .venv, install pamlib, run its main job on built-in synthetic data
#   make test   install the dev tools (and, where possible, Chromium and LHC-Forms for the
#               browser test), then ruff, mypy --strict, pytest (+doctests), sphinx -W
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test test-deps lint typecheck pytest docs bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e '.[arrow]'
	touch $@

$(DEVSTAMP): $(STAMP)
	$(PY) -m pip install --quiet --group dev
	touch $@

demo: $(STAMP)
	$(BIN)/pamlib demo

test: $(DEVSTAMP) test-deps lint typecheck pytest docs

# Chromium and LHC-Forms for the browser test; never fails (the test skips with the reason).
test-deps:
	-@bash scripts/install-test-deps.sh

lint: $(DEVSTAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

pytest: $(DEVSTAMP) test-deps
	$(BIN)/pytest

docs: $(DEVSTAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) docs/_build .pytest_cache .mypy_cache .ruff_cache .hypothesis pamlib-demo-output
