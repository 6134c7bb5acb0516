//! Input validation, the wall warning, and the initial-density helpers.
#![allow(clippy::needless_range_loop)]
use crate::support::grid::*;
use jko::eulerian::*;

fn one_species(g: &Grid, initial: Vec<f64>) -> EulerianProblem {
    EulerianProblem {
        grid: g.clone(),
        species: vec![EulerianSpecies {
            name: "u".into(),
            charge: 1.0,
            diffusion: 1.0,
            exponent: 1.0,
            potential: quadratic(1.0, vec![0.0; g.dim()]),
            initial,
        }],
        coupling_strength: 1.0,
    }
}

fn err_of(p: EulerianProblem) -> EulerianError {
    match EulerianSolver::new(p) {
        Err(e) => e,
        Ok(_) => panic!("problem accepted"),
    }
}

#[test]
fn bad_inputs_are_refused_with_the_field_named() {
    let g = grid(2, 8, 1.0);
    let ok = vec![1.0; 64];
    assert!(EulerianSolver::new(one_species(&g, ok.clone())).is_ok());
    let e = err_of(one_species(&g, vec![1.0; 63]));
    assert!(
        e.to_string().contains("`initial`") && e.to_string().contains("63"),
        "{e}"
    );
    let mut bad = ok.clone();
    bad[5] = f64::NAN;
    assert!(err_of(one_species(&g, bad)).to_string().contains("cell 5"));
    let mut bad = ok.clone();
    bad[7] = -1e-30;
    assert!(err_of(one_species(&g, bad)).to_string().contains("cell 7"));
    assert!(
        err_of(one_species(&g, vec![0.0; 64]))
            .to_string()
            .contains("no mass")
    );
    let mut p = one_species(&g, ok.clone());
    p.species[0].exponent = 0.5;
    assert!(err_of(p).to_string().contains("`exponent`"));
    let mut p = one_species(&g, ok.clone());
    p.species[0].diffusion = -1.0;
    assert!(err_of(p).to_string().contains("`diffusion`"));
    let mut p = one_species(&g, ok.clone());
    p.species[0].potential = Box::new(|x: &[f64]| 1.0 / x[0]); // infinite nowhere on this grid...
    assert!(EulerianSolver::new(p).is_ok());
    let mut p = one_species(&g, ok.clone());
    p.species[0].potential = Box::new(|x: &[f64]| (x[0] - 0.125).ln()); // NaN left of 0.125
    assert!(err_of(p).to_string().contains("`potential`"));
    let mut p = one_species(&g, ok.clone());
    p.coupling_strength = f64::INFINITY;
    assert!(err_of(p).to_string().contains("coupling.strength"));
    let mut p = one_species(&g, ok.clone());
    let mut upper = p.grid.upper().to_vec();
    upper[1] = -2.0;
    p.grid = Grid::new(p.grid.lower().to_vec(), upper, p.grid.cells().to_vec());
    assert!(err_of(p).to_string().contains("`upper`"));
    let mut p = one_species(&g, ok.clone());
    p.grid = Grid::new(p.grid.lower().to_vec(), p.grid.upper().to_vec(), vec![8]);
    assert!(err_of(p).to_string().contains("`cells`"));
    let mut p = one_species(&g, ok.clone());
    p.species.clear();
    assert!(err_of(p).to_string().contains("species"));
    let mut s = EulerianSolver::new(one_species(&g, ok)).unwrap();
    assert_eq!(s.advance(-0.1), Err(EulerianError::InvalidTimeStep(-0.1)));
    assert!(s.advance(f64::NAN).is_err());
    assert_eq!(s.advance(0.0).unwrap().substeps, 0);
}

#[test]
fn wall_warning_follows_the_density_at_the_walls() {
    // Narrow Gaussian in the middle: no warning. Uniform density: warning. A narrow Gaussian
    // that diffuses (D = 1, no potential) until it reaches the walls: warning appears.
    let g = grid(1, 100, 2.0);
    let narrow = gaussian_cell_averages(&g, &[0.0], &[0.2], 1.0).unwrap();
    let mut p = one_species(&g, narrow);
    p.species[0].potential = Box::new(|_: &[f64]| 0.0);
    let mut s = EulerianSolver::new(p).unwrap();
    assert!(!s.touches_walls(), "ratio {}", s.wall_density_ratio(0));
    s.advance(0.5).unwrap();
    assert!(s.touches_walls(), "ratio {}", s.wall_density_ratio(0));
    let s = EulerianSolver::new(one_species(&g, vec![1.0; 100])).unwrap();
    assert!(s.touches_walls());
    assert_eq!(s.wall_density_ratio(0), 1.0);
}

#[test]
fn gaussian_cell_averages_are_exact() {
    // Tail probability: P(X > 8) for N(0,1) = 6.220960574271785e-16 (erfc branch, no cancellation).
    let p = normal_interval_probability(8.0, f64::INFINITY, 0.0, 1.0);
    assert!((p - 6.220960574271785e-16).abs() < 1e-29, "{p:e}");
    let p = normal_interval_probability(-1.0, 1.0, 0.0, 1.0);
    assert!((p - 0.6826894921370859).abs() < 1e-15, "{p}");
    // Box mass = mass * product of per-axis probabilities of the box; one cell against quadrature.
    let g = Grid::new(vec![-1.0, -2.0], vec![2.0, 1.5], vec![30, 35]);
    let (mean, std) = ([0.3, -0.4], [0.5, 0.8]);
    let r = gaussian_cell_averages(&g, &mean, &std, 2.0).unwrap();
    let inside = 2.0
        * normal_interval_probability(-1.0, 2.0, 0.3, 0.5)
        * normal_interval_probability(-2.0, 1.5, -0.4, 0.8);
    let total: f64 = r.iter().sum::<f64>() * g.cell_volume();
    assert!((total - inside).abs() < 1e-14, "{total} vs {inside}");
    // Cell (12, 20): average of the density by midpoint rules on m x m sub-cells, m = 40 and
    // 80, Richardson-extrapolated (error O(m^-4) ~ 1e-12 relative).
    let i = 12 + 30 * 20;
    let c = g.center(i);
    let (hx, hy) = (g.spacing(0), g.spacing(1));
    let dens = |x: f64, y: f64| {
        2.0 * (-(x - mean[0]).powi(2) / (2.0 * std[0] * std[0])
            - (y - mean[1]).powi(2) / (2.0 * std[1] * std[1]))
            .exp()
            / (2.0 * std::f64::consts::PI * std[0] * std[1])
    };
    let midpoint = |m: usize| {
        let mut s = 0.0;
        for a in 0..m {
            for b in 0..m {
                s += dens(
                    c[0] - hx / 2.0 + (a as f64 + 0.5) * hx / m as f64,
                    c[1] - hy / 2.0 + (b as f64 + 0.5) * hy / m as f64,
                );
            }
        }
        s / (m * m) as f64
    };
    let avg = (4.0 * midpoint(80) - midpoint(40)) / 3.0;
    assert!((r[i] - avg).abs() < 1e-11 * avg, "{} vs {avg}", r[i]);
    assert!(gaussian_cell_averages(&g, &mean, &[0.5, 0.0], 1.0).is_err());
    assert!(gaussian_cell_averages(&g, &[0.0], &std, 1.0).is_err());
}

#[test]
fn uniform_cell_averages_use_exact_overlaps_and_binning_counts_weights() {
    let g = Grid::new(vec![0.0, 0.0], vec![4.0, 2.0], vec![4, 2]);
    // Box [0.5, 2.25] x [0.5, 1.0], mass 3.5: density 3.5 / (1.75 * 0.5) = 4.
    let r = uniform_cell_averages(&g, &[0.5, 0.5], &[2.25, 1.0], 3.5).unwrap();
    let expect = [
        4.0 * 0.5 * 0.5,
        4.0 * 0.5,
        4.0 * 0.25 * 0.5,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ];
    for (a, b) in r.iter().zip(expect) {
        assert!((a - b).abs() < 1e-15, "{r:?}");
    }
    assert!(uniform_cell_averages(&g, &[1.0, 0.0], &[0.5, 1.0], 1.0).is_err());
    let b = bin_particles(
        &g,
        &[0.5, 0.5, 3.9, 1.9, 4.0, 2.0, 0.7, 0.1],
        &[0.25, 0.5, 0.125, 1.0],
    )
    .unwrap();
    assert_eq!(b, vec![1.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.625]);
    let e = bin_particles(&g, &[0.5, 2.5], &[1.0]).unwrap_err();
    assert!(
        e.to_string().contains("particle 0") && e.to_string().contains("outside"),
        "{e}"
    );
    assert!(bin_particles(&g, &[0.5, 0.5], &[f64::NAN]).is_err());
}

#[test]
fn three_dimensional_run_conserves_mass_and_dissipates() {
    let g = grid(3, 16, 3.0);
    let mk = |name: &str, z: f64, mean: [f64; 3]| EulerianSpecies {
        name: name.into(),
        charge: z,
        diffusion: 0.5,
        exponent: 1.0,
        potential: quadratic(1.0, vec![0.0; 3]),
        initial: gaussian_cell_averages(&g, &mean, &[0.5; 3], 1.0).unwrap(),
    };
    let species = vec![
        mk("u", 1.0, [0.3, 0.0, 0.0]),
        mk("v", -1.0, [-0.3, 0.2, 0.0]),
    ];
    let mut s = EulerianSolver::new(EulerianProblem {
        grid: g,
        species,
        coupling_strength: 1.0,
    })
    .unwrap();
    let mut e = s.energy().total();
    for _ in 0..4 {
        s.advance(0.05).unwrap();
        let en = s.energy().total();
        assert!(en <= e + 1e-12 * e.abs().max(1.0));
        e = en;
        for k in 0..2 {
            assert!((s.mass(k) - 1.0).abs() < 1e-6); // mass inside the box of the initial law
            assert!(s.density(k).iter().all(|&r| r >= 0.0));
        }
    }
}
