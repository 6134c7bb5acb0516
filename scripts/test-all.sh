#!/usr/bin/env bash
# Every test of jko: the Rust suite (unit, integration and doc tests, with
# the fault-injection hooks the crash tests need), then the Python package's
# tests (scripts/test-python.sh: builds python/ into target/pyenv and runs
# pytest, VTK's readers included).
#
# Needs the Rust toolchain and CPython >= 3.9 with pip (pip fetches maturin,
# numpy, pandas, pytest and vtk). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS=0
cargo test --release --features fault-injection
rust=$SECONDS
SECONDS=0
scripts/test-python.sh "$@"
echo "test-all: Rust suite ${rust} s, Python package and tests ${SECONDS} s"
