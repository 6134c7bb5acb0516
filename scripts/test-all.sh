#!/usr/bin/env bash
# Every test of jko: the Rust suite (unit, integration and doc tests, with
# the fault-injection hooks the crash tests need), then the Python package's
# tests (scripts/test-python.sh: builds python/ into target/pyenv and runs
# pytest, VTK's readers included).
#
# Needs the Rust toolchain and CPython >= 3.9 with pip (pip fetches maturin,
# numpy, pandas, pytest and vtk). Arguments go to pytest.
#
# Where MPI is installed (mpirun, mpicc and libclang: Debian's
# libopenmpi-dev, openmpi-bin, libclang-dev), the suite is built with the
# `mpi` feature too, so it includes the MPI tests (tests/run/mpi.rs, also
# alone as scripts/test-mpi.sh) at no extra build; otherwise it says they
# were skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

features=fault-injection
if command -v mpirun >/dev/null && command -v mpicc >/dev/null &&
    ldconfig -p 2>/dev/null | grep 'libclang[-.0-9]*\.so' >/dev/null; then
    features=fault-injection,mpi
else
    echo "test-all: MPI tests skipped (no mpirun, mpicc or libclang): apt-get install -y libopenmpi-dev openmpi-bin libclang-dev to run them"
fi
SECONDS=0
cargo test --release --features "$features"
rust=$SECONDS
SECONDS=0
scripts/test-python.sh "$@"
echo "test-all: Rust suite ${rust} s, Python package and tests ${SECONDS} s"
