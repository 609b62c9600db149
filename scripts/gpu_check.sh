#!/usr/bin/env bash
# The GPU checks in one command (about 5 minutes on one GPU; see benchmarks/gpu_check.py):
# FFCV + ResNet-50 + HAM with bf16/channels_last (images/s, peak memory), the cost of HAM (also
# ham.fused=true), of RiGL's update and of SAM per step, and NCCL DDP over all visible GPUs.
#   scripts/gpu_check.sh                      # writes results/gpu_check.md
#   scripts/gpu_check.sh --device cpu --quick # the same steps, tiny, on the CPU (checks the script)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
exec "$PYTHON" benchmarks/gpu_check.py "$@"
