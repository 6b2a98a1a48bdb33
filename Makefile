# The two commands (README): each sets up what is missing (scripts/bootstrap.sh), then runs.
#   make train [ARGS="group=choice key=value ..."]   python train.py on the sample photos
#   make test [PYTEST_ARGS="tests/unit -x"]          python -m pytest -q, the test suite
# `make help` lists the others: shortcuts for the commands the README runs in the activated .venv.
# Set-up variables (VENV, TORCH_INDEX_URL, TORCH_VERSION, N2N_EXTRAS, PYTHON): see scripts/bootstrap.sh.
VENV ?= .venv
export VENV
PY := $(VENV)/bin/python
LOGDIR ?= outputs

.PHONY: help setup train quick test denoise img-given models tensorboard

help:  ## this list (each target's comment in the Makefile)
	@echo "make TARGET [VAR=value ...]; every target but help first sets up what is missing in $(VENV)"
	@awk -F':.*## ' '/^[a-z]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "To run n2n, python train.py and tensorboard yourself: . $(VENV)/bin/activate (once per shell)"

setup:  ## set up what is missing: the virtual environment, PyTorch, n2n and its extras
	@bash scripts/bootstrap.sh

train: setup  ## [ARGS="key=value ..."] python train.py: train on the sample photos (minutes)
	$(PY) train.py $(ARGS)
	@echo "Next: . $(VENV)/bin/activate, then tensorboard --logdir outputs (or make tensorboard); make help"

quick: setup  ## python train.py experiment=quick_cpu: check the installation end to end (seconds)
	$(PY) train.py experiment=quick_cpu $(ARGS)

test: setup  ## [PYTEST_ARGS="tests/unit"] python -m pytest -q: the test suite
	$(PY) -m pytest -q $(PYTEST_ARGS)

denoise: img-given setup  ## IMG="photo.jpg ..." [ARGS="--strength 0.7"] n2n denoise: writes photo_denoised.jpg
	$(VENV)/bin/n2n denoise $(IMG) $(ARGS)

img-given:  # before the set-up: a forgotten IMG= is one line, at once
	@test -n "$(IMG)" || { echo 'make denoise: name the images: make denoise IMG="photo.jpg" [ARGS="--strength 0.7"]' >&2; \
		exit 2; }

models: setup  ## n2n models: the bundled models and their scores
	$(VENV)/bin/n2n models

tensorboard: setup  ## [LOGDIR=outputs] tensorboard --logdir outputs: every run's curves (http://localhost:6006)
	$(VENV)/bin/tensorboard --logdir $(LOGDIR) $(ARGS)
