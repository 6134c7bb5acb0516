//! Particles against the grid in a box (SPEC §7): the linearized
//! (Debye–Hückel) double layer between two electrodes with a small applied
//! voltage, by `jko run` and `jko eulerian` on the same scenario, and
//! `jko compare` between them.
//!
//! Two ion species (z = +1, -1, D = 1, mass 2 each in [0, 4]: c0 = 0.5,
//! lambda = 1, so kappa^2 = 2 lambda c0 = 1, a Debye length of 1) between
//! electrodes at 0.1 and 0 (0.1 thermal units: the linear regime). Both
//! runs solve the same PDE from the same uniform start to t = 0.5, while the
//! layers form. The Wasserstein distance W1 between the particle clouds and
//! the grid densities at t = 0.5 must fall as N grows (eps refined with it;
//! h = 0.01 for all runs, as `jko compare` matches written steps by their
//! times): the particles' error is O(h) + O(eps^2) + the sampling noise
//! O(N^-1/2), which dominates here; the grid's (400 cells) is far below.

use crate::support::run::{jko, write};
use jko::compare::compare_runs;

fn scenario(n: usize, h: f64, eps: f64) -> String {
    format!(
        r#"
dimension = 1
time_step = {h}
steps = {steps}
output_every = {steps}
seed = 3
[coupling]
strength = 1.0
softening = 0.001
[density]
bandwidth = {eps}
[domain]
kind = "box"
lower = [0.0]
upper = [4.0]
[[domain.wall]]
axis = 0
side = "lower"
potential = 0.1
[[domain.wall]]
axis = 0
side = "upper"
potential = 0.0
[[species]]
name = "cation"
mass = 2.0
particles = {n}
initial = {{ kind = "uniform", lower = [0.0], upper = [4.0] }}
[[species]]
name = "anion"
charge = -1.0
mass = 2.0
particles = {n}
initial = {{ kind = "uniform", lower = [0.0], upper = [4.0] }}
[grid]
cells = 400
"#,
        steps = (0.5 / h).round() as usize
    )
}

fn run(cmd: &str, scen: &std::path::Path, out: &std::path::Path) {
    let o = jko()
        .args([cmd, scen.to_str().unwrap(), "--out"])
        .arg(out)
        .arg("-q")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn debye_huckel_particles_approach_the_grid_as_n_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let h = 0.01;
    let grid_scen = write(tmp.path(), "grid.toml", &scenario(100, h, 0.05));
    let grid = tmp.path().join("grid");
    run("eulerian", &grid_scen, &grid);
    let mut w1 = Vec::new();
    for (n, eps) in [(200, 0.08), (1600, 0.03)] {
        let scen = write(tmp.path(), &format!("p{n}.toml"), &scenario(n, h, eps));
        let out = tmp.path().join(format!("p{n}"));
        run("run", &scen, &out);
        let c = compare_runs(&out, &grid).unwrap_or_else(|e| panic!("{e}"));
        let last = c.rows.iter().map(|r| r.step).max().unwrap();
        let worst = c
            .rows
            .iter()
            .filter(|r| r.step == last)
            .map(|r| r.w1.expect("1D: W1 is exact"))
            .fold(0.0f64, f64::max);
        eprintln!("N = {n}: W1 to the grid at t = 0.5: {worst:.3e}");
        w1.push(worst);
    }
    // The coarse run's W1 is a few 1e-3 (the layer's charge, 0.1 of the
    // bulk's, moved by a Debye length); refining must lower it clearly.
    assert!(w1[1] < 0.6 * w1[0], "W1 must fall with N: {w1:?}");
    assert!(w1[1] < 0.01, "{w1:?}");
}
