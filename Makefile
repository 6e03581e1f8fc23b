# Quick start: `make demo` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

DEMO := demo_output

# The main job on the bundled data: a synthetic study with known truth, read back from DICOM,
# and the real sample scans described; results in $(DEMO)/.
demo: $(STAMP)
	$(BIN)/bmetoolkit phantom $(DEMO)/phantom --seed 7
	$(BIN)/bmetoolkit info $(DEMO)/phantom/dicom
	$(BIN)/bmetoolkit convert $(DEMO)/phantom/dicom $(DEMO)/converted
	$(BIN)/bmetoolkit info sample_data/spine
	@echo "demo outputs are in $(DEMO)/"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_load.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(DEMO)
