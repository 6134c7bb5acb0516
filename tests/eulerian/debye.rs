//! Double layers: a symmetric 1D electrolyte between two electrodes, run to steady state
//! by the Eulerian solver, against the Debye–Hückel (linearized) and Gouy–Chapman
//! profiles.
//!
//! Units: D = 1 for both species (z = +1, -1), so psi is in thermal units when lambda = 1;
//! -psi'' = rho_+ - rho_-, and at equilibrium rho_+- = c exp(-+ psi), whence
//! psi'' = 2 c sinh(psi) ~ kappa^2 psi with kappa^2 = 2 lambda c = 1 / lambda_D^2
//! (lambda = 1, bulk density c per species).
#![allow(clippy::needless_range_loop)]
use jko::eulerian::*;
use jko::model::domain::WallCondition;

/// Two species of mass c0 L each, uniform on [0, L], between electrodes at v0 and v1.
fn electrolyte(l: f64, n: usize, c0: f64, v0: f64, v1: f64) -> EulerianSolver {
    let grid = Grid::new(vec![0.0], vec![l], vec![n]);
    let species = [("plus", 1.0), ("minus", -1.0)]
        .into_iter()
        .map(|(name, z)| EulerianSpecies {
            name: name.into(),
            charge: z,
            diffusion: 1.0,
            exponent: 1.0,
            potential: Box::new(|_: &[f64]| 0.0),
            initial: vec![c0; n],
        })
        .collect();
    let env = Electrostatics {
        walls: Some(vec![[
            WallCondition::Electrode { potential: v0 },
            WallCondition::Electrode { potential: v1 },
        ]]),
        background: None,
    };
    EulerianSolver::new_in(
        EulerianProblem {
            grid,
            species,
            coupling_strength: 1.0,
        },
        env,
    )
    .unwrap()
}

/// Runs `steps` steps of length h, asserting that the energy never increases (to 1e-12
/// relative: rounding of the sums) and masses stay put (1e-12 relative).
fn relax(s: &mut EulerianSolver, steps: usize, h: f64) {
    let masses: Vec<f64> = (0..2).map(|k| s.mass(k)).collect();
    let mut e = s.energy().total();
    for _ in 0..steps {
        s.advance(h).unwrap();
        let en = s.energy().total();
        assert!(
            en <= e + 1e-12 * e.abs().max(1.0),
            "energy rose {e} -> {en}"
        );
        e = en;
    }
    for k in 0..2 {
        assert!((s.mass(k) - masses[k]).abs() < 1e-12 * masses[k]);
    }
}

/// Debye–Hückel. L = 10 lambda_D (c0 = 1/2, lambda = 1: lambda_D = 1), electrodes at 0
/// and V = 0.1. In a closed cell the masses are fixed, so the bulk is not at the
/// potential 0 of a reservoir: the linearized, mass-conserving equilibrium is
///
/// ```text
///   psi(x) = V/2 + (V/2) sinh(kappa (x - L/2)) / sinh(kappa L/2),
///   rho_+-(x) = c0 (1 -+ (psi(x) - V/2)),
/// ```
///
/// (linearizing rho_+- = A_+- exp(-+ psi) with A_+- fixed by the masses gives the bulk
/// potential V/2 by the symmetry psi -> V - psi, + <-> -). Tolerances: the neglected
/// terms are cubic in psi - V/2 for psi (|phi|^3/6 <= 2.1e-5 with |phi| <= V/2) and
/// quadratic for the densities (c0 phi^2/2 <= 6.3e-4); the grid (h = lambda_D/10) adds
/// O((kappa h)^2/12) = 8e-4 relative (4e-5 of V/2). So |psi - psi_DH| < 1e-4 (measured: see the log) and
/// |rho - rho_DH| < 1e-3. Steady state: the charge relaxes on the RC time
/// lambda_D L / (2D) = 5; t = 50 leaves e^-10 of the start. A wrong wall condition (the
/// linear potential V x / L of the failed FiPy and MOOSE runs) is off by 0.024.
#[test]
fn debye_huckel_layers_between_two_electrodes() {
    let (l, n, c0, v) = (10.0, 100, 0.5, 0.1);
    let mut s = electrolyte(l, n, c0, 0.0, v);
    relax(&mut s, 50, 1.0);
    let psi = s.psi();
    let (mut err_psi, mut err_rho, mut off_linear) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..n {
        let x = s.cell_center(i)[0];
        let phi = 0.5 * v * ((x - 0.5 * l).sinh() / (0.5 * l).sinh());
        err_psi = err_psi.max((psi[i] - (0.5 * v + phi)).abs());
        err_rho = err_rho.max((s.density(0)[i] - c0 * (1.0 - phi)).abs());
        err_rho = err_rho.max((s.density(1)[i] - c0 * (1.0 + phi)).abs());
        off_linear = off_linear.max((v * x / l - (0.5 * v + phi)).abs());
    }
    eprintln!("Debye-Hueckel: |psi error| {err_psi:.3e}, |rho error| {err_rho:.3e}");
    assert!(err_psi < 1e-4, "psi off by {err_psi}");
    assert!(err_rho < 1e-3, "densities off by {err_rho}");
    assert!(off_linear > 0.02, "{off_linear}");
}

/// Gouy–Chapman profile at distance x from an electrode at psi0 (bulk potential 0).
fn gouy_chapman(psi0: f64, x: f64, debye: f64) -> f64 {
    4.0 * ((0.25 * psi0).tanh() * (-x / debye).exp()).atanh()
}

/// int_0^inf (exp(-s phi_GC(x)) - 1) dx by the midpoint rule on 40 000 nodes over 40
/// lambda_D (the integrand decays like e^{-x/lambda_D}; quadrature error < 1e-9).
fn excess(psi0: f64, s: f64, debye: f64) -> f64 {
    let (m, span) = (40_000, 40.0 * debye);
    let dx = span / m as f64;
    (0..m)
        .map(|i| (-s * gouy_chapman(psi0, (i as f64 + 0.5) * dx, debye)).exp() - 1.0)
        .sum::<f64>()
        * dx
}

/// Gouy–Chapman. Electrodes at +psi0 = 2 (x = 0) and -2 (x = L = 20), c0 = 1/2: by the
/// symmetry psi -> -psi, x -> L - x, + <-> -, the bulk sits at psi = 0 and each wall
/// carries a Gouy–Chapman layer of drop 2 (nonlinear: sinh(1) = 1.18). The bulk density c
/// follows from the masses: c0 L = c (L + excess at psi0 + excess at -psi0), the excesses
/// int (e^{-+phi} - 1) of the Gouy–Chapman profile at lambda_D = 1/sqrt(2c) (solved by
/// fixed-point iteration). Checked over the layer x <= 5 lambda_D: psi and both densities
/// against psi(x) = 4 artanh(tanh(psi0/4) e^{-x/lambda_D}), rho = c e^{-+psi}; the surface
/// charge -int_0^{L/2} q (discrete Gauss: the electrode's d psi / d nu) against Grahame,
/// sigma = 2 sqrt(2c) sinh(psi0/2). Tolerances: the grid error is O((h/lambda_D)^2) with
/// h = lambda_D / 9.4 here (measured: psi 4.5e-3, densities 9.5e-3 of the local density
/// (a psi error dpsi moves rho by a fraction dpsi, plus the cell average of a curved
/// profile), sigma 7.5e-3 relative; with 400 cells they fall to 9.4e-4, 1.0e-2 / 7.4 at the
/// wall, 1.3e-3: second order). The two layers overlap by e^{-L/(2 lambda_D)} ~ 1e-4 and
/// t = 80 is 8 RC times (lambda_D L / 2 = 10) from a start whose charge is zero. So psi
/// within 6e-3, densities within 1.5e-2 relative, sigma within 1e-2 relative: ~1.3x the
/// measured values (the run is deterministic; the margin covers other platforms' libm).
#[test]
fn gouy_chapman_layer_and_grahame() {
    let (l, n, c0, psi0): (f64, usize, f64, f64) = (20.0, 200, 0.5, 2.0);
    let mut c = c0;
    for _ in 0..50 {
        let debye = 1.0 / (2.0 * c).sqrt();
        let total = excess(psi0, 1.0, debye) + excess(-psi0, 1.0, debye);
        c = c0 * l / (l + total);
    }
    let debye = 1.0 / (2.0 * c).sqrt();
    let mut s = electrolyte(l, n, c0, psi0, -psi0);
    relax(&mut s, 40, 2.0);
    let psi = s.psi();
    let (mut err_psi, mut err_rho) = (0.0f64, 0.0f64);
    let mut sigma = 0.0;
    let dx = s.grid().spacing(0);
    for i in 0..n {
        let x = s.cell_center(i)[0];
        if x < 0.5 * l {
            sigma -= (s.density(0)[i] - s.density(1)[i]) * dx;
        }
        if x > 5.0 * debye {
            continue;
        }
        let p = gouy_chapman(psi0, x, debye);
        err_psi = err_psi.max((psi[i] - p).abs());
        let (plus, minus) = (c * (-p).exp(), c * p.exp());
        err_rho = err_rho.max((s.density(0)[i] - plus).abs() / plus);
        err_rho = err_rho.max((s.density(1)[i] - minus).abs() / minus);
    }
    let grahame = 2.0 * (2.0 * c).sqrt() * (0.5 * psi0).sinh();
    let err_sigma = (sigma - grahame).abs() / grahame;
    eprintln!(
        "Gouy-Chapman: bulk c = {c:.6}, |psi error| {err_psi:.3e}, |rho error| relative {err_rho:.3e}, \
         sigma {sigma:.6} vs Grahame {grahame:.6} ({err_sigma:.3e} relative)"
    );
    assert!(err_psi < 6e-3, "psi off by {err_psi}");
    assert!(err_rho < 1.5e-2, "densities off by {err_rho}");
    assert!(err_sigma < 1e-2, "surface charge off by {err_sigma}");
}
