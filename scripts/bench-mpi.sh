#!/usr/bin/env bash
# Time per JKO step and peak memory per rank of `jko run` on 1 process and
# under `mpirun -n 1` and `-n 2` (docs/mpi.md, "Measured"). Usage:
#   scripts/bench-mpi.sh [PARTICLES_PER_SPECIES [STEPS [METHOD]]]  (default 5000 3 direct)
# on 2D and 3D two-species PNP with the direct sum (METHOD direct:
# tests/data/mpi/pnp_{2,3}d.toml) or the multipole tree at 1e-6 and the
# neighbour-list densities (METHOD tree: tests/data/mpi/pnp_{2,3}d_tree.toml);
# needs an `mpi` build in
# target/release/jko (cargo build --release --features mpi; or JKO_BIN). Prints one line
# per run: wall time of the steps / steps (run.json), evaluations, and each
# rank's peak resident memory (/usr/bin/time's %M).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-5000}
steps=${2:-3}
method=${3:-direct}
case $method in
direct) suffix= ;;
tree) suffix=_tree ;;
*) echo "METHOD is direct or tree" >&2; exit 2 ;;
esac
bin=${JKO_BIN:-$PWD/target/release/jko}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
step_time() {
    python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
w = r["wall_time_s"]["steps"] / r["steps_done"]
x = r.get("exchange_s")
ex = "" if x is None else ", exchanges %.3f s/step (%.1f%%)" % (x / r["steps_done"], 100 * x / r["wall_time_s"]["steps"])
print("%.3f s/step, %d evaluations, %d threads/rank%s" % (w, r["evaluations"], r["threads"], ex))' "$1/run.json"
}
for d in 2 3; do
    sed -E -e "s/^particles = [0-9]+/particles = $n/" \
        -e "s/^steps = .*/steps = $steps/" "tests/data/mpi/pnp_${d}d$suffix.toml" >"$tmp/s$d.toml"
    /usr/bin/time -f "%M" -o "$tmp/mem" "$bin" run "$tmp/s$d.toml" --out "$tmp/d$d-single" -q
    echo "d=$d N=$((2 * n)) $method one process: $(step_time "$tmp/d$d-single"), peak $(($(cat "$tmp/mem") / 1024)) MiB"
    for p in 1 2; do
        for bind in core none; do
            [ "$p" = 1 ] && [ "$bind" = none ] && continue
            mpirun --oversubscribe --bind-to "$bind" -n "$p" \
                sh -c '/usr/bin/time -f "%M" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$tmp/mem" \
                "$bin" run "$tmp/s$d.toml" --out "$tmp/d$d-p$p-$bind" -q
            mem=$(for r in $(seq 0 $((p - 1))); do echo -n "$(($(cat "$tmp/mem.$r") / 1024)) "; done)
            same=$(cmp -s "$tmp/d$d-single/particles.csv" "$tmp/d$d-p$p-$bind/particles.csv" && echo "same bytes" || echo "BYTES DIFFER")
            echo "d=$d N=$((2 * n)) $method mpirun -n $p --bind-to $bind: $(step_time "$tmp/d$d-p$p-$bind"), peak per rank ${mem}MiB, $same"
        done
    done
done
