# Two commands do all set-up on a fresh machine with python3 and make:
#   make demo   create .venv, install pamlib, run its main job on built-in synthetic data
#   make test   install the dev tools and the spark extra (and, where possible, Chromium and
#               LHC-Forms for the browser test), then ruff, mypy --strict, pytest (+doctests),
#               sphinx -W; the Spark tests skip, saying why, where Java 17+ is missing
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test test-deps lint typecheck pytest docs bench fuzz clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): $(STAMP)
	$(PY) -m pip install --quiet --group dev
	$(PY) -m pip install --quiet -e '.[spark]'
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e examples/pamlib-service
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

# Coverage-guided fuzzing with atheris (installed here only, never by the other targets):
# FUZZ_SECONDS per surface, starting from tests/fuzz/corpus. New failures are kept in
# $(FUZZ_WORK)/crashes/SURFACE/ (fuzz/README.md says what to do with them) and fail the target.
FUZZ_SECONDS  ?= 60
FUZZ_SURFACES ?= csv fhir calibration rules mapping fhir-mapping
FUZZ_WORK     ?= build/fuzz

fuzz: $(DEVSTAMP)
	$(PY) -m pip install --quiet 'atheris>=2.3'
	@mkdir -p $(FUZZ_WORK)/logs
	@status=0; for s in $(FUZZ_SURFACES); do \
	  echo "== fuzz $$s for $(FUZZ_SECONDS) s (log: $(FUZZ_WORK)/logs/$$s.log)"; \
	  $(PY) fuzz/run.py $$s --seconds $(FUZZ_SECONDS) --work $(FUZZ_WORK) \
	    >$(FUZZ_WORK)/logs/$$s.log 2>&1 || status=1; \
	  grep -A2 -e '^fuzz: ' -e '^==[0-9]*== ERROR' $(FUZZ_WORK)/logs/$$s.log | grep -v Instrumenting; \
	  grep -h -e '^Done [0-9]* runs' $(FUZZ_WORK)/logs/$$s.log; \
	done; \
	found=$$(find $(FUZZ_WORK)/crashes -type f 2>/dev/null); \
	if [ -n "$$found" ]; then echo "== failures to minimise and commit (fuzz/README.md):"; \
	  echo "$$found"; status=1; fi; \
	exit $$status

clean:
	rm -rf $(VENV) docs/_build .pytest_cache .mypy_cache .ruff_cache .hypothesis pamlib-demo-output
