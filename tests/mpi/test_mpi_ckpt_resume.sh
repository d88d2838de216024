#!/usr/bin/env bash
# `gemmatron train` checkpoints under mpirun (CPU backend): the runner is tests/mpi/mpi_ckpt_resume.py
# (Python for reading metrics.h5 and signalling). $1 = build dir.
set -u
exec /usr/bin/python3 tests/mpi/mpi_ckpt_resume.py "$1/gemmatron"
