#!/usr/bin/env bash
# The MPI tests (tests/run/mpi.rs): `mpirun -n P jko run` on 1, 2 and 3
# ranks against the single-process run on small 2D and 3D PNP and
# Keller–Segel scenarios (positions and energies to 1e-10 relative, and the
# same bytes), a rerun's bytes, and bad input (more ranks than particles,
# scenarios differing between ranks, --resume, a rank killed): no hang.
#
# Needs Debian's libopenmpi-dev, openmpi-bin and libclang-dev. Builds with
# the features of scripts/test-all.sh (fault-injection,mpi), so after that
# script nothing is rebuilt. Arguments go to the test binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v mpirun >/dev/null || ! command -v mpicc >/dev/null; then
    echo "test-mpi: mpirun/mpicc not found: apt-get install -y libopenmpi-dev openmpi-bin libclang-dev" >&2
    exit 1
fi
# --workspace: the feature resolution of scripts/test-all.sh, so neither rebuilds the other's jko.
cargo test --release --workspace --features fault-injection,mpi --test suite run::mpi:: -- "$@"
