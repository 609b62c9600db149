#!/usr/bin/env bash
# System packages: the libraries FFCV compiles against (OpenCV and libjpeg-turbo, found through
# pkg-config), and SLURM with munge for the tests of the SLURM paths (scripts/slurm_local.sh starts a
# one-node SLURM). Installs what is missing with apt-get when running as root on Debian/Ubuntu;
# otherwise says what to install. Clusters without root: use the conda route in environment.yml
# (FFCV); they have their own SLURM.
set -euo pipefail
ffcv=()
pkg-config --exists opencv4 libturbojpeg 2>/dev/null || ffcv=(libopencv-dev libturbojpeg0-dev pkg-config)
slurm=()
command -v slurmctld >/dev/null && command -v munged >/dev/null || slurm=(slurm-wlm munge)
missing=("${ffcv[@]}" "${slurm[@]}")
if [ ${#missing[@]} = 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    exit 0
fi
if [ ${#slurm[@]} != 0 ]; then
    echo "warning: no SLURM here (slurmctld, munged): tests/test_slurm.py will fail; as root: apt-get install slurm-wlm munge" >&2
fi
if [ ${#ffcv[@]} = 0 ]; then
    exit 0
fi
cat >&2 <<'MSG'
error: FFCV needs the system libraries OpenCV and libjpeg-turbo (found through pkg-config), and they are missing.
  Debian/Ubuntu:  sudo apt-get install libopencv-dev libturbojpeg0-dev pkg-config
  conda (no root): conda env create -f environment.yml   (installs opencv, libjpeg-turbo, pkg-config, compilers)
then run `make setup` again.
MSG
exit 1
