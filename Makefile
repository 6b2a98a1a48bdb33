# The two commands (README): each sets up what is missing (scripts/bootstrap.sh), then runs.
#   make train [ARGS="group=choice key=value ..."]   python train.py on the sample photos
#   make test [PYTEST_ARGS="tests/unit -x"]          python -m pytest -q, the test suite
# Set-up variables (VENV, TORCH_INDEX_URL, TORCH_VERSION, N2N_EXTRAS, PYTHON): see scripts/bootstrap.sh.
VENV ?= .venv
export VENV
PY := $(VENV)/bin/python

.PHONY: setup train test

setup:
	@bash scripts/bootstrap.sh

train: setup
	$(PY) train.py $(ARGS)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)
