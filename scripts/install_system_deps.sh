#!/usr/bin/env bash
# The system libraries FFCV compiles against (OpenCV and libjpeg-turbo, found through pkg-config).
# Installs them with apt-get when running as root on Debian/Ubuntu and they are missing; otherwise
# says what to install. Clusters without root: use the conda route in environment.yml.
set -euo pipefail
if pkg-config --exists opencv4 libturbojpeg 2>/dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "FFCV: installing libopencv-dev libturbojpeg0-dev pkg-config (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libopencv-dev libturbojpeg0-dev pkg-config >/dev/null
    exit 0
fi
cat >&2 <<'MSG'
error: FFCV needs the system libraries OpenCV and libjpeg-turbo (found through pkg-config), and they are missing.
  Debian/Ubuntu:  sudo apt-get install libopencv-dev libturbojpeg0-dev pkg-config
  conda (no root): conda env create -f environment.yml   (installs opencv, libjpeg-turbo, pkg-config, compilers)
then run `make setup` again.
MSG
exit 1
