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

# Two pytest-xdist workers (most tests wait on subprocesses, signals or SLURM), a test file at a time
# (--dist loadfile), so that a file's module fixtures are built once. (--dist loadgroup would group
# finer, but pytest-xdist 3.8 cannot rename test ids under pytest 9, so its groups are ignored.)
PYTEST := WANDB_MODE=disabled $(PY) -m pytest -n 2 --dist loadfile

test: setup
	$(PYTEST) $(ARGS)

test-fast: setup
	$(PYTEST) -m "not slow" $(ARGS)

benchmark: setup
	$(PY) benchmarks/ham_step.py
	$(PY) benchmarks/data_loading.py

clean:
	rm -rf outputs multirun wandb .pytest_cache
