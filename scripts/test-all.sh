#!/usr/bin/env bash
# Every test of jko: the Rust suite (unit, integration and doc tests, with
# the fault-injection hooks the crash tests need), then the Python package's
# tests (scripts/test-python.sh: builds python/ into target/pyenv and runs
# pytest, VTK's readers included). Examples are not built here.
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
# --workspace: the features of every dependency are resolved over the
# Python package too, so that its build below finds the jko library this one
# compiled (same features, same profile) and compiles only the bindings.
# --tests: the library's unit tests and the suite (tests/main.rs), not the
# examples (studies, built by `cargo build --release --examples`); then the
# doc tests.
SECONDS=0
cargo test --release --workspace --features "$features" --tests
cargo test --release --workspace --features "$features" --doc
rust=$SECONDS
SECONDS=0
# The package is built with the same jko features as the suite (the fault
# hooks are inert without JKO_FAULT; MPI is only linked), hence no second
# build of jko. scripts/test-python.sh alone builds it as users get it.
MATURIN_PEP517_ARGS="--features jko/${features//,/,jko/}" scripts/test-python.sh "$@"
echo "test-all: Rust suite ${rust} s, Python package and tests ${SECONDS} s"
