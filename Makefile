# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
# `make check` is the fast loop while working: ruff and the unit + fast integration tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FM_LAB_HOME ?= $(CURDIR)/.fm_lab
# every install takes the exact versions of constraints.txt (refreshed on purpose:
# `make constraints`), so CI is red only for the project's own changes
CONSTRAINTS := constraints.txt
# the test order is random; `make test SEED=1234` replays one
RANDOM_SEED := $(shell od -An -N2 -tu2 /dev/urandom | tr -d ' ')
SEED ?= $(RANDOM_SEED)
# pytest-xdist workers: the suite waits on subprocesses, kernels and a browser much of the time
JOBS ?= 2

.PHONY: demo test check lint typecheck jstest pytest-all bench constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/fm-lab run examples/quickstart.flow.yaml \
	  -i review="The export is broken and slow since the update. I want a refund!" \
	  -i customer="Ada" -i tier=pro --trace --plot demo_trace.png

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# the widget's TypeScript: type check, vitest (schema form, graph state reducer), and a fresh
# bundle for the browser tests
jstest:
	npm --prefix js ci
	npm --prefix js run typecheck
	npm --prefix js test
	npm --prefix js run build

# the whole suite in random order on $(JOBS) xdist workers, with branch coverage of every Python
# process (workers and the subprocesses they start; combined, then reported, also on failure)
test: lint typecheck jstest pytest-all

pytest-all: $(VENV)/.installed-test
	@echo "test order seed: $(SEED) (replay with: make test SEED=$(SEED))"
	rm -f .coverage .coverage.* .coverage-summary.json
	$(BIN)/python -m coverage run -m pytest -q -n $(JOBS) -p randomly --randomly-seed=$(SEED); status=$$?; \
	  $(BIN)/python -m coverage combine -q && $(BIN)/python -m coverage report | tail -n 25 \
	  && $(BIN)/python -m coverage json -q -o .coverage-summary.json \
	  && $(BIN)/python .ci/coverage_summary.py .coverage-summary.json; \
	  echo "test order seed: $(SEED)"; exit $$status

# fast: no browser, no kernels-and-crashes tests marked slow, no coverage
check: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -p randomly --randomly-seed=$(SEED) tests/unit tests/integration \
	  -m "not slow and not e2e"

# refresh the pinned versions on purpose: newest versions pyproject.toml allows, resolved
# together in a scratch venv; review the diff of constraints.txt and commit it
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --upgrade pip
	.venv-constraints/bin/python -m pip install --quiet -e ".[test]"
	{ sed -n '/^#/p' $(CONSTRAINTS); .venv-constraints/bin/python -m pip freeze \
	  | grep -v -i -E '^(-e |#|fm[-_]lab)'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf .venv-constraints

bench: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[bench]"
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/tracing.py
	$(BIN)/python benchmarks/agent_loop.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/mcp.py
	$(BIN)/python benchmarks/evals.py

clean:
	rm -rf $(VENV) .fm_lab .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
