#!/usr/bin/env bash
# Installs what gemmatron needs to build and test on Debian/Ubuntu (run as root or with sudo), and the
# Python packages its scripts use: h5py and numpy (metrics.h5), matplotlib (the plots of
# scripts/plot_metrics.py and train's metrics.plot_every), PyYAML, safetensors and tokenizers.
# The CUDA toolkit (nvcc, cuBLASLt, NCCL) is optional: without it only the CPU backend is built.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config libjansson-dev libyaml-dev libhdf5-dev \
    openmpi-bin libopenmpi-dev python3 python3-h5py python3-numpy python3-yaml python3-pip \
    python3-matplotlib >/dev/null
# clang and its runtime libraries (libFuzzer, the sanitizers) for the fuzz targets of tests/fuzz, which
# scripts/test.sh builds and runs when clang is found. Optional: without them fuzzing is skipped.
$SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null ||
    echo "install-deps: clang or libclang-rt-dev not installed: scripts/test.sh will skip the fuzzers"
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
# cudnn-frontend (NVIDIA's header-only C++ API of cuDNN's graph, from PyPI's nvidia-cudnn-frontend
# wheel: only its include/ is used) for cuDNN's fused attention in the CUDA backend. Optional:
# without it, or without cuDNN, the CUDA backend runs its built-in attention kernels. A copy beside
# this script (cudnn-frontend/include, as carried to machines without a registry) is used first.
CUDNN_FE_VERSION=1.32.0
CUDNN_FE_DIR=/usr/local/share/gemmatron/cudnn-frontend
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -f "$CUDNN_FE_DIR/VERSION-$CUDNN_FE_VERSION" ]; then
    tmp=$(mktemp -d)
    if [ -f "$here/cudnn-frontend/include/cudnn_frontend.h" ]; then
        cp -r "$here/cudnn-frontend/include" "$tmp/"
    elif /usr/bin/python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 -d "$tmp" "nvidia-cudnn-frontend==$CUDNN_FE_VERSION" \
        >/dev/null 2>&1; then
        /usr/bin/python3 -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith('include/')])" \
            "$tmp"/nvidia_cudnn_frontend-*.whl "$tmp"
    fi
    if [ -f "$tmp/include/cudnn_frontend.h" ]; then
        $SUDO rm -rf "$CUDNN_FE_DIR"
        $SUDO mkdir -p "$CUDNN_FE_DIR"
        $SUDO cp -r "$tmp/include" "$CUDNN_FE_DIR/"
        $SUDO touch "$CUDNN_FE_DIR/VERSION-$CUDNN_FE_VERSION"
    else
        echo "install-deps: could not fetch cudnn-frontend $CUDNN_FE_VERSION (optional: the CUDA" \
            "backend then uses its built-in attention)" >&2
    fi
    rm -rf "$tmp"
fi
