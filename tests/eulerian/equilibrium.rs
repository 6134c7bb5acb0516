//! The grid equilibrium (`jko equilibrium --grid`, `eulerian::equilibrium`) against closed
//! forms, and the steric (Bikerman) term of the time stepper.
//!
//! Units of the 1D double layers: D = T = 1, lambda = 2, so phi = lambda psi / T = 2 psi
//! (thermal units) and kappa^2 = 2 lambda c0 / T = 4 c0 (-psi'' = rho_+ - rho_-,
//! rho_+- = c0 exp(-+ phi), so phi'' = (lambda / T) 2 c0 sinh phi). Two electrodes at
//! +V and -V on [0, L] with equal masses: by the symmetry psi -> -psi, x -> L - x,
//! (plus <-> minus), the discrete solution is odd about L/2, so the bulk sits at psi = 0 and c0 is
//! the solver's bulk value sqrt(rho_+ rho_-) (the same in every cell for Boltzmann
//! profiles); each wall carries a half-space layer (L / 2 = 20 Debye lengths: the two
//! layers overlap by e^-20 ~ 2e-9, far below every tolerance).
#![allow(clippy::needless_range_loop)]
use crate::support::run::{jko, records, stderr, write};
use jko::eulerian::*;
use jko::model::background::Background;
use jko::model::domain::WallCondition;
use jko::model::steric::{Steric, bikerman_density};

const LAMBDA: f64 = 2.0;

/// Two species z = +-1, D = 1, uniform c0 on [0, L], electrodes at v0 (x = 0), v1 (x = L).
fn electrolyte(
    l: f64,
    n: usize,
    c0: f64,
    v0: f64,
    v1: f64,
    steric: Option<Steric>,
) -> EulerianSolver {
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
            coupling_strength: LAMBDA,
        },
        env,
    )
    .unwrap()
    .with_steric(steric)
    .unwrap()
}

fn solve(s: &EulerianSolver) -> GridEquilibrium {
    let t = std::time::Instant::now();
    let e = solve_grid_equilibrium(s, &EquilibriumOptions::default()).unwrap();
    eprintln!(
        "  {} cells: {} Newton steps, {} GMRES iterations, residual {:.2e}, {:.3} s",
        s.grid().len(),
        e.iterations,
        e.krylov_iterations,
        e.residual,
        t.elapsed().as_secs_f64()
    );
    e
}

/// Each mass equals the initial densities' to 1e-12 relative (the solver rescales to
/// the exact masses: rounding of the sums only).
fn assert_masses(s: &EulerianSolver, e: &GridEquilibrium) {
    let dv = s.grid().cell_volume();
    for k in 0..s.num_species() {
        let m: f64 = e.densities[k].iter().sum::<f64>() * dv;
        let m0 = s.mass(k);
        assert!(
            (m - m0).abs() <= 1e-12 * m0,
            "species {k}: mass {m} vs {m0}"
        );
    }
}

/// Observed orders log2(e_n / e_{n+1}) of errors at cell sizes halving each time.
fn orders(errors: &[f64]) -> Vec<f64> {
    errors.windows(2).map(|w| (w[0] / w[1]).log2()).collect()
}

/// Gouy–Chapman: phi(x) = 4 artanh(tanh(phi0/4) e^{-kappa x}).
fn gouy_chapman(phi0: f64, kappa: f64, x: f64) -> f64 {
    4.0 * ((0.25 * phi0).tanh() * (-kappa * x).exp()).atanh()
}

/// Gouy–Chapman in 1D. V = 2 (phi0 = 4: sinh(2) = 3.6, well beyond the linear regime),
/// c0 = 1/4 initially (kappa ~ 1), L = 40, n = 400, 800, 1600 (h = 0.1 .. 0.025
/// Debye lengths). Measured: phi (thermal units) against the closed form at the cell
/// centers of the left half, and the layer's charge -sum_{x < L/2} q h against Grahame's
/// sigma = 2 sqrt(2 c0 T / lambda) sinh(phi0 / 2). The cell-centered finite volumes are
/// second order (the electrode's ghost value 2V - psi_0 too), so both errors must fall
/// by 4 per halving: observed orders >= 1.8 (the layer overlap, e^-20, and the Newton
/// residual, < 1e-11, are 1e-4 of the finest error). Tolerances at n = 1600: phi 2e-4,
/// sigma 2e-4 relative (measured values in the log).
#[test]
fn gouy_chapman_potential_and_grahame_at_second_order() {
    let (l, c0, v) = (40.0, 0.25, 2.0);
    let phi0 = LAMBDA * v;
    let (mut e_phi, mut e_sigma) = (Vec::new(), Vec::new());
    for n in [800usize, 1600, 3200] {
        let s = electrolyte(l, n, c0, v, -v, None);
        let e = solve(&s);
        assert_masses(&s, &e);
        let h = l / n as f64;
        let bulk = (e.densities[0][n / 2] * e.densities[1][n / 2]).sqrt();
        let kappa = (2.0 * LAMBDA * bulk).sqrt();
        let mut err = 0.0f64;
        let mut sigma = 0.0;
        for i in 0..n / 2 {
            let x = (i as f64 + 0.5) * h;
            err = err.max((LAMBDA * e.psi[i] - gouy_chapman(phi0, kappa, x)).abs());
            sigma -= (e.densities[0][i] - e.densities[1][i]) * h;
        }
        let grahame = 2.0 * (2.0 * bulk / LAMBDA).sqrt() * (0.5 * phi0).sinh();
        let es = (sigma - grahame).abs() / grahame;
        eprintln!(
            "Gouy-Chapman n = {n}: bulk c0 {bulk:.8}, |phi error| {err:.3e}, sigma {sigma:.8} vs \
             Grahame {grahame:.8} ({es:.3e})"
        );
        e_phi.push(err);
        e_sigma.push(es);
    }
    let (o_phi, o_sigma) = (orders(&e_phi), orders(&e_sigma));
    eprintln!("Gouy-Chapman orders: phi {o_phi:.3?}, sigma {o_sigma:.3?}");
    assert!(o_phi.iter().all(|&o| o >= 1.8), "phi orders {o_phi:?}");
    assert!(
        o_sigma.iter().all(|&o| o >= 1.8),
        "sigma orders {o_sigma:?}"
    );
    assert!(e_phi[2] < 5e-4, "phi error {}", e_phi[2]);
    assert!(e_sigma[2] < 3.5e-4, "sigma error {}", e_sigma[2]);
}

/// The Debye–Hückel limit: V = 0.0025 (phi0 = 0.005), n = 800 (h = 0.05 Debye lengths):
/// psi = V exp(-kappa x). Tolerance 2e-5 relative to V: the neglected nonlinearity is
/// phi0^2 / 48 ~ 5e-7 relative (tanh(phi/4) = phi/4 (1 - phi^2/48 ...)); the grid error
/// (kappa h)^2 / 8 ~ 3e-4 of the slope term shows in psi near the wall at about 1e-5 of
/// V (measured in the log). A wrong sign of the coupling or a missing lambda fails by
/// tens of percent.
#[test]
fn debye_huckel_linear_limit() {
    let (l, n, c0, v) = (40.0, 3200, 0.25, 0.0025);
    let s = electrolyte(l, n, c0, v, -v, None);
    let e = solve(&s);
    assert_masses(&s, &e);
    let h = l / n as f64;
    let bulk = (e.densities[0][n / 2] * e.densities[1][n / 2]).sqrt();
    let kappa = (2.0 * LAMBDA * bulk).sqrt();
    let err = (0..n / 2)
        .map(|i| (e.psi[i] - v * (-kappa * (i as f64 + 0.5) * h).exp()).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "Debye-Hueckel: |psi - V e^(-kappa x)| / V = {:.3e}",
        err / v
    );
    assert!(err < 2e-5 * v, "{}", err / v);
}

/// The Bikerman first integral for phi > 0 decreasing from phi0 (x = 0):
/// psi'^2 / 2 = (T / (lambda v)) log(1 + 2 v c0 (cosh phi - 1)), i.e.
/// phi' = -(lambda / T) sqrt((2 T / (lambda v)) log(1 + 4 v c0 sinh^2(phi / 2))).
fn bikerman_slope(c0: f64, v: f64, phi: f64) -> f64 {
    let arg = 4.0 * v * c0 * (0.5 * phi).sinh().powi(2);
    -LAMBDA * (2.0 / (LAMBDA * v) * arg.ln_1p()).sqrt()
}

/// phi at the points `xs` (increasing) by RK4 from phi(0) = phi0, 200 steps per unit
/// length at least (the profile is smooth: error ~ 1e-12).
fn bikerman_profile(c0: f64, v: f64, phi0: f64, xs: &[f64]) -> Vec<f64> {
    let f = |p: f64| bikerman_slope(c0, v, p);
    let (mut x, mut p) = (0.0, phi0);
    xs.iter()
        .map(|&target| {
            let steps = (((target - x) * 2000.0).ceil() as usize).max(1);
            let dx = (target - x) / steps as f64;
            for _ in 0..steps {
                let k1 = f(p);
                let k2 = f(p + 0.5 * dx * k1);
                let k3 = f(p + 0.5 * dx * k2);
                let k4 = f(p + dx * k3);
                p += dx * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0;
            }
            x = target;
            p
        })
        .collect()
}

/// x where phi falls from phi0 to `phi`: int_phi^phi0 dt / |phi'(t)| (Simpson, 20 000
/// intervals of a smooth, bounded integrand: error < 1e-10).
fn bikerman_distance(c0: f64, v: f64, phi0: f64, phi: f64) -> f64 {
    let m = 20_000;
    let dt = (phi0 - phi) / m as f64;
    let g = |t: f64| 1.0 / bikerman_slope(c0, v, t).abs();
    let mut s = g(phi) + g(phi0);
    for j in 1..m {
        s += if j % 2 == 1 { 4.0 } else { 2.0 } * g(phi + j as f64 * dt);
    }
    s * dt / 3.0
}

/// Bikerman 1D. V = 10 (phi0 = 20: a Boltzmann counter-ion density e^20 c0 ~ 3e8 c0,
/// far beyond close packing), v = 0.05 (1/v = 20), initial c0 = 1 (the layers take 18 of
/// the 40 per species: the bulk settles at c0 = 0.603), odd n = 401, 801, 1601 so that
/// the middle cell sits at psi = 0 exactly (by symmetry), c0 = its densities. Measured:
/// - the profiles rho_+- = c0 e^{-+phi} / (1 + 2 v c0 (cosh phi - 1)) at the computed
///   psi, cell by cell: an identity of the discrete equations (T = D: rho_k = a_k
///   e^{-z phi} / (1 + v sum_j a_j e^{-z_j phi})), so to 1e-10 relative (the Newton
///   residual, < 1e-11, and rounding; measured 1e-13);
/// - psi against the exact first integral (RK4 at the cell centers of the left half):
///   second order (observed orders >= 1.8; at n = 1601 within 5e-3 thermal units,
///   measured 3.1e-3); the surface charge -sum q h against
///   sigma = sqrt((2 T / (lambda v)) log(1 + 2 v c0 (cosh phi0 - 1))): second order,
///   within 1e-4 relative at n = 1601 (measured 6.3e-5);
/// - crowding: no cell has v s >= 1 (1 - max v s is 1e-7: the wall cells are packed);
/// - the thickening: the distance where the counter-ion density falls to half its wall
///   value, x_half (linear interpolation between cell centers, O(h^2)), against the
///   closed form's (Simpson on the first integral): within 5e-4 at n = 1601 (measured
///   1.3e-4, x_half = 0.801); Gouy–Chapman's x_half at the same phi0 and c0 is
///   (1/kappa) log(tanh(phi0/4) / tanh((phi0 - ln 2)/4)) = 2.4e-5: the Bikerman layer's
///   must exceed it 1e4-fold (measured 3.3e4).
#[test]
fn bikerman_profiles_first_integral_and_crowding() {
    let (l, c0, v, vol) = (40.0, 1.0, 10.0, 0.05);
    let phi0 = LAMBDA * v;
    let st = Steric {
        volume: vol,
        temperature: 1.0,
    };
    let (mut e_psi, mut e_sigma, mut x_half) = (Vec::new(), Vec::new(), 0.0);
    let mut x_half_exact = 0.0;
    let mut gc_half = 0.0;
    for n in [401usize, 801, 1601] {
        let s = electrolyte(l, n, c0, v, -v, Some(st));
        let e = solve(&s);
        assert_masses(&s, &e);
        let mid = n / 2;
        assert!(e.psi[mid].abs() < 1e-12, "psi at the middle {}", e.psi[mid]);
        let bulk = e.densities[0][mid];
        let h = l / n as f64;
        // The pointwise identity.
        let mut identity = 0.0f64;
        for i in 0..n {
            let phi = LAMBDA * e.psi[i];
            for (k, z) in [(0, 1.0), (1, -1.0)] {
                let b = bikerman_density(bulk, vol, z, phi);
                identity = identity.max((e.densities[k][i] - b).abs() / b);
            }
            let packing = vol * (e.densities[0][i] + e.densities[1][i]);
            assert!(packing < 1.0, "cell {i}: v s = {packing}");
        }
        assert!(identity < 1e-10, "Bikerman identity off by {identity:e}");
        // psi against the first integral.
        let xs: Vec<f64> = (0..=mid).map(|i| (i as f64 + 0.5) * h).collect();
        let exact = bikerman_profile(bulk, vol, phi0, &xs);
        let err = (0..=mid)
            .map(|i| (LAMBDA * e.psi[i] - exact[i]).abs())
            .fold(0.0, f64::max);
        let sigma: f64 = -(0..mid)
            .map(|i| (e.densities[0][i] - e.densities[1][i]) * h)
            .sum::<f64>();
        let arg = 4.0 * vol * bulk * (0.5 * phi0).sinh().powi(2);
        let sigma_exact = (2.0 / (LAMBDA * vol) * arg.ln_1p()).sqrt();
        let es = (sigma - sigma_exact).abs() / sigma_exact;
        // Thickening: x_half of the counter-ion (minus, z = -1, at the positive wall).
        let wall = bikerman_density(bulk, vol, -1.0, phi0);
        let j = (0..n).find(|&i| e.densities[1][i] < 0.5 * wall).unwrap();
        assert!(j > 0);
        let (r0, r1) = (e.densities[1][j - 1], e.densities[1][j]);
        x_half = xs[j - 1] + h * (r0 - 0.5 * wall) / (r0 - r1);
        let (mut lo, mut hi) = (0.0, phi0);
        for _ in 0..200 {
            let m = 0.5 * (lo + hi);
            if bikerman_density(bulk, vol, -1.0, m) < 0.5 * wall {
                lo = m;
            } else {
                hi = m;
            }
        }
        x_half_exact = bikerman_distance(bulk, vol, phi0, 0.5 * (lo + hi));
        let kappa = (2.0 * LAMBDA * bulk).sqrt();
        gc_half = ((0.25 * phi0).tanh() / (0.25 * (phi0 - 2f64.ln())).tanh()).ln() / kappa;
        eprintln!(
            "Bikerman n = {n}: c0 {bulk:.8}, 1 - max v s {:.3e}, identity {identity:.2e}, |phi \
             error| {err:.3e}, sigma {sigma:.8} vs {sigma_exact:.8} ({es:.3e}), x_half \
             {x_half:.6} vs {x_half_exact:.6} (Gouy-Chapman {gc_half:.3e})",
            1.0 - e.max_packing
        );
        e_psi.push(err);
        e_sigma.push(es);
    }
    let (o_psi, o_sigma) = (orders(&e_psi), orders(&e_sigma));
    eprintln!("Bikerman orders: phi {o_psi:.3?}, sigma {o_sigma:.3?}");
    assert!(o_psi.iter().all(|&o| o >= 1.8), "psi orders {o_psi:?}");
    assert!(
        o_sigma.iter().all(|&o| o >= 1.8),
        "sigma orders {o_sigma:?}"
    );
    assert!(e_psi[2] < 5e-3, "phi error {}", e_psi[2]);
    assert!(e_sigma[2] < 1e-4, "sigma error {}", e_sigma[2]);
    assert!(
        (x_half - x_half_exact).abs() < 5e-4,
        "{x_half} vs {x_half_exact}"
    );
    assert!(x_half > 1e4 * gc_half, "{x_half} vs Gouy-Chapman {gc_half}");
}

/// A grid solver on a 2D box: [0, 4] x [0, 2], insulating uncharged walls, donors of
/// charge 2 uniform on [0, 2] x [0, 2] (the left half), electrons (z = -1, mass 3) and
/// holes (z = +1, mass 1): neutral. D = 1, lambda = 1, n x n/2 cells.
fn junction_2d(n: usize) -> EulerianSolver {
    let grid = Grid::new(vec![0.0, 0.0], vec![4.0, 2.0], vec![n, n / 2]);
    let donors = background_cells(
        &grid,
        &[Background::uniform(
            "donors",
            2.0,
            vec![0.0, 0.0],
            vec![2.0, 2.0],
        )],
        true,
    )
    .unwrap();
    let mk = |name: &str, z: f64, mass: f64| EulerianSpecies {
        name: name.into(),
        charge: z,
        diffusion: 1.0,
        exponent: 1.0,
        potential: Box::new(|_: &[f64]| 0.0),
        initial: uniform_cell_averages(&grid, &[0.0, 0.0], &[4.0, 2.0], mass).unwrap(),
    };
    let species = vec![mk("electrons", -1.0, 3.0), mk("holes", 1.0, 1.0)];
    EulerianSolver::new_in(
        EulerianProblem {
            grid: grid.clone(),
            species,
            coupling_strength: 1.0,
        },
        Electrostatics {
            walls: Some(vec![[WallCondition::INSULATING; 2]; 2]),
            background: Some(donors),
        },
    )
    .unwrap()
}

/// The discrete stationary equations of a solution for m = 1 without steric term:
/// rho_k exp((U_k + lambda z_k psi)/D_k) is the same in every cell (relative spread
/// returned), and psi = G q + psi_ext (the solver's own psi of the solution's densities,
/// max difference returned).
fn stationarity(
    s: &EulerianSolver,
    e: &GridEquilibrium,
    make: &dyn Fn(Vec<Vec<f64>>) -> EulerianSolver,
    lambda: f64,
    charges: &[f64],
    potentials: &[Vec<f64>],
) -> (f64, f64) {
    let n = s.grid().len();
    let mut spread = 0.0f64;
    for (k, z) in charges.iter().enumerate() {
        let g: Vec<f64> = (0..n)
            .map(|i| (e.densities[k][i].ln() + potentials[k][i] + lambda * z * e.psi[i]).exp())
            .collect();
        let (lo, hi) = g
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        spread = spread.max((hi - lo) / hi);
    }
    let again = make(e.densities.clone());
    let psi = again.psi();
    let off = psi
        .iter()
        .zip(&e.psi)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    (spread, off)
}

/// 2D box with a background charge (a p-n-like junction along x, no electrode: psi
/// of zero mean, the singular Neumann operator). Checks at every resolution: the
/// discrete stationary equations (rho_k e^{lambda z_k psi} constant over the cells to
/// 1e-10 relative), psi = G q + psi_ext (to 1e-10: the Newton residual), masses exact;
/// the built-in potential (mean psi over the left half minus the right) against its
/// values at 2x finer grids: self-convergence at order >= 1.8 (16x8 .. 128x64).
#[test]
fn two_dimensional_box_with_background_charge() {
    let mut builtin = Vec::new();
    for n in [16usize, 32, 64, 128] {
        let s = junction_2d(n);
        let e = solve(&s);
        assert_masses(&s, &e);
        let make = |rho: Vec<Vec<f64>>| {
            let base = junction_2d(n);
            let grid = base.grid().clone();
            let donors = background_cells(
                &grid,
                &[Background::uniform(
                    "donors",
                    2.0,
                    vec![0.0, 0.0],
                    vec![2.0, 2.0],
                )],
                true,
            )
            .unwrap();
            let species = rho
                .into_iter()
                .zip([("electrons", -1.0), ("holes", 1.0)])
                .map(|(r, (name, z))| EulerianSpecies {
                    name: name.into(),
                    charge: z,
                    diffusion: 1.0,
                    exponent: 1.0,
                    potential: Box::new(|_: &[f64]| 0.0),
                    initial: r,
                })
                .collect();
            EulerianSolver::new_in(
                EulerianProblem {
                    grid,
                    species,
                    coupling_strength: 1.0,
                },
                Electrostatics {
                    walls: Some(vec![[WallCondition::INSULATING; 2]; 2]),
                    background: Some(donors),
                },
            )
            .unwrap()
        };
        let zero = vec![vec![0.0; s.grid().len()]; 2];
        let (spread, off) = stationarity(&s, &e, &make, 1.0, &[-1.0, 1.0], &zero);
        let (mut left, mut right) = (0.0, 0.0);
        for i in 0..s.grid().len() {
            if s.cell_center(i)[0] < 2.0 {
                left += e.psi[i];
            } else {
                right += e.psi[i];
            }
        }
        let cells = s.grid().len() as f64 / 2.0;
        let jump = (left - right) / cells;
        eprintln!(
            "2D junction {n}x{}: stationarity spread {spread:.2e}, |psi - P[q]| {off:.2e}, \
             built-in potential {jump:.10}",
            n / 2
        );
        assert!(spread < 1e-10, "{spread}");
        assert!(off < 1e-10, "{off}");
        builtin.push(jump);
    }
    let diffs: Vec<f64> = builtin.windows(2).map(|w| (w[0] - w[1]).abs()).collect();
    let o = orders(&diffs);
    eprintln!("2D junction: successive differences {diffs:?}, orders {o:.3?}");
    assert!(o.iter().all(|&o| o >= 1.8), "{o:?}");
}

/// Free space, 2D: two species +-1 in U = k/2 |x|^2 (k = 1 and 2), lambda = 1, net
/// charge 0.5 (masses 1.5 and 1: the free-space psi has its logarithmic far field), on
/// [-5, 5]^2 with 48^2 cells. The stationary equations to 1e-10 and psi = G q (the FFT
/// convolution) to 1e-10, masses exact. Also d = 3 (free space, 16^3 cells on [-5, 5]^3)
/// and 1D free space (200 cells), the same checks.
#[test]
fn free_space_equilibria_in_one_two_and_three_dimensions() {
    for (d, n) in [(1usize, 200usize), (2, 48), (3, 16)] {
        let make = |rho: Option<Vec<Vec<f64>>>| {
            let grid = Grid::new(vec![-5.0; d], vec![5.0; d], vec![n; d]);
            let mut rho = rho.map(|r| r.into_iter());
            let species = [("u", 1.0, 1.0, 1.5), ("v", -1.0, 2.0, 1.0)]
                .into_iter()
                .map(|(name, z, k, mass)| {
                    let initial = match &mut rho {
                        Some(r) => r.next().unwrap(),
                        None => gaussian_cell_averages(&grid, &vec![0.3; d], &vec![0.8; d], mass)
                            .unwrap(),
                    };
                    EulerianSpecies {
                        name: name.into(),
                        charge: z,
                        diffusion: 1.0,
                        exponent: 1.0,
                        potential: Box::new(move |x: &[f64]| {
                            0.5 * k * x.iter().map(|x| x * x).sum::<f64>()
                        }),
                        initial,
                    }
                })
                .collect();
            EulerianSolver::new(EulerianProblem {
                grid,
                species,
                coupling_strength: 1.0,
            })
            .unwrap()
        };
        let s = make(None);
        let e = solve(&s);
        assert_masses(&s, &e);
        let pots: Vec<Vec<f64>> = [1.0, 2.0]
            .iter()
            .map(|k| {
                (0..s.grid().len())
                    .map(|i| 0.5 * k * s.cell_center(i).iter().map(|x| x * x).sum::<f64>())
                    .collect()
            })
            .collect();
        let (spread, off) = stationarity(&s, &e, &|r| make(Some(r)), 1.0, &[1.0, -1.0], &pots);
        eprintln!("free space d = {d}: stationarity spread {spread:.2e}, |psi - G q| {off:.2e}");
        assert!(spread < 1e-10, "d = {d}: {spread}");
        assert!(off < 1e-10, "d = {d}: {off}");
    }
}

/// m = 2 (nonlinear diffusion, D = 1) and a charged single species (lambda = 1) in
/// U = |x|^2 / 2, 1D free space, 400 cells on [-4, 4]: the generalized stationary
/// equations D m / (m - 1) rho + U + lambda psi = c on the support (spread < 1e-10 of
/// c's scale) and U + lambda psi >= c - 1e-10 off it, mass exact; the support is a
/// bounded interval strictly inside the grid.
#[test]
fn nonlinear_diffusion_equilibrium_has_compact_support() {
    let n = 400;
    let grid = Grid::new(vec![-4.0], vec![4.0], vec![n]);
    let s = EulerianSolver::new(EulerianProblem {
        grid: grid.clone(),
        species: vec![EulerianSpecies {
            name: "u".into(),
            charge: 1.0,
            diffusion: 1.0,
            exponent: 2.0,
            potential: Box::new(|x: &[f64]| 0.5 * x[0] * x[0]),
            initial: gaussian_cell_averages(&grid, &[0.5], &[0.5], 1.0).unwrap(),
        }],
        coupling_strength: 1.0,
    })
    .unwrap();
    let e = solve(&s);
    assert_masses(&s, &e);
    let c = e.constants[0];
    let (mut on, mut off_min, mut support) = (0.0f64, f64::INFINITY, 0);
    for i in 0..n {
        let x = s.cell_center(i)[0];
        let xi = 0.5 * x * x + e.psi[i];
        if e.densities[0][i] > 0.0 {
            on = on.max((2.0 * e.densities[0][i] + xi - c).abs());
            support += 1;
        } else {
            off_min = off_min.min(xi - c);
        }
    }
    eprintln!(
        "m = 2: support {support} of {n} cells, |xi - c| on it {on:.2e}, min(xi - c) off it {off_min:.3e}"
    );
    assert!(on < 1e-10 * c.abs().max(1.0), "{on}");
    assert!(off_min > -1e-10, "{off_min}");
    assert!(support > 20 && support < n - 20, "{support}");
    assert_eq!(e.densities[0][0], 0.0);
    assert_eq!(e.densities[0][n - 1], 0.0);
}

/// The steric term with T != D (the general per-cell root): D_+ = 1, D_- = 0.5, T = 0.8,
/// a 1D box with electrodes at 3 and 0, c0 = 1, v = 0.3. The chemical potentials
/// D_k (log rho_k + 1) + lambda z_k psi + mu_st(s) are constant over the cells to 1e-10
/// (thermal units), masses exact, max v s < 1.
#[test]
fn steric_equilibrium_with_a_temperature_unlike_the_diffusions() {
    let (n, l) = (300, 6.0);
    let st = Steric {
        volume: 0.3,
        temperature: 0.8,
    };
    let grid = Grid::new(vec![0.0], vec![l], vec![n]);
    let species = [("plus", 1.0, 1.0), ("minus", -1.0, 0.5)]
        .into_iter()
        .map(|(name, z, d)| EulerianSpecies {
            name: name.into(),
            charge: z,
            diffusion: d,
            exponent: 1.0,
            potential: Box::new(|_: &[f64]| 0.0),
            initial: vec![1.0; n],
        })
        .collect();
    let s = EulerianSolver::new_in(
        EulerianProblem {
            grid,
            species,
            coupling_strength: LAMBDA,
        },
        Electrostatics {
            walls: Some(vec![[
                WallCondition::Electrode { potential: 3.0 },
                WallCondition::Electrode { potential: 0.0 },
            ]]),
            background: None,
        },
    )
    .unwrap()
    .with_steric(Some(st))
    .unwrap();
    let e = solve(&s);
    assert_masses(&s, &e);
    let mut spread = 0.0f64;
    for (k, (z, d)) in [(1.0, 1.0), (-1.0, 0.5)].into_iter().enumerate() {
        let mu: Vec<f64> = (0..n)
            .map(|i| {
                let total = e.densities[0][i] + e.densities[1][i];
                d * (e.densities[k][i].ln() + 1.0)
                    + LAMBDA * z * e.psi[i]
                    + st.chemical_potential(total)
            })
            .collect();
        let (lo, hi) = mu
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        spread = spread.max(hi - lo);
    }
    eprintln!(
        "steric, T != D: chemical potential spread {spread:.2e}, max v s {:.4}",
        e.max_packing
    );
    assert!(spread < 1e-10, "{spread}");
    assert!(
        e.max_packing < 1.0 && e.max_packing > 0.5,
        "{}",
        e.max_packing
    );
}

/// The steric time stepper: a 1D box [0, 10] with electrodes at +-2 (phi0 = 4: the
/// Boltzmann counter-ion density 0.5 e^4 = 27 would exceed 1/v = 5), v = 0.2, c0 = 0.5,
/// 100 cells, steps of 1 to t = 100. At every step: the energy (steric entropy included)
/// never increases (1e-12 relative: rounding of the sums), masses exact (1e-12), max v s
/// < 1. At the end: the L1 distance to the grid equilibrium, relative to the mass,
/// below 1e-4 (the slowest mode, diffusion across L, decays like e^{-D pi^2 t / L^2}: e^-10
/// at t = 100, times an initial deviation of order 1), and the equilibrium's energy is
/// below the run's last (the least-energy property; for lambda > 0 the discrete energy is
/// convex, the equilibrium its minimizer).
#[test]
fn steric_time_stepper_decreases_energy_and_reaches_the_grid_equilibrium() {
    let (l, n, c0, v) = (10.0, 100, 0.5, 2.0);
    let st = Steric {
        volume: 0.2,
        temperature: 1.0,
    };
    let mut s = electrolyte(l, n, c0, v, -v, Some(st));
    let eq = solve(&s);
    let masses: Vec<f64> = (0..2).map(|k| s.mass(k)).collect();
    let mut e = s.energy().total();
    let mut max_packing = 0.0f64;
    let t0 = std::time::Instant::now();
    let mut substeps = 0;
    for _ in 0..50 {
        substeps += s.advance(1.0).unwrap().substeps;
        let en = s.energy().total();
        assert!(
            en <= e + 1e-12 * e.abs().max(1.0),
            "energy rose {e} -> {en}"
        );
        e = en;
        for k in 0..2 {
            assert!((s.mass(k) - masses[k]).abs() < 1e-12 * masses[k]);
        }
        let p = s.max_packing();
        assert!(p < 1.0, "{p}");
        max_packing = max_packing.max(p);
    }
    let h = l / n as f64;
    let l1: f64 = (0..2)
        .map(|k| {
            (0..n)
                .map(|i| (s.density(k)[i] - eq.densities[k][i]).abs() * h)
                .sum::<f64>()
                / masses[k]
        })
        .fold(0.0, f64::max);
    eprintln!(
        "steric run: {substeps} sub-steps in {:.2} s, max v s {max_packing:.4} (equilibrium {:.4}), \
         L1 to the grid equilibrium {l1:.3e}, energy {e:.12} vs equilibrium {:.12}",
        t0.elapsed().as_secs_f64(),
        eq.max_packing,
        eq.energy.total()
    );
    assert!(
        max_packing > 0.5,
        "the layer should be crowded: {max_packing}"
    );
    assert!(l1 < 1e-5, "{l1}");
    assert!(
        eq.energy.total() <= e + 1e-12 * e.abs(),
        "{} vs {e}",
        eq.energy.total()
    );
}

/// A 1D double layer with the steric term, as a scenario.
fn steric_scenario(volume: f64, cells: usize) -> String {
    format!(
        r#"
dimension = 1
time_step = 0.01
steps = 2
output_every = 1
[coupling]
strength = 1.0
softening = 0.01
[domain]
kind = "box"
lower = [0.0]
upper = [4.0]
[[domain.wall]]
axis = 0
side = "lower"
potential = 3.0
[[domain.wall]]
axis = 0
side = "upper"
potential = 0.0
[steric]
volume = {volume:?}
[[species]]
name = "cation"
charge = 1.0
mass = 2.0
particles = 100
initial = {{ kind = "uniform", lower = [0.0], upper = [4.0] }}
[[species]]
name = "anion"
charge = -1.0
mass = 2.0
particles = 100
initial = {{ kind = "uniform", lower = [0.0], upper = [4.0] }}
[grid]
cells = {cells}
"#
    )
}

/// Bad input: initial densities with v s >= 1 (s = 1 uniform, v = 1.2) are refused by
/// `solve_equilibrium` and `jko eulerian` with an input error naming steric.volume
/// (exit status 2), before anything is written.
#[test]
fn an_initial_state_beyond_close_packing_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "crowded.toml", &steric_scenario(1.2, 40));
    let scenario = jko::Scenario::from_file(&path).unwrap();
    match solve_equilibrium(&scenario) {
        Err(jko::Error::Input {
            location, message, ..
        }) => {
            assert_eq!(location, "steric.volume");
            assert!(
                message.contains("v s = 1.2") && message.contains(">= 1"),
                "{message}"
            );
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    let out = tmp.path().join("out");
    let o = jko()
        .args(["eulerian", path.to_str().unwrap(), "--out"])
        .arg(&out)
        .arg("-q")
        .output()
        .unwrap();
    let msg = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(msg.contains("steric.volume"), "{msg}");
    assert!(!out.join("density.csv").exists());
}

/// `equilibrium_to_dir`: density.csv with steps 0 (the initial densities, as `jko
/// eulerian` writes them) and 1 (the equilibrium), both at time 0; energy.csv with two
/// rows, the second lower, with the Newton steps and the residual; the scenario copy; an
/// existing run refused without `force`, replaced with it; no partial file left.
/// `jko eulerian` on the same scenario (steric) writes step 0 byte for byte the same.
#[test]
fn equilibrium_to_dir_writes_two_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "layer.toml", &steric_scenario(0.2, 80));
    let scenario = jko::Scenario::from_file(&path).unwrap();
    let dir = tmp.path().join("eq");
    let summary = equilibrium_to_dir(&scenario, &dir, false).unwrap();
    eprintln!("{summary:?}");
    let rows = records(&dir, "density.csv");
    assert_eq!(rows.len(), 2 * 2 * 80);
    let time = |r: &csv::StringRecord| r[1].parse::<f64>().unwrap();
    assert!(rows[..160].iter().all(|r| &r[0] == "0" && time(r) == 0.0));
    assert!(rows[160..].iter().all(|r| &r[0] == "1" && time(r) == 0.0));
    let energy = records(&dir, "energy.csv");
    assert_eq!(energy.len(), 2);
    let (e0, e1): (f64, f64) = (energy[0][2].parse().unwrap(), energy[1][2].parse().unwrap());
    assert!(e1 < e0, "{e0} -> {e1}");
    assert_eq!(&energy[1][7], summary.iterations.to_string().as_str());
    let residual: f64 = energy[1][8].parse().unwrap();
    assert!(residual <= 1e-10 && residual == summary.residual);
    let w2: f64 = energy[1][6].parse().unwrap();
    assert!(w2 > 0.0 && w2 == summary.w2_step);
    assert!(summary.max_packing < 1.0 && summary.max_packing > 0.2);
    assert!(dir.join("scenario.toml").exists());
    assert!(equilibrium_to_dir(&scenario, &dir, false).is_err());
    equilibrium_to_dir(&scenario, &dir, true).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.ends_with(".partial"), "{name}");
    }
    // Step 0 is what `jko eulerian` writes.
    let run = tmp.path().join("run");
    let o = jko()
        .args(["eulerian", path.to_str().unwrap(), "--out"])
        .arg(&run)
        .arg("-q")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let step0 = |d: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(d.join("density.csv"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("0,") || l.starts_with("step"))
            .map(String::from)
            .collect()
    };
    assert_eq!(step0(&dir), step0(&run));
}

/// Never a loop without end: a Newton limit of 2 steps on a strongly nonlinear layer
/// ends with the equilibrium error (what to try in its message), not a panic; a
/// species without diffusion is refused.
#[test]
fn a_solve_that_does_not_converge_fails_with_a_message() {
    let s = electrolyte(40.0, 400, 0.25, 10.0, -10.0, None);
    let options = EquilibriumOptions {
        max_iterations: 2,
        ..EquilibriumOptions::default()
    };
    match solve_grid_equilibrium(&s, &options) {
        Err(EulerianError::Equilibrium { reason }) => {
            assert!(
                reason.contains("did not converge") && reason.contains("try"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// The steric term in the upwind flux (m = 2, where the flux is upwind in
/// xi = D m rho / (m - 1) + lambda z psi + mu_st(s)): a 1D box [0, 4] with electrodes at
/// 10 and 0 (lambda = 1), two species of mass 2, v = 0.25 (1/v = 4, four times the
/// initial total density 1), 80 cells, 40 steps of 0.1. Energy non-increasing at every
/// step (1e-12 relative), masses exact (1e-12), max v s < 1 (it reaches 0.53); at t = 4
/// the L1 distance to the grid equilibrium (whose xi_k are constant, the upwind flux's
/// steady states) below 1e-4 of the mass (it falls like e^{-4 t}: 7.8e-3 at t = 2,
/// 1e-13 at t = 10, measured), and the equilibrium's energy is below the run's.
#[test]
fn steric_upwind_stepper_for_nonlinear_diffusion() {
    let (l, n) = (4.0, 80);
    let grid = Grid::new(vec![0.0], vec![l], vec![n]);
    let species = [("plus", 1.0), ("minus", -1.0)]
        .into_iter()
        .map(|(name, z)| EulerianSpecies {
            name: name.into(),
            charge: z,
            diffusion: 1.0,
            exponent: 2.0,
            potential: Box::new(|_: &[f64]| 0.0),
            initial: vec![0.5; n],
        })
        .collect();
    let mut s = EulerianSolver::new_in(
        EulerianProblem {
            grid,
            species,
            coupling_strength: 1.0,
        },
        Electrostatics {
            walls: Some(vec![[
                WallCondition::Electrode { potential: 10.0 },
                WallCondition::Electrode { potential: 0.0 },
            ]]),
            background: None,
        },
    )
    .unwrap()
    .with_steric(Some(Steric {
        volume: 0.25,
        temperature: 1.0,
    }))
    .unwrap();
    let eq = solve(&s);
    const STEPS: usize = 40;
    let masses: Vec<f64> = (0..2).map(|k| s.mass(k)).collect();
    let mut e = s.energy().total();
    let mut max_packing = 0.0f64;
    for _ in 0..STEPS {
        s.advance(0.1).unwrap();
        let en = s.energy().total();
        assert!(
            en <= e + 1e-12 * e.abs().max(1.0),
            "energy rose {e} -> {en}"
        );
        e = en;
        for k in 0..2 {
            assert!((s.mass(k) - masses[k]).abs() < 1e-12 * masses[k]);
        }
        max_packing = max_packing.max(s.max_packing());
        assert!(max_packing < 1.0);
    }
    let h = l / n as f64;
    let l1: f64 = (0..2)
        .map(|k| {
            (0..n)
                .map(|i| (s.density(k)[i] - eq.densities[k][i]).abs() * h)
                .sum::<f64>()
                / masses[k]
        })
        .fold(0.0, f64::max);
    eprintln!(
        "steric upwind run: max v s {max_packing:.4} (equilibrium {:.4}), L1 to the grid \
         equilibrium {l1:.3e}, energy {e:.10} vs {:.10}",
        eq.max_packing,
        eq.energy.total()
    );
    assert!(l1 < 1e-4, "{l1}");
    assert!(eq.energy.total() <= e + 1e-12 * e.abs());
}
