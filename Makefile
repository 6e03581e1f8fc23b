# Quick start: `make demo` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,distributed,dicomseg]"
	touch $(STAMP)

DEMO := demo_output

# The main job on the bundled data: the series of the sample study identified and paired, one
# study analysed from its DICOM folder (vertebral bodies found automatically), and a batch over
# the sample data with a QC page per subject and an index; results in $(DEMO)/.
demo: $(STAMP)
	$(BIN)/bmetoolkit info sample_data/phantom/dicom
	$(BIN)/bmetoolkit analyze sample_data/phantom/dicom --out $(DEMO)/analyze
	$(BIN)/bmetoolkit batch sample_data/phantom $(DEMO)/batch --qc --jobs 2
	@echo "one study: $(DEMO)/analyze/report.json and $(DEMO)/analyze/qc.html"
	@echo "batch QC index: $(DEMO)/batch/index.html (group tables: $(DEMO)/batch/subjects.csv)"

# Tests run with byte-compiled modules kept between runs, in $(VENV)/pycache (outside the
# source tree), even where PYTHONDONTWRITEBYTECODE is set: otherwise every run, every xdist
# worker and every process a test starts (CLI runs, batch workers) compiles bmetoolkit's
# modules again, and pytest rewrites the asserts of every test module again (collecting
# test-fast: 11 s of CPU per worker without the cache, 6 s with it).
PYTEST := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/$(VENV)/pycache \
	$(BIN)/python -m pytest

# The whole suite, spread over the machine's cores like test-fast (pytest-xdist, a whole test
# file per worker).
test: $(STAMP)
	$(BIN)/ruff check .
	$(PYTEST) -n auto --dist loadfile

# Unit tests and doctests only: the end-to-end cases marked `slow` (realistic phantoms,
# notebooks, the browser) and the DICOM reference suite are left to `make test`. Spread over
# the machine's cores (pytest-xdist), a whole test file per worker so that a module's shared
# fixtures are built once (timings: README, Development).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(PYTEST) -m "not slow and not reference" -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_run.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_dicom_read.py
	$(BIN)/python benchmarks/bench_phantom.py
	$(BIN)/python benchmarks/bench_analysis.py
	$(BIN)/python benchmarks/bench_accuracy.py --masks both
	$(BIN)/python benchmarks/bench_autoseg.py
	$(BIN)/python benchmarks/bench_transitional.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_randomized.py --jobs 2
	$(BIN)/python benchmarks/bench_role_check.py
	$(BIN)/python benchmarks/fuzz_inputs.py --cases 2500

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(DEMO)
