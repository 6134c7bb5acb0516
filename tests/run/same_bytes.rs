//! Same bytes across a refactor: `jko run` on every scenario of
//! data/scenarios writes the particles.csv, energy.csv and events.csv that
//! the code before the issue-15 refactor wrote.
//!
//! The CRC-32 checksums of [`RECORDED`] come from the binary of commit
//! c67f22e (before the folder tree of issue 15), built with
//! `cargo build --release` and run on the same edited scenarios. To keep the
//! test short each scenario is cut to `steps = 2` (written: step 0 and the
//! last), with its other lines as they are.
//!
//! The four box scenarios of issue 16 (box_pnp_3d, electrodes_1d,
//! nanochannel_2d, pn_junction_1d) were recorded from the binary of the
//! commit that added them, to guard later changes; so were the three
//! equilibrium scenarios of issue 17 (double_layer_1d,
//! double_layer_steric_1d, pn_junction_2d).
//!
//! The five 1D scenarios were recorded again at issue 19, whose sorted 1D
//! density sums and coupling change the rounding of every 1D evaluation
//! (the estimator matches the neighbour lists to 1e-12, tested in
//! `density::sorted1d`); over 20 steps the old and new binaries' runs of
//! these scenarios agree to W2 <= 8e-9 and |dE| <= 2e-7, the L-BFGS
//! tolerance's scale (BENCHMARKS.md, "1D in O(N log N)").
//!
//! The four 1D box scenarios (double_layer_1d, double_layer_steric_1d,
//! electrodes_1d, pn_junction_1d) were recorded again with the 1D coupling's
//! Chebyshev far field (issue 19, `coupling::sorted1d::correction`; the
//! sorted sum against the direct one to 1e-12, tested in
//! `tests/numerics/tree_one_d.rs`); over 20 steps the binaries before
//! (5b16f58) and after agree to W2 <= 6.3e-9 and |dE| <= 2.0e-7
//! (`jko compare A B --last`), the same scale as above.
//!
//! The six scenarios without walls (keller_segel_2d, ou_1d, ou_2d, pnp_2d,
//! pnp_3d, porous_medium_2d) were recorded again when L-BFGS's vectors
//! became `jko::util::shard::Shard`s (issue 20): argmin's dot products and
//! norms now add fixed chunks in order, as every other sum of the crate,
//! where argmin's `Vec<f64>` added term by term; over 20 steps the binaries
//! before (88ba495) and after agree to |dmean| <= 8.5e-10, L1 <= 5.5e-9,
//! W2 <= 2.6e-9 (ou_1d) and |dE| <= 2.8e-10 (`jko compare A B --last`),
//! far below the L-BFGS tolerance's scale. The box scenarios (projected
//! L-BFGS, not changed) kept their bytes.
//!
//! Four box scenarios (double_layer_1d, double_layer_steric_1d,
//! electrodes_1d, nanochannel_2d) were recorded again when a JKO step
//! stopped evaluating its best first guess twice (`stepper::step`: the
//! solver starts from it, and it was evaluated again when it was not the
//! last guess). The values are the same, but a box's reflected estimate
//! chooses its ghosts from the positions of the evaluations it has seen
//! (`density::reflect`), so one evaluation fewer can change the ghost
//! set, hence the order of sums; over 20 steps the binaries before
//! (5741ad6) and after agree to W2 <= 8.3e-9 and |dE| <= 1.2e-7 (the 1D
//! ones; nanochannel_2d to 4.4e-16), the L-BFGS tolerance's scale. The
//! other scenarios kept their bytes.
//!
//! Seven scenarios (ou_1d, ou_2d, pn_junction_1d, pn_junction_2d, pnp_2d,
//! pnp_3d, porous_medium_2d) were recorded again when a JKO step stopped
//! evaluating two first guesses (`stepper::step`: the previous step's
//! displacement only, the explicit step when there is none), which moves
//! L-BFGS's start at the second step wherever the explicit step had won;
//! over 20 steps the binaries before (bc6789a) and after agree, on all
//! thirteen scenarios, to W2 <= 1.7e-8 (1D), L1 <= 1.1e-7 and |dE| <=
//! 9.3e-8 (`jko compare A B --last`; double_layer_steric_1d the largest),
//! the L-BFGS tolerance's scale. The other six kept their bytes.
//!
//! Five scenarios (double_layer_1d, double_layer_steric_1d, electrodes_1d,
//! keller_segel_2d, nanochannel_2d) were recorded again when a step began
//! taking E(X^n) and its gradient from the previous step's last point
//! instead of evaluating them after resetting the energy's state
//! (`stepper::StartPoint`): their estimates (reflected ghosts, the tree)
//! keep state between evaluations, so the sums' order moves; over 20 steps
//! the binaries before and after agree, on all thirteen scenarios, to W2 <=
//! 9.2e-9 (1D), L1 <= 1.3e-7 and |dE| <= 1.5e-7 (double_layer_1d the
//! largest), the L-BFGS tolerance's scale. The other eight kept their bytes.
//!
//! Five scenarios (keller_segel_2d, ou_2d, pnp_2d, pnp_3d,
//! porous_medium_2d: free space, neighbour-list densities) were recorded
//! again when the diffusion energy of the neighbour lists began to be
//! summed in chunks of the list's slots instead of chunks of particle ids
//! (`density::blob`, `DensityEstimator::local_functional`: the sum a
//! divided evaluation can form from its own slots, issue 20); the terms are
//! the same, only E's rounding moves. Over 20 steps the binaries before
//! (f770ec7) and after agree to |dmean| <= 2.5e-11, L1 <= 1.1e-8 and |dE|
//! <= 1.7e-10 (`jko compare A B --last`; keller_segel_2d the largest), the
//! L-BFGS tolerance's scale. The other eight kept their bytes.
//!
//! All thirteen scenarios were recorded again when a JKO step's vectors
//! began to hold the particles in the Morton order of the step's start
//! (`stepper::layout`, issue 20: a range of the vectors is then a region of
//! space; and the neighbour lists' Morton keys with axis 0 most
//! significant, the multipole tree's curve), which moves the order of the
//! dot products, norms and transport cost and of the lists' sums; over 20
//! steps the binaries before (47a8e3f) and after agree to
//! |dmean| <= 3.7e-9, L1 <= 1.1e-7, W2 <= 5.7e-9 (1D) and |dE| <= 1.4e-7
//! (`jko compare A B --last`; double_layer_1d the largest), the L-BFGS
//! tolerance's scale.
//!
//! The energy.csv of the two box scenarios of d > 1 (box_pnp_3d,
//! nanochannel_2d) was recorded again when the box mesh began to sum its
//! energy over the nodes, (1/2) sum_g M_g Phi_g, instead of over the
//! particles, (1/2) sum_i q_i phi_i (`coupling::box_mesh`: equal to
//! rounding, tested to 1e-12; a divided evaluation then interpolates the
//! field of its own particles only and exchanges nothing). Over 20 steps
//! the binaries before (3aea4b3) and after write the same particles.csv,
//! and energies that differ by at most 4.4e-16 (1.5e-14 relative).
//!
//! All thirteen scenarios were recorded again when sampled initial clouds
//! began to be numbered in the Morton order of their positions
//! (`particles::initial`, `number_by_space`: the same points, relabeled,
//! so that every order by space a run makes is nearly the id order); the
//! order of every sum over particles moves. Over 20 steps the binaries
//! before (103daf1) and after agree to |dmean| <= 5.7e-9, L1 <= 1.3e-7,
//! W2 <= 8.5e-9 (1D) and |dE| <= 2.2e-7 (`jko compare A B --last`;
//! double_layer_steric_1d the largest), the L-BFGS tolerance's scale.
//!
//! The three box scenarios of d > 1 (box_pnp_3d, nanochannel_2d,
//! pn_junction_2d) were recorded again when the box mesh began to divide
//! its solve among a team's members by slabs (`coupling::box_mesh::slabs`):
//! the synthesis now runs the axes in reverse order (d-1, .., 0), and the
//! energy sums the nodes per plane of the last axis, then the planes. Over
//! 20 steps the binaries before (14d3e1c) and after agree to
//! |dmean| <= 4.7e-10, L1 <= 1.3e-8 and |dE| <= 1.8e-9 (pn_junction_2d;
//! the other two to 1.4e-15 and 1.4e-16), the L-BFGS tolerance's scale.
//! box_pnp_3d again when the mesh densities were divided so too (their
//! convolution's synthesis in reverse axis order): against 14d3e1c, L1
//! <= 4.1e-16 and |dE| <= 6.9e-17 over 20 steps.
//!
//! The energy.csv of the two box scenarios of d > 1 with a fixed potential
//! (nanochannel_2d: charged walls; pn_junction_2d: backgrounds) was
//! recorded again when the box's fixed potential began to be held by a
//! team's members in slabs, and sum_i q_i phi_ext(X_i) to be summed by
//! planes of its grid's last axis (`coupling::box_mesh::external`) instead
//! of chunks of ids: the terms are the same, only E's rounding moves. Over
//! 20 steps the binaries before (cdd4091) and after agree to |dE| <=
//! 4.4e-16 (nanochannel_2d, the same particles.csv) and to |dmean| <=
//! 5.5e-11, L1 <= 2.3e-9 and |dE| <= 3.1e-9 (pn_junction_2d), the L-BFGS
//! tolerance's scale.
//!
//! The two free-space scenarios of two species on neighbour lists (pnp_2d,
//! pnp_3d) were recorded again when a JKO step began to key the lists'
//! slots in its frame, the bounding box of all species at X^n
//! (`FreeEnergy::frame`: each species' order is then the step's layout
//! restricted to it, so that a member's particles are a range of every
//! list, issue 20), instead of each species' own bounding box; the order
//! of the lists' sums moves. Over 20 steps the binaries before (eb9ca56)
//! and after agree to |dmean| <= 2.8e-11, L1 <= 7.3e-9 and |dE| <= 5.5e-10
//! (`jko compare A B`; pnp_3d the largest), the L-BFGS tolerance's scale.
//! The other eleven kept their bytes.
//!
//! A scenario added to data/scenarios without a line here fails the test:
//! record its checksums from the binary of the commit before the change the
//! test is to guard.

use std::path::Path;

use crate::support::run::{OUTPUTS, jko, outputs, stderr};

/// Scenario file stem, and the CRC-32 of particles.csv, energy.csv, events.csv.
const RECORDED: [(&str, [u32; 3]); 13] = [
    ("box_pnp_3d", [0x78730aa3, 0x9805e5ea, 0x46ac5ef2]),
    ("double_layer_1d", [0x123a418d, 0x1dd04628, 0x46ac5ef2]),
    (
        "double_layer_steric_1d",
        [0xd4e1341b, 0xfb6a8f99, 0x46ac5ef2],
    ),
    ("electrodes_1d", [0x8b1f482e, 0x9628442f, 0x46ac5ef2]),
    ("keller_segel_2d", [0x8008f384, 0x6cff996c, 0x46ac5ef2]),
    ("nanochannel_2d", [0x2c2a8c8f, 0xb4f3f101, 0x46ac5ef2]),
    ("ou_1d", [0x35b61b9b, 0x3ff70638, 0x46ac5ef2]),
    ("ou_2d", [0x93ef2934, 0xa5491d32, 0x46ac5ef2]),
    ("pn_junction_1d", [0x5408d6bd, 0xe0723df3, 0x46ac5ef2]),
    ("pn_junction_2d", [0x5082ef9a, 0xe443accb, 0x46ac5ef2]),
    ("pnp_2d", [0x6a27e616, 0x720eb994, 0x46ac5ef2]),
    ("pnp_3d", [0xcd35bc40, 0x68414e33, 0x46ac5ef2]),
    ("porous_medium_2d", [0x67a2efe2, 0xa34bc449, 0x46ac5ef2]),
];

/// The scenario with its `steps = N` line replaced by `steps = 2`.
fn two_steps(text: &str, name: &str) -> String {
    let mut found = 0;
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            if key == "steps" {
                found += 1;
                "steps = 2"
            } else {
                l
            }
        })
        .collect();
    assert_eq!(found, 1, "{name}: expected one `steps = ` line");
    lines.join("\n") + "\n"
}

/// The CRC-32 of a run's three CSV files.
fn checksums(dir: &Path) -> [u32; 3] {
    let files = outputs(dir);
    std::array::from_fn(|k| crc32fast::hash(&files[k]))
}

#[test]
fn every_scenario_writes_the_recorded_bytes() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&scenarios)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let recorded: Vec<&str> = RECORDED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, recorded, "scenarios without recorded checksums");

    let tmp = tempfile::tempdir().unwrap();
    let mut differ = Vec::new();
    for (name, expected) in RECORDED {
        let text = std::fs::read_to_string(scenarios.join(format!("{name}.toml"))).unwrap();
        let scenario = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&scenario, two_steps(&text, name)).unwrap();
        let out = tmp.path().join(name);
        let o = jko()
            .args(["run", "--quiet"])
            .arg(&scenario)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let got = checksums(&out);
        for k in 0..3 {
            if got[k] != expected[k] {
                differ.push(format!(
                    "{name}/{}: {:#010x}, recorded {:#010x}",
                    OUTPUTS[k], got[k], expected[k]
                ));
            }
        }
    }
    assert!(differ.is_empty(), "bytes changed:\n{}", differ.join("\n"));
}
