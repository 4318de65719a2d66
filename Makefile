# Two commands: `make train` runs the default job, `make test` runs the tests (`make test-slow`: the slow ones).
# Each creates .venv and installs the project into it the first time.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test test-slow gpu-check lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/python train.py $(ARGS)

# The tests marked slow (training runs, sweeps, subprocesses: pyproject's marker) run in CI after these: `make test-slow`.
test: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# Every GPU path and its speed, at most 8 minutes on one H100/H200 (one line and exit 0 without CUDA).
gpu-check: $(STAMP)
	$(BIN)/python tools/gpu_check.py $(ARGS)

lint: $(STAMP)
	$(BIN)/python -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
