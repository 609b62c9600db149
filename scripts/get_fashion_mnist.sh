#!/usr/bin/env bash
# Make Fashion-MNIST available for the default experiment: the Debian package
# dataset-fashion-mnist (original IDX files in /usr/share/datasets/fashion-mnist) when apt is usable.
# Otherwise train.py falls back to a torchvision download into ./data, or data.root=/your/copy.
set -u
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then
  echo "Fashion-MNIST: found in $dir"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo=none; fi
  if [ "$sudo" != none ]; then
    echo "Fashion-MNIST: installing the Debian package dataset-fashion-mnist"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null && exit 0
  fi
fi
echo "Fashion-MNIST: not installed system-wide; train.py will try a torchvision download into ./data" \
     "(or pass data.root=/path/to/the/idx/files)."
exit 0
