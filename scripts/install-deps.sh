#!/usr/bin/env bash
# Installs what gemmatron needs to build and test on Debian/Ubuntu (run as root or with sudo).
# The CUDA toolkit (nvcc, cuBLASLt, NCCL) is optional: without it only the CPU backend is built.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config libjansson-dev libyaml-dev libhdf5-dev \
    openmpi-bin libopenmpi-dev python3 python3-h5py python3-numpy python3-yaml python3-pip >/dev/null
# HF tokenizer.json support of scripts/prepare_data.py (Debian does not package `tokenizers`).
# Optional: without it the byte-level tokenizer still works and its test case is skipped.
/usr/bin/python3 -c "import tokenizers" 2>/dev/null ||
    $SUDO /usr/bin/python3 -m pip install -q --break-system-packages tokenizers 2>/dev/null ||
    echo "install-deps: could not install the Python package tokenizers (optional)" >&2
# The Python `safetensors` package reads checkpoints and exports back in the tests (not packaged by
# Debian). --no-deps: it needs nothing else, and Debian's numpy must stay (h5py is built against it).
/usr/bin/python3 -c "import safetensors" 2>/dev/null ||
    $SUDO /usr/bin/python3 -m pip install -q --no-deps --break-system-packages safetensors ||
    $SUDO /usr/bin/python3 -m pip install -q --no-deps safetensors
