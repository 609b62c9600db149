#!/usr/bin/env bash
# The GPU check in one command, at most about 10 minutes on one GPU (benchmarks/gpu_check.py):
# tier A (torch only), tier B (train.py; Hydra and OmegaConf from gpu_wheels/ where the machine
# lacks them), tier C (FFCV, where it is installed). Writes results/gpu_check.md; exit 0 when tiers
# A and B passed.
#   scripts/gpu_wheels.sh                       # once, where a package registry is reachable: gpu_wheels/
#   scripts/gpu_check.sh                        # on the GPU machine (carry gpu_wheels/ along)
#   scripts/gpu_check.sh --device cpu --quick   # the same steps, tiny, on the CPU (checks the check)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 || echo python )}
exec "$PYTHON" benchmarks/gpu_check.py "$@"
