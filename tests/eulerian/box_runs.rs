//! Runs in a box (SPEC §7): relaxation to the uniform state with insulating walls, energy
//! decay with charged walls and background charges, thread-count independence, and
//! `jko eulerian` on a box scenario (a run, and a [grid] that is not the box refused).
#![allow(clippy::needless_range_loop)]
use crate::support::run::{jko, records, stderr, write};
use jko::eulerian::*;
use jko::model::background::Background;
use jko::model::domain::WallCondition;

const INSULATING: WallCondition = WallCondition::INSULATING;

fn box_grid() -> Grid {
    Grid::new(vec![0.0, 0.0], vec![2.0, 1.0], vec![32, 16])
}

/// Two species (+1 and -1, mass 1, D = 1, lambda = 1) from Gaussians near opposite
/// corners, restricted to the box and renormalized.
fn two_species(g: &Grid) -> EulerianProblem {
    let mk = |name: &str, z: f64, mean: [f64; 2]| EulerianSpecies {
        name: name.into(),
        charge: z,
        diffusion: 1.0,
        exponent: 1.0,
        potential: Box::new(|_: &[f64]| 0.0),
        initial: restricted_gaussian_cell_averages(g, &mean, &[0.3, 0.2], 1.0).unwrap(),
    };
    EulerianProblem {
        grid: g.clone(),
        species: vec![mk("u", 1.0, [0.5, 0.3]), mk("v", -1.0, [1.6, 0.7])],
        coupling_strength: 1.0,
    }
}

/// Runs `steps` steps of h; asserts the energy never increases (1e-12 relative: the
/// rounding of its sums) and each mass stays at 1 (1e-12); returns the energies.
fn run(s: &mut EulerianSolver, steps: usize, h: f64) -> Vec<f64> {
    let mut e = vec![s.energy().total()];
    for _ in 0..steps {
        s.advance(h).unwrap();
        let en = s.energy().total();
        let last = *e.last().unwrap();
        assert!(en <= last + 1e-12 * last.abs().max(1.0), "{last} -> {en}");
        e.push(en);
        for k in 0..2 {
            assert!((s.mass(k) - 1.0).abs() < 1e-12, "mass {}", s.mass(k));
        }
    }
    e
}

/// The seed's setting: insulating uncharged walls, no potential, two species; they relax
/// to the uniform state 1/|box| = 1/2. The slowest mode (diffusion across the long side,
/// rate D pi^2 / L^2 = 2.5, the coupling only speeding the charge modes) leaves
/// e^{-2.5 t}: t = 8 gives 2e-9 of the initial deviation (~2): each density within 1e-6
/// of 1/2. The start must be far from it (> 0.5), or the test proves nothing.
#[test]
fn two_species_in_an_insulating_box_relax_to_uniform() {
    let g = box_grid();
    let env = Electrostatics {
        walls: Some(vec![[INSULATING; 2]; 2]),
        background: None,
    };
    let mut s = EulerianSolver::new_in(two_species(&g), env).unwrap();
    let dev = |s: &EulerianSolver| {
        (0..2)
            .flat_map(|k| {
                s.density(k)
                    .iter()
                    .map(|r| (r - 0.5).abs())
                    .collect::<Vec<_>>()
            })
            .fold(0.0, f64::max)
    };
    assert!(dev(&s) > 0.5);
    let e = run(&mut s, 16, 0.5);
    eprintln!(
        "insulating box: deviation {:.3e}, energy {:?}",
        dev(&s),
        &e[..4]
    );
    assert!(dev(&s) < 1e-6, "{}", dev(&s));
    // Uniform neutral state: the energy is sum_k M log(M/|box|) = 2 log(1/2).
    assert!((e[16] - 2.0 * 0.5f64.ln()).abs() < 1e-6);
}

/// A charged insulating wall, an electrode and a background charge: psi_ext is present,
/// the energy never increases and the masses stay put; the same run on one thread and on
/// two gives the same bits.
#[test]
fn walls_and_backgrounds_dissipate_and_do_not_depend_on_threads() {
    let g = box_grid();
    let bg = Background::gaussian("fixed", 0.4, vec![1.0, 0.5], vec![0.3, 0.3]);
    let make = || {
        let env = Electrostatics {
            walls: Some(vec![
                [WallCondition::Electrode { potential: 0.5 }, INSULATING],
                [
                    WallCondition::Insulating {
                        surface_charge: -0.2,
                    },
                    INSULATING,
                ],
            ]),
            background: Some(background_cells(&g, std::slice::from_ref(&bg), true).unwrap()),
        };
        EulerianSolver::new_in(two_species(&g), env).unwrap()
    };
    let go = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut s = make();
                assert!(s.external_psi().is_some() && s.in_box());
                let e = run(&mut s, 6, 0.2);
                (e, s.density(0).to_vec(), s.psi())
            })
    };
    let (one, two) = (go(1), go(2));
    assert!(one.0[6] < one.0[0] - 1e-3, "{:?}", one.0);
    assert_eq!(one, two);
}

const BOX_SCENARIO: &str = r#"
# A 2D box: an electrode, a charged insulating wall, a fixed background.
dimension = 2
time_step = 0.05
steps = 4
output_every = 2
[coupling]
strength = 1.0
softening = 0.1
[density]
bandwidth = 0.1
[domain]
kind = "box"
lower = [0.0, 0.0]
upper = [2.0, 1.0]
[[domain.wall]]
axis = 0
side = "lower"
potential = 0.3
[[domain.wall]]
axis = 1
side = "lower"
surface_charge = -0.25
[[background]]
name = "fixed"
charge = 0.5
shape = { kind = "uniform", lower = [0.5, 0.0], upper = [1.5, 1.0] }
[[species]]
name = "u"
charge = 1.0
particles = 100
initial = { kind = "gaussian", mean = [0.6, 0.5], std = 0.4 }
[[species]]
name = "v"
charge = -1.0
particles = 100
initial = { kind = "uniform", lower = [1.0, 0.0], upper = [2.0, 1.0] }
"#;

/// `jko eulerian` on a box scenario: the grid is the box (only `cells` given), each
/// species' mass stays 1 in the box (the gaussian law restricted and renormalized), the
/// energy never increases. A [grid] whose corners differ from the box is refused with a
/// message naming grid.upper and a non-zero status.
#[test]
fn jko_eulerian_runs_on_a_box_and_refuses_another_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!("{BOX_SCENARIO}\n[grid]\ncells = [20, 10]\n");
    let scen = write(tmp.path(), "box.toml", &text);
    let out = tmp.path().join("box");
    let o = jko()
        .args(["eulerian", scen.to_str().unwrap(), "--out"])
        .arg(&out)
        .arg("-q")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut mass = std::collections::BTreeMap::<(String, String), f64>::new();
    for r in records(&out, "density.csv") {
        let rho: f64 = r[5].parse().unwrap();
        *mass
            .entry((r[0].to_string(), r[2].to_string()))
            .or_default() += rho * 0.1 * 0.1;
    }
    assert_eq!(mass.len(), 3 * 2);
    for (key, m) in &mass {
        assert!((m - 1.0).abs() < 1e-12, "{key:?}: mass {m}");
    }
    let energies: Vec<f64> = records(&out, "energy.csv")
        .iter()
        .map(|r| r[2].parse().unwrap())
        .collect();
    assert_eq!(energies.len(), 5);
    for w in energies.windows(2) {
        assert!(w[1] <= w[0] + 1e-12 * w[0].abs().max(1.0), "{energies:?}");
    }

    let text =
        format!("{BOX_SCENARIO}\n[grid]\nlower = [0.0, 0.0]\nupper = [2.0, 2.0]\ncells = 8\n");
    let scen = write(tmp.path(), "bad.toml", &text);
    let o = jko()
        .args(["eulerian", scen.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("bad"))
        .output()
        .unwrap();
    let msg = stderr(&o);
    assert!(!o.status.success());
    assert!(msg.contains("grid.upper") && msg.contains("box"), "{msg}");
    assert!(!tmp.path().join("bad").join("density.csv").exists());
}
