#!/usr/bin/env bash
# `gemmatron calibrate` and training from its directory under mpirun at tp=2 (CPU backend): the
# runner is tests/mpi/mpi_calibrate.py. $1 = build dir.
set -u
exec /usr/bin/python3 tests/mpi/mpi_calibrate.py "$1/gemmatron"
