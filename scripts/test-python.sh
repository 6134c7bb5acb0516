#!/usr/bin/env bash
# The Python package's tests: builds python/ (maturin, through pip) into a
# virtual environment and runs pytest on python/tests.
#
# Needs only the Rust toolchain and CPython >= 3.9 with pip: pip fetches
# maturin, numpy, pandas, pytest and vtk from PyPI. The environment is kept in
# target/pyenv (JKO_PYENV to change) and reused, so a second run only
# rebuilds what changed. The extension is built in the workspace's target/
# with the release profile, sharing the compiled dependencies of
# `cargo build --release`; under scripts/test-all.sh (MATURIN_PEP517_ARGS set
# to the suite's jko features) it shares the suite's jko library too.
#
# Usage: scripts/test-python.sh [pytest arguments...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
venv="${JKO_PYENV:-$root/target/pyenv}"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "test-python: creating $venv"
    "$python" -m venv "$venv"
fi
py="$venv/bin/python"

# --no-input: never wait for a prompt (CI has no standard input).
pip_install=("$py" -m pip install --no-input --disable-pip-version-check --quiet)

# The test tools first (the [test] extra of python/pyproject.toml; a no-op
# once in the environment), then the package itself, rebuilt from the work
# tree every time (cargo rebuilds only what changed).
SECONDS=0
"${pip_install[@]}" "numpy" "pandas" "pytest" "vtk"
echo "test-python: test tools ready (${SECONDS} s); building the package (cargo, release profile)"
SECONDS=0
"${pip_install[@]}" --force-reinstall --no-deps "./python"
echo "test-python: package built and installed (${SECONDS} s)"

# Tests that compare with the command line use the release binary if it is
# there (JKO_BIN to point elsewhere); they are skipped otherwise.
export JKO_BIN="${JKO_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/jko}"
cd "$root"
exec "$py" -m pytest python/tests -q "$@"
