#!/usr/bin/env bash
# The distributed optimizer (parallel.zero) under mpirun (CPU backend): the runner is
# tests/mpi/mpi_zero.py (Python for reading metrics.h5 and the checkpoints). $1 = build dir.
set -u
exec /usr/bin/python3 tests/mpi/mpi_zero.py "$1/gemmatron"
