#!/usr/bin/env bash
# `gemmatron train` with FP8 under mpirun (CPU backend): the runner is tests/mpi/mpi_train_fp8.py
# (Python for reading metrics.h5). $1 = build dir.
set -u
exec /usr/bin/python3 tests/mpi/mpi_train_fp8.py "$1/gemmatron"
