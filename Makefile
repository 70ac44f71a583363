# Two commands matter: `make lab` and `make test`. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PIP_FLAGS ?= --quiet --disable-pip-version-check
PYTEST ?= $(BIN)/python -m pytest -n 2 --dist loadscope
# nbval re-runs every chapter and every exercise (solution version) and compares the outputs
# with the committed ones, after .nbval-sanitize.cfg has masked timings, addresses, versions.
NBVAL_ARGS ?= --nbval --nbval-current-env --nbval-sanitize-with .nbval-sanitize.cfg
PYTEST_ARGS ?= tests course exercises $(NBVAL_ARGS)
# Jupyter refuses to run as root unless told to (containers, CI machines).
LAB_ARGS ?= --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)
# Run with the venv's bin/ first on PATH, as if activated, so that programs installed there
# (graphviz-pure, jupyter) are found by the code under test and by notebook kernels.
RUN := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: all lab install install-test test bench notebooks student grade clean distclean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.installed-course: pyproject.toml | $(BIN)/python
	$(PIP) install $(PIP_FLAGS) -e '.[course]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install $(PIP_FLAGS) -e '.[test]'
	touch $@

install: $(VENV)/.installed-course

install-test: $(VENV)/.installed-test

# Serve the whole checkout (chapters link to exercises, `make student` writes build/student/),
# opening on course/.
lab: install
	$(RUN) $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/course $(LAB_ARGS)

test: install-test
	$(RUN) $(PYTEST) $(PYTEST_ARGS)

# Student versions of the exercises (solutions stubbed out, hidden tests removed), via nbgrader.
student: install-test
	$(RUN) $(BIN)/python exercises/tools/make_student.py --out build/student

# Grade one filled-in exercise as nbgrader's autograder will: make grade NB=path/to/nb.ipynb
grade: install-test
	@test -n "$(NB)" || { echo "usage: make grade NB=path/to/filled-in.ipynb" >&2; exit 2; }
	$(RUN) $(BIN)/python exercises/tools/grade.py "$(NB)"

bench: install
	$(RUN) $(BIN)/python benchmarks/run_all.py

# Re-execute every chapter and exercise in place (after changing the engine or a notebook), as a
# CPU-only install runs them; commit the result: CI compares these outputs (nbval).
notebooks: install-test
	$(RUN) $(BIN)/python course/tools/execute.py course/[0-9]*.ipynb exercises/[0-9]*.ipynb

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
