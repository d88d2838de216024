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
    openmpi-bin libopenmpi-dev python3 >/dev/null
