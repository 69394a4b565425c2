# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FM_LAB_HOME ?= $(CURDIR)/.fm_lab

.PHONY: demo test lint typecheck jstest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
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

test: lint typecheck jstest
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/tracing.py
	$(BIN)/python benchmarks/agent_loop.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/batch.py

clean:
	rm -rf $(VENV) .fm_lab .pytest_cache .mypy_cache .ruff_cache
