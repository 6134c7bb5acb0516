#!/usr/bin/env bash
# Time per JKO step and peak memory per rank of `jko run` on 1 process and
# under `mpirun -n 1` and `-n 2` (docs/mpi.md, "Measured"). Usage:
#   scripts/bench-mpi.sh [PARTICLES_PER_SPECIES [STEPS]]     (default 5000 3)
# on 2D and 3D two-species PNP with the direct sum; needs an `mpi` build in
# target/release/jko (cargo build --release --features mpi; or JKO_BIN). Prints one line
# per run: wall time of the steps / steps (run.json), evaluations, and each
# rank's peak resident memory (/usr/bin/time's %M).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-5000}
steps=${2:-3}
bin=${JKO_BIN:-$PWD/target/release/jko}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
step_time() {
    python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
w = r["wall_time_s"]["steps"] / r["steps_done"]
print("%.3f s/step, %d evaluations, %d threads/rank" % (w, r["evaluations"], r["threads"]))' "$1/run.json"
}
for d in 2 3; do
    sed -e "s/particles = 450/particles = $n/" -e "s/particles = 350/particles = $n/" \
        -e "s/^steps = .*/steps = $steps/" "tests/data/mpi/pnp_${d}d.toml" >"$tmp/s$d.toml"
    /usr/bin/time -f "%M" -o "$tmp/mem" "$bin" run "$tmp/s$d.toml" --out "$tmp/d$d-single" -q
    echo "d=$d N=$((2 * n)) one process: $(step_time "$tmp/d$d-single"), peak $(($(cat "$tmp/mem") / 1024)) MiB"
    for p in 1 2; do
        for bind in core none; do
            mpirun --oversubscribe --bind-to "$bind" -n "$p" \
                sh -c '/usr/bin/time -f "%M" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$tmp/mem" \
                "$bin" run "$tmp/s$d.toml" --out "$tmp/d$d-p$p-$bind" -q
            mem=$(for r in $(seq 0 $((p - 1))); do echo -n "$(($(cat "$tmp/mem.$r") / 1024)) "; done)
            same=$(cmp -s "$tmp/d$d-single/particles.csv" "$tmp/d$d-p$p-$bind/particles.csv" && echo "same bytes" || echo "BYTES DIFFER")
            echo "d=$d N=$((2 * n)) mpirun -n $p --bind-to $bind: $(step_time "$tmp/d$d-p$p-$bind"), peak per rank ${mem}MiB, $same"
        done
    done
done
