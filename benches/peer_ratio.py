#!/usr/bin/env python3
"""Whole-process time of `jko run` against the numpy/scipy peer
(../shared/peers/ref_jko.py) on the same scenario files, in one session.

    cargo build --release
    python3 benches/peer_ratio.py [SCENARIO.toml ...] [--peer PATH] [--repeat K]

Default scenarios: data/bench/peer/*.toml (d = 1, 2, 3; Fokker-Planck,
porous medium, two-species PNP, Keller-Segel; 2,000 to 4,000 particles per
species, 5 to 20 steps), which use only SPEC §3 keys, so both programs read
them alike. Each program runs its own methods: jko with coupling and density
"auto" (1D: the sorted sums), the peer with its dense blocks and L-BFGS-B.
The two differ in their kernels (Wendland C2 against the peer's tapered
Gaussian) and stopping rules, so they take different iteration counts: the
ratio is of the whole process, as a user sees it, and the table gives both
programs' iteration totals beside it.

The programs alternate (jko, peer, jko, peer ...) so that a load change on
this shared machine hits both; the table reports the median over --repeat
runs. Python with numpy and scipy is needed for this measurement only, not
for the tests. The figures go to BENCHMARKS.md by hand.
"""

import argparse
import csv
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return dt


def iterations(out):
    with open(os.path.join(out, "energy.csv"), newline="") as f:
        return sum(int(row["iterations"]) for row in csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--jko", default=os.path.join(ROOT, "target", "release", "jko"))
    ap.add_argument("--peer", default=os.path.join(ROOT, "..", "shared", "peers", "ref_jko.py"))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    scenarios = args.scenarios or sorted(glob.glob(os.path.join(ROOT, "data", "bench", "peer", "*.toml")))
    if not os.path.exists(args.jko):
        sys.exit(f"{args.jko}: build it first (cargo build --release)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in scenarios:
            name = os.path.splitext(os.path.basename(s))[0]
            tj, tp = [], []
            for k in range(args.repeat):
                oj = os.path.join(tmp, f"{name}_jko_{k}")
                op = os.path.join(tmp, f"{name}_peer_{k}")
                tj.append(timed([args.jko, "run", s, "--out", oj, "-q"]))
                tp.append(timed([sys.executable, args.peer, s, "--out", op]))
            mj, mp = statistics.median(tj), statistics.median(tp)
            rows.append((name, mj, mp, mp / mj, iterations(oj), iterations(op)))
            print(f"{name:18s} jko {mj:8.3f} s   peer {mp:8.2f} s   ratio {mp / mj:7.1f}", flush=True)
    print()
    print("| scenario | jko (s) | peer (s) | peer / jko | jko iterations | peer iterations |")
    print("|---|---|---|---|---|---|")
    for name, mj, mp, r, ij, ip in rows:
        print(f"| {name} | {mj:.3f} | {mp:.2f} | {r:.1f} | {ij} | {ip} |")
    ratios = [r[3] for r in rows]
    print(f"\nmedian ratio {statistics.median(ratios):.1f}, range {min(ratios):.1f} to {max(ratios):.1f}")


if __name__ == "__main__":
    main()
