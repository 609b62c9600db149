# Two commands do everything on a fresh machine:
#   make train   - install FFCV's system libraries (apt-get, as root), create .venv with FFCV,
#                  make Fashion-MNIST available, run the default experiment
#   make test    - the same set-up, then the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: setup data train test test-fast benchmark clean

setup: $(VENV)/.installed data

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[train,test,slurm,ffcv]"
	$(PY) -c "import ffcv.loader, ffcv.writer"  # fails here, not in the tests, if FFCV did not build
	touch $@

data:
	bash scripts/get_fashion_mnist.sh

train: setup
	$(PY) train.py $(ARGS)

# Two pytest-xdist workers (most tests wait on subprocesses, signals or SLURM); tests that share
# module fixtures or the local SLURM stay in one worker (xdist_group, --dist loadgroup).
PYTEST := WANDB_MODE=disabled $(PY) -m pytest -n 2 --dist loadgroup

test: setup
	$(PYTEST) $(ARGS)

test-fast: setup
	$(PYTEST) -m "not slow" $(ARGS)

benchmark: setup
	$(PY) benchmarks/ham_step.py
	$(PY) benchmarks/data_loading.py

clean:
	rm -rf outputs multirun wandb .pytest_cache
