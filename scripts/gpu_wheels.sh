#!/usr/bin/env bash
# The pure-Python packages that train.py needs beyond what a bare GPU machine has (PyTorch,
# torchvision, numpy, Pillow, timm, Lightning, opencv), as wheel files in one folder, for the
# GPU machine's Python and platform. The GPU check's tier B (benchmarks/gpu_tier_b.py) unpacks them
# there into a temporary folder (no network, no pip, nothing built).
#
#   scripts/gpu_wheels.sh [FOLDER] [PYTHON_VERSION] [PLATFORM]
#   default: gpu_wheels/ 3.12 manylinux2014_x86_64 (the lent machines: Python 3.12, x86-64 Linux)
#
# Versions come from constraints.txt where it pins them (packaging: the newest). antlr4-python3-runtime (OmegaConf's parser) exists only as a
# source archive: it is built here into a pure-Python wheel. The folder stays far below the 64 MiB
# that may travel with the working tree (about 1 MiB); the script says its size.
set -euo pipefail
cd "$(dirname "$0")/.."
FOLDER=${1:-gpu_wheels}
PYVER=${2:-3.12}
PLATFORM=${3:-manylinux2014_x86_64}
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
#: what train.py imports (data=synthetic or imagefolder, logger=disabled) and the bare machine lacks
PACKAGES=(hydra-core omegaconf PyYAML tqdm packaging)
pin() { grep -i "^$1==" constraints.txt || echo "$1"; }

mkdir -p "$FOLDER"
pins=()
for package in "${PACKAGES[@]}"; do pins+=("$(pin "$package")"); done
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" --platform "$PLATFORM" \
  --implementation cp --dest "$FOLDER" "${pins[@]}"
# OmegaConf 2.3 pins antlr4-python3-runtime 4.9.*, published only as an sdist: build its wheel (pure Python)
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$FOLDER" "antlr4-python3-runtime==4.9.3"
size=$(du -sk "$FOLDER" | cut -f1)
if [ "$size" -gt $((64 * 1024)) ]; then
  echo "error: $FOLDER is ${size} KiB, more than the 64 MiB that may travel with the working tree" >&2
  exit 2
fi
ls "$FOLDER"
echo "$FOLDER: $(ls "$FOLDER" | wc -l) wheels, ${size} KiB (for Python $PYVER on $PLATFORM)"
