//! The least-energy stationary state on the grid (SPEC §9, `jko equilibrium --grid`):
//! the stationary equations of the Eulerian scheme solved by Newton's method.
//!
//! # The equations
//!
//! The discrete free energy of [`EulerianSolver::energy`] (the one `jko eulerian`
//! writes), minimized over cell densities rho_{k,i} >= 0 with fixed masses
//! sum_i rho_{k,i} dV = M_k, is stationary when, for every species k and cell i,
//!
//! ```text
//!   D_k f_m'(rho_{k,i}) + U_{k,i} + lambda z_k psi_i + mu_st(s_i) = c_k   where rho_{k,i} > 0,
//!   rho_{k,i} = 0 where the left side at rho = 0 is >= c_k            (m > 1 only),
//!   psi = G q + psi_ext,   q = sum_k z_k rho_k,   s = sum_k rho_k,
//! ```
//!
//! f_1'(r) = log r + 1, f_m'(r) = m r^(m-1)/(m-1); mu_st(s) = -T (log(1 - v s) + 1) with
//! a `[steric]` term (0 without); G the discrete Green's operator of the run
//! ([`super::poisson`] in free space, [`super::box_poisson`] in a box: -Laplace psi = q + C
//! with the walls' conditions), psi_ext = G (C + b) the backgrounds' and walls' potential
//! (SPEC §7-8: -Laplace psi = sum_k z_k rho_k + C, the potential energy of species k is
//! lambda z_k psi). The constants c_k (for m = 1: c_k = D_k (1 - log Z_k) + D_k log M_k,
//! the Boltzmann normalizations) are unknowns, fixed by the masses. For m = 1 without
//! steric term this is the Poisson–Boltzmann system
//! rho_k = M_k exp(-(U_k + lambda z_k psi)/D_k) / Z_k. These are also exactly the states
//! where every face flux of the time stepper vanishes (Scharfetter–Gummel: rho e^{phi/D}
//! equal across the face; upwind: xi equal), so a long `jko eulerian` run tends to this
//! solution, and for lambda >= 0 (a convex energy) it is the unique minimizer.
//!
//! # Unknowns and the reduced equation
//!
//! The unknown is psi (one value per cell). Given psi and the constants c, each cell's
//! densities solve the K equations D_k f_m'(rho_k) + mu_st(s) = eta_k,
//! eta_k = c_k - U_k - lambda z_k psi: in closed form without steric term
//! (rho = exp(eta/D - 1), or ((m-1) eta_+/(D m))^(1/(m-1))), and for m = 1 with
//! T = D_k for every k (rho_k = a_k / (1 + v sum_j a_j), a_k = exp(eta_k/T)); otherwise by
//! a safeguarded Newton–bisection on the scalar L = log(1 - v s) <= 0, for which
//! v sum_k rho_k(L) + e^L - 1 is increasing (one root). Given psi, the constants solve
//! the K mass equations log(sum_i rho_{k,i} dV) = log M_k by Newton's method (exact in
//! one step for m = 1 without steric term; started from that closed form, or for m > 1
//! from a bisection per species; backtracking on the largest mass error; warm-started
//! from the previous psi), to 1e-13 relative. psi then solves
//!
//! ```text
//!   F(psi) = psi - G q(psi) - psi_ext = 0.
//! ```
//!
//! Why this form: q(psi) always has the exact masses (so every iterate is an admissible
//! state and the constants never drift), the unknown is one field whatever K is, and the
//! same F works in free space (G is a non-local convolution, no local Laplacian to invert)
//! and in a box. The Jacobian is J = I + G A', A' = -dq/dpsi, from the analytic
//! linearization: with S_i = d rho_i / d eta_i = diag(g_i) - w_i g_i g_i^T per cell
//! (g_k = 1/(D_k f_m''(rho_k)), w = mu_st'/(1 + mu_st' sum_k g_k)), H = sum_i S_i dV,
//! b_i = S_i z,
//!
//! ```text
//!   A' dpsi = lambda [ (z^T S_i z) dpsi_i  -  b_i^T H^{-1} sum_j b_j dpsi_j dV ]_i
//! ```
//!
//! (the second term is the constants' response, rank K). For lambda > 0, A' is positive
//! semi-definite.
//!
//! # Newton–Krylov and its globalization
//!
//! Each Newton step solves J delta = -F by right-preconditioned restarted GMRES(60)
//! to a relative tolerance eta_n = min(1e-2, max(r_n, 1e-3 tolerance)) (r_n the residual
//! below; inexact Newton with quadratic final convergence). The preconditioner is
//! M = (A + diag(a))^{-1} A with A the grid's finite-volume -Laplace (the box's walls, or
//! zero Dirichlet walls in free space) and a_i = max(lambda z^T S_i z, 0): in 1D a
//! tridiagonal solve, exact up to the rank-K term in a box (GMRES then needs about K + 1
//! iterations); in 2D and 3D the diagonal is replaced by its mean (a shifted separable
//! solve, [`BoxPoisson::shifted`]). With insulating walls only, constants are carried
//! through unchanged (J 1 = 1) and the rest solved with zero mean. The step is damped:
//! first capped so that max_k |lambda z_k| / D_k · max_i |delta_i| <= 4 (no Boltzmann
//! factor changes by more than e^4 in one step), then halved until the merit ||F||_2
//! decreases by the Armijo factor (1 - 1e-4 t), at most 40 times.
//!
//! # Stopping rule
//!
//! The residual is measured in thermal units, r = max_k(|lambda z_k| / D_k) max_i |F_i|
//! (the largest error of an exponent lambda z_k psi / D_k, i.e. the relative error of a
//! Boltzmann factor). Newton stops when r <= max(tolerance, floor) with tolerance 1e-11
//! by default and floor = 100 eps max_k(|lambda z_k|/D_k) max(|psi|, |G q|, |psi_ext|)
//! (the rounding of F itself); also when the line search cannot lower ||F|| and
//! r <= 1e4 floor (rounding reached). It fails with [`EulerianError::Equilibrium`] after
//! `max_iterations` (default 100) Newton steps or when the line search stalls above the
//! rounding floor: never a loop without end. The final densities are rescaled to the
//! exact masses (a factor within 1e-13 of 1). Without coupling (lambda = 0 or no charged
//! species) psi plays no part and only the constants are solved for.

use super::box_poisson::BoxPoisson;
use super::{EulerianError, EulerianSolver, Green};
use crate::energy::EnergyParts;
use crate::model::domain::WallCondition;
use crate::model::steric::Steric;
use rayon::prelude::*;

/// Settings of the Newton solve (module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquilibriumOptions {
    /// Stop when the residual r (thermal units, module docs) is at most this.
    pub tolerance: f64,
    /// Most Newton steps before giving up.
    pub max_iterations: usize,
    /// The cap of one Newton update: max_k |lambda z_k| / D_k · max_i |delta psi_i|.
    pub step_cap: f64,
    /// GMRES restart length.
    pub krylov_restart: usize,
    /// Most GMRES iterations of one Newton step.
    pub max_krylov: usize,
}

impl Default for EquilibriumOptions {
    fn default() -> Self {
        EquilibriumOptions {
            tolerance: 1e-11,
            max_iterations: 100,
            step_cap: 4.0,
            krylov_restart: 60,
            max_krylov: 1200,
        }
    }
}

/// A solved grid equilibrium.
#[derive(Debug, Clone)]
pub struct GridEquilibrium {
    /// The species' names, in order.
    pub names: Vec<String>,
    /// Cell densities per species (the grid's storage order), with the exact masses.
    pub densities: Vec<Vec<f64>>,
    /// psi at the cell centers (the last Newton iterate; G q + psi_ext up to the
    /// residual); zeros when there is no potential at all.
    pub psi: Vec<f64>,
    /// The constants c_k of the stationary equations (module docs).
    pub constants: Vec<f64>,
    /// The masses sum_i rho_{k,i} dV (those of the initial cell densities).
    pub masses: Vec<f64>,
    /// Newton steps taken (uncoupled problems: the steps of the constants' solve).
    pub iterations: usize,
    /// GMRES iterations summed over the Newton steps.
    pub krylov_iterations: usize,
    /// The final residual r (thermal units, module docs).
    pub residual: f64,
    /// The discrete free energy of the solution, as `jko eulerian` computes it (the
    /// steric entropy in `diffusion`).
    pub energy: EnergyParts,
    /// max_i v s_i (0 without steric term), below 1.
    pub max_packing: f64,
}

/// One species' parameters in the solve.
#[derive(Debug, Clone, Copy)]
struct Sp {
    z: f64,
    d: f64,
    m: f64,
    /// lambda z.
    lz: f64,
    mass: f64,
}

/// The per-cell state of the reduced equation for a given psi: densities, sensitivities,
/// warm starts; cell-major (index i K + k).
struct State {
    rho: Vec<f64>,
    g: Vec<f64>,
    /// w_i = mu_st' / (1 + mu_st' G_i) (0 without steric term).
    w: Vec<f64>,
    /// L_i = log(1 - v s_i) (0 without steric term): the cell solve's warm start.
    ell: Vec<f64>,
    c: Vec<f64>,
    masses: Vec<f64>,
}

/// Cells per parallel chunk: small grids run on one thread, sums are fixed sequential
/// sums of fixed chunks (results do not depend on the number of threads).
const CHUNK: usize = 2048;

/// The problem as the solver sees it (borrowed from an [`EulerianSolver`]).
struct Eq<'a> {
    solver: &'a EulerianSolver,
    n: usize,
    k: usize,
    dv: f64,
    lambda: f64,
    sp: Vec<Sp>,
    steric: Option<Steric>,
    /// Steric with m = 1 and D_k = T for every k: the closed form.
    closed: bool,
    /// max_k |lambda z_k| / D_k: psi in thermal units.
    theta: f64,
}

/// Fixed-chunk deterministic dot product.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let parts: Vec<f64> = a
        .par_chunks(4 * CHUNK)
        .zip(b.par_chunks(4 * CHUNK))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>())
        .collect();
    parts.iter().sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// Solves the small dense system h x = r (K x K, row-major) by Gaussian elimination with
/// partial pivoting; None if singular.
fn solve_small(k: usize, h: &[f64], r: &[f64]) -> Option<Vec<f64>> {
    let mut a = h.to_vec();
    let mut x = r.to_vec();
    for col in 0..k {
        let p = (col..k).max_by(|&i, &j| a[i * k + col].abs().total_cmp(&a[j * k + col].abs()))?;
        if a[p * k + col] == 0.0 || !a[p * k + col].is_finite() {
            return None;
        }
        if p != col {
            for j in 0..k {
                a.swap(p * k + j, col * k + j);
            }
            x.swap(p, col);
        }
        for i in col + 1..k {
            let f = a[i * k + col] / a[col * k + col];
            for j in col..k {
                a[i * k + j] -= f * a[col * k + j];
            }
            x[i] -= f * x[col];
        }
    }
    for col in (0..k).rev() {
        let mut v = x[col];
        for j in col + 1..k {
            v -= a[col * k + j] * x[j];
        }
        x[col] = v / a[col * k + col];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

impl<'a> Eq<'a> {
    fn new(solver: &'a EulerianSolver) -> Result<Self, EulerianError> {
        let n = solver.grid.len();
        let k = solver.species.len();
        let dv = solver.grid.cell_volume();
        let lambda = solver.lambda;
        let mut sp = Vec::with_capacity(k);
        for (j, s) in solver.species.iter().enumerate() {
            if s.diffusion.is_nan() || s.diffusion <= 0.0 {
                return Err(EulerianError::InvalidSpecies {
                    species: s.name.clone(),
                    field: "diffusion",
                    reason: "is 0: the grid equilibrium needs D > 0 for every species (a \
                             species without diffusion has no equilibrium density, only a \
                             point mass at the minimum of its potential)"
                        .into(),
                });
            }
            let mass = solver.mass(j);
            sp.push(Sp {
                z: s.charge,
                d: s.diffusion,
                m: s.exponent,
                lz: if solver.coupled {
                    lambda * s.charge
                } else {
                    0.0
                },
                mass,
            });
        }
        let steric = solver.steric;
        let closed =
            steric.is_some_and(|st| sp.iter().all(|s| s.m == 1.0 && s.d == st.temperature));
        let theta = sp.iter().map(|s| s.lz.abs() / s.d).fold(0.0, f64::max);
        Ok(Eq {
            solver,
            n,
            k,
            dv,
            lambda,
            sp,
            steric,
            closed,
            theta,
        })
    }

    fn potential(&self, k: usize) -> &[f64] {
        &self.solver.species[k].potential
    }

    fn new_state(&self) -> State {
        State {
            rho: vec![0.0; self.n * self.k],
            g: vec![0.0; self.n * self.k],
            w: vec![0.0; self.n],
            ell: vec![0.0; self.n],
            c: vec![0.0; self.k],
            masses: vec![0.0; self.k],
        }
    }

    /// The densities, sensitivities and L of every cell for `psi` (None: uncoupled) and
    /// the constants `c`; fills `st` (rho, g, w, ell) and its masses.
    fn cells(&self, psi: Option<&[f64]>, c: &[f64], st: &mut State) {
        let k = self.k;
        let sp = &self.sp;
        let steric = self.steric;
        let closed = self.closed;
        let pots: Vec<&[f64]> = (0..k).map(|j| self.potential(j)).collect();
        st.rho
            .par_chunks_mut(k)
            .zip(st.g.par_chunks_mut(k))
            .zip(st.w.par_iter_mut())
            .zip(st.ell.par_iter_mut())
            .enumerate()
            .with_min_len(CHUNK)
            .for_each(|(i, (((rho, g), w), ell))| {
                let p = psi.map_or(0.0, |p| p[i]);
                let eta = |j: usize| c[j] - pots[j][i] - sp[j].lz * p;
                match steric {
                    None => {
                        for j in 0..k {
                            let (r, gg) = free_cell(&sp[j], eta(j));
                            rho[j] = r;
                            g[j] = gg;
                        }
                        *w = 0.0;
                    }
                    Some(stc) if closed => {
                        let t = stc.temperature;
                        // log(1 + v sum_j exp(eta_j / T)) without overflow.
                        let lv = stc.volume.ln();
                        let mut mx = 0.0f64;
                        for j in 0..k {
                            mx = mx.max(lv + eta(j) / t);
                        }
                        let log1p = if mx == 0.0 {
                            (0..k).map(|j| (lv + eta(j) / t).exp()).sum::<f64>().ln_1p()
                        } else {
                            mx + ((-mx).exp()
                                + (0..k).map(|j| (lv + eta(j) / t - mx).exp()).sum::<f64>())
                            .ln()
                        };
                        let l = -log1p;
                        let mut gsum = 0.0;
                        for j in 0..k {
                            let r = (eta(j) / t + l).exp();
                            rho[j] = r;
                            g[j] = r / sp[j].d;
                            gsum += g[j];
                        }
                        *ell = l;
                        *w = 1.0 / (l.exp() / (t * stc.volume) + gsum);
                    }
                    Some(stc) => {
                        let l = steric_cell(&stc, sp, &|j| eta(j), *ell, rho, g);
                        let gsum: f64 = g.iter().sum();
                        *ell = l;
                        *w = 1.0 / (l.exp() / (stc.temperature * stc.volume) + gsum);
                    }
                }
            });
        self.masses(st);
    }

    /// Masses sum_i rho_{k,i} dV of the state (fixed-chunk sums).
    fn masses(&self, st: &mut State) {
        let k = self.k;
        let parts: Vec<Vec<f64>> = st
            .rho
            .par_chunks(CHUNK * k)
            .map(|c| {
                let mut m = vec![0.0; k];
                for cell in c.chunks(k) {
                    m.iter_mut().zip(cell).for_each(|(m, r)| *m += r);
                }
                m
            })
            .collect();
        for j in 0..k {
            st.masses[j] = parts.iter().map(|p| p[j]).sum::<f64>() * self.dv;
        }
    }

    /// H = sum_i S_i dV (row-major K x K).
    fn mass_jacobian(&self, st: &State) -> Vec<f64> {
        let k = self.k;
        let parts: Vec<Vec<f64>> =
            st.g.par_chunks(CHUNK * k)
                .zip(st.w.par_chunks(CHUNK))
                .map(|(g, w)| {
                    let mut h = vec![0.0; k * k];
                    for (cell, &w) in g.chunks(k).zip(w) {
                        for a in 0..k {
                            h[a * k + a] += cell[a];
                            if w != 0.0 {
                                for b in 0..k {
                                    h[a * k + b] -= w * cell[a] * cell[b];
                                }
                            }
                        }
                    }
                    h
                })
                .collect();
        (0..k * k)
            .map(|e| parts.iter().map(|p| p[e]).sum::<f64>() * self.dv)
            .collect()
    }

    /// The constants of `psi` from scratch, ignoring the steric term: the closed form for
    /// m = 1 (log-sum-exp), a bisection on the mass for m > 1.
    fn initial_constants(&self, psi: Option<&[f64]>) -> Vec<f64> {
        (0..self.k)
            .map(|j| {
                let s = self.sp[j];
                let u = self.potential(j);
                let phi = |i: usize| u[i] + s.lz * psi.map_or(0.0, |p| p[i]);
                let pmin = (0..self.n).map(phi).fold(f64::INFINITY, f64::min);
                if s.m == 1.0 {
                    let z: f64 = (0..self.n).map(|i| (-(phi(i) - pmin) / s.d).exp()).sum();
                    // rho = exp((c - phi)/D - 1) = M exp(-(phi - pmin)/D) / (z dV).
                    pmin + s.d * (1.0 + (s.mass / (z * self.dv)).ln())
                } else {
                    let mass_at = |c: f64| -> f64 {
                        (0..self.n)
                            .map(|i| free_cell(&s, c - phi(i)).0)
                            .sum::<f64>()
                            * self.dv
                    };
                    let mut step = s.d.max(1e-300);
                    while mass_at(pmin + step) < s.mass && step < 1e300 {
                        step *= 2.0;
                    }
                    let (mut lo, mut hi) = (pmin, pmin + step);
                    for _ in 0..200 {
                        let mid = 0.5 * (lo + hi);
                        if mid <= lo || mid >= hi {
                            break;
                        }
                        if mass_at(mid) < s.mass {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                    hi
                }
            })
            .collect()
    }

    /// max_k |log(m_k / M_k)|.
    fn mass_error(&self, st: &State) -> f64 {
        st.masses
            .iter()
            .zip(&self.sp)
            .map(|(m, s)| {
                let e = (m / s.mass).ln().abs();
                if e.is_nan() { f64::INFINITY } else { e }
            })
            .fold(0.0, f64::max)
    }

    /// Solves the mass equations for the constants at `psi` (warm start: `st.c`), leaving
    /// the state of the solution in `st`. Returns the Newton steps taken.
    fn solve_constants(&self, psi: Option<&[f64]>, st: &mut State) -> Result<usize, String> {
        let k = self.k;
        self.cells(psi, &st.c.clone(), st);
        let mut err = self.mass_error(st);
        if !err.is_finite() {
            // The warm start is unusable (a mass 0 or infinite): from scratch.
            st.c = self.initial_constants(psi);
            self.cells(psi, &st.c.clone(), st);
            err = self.mass_error(st);
        }
        let mut trial = self.new_state();
        for it in 0..100 {
            if err <= 1e-13 {
                return Ok(it);
            }
            let h = self.mass_jacobian(st);
            // d log m / dc = diag(1/m) H: the step solves H dc = -diag(m) log(m / M).
            let rhs: Vec<f64> = (0..k)
                .map(|j| -st.masses[j] * (st.masses[j] / self.sp[j].mass).ln())
                .collect();
            let mut step = match solve_small(k, &h, &rhs) {
                Some(s) => s,
                None => return Err("the mass equations' Jacobian is singular".into()),
            };
            // No Boltzmann factor (m = 1) changes by more than e^30 in one step.
            for (j, d) in step.iter_mut().enumerate() {
                let cap = 30.0 * self.sp[j].d;
                if d.abs() > cap {
                    *d = d.signum() * cap;
                }
            }
            let mut t = 1.0;
            let mut accepted = false;
            for _ in 0..60 {
                let c: Vec<f64> = (0..k).map(|j| st.c[j] + t * step[j]).collect();
                trial.ell.copy_from_slice(&st.ell);
                self.cells(psi, &c, &mut trial);
                let e = self.mass_error(&trial);
                if e < err {
                    trial.c = c;
                    std::mem::swap(st, &mut trial);
                    err = e;
                    accepted = true;
                    break;
                }
                t *= 0.5;
            }
            if !accepted {
                // Rounding of the mass sums reached.
                if err <= 1e-11 {
                    return Ok(it);
                }
                return Err(format!(
                    "the masses could not be matched (relative error {err:.3e})"
                ));
            }
        }
        if err <= 1e-11 {
            return Ok(100);
        }
        Err(format!(
            "the masses could not be matched in 100 steps (relative error {err:.3e})"
        ))
    }

    /// q = sum_k z_k rho_k of the state.
    fn charge(&self, st: &State) -> Vec<f64> {
        let k = self.k;
        st.rho
            .par_chunks(k)
            .with_min_len(CHUNK)
            .map(|r| r.iter().zip(&self.sp).map(|(r, s)| s.z * r).sum())
            .collect()
    }

    /// F = psi - G q - psi_ext and G q.
    fn residual(&self, green: &Green, psi: &[f64], st: &State) -> (Vec<f64>, Vec<f64>) {
        let gq = green.solve(&self.charge(st));
        let f: Vec<f64> = match &self.solver.external {
            Some(e) => psi
                .iter()
                .zip(&gq)
                .zip(e)
                .map(|((p, g), e)| p - g - e)
                .collect(),
            None => psi.iter().zip(&gq).map(|(p, g)| p - g).collect(),
        };
        (f, gq)
    }
}

/// rho and g = d rho / d eta of one species in one cell without steric term.
#[inline]
fn free_cell(s: &Sp, eta: f64) -> (f64, f64) {
    if s.m == 1.0 {
        let r = (eta / s.d - 1.0).exp();
        (r, r / s.d)
    } else {
        let beta = (s.m - 1.0) / (s.d * s.m);
        let t = beta * eta;
        if t > 0.0 {
            let p = 1.0 / (s.m - 1.0);
            let tp = t.powf(p - 1.0);
            (tp * t, tp / (s.d * s.m))
        } else {
            (0.0, 0.0)
        }
    }
}

/// One cell with the steric term (general case): finds L = log(1 - v s) <= 0 with
/// v sum_k rho_k(L) + e^L - 1 = 0 (increasing in L) by Newton's method safeguarded by
/// bisection, from the warm start `l0`; fills rho and g (d rho_k / d eta_k at fixed s);
/// returns L.
fn steric_cell(
    st: &Steric,
    sp: &[Sp],
    eta: &dyn Fn(usize) -> f64,
    l0: f64,
    rho: &mut [f64],
    g: &mut [f64],
) -> f64 {
    let (t, v) = (st.temperature, st.volume);
    // rho_k(L), g_k(L): D f'(rho) = eta + T (L + 1).
    let eval = |l: f64, rho: &mut [f64], g: &mut [f64]| -> (f64, f64) {
        let (mut sum, mut gsum) = (0.0, 0.0);
        for (j, s) in sp.iter().enumerate() {
            let (r, gg) = free_cell(s, eta(j) + t * (l + 1.0));
            rho[j] = r;
            g[j] = gg;
            sum += r;
            gsum += gg;
        }
        // h(L) and h'(L) = v T sum g + e^L.
        (v * sum + l.exp_m1(), v * t * gsum + l.exp())
    };
    let (h0, _) = eval(0.0, rho, g);
    if h0.is_nan() || h0 <= 0.0 {
        // Nothing in the cell at s = 0: L = 0 (s = 0) is the root.
        return 0.0;
    }
    let mut hi = 0.0f64;
    let mut lo;
    let mut l = l0.min(0.0);
    let (hl, _) = eval(l, rho, g);
    if hl > 0.0 {
        hi = l;
        let mut step = 1.0f64.max(l.abs());
        lo = l - step;
        while eval(lo, rho, g).0 > 0.0 && step < 1e300 {
            step *= 2.0;
            lo = l - step;
        }
    } else {
        lo = l;
    }
    if !(lo < l && l < hi) {
        l = 0.5 * (lo + hi);
    }
    for _ in 0..200 {
        let (h, dh) = eval(l, rho, g);
        if h > 0.0 {
            hi = l;
        } else {
            lo = l;
        }
        let mut next = l - h / dh;
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - l).abs() <= 1e-15 * (1.0 + l.abs()) || hi - lo <= 1e-15 * (1.0 + l.abs()) {
            l = next;
            break;
        }
        l = next;
    }
    eval(l, rho, g);
    l
}

/// The linearization of one Newton step: a_i = lambda z^T S_i z, b_i = S_i z (cell-major),
/// H^{-1} (row-major).
struct Linear {
    a: Vec<f64>,
    b: Vec<f64>,
    h_inv: Vec<f64>,
}

impl Eq<'_> {
    fn linearize(&self, st: &State) -> Result<Linear, String> {
        let k = self.k;
        let mut a = vec![0.0; self.n];
        let mut b = vec![0.0; self.n * k];
        let sp = &self.sp;
        let lambda = self.lambda;
        a.par_iter_mut()
            .zip(b.par_chunks_mut(k))
            .zip(st.g.par_chunks(k))
            .zip(st.w.par_iter())
            .with_min_len(CHUNK)
            .for_each(|(((a, b), g), &w)| {
                let gz: f64 = g.iter().zip(sp).map(|(g, s)| g * s.z).sum();
                let gzz: f64 = g.iter().zip(sp).map(|(g, s)| g * s.z * s.z).sum();
                *a = lambda * (gzz - w * gz * gz);
                for j in 0..k {
                    b[j] = g[j] * sp[j].z - w * g[j] * gz;
                }
            });
        let h = self.mass_jacobian(st);
        let mut h_inv = vec![0.0; k * k];
        for col in 0..k {
            let e: Vec<f64> = (0..k).map(|r| if r == col { 1.0 } else { 0.0 }).collect();
            let x = solve_small(k, &h, &e).ok_or("the mass Jacobian is singular")?;
            for r in 0..k {
                h_inv[r * k + col] = x[r];
            }
        }
        Ok(Linear { a, b, h_inv })
    }

    /// out = A' v (module docs).
    fn apply_aprime(&self, lin: &Linear, v: &[f64], out: &mut [f64]) {
        let k = self.k;
        let parts: Vec<Vec<f64>> = lin
            .b
            .par_chunks(CHUNK * k)
            .zip(v.par_chunks(CHUNK))
            .map(|(b, v)| {
                let mut p = vec![0.0; k];
                for (cell, &x) in b.chunks(k).zip(v) {
                    p.iter_mut().zip(cell).for_each(|(p, b)| *p += b * x);
                }
                p
            })
            .collect();
        let p: Vec<f64> = (0..k)
            .map(|j| parts.iter().map(|q| q[j]).sum::<f64>() * self.dv)
            .collect();
        let y: Vec<f64> = (0..k)
            .map(|r| (0..k).map(|c| lin.h_inv[r * k + c] * p[c]).sum())
            .collect();
        let lambda = self.lambda;
        out.par_iter_mut()
            .zip(v.par_iter())
            .zip(lin.a.par_iter())
            .zip(lin.b.par_chunks(k))
            .with_min_len(CHUNK)
            .for_each(|(((o, &x), &a), b)| {
                let low: f64 = b.iter().zip(&y).map(|(b, y)| b * y).sum();
                *o = a * x - lambda * low;
            });
    }
}

/// The preconditioner M = (A + diag(a))^{-1} A (module docs).
enum Precond {
    /// 1D: Thomas coefficients of A + diag(a) (c'_i, 1/denominator_i), A's diagonal at
    /// the two ends relative to 2/h^2 (+1: Dirichlet, -1: Neumann).
    Line {
        inv_h2: f64,
        ends: [f64; 2],
        upper: Vec<f64>,
        inv_denom: Vec<f64>,
        singular: bool,
    },
    /// d >= 2: (A + mean(a))^{-1} A by the separable box solve.
    Separable {
        solver: BoxPoisson,
        walls: Vec<[bool; 2]>,
        cells: Vec<usize>,
        strides: Vec<usize>,
        inv_h2: Vec<f64>,
        singular: bool,
    },
}

/// The walls the preconditioner's A has: the box's, or electrodes (zero Dirichlet) in free
/// space; per axis, whether each side is Dirichlet.
fn dirichlet_flags(solver: &EulerianSolver) -> Vec<[bool; 2]> {
    match &solver.walls {
        Some(w) => w
            .iter()
            .map(|p| [p[0].is_electrode(), p[1].is_electrode()])
            .collect(),
        None => vec![[true, true]; solver.grid.dim()],
    }
}

impl Precond {
    fn new(solver: &EulerianSolver, a: &[f64]) -> Precond {
        let grid = &solver.grid;
        let flags = dirichlet_flags(solver);
        let singular = !flags.iter().flatten().any(|&f| f);
        let apos = |x: f64| if x > 0.0 { x } else { 0.0 };
        if grid.dim() == 1 {
            let n = grid.cells()[0];
            let h = grid.spacing(0);
            let inv_h2 = 1.0 / (h * h);
            let ends = [
                if flags[0][0] { 1.0 } else { -1.0 },
                if flags[0][1] { 1.0 } else { -1.0 },
            ];
            let mut upper = vec![0.0; n];
            let mut inv_denom = vec![0.0; n];
            let off = -inv_h2;
            let mut prev = 0.0;
            let any_positive = a.iter().any(|&x| x > 0.0);
            for i in 0..n {
                let mut diag = 2.0 * inv_h2 + apos(a[i]);
                if i == 0 {
                    diag += ends[0] * inv_h2;
                }
                if i + 1 == n {
                    diag += ends[1] * inv_h2;
                }
                if singular && !any_positive && i == 0 {
                    // A alone with insulating walls: pin nothing, the mean is handled
                    // outside; a tiny shift keeps the elimination finite.
                    diag += 1e-12 * inv_h2;
                }
                let denom = diag - off * prev;
                let inv = if denom != 0.0 { 1.0 / denom } else { 0.0 };
                inv_denom[i] = inv;
                prev = off * inv;
                upper[i] = prev;
            }
            Precond::Line {
                inv_h2,
                ends,
                upper,
                inv_denom,
                singular,
            }
        } else {
            let mean = a.iter().map(|&x| apos(x)).sum::<f64>() / a.len() as f64;
            let walls: Vec<[WallCondition; 2]> = flags
                .iter()
                .map(|f| {
                    f.map(|e| {
                        if e {
                            WallCondition::Electrode { potential: 0.0 }
                        } else {
                            WallCondition::INSULATING
                        }
                    })
                })
                .collect();
            let d = grid.dim();
            Precond::Separable {
                solver: BoxPoisson::shifted(grid, &walls, mean),
                walls: flags,
                cells: grid.cells().to_vec(),
                strides: (0..d).map(|a| grid.stride(a)).collect(),
                inv_h2: (0..d).map(|a| grid.spacing(a).powi(-2)).collect(),
                singular,
            }
        }
    }

    /// out = M v.
    fn apply(&self, v: &[f64], out: &mut [f64]) {
        let n = v.len();
        let singular = match self {
            Precond::Line { singular, .. } | Precond::Separable { singular, .. } => *singular,
        };
        let mean_v = if singular {
            v.iter().sum::<f64>() / n as f64
        } else {
            0.0
        };
        match self {
            Precond::Line {
                inv_h2,
                ends,
                upper,
                inv_denom,
                ..
            } => {
                // out = A (v - mean), then the Thomas solve in place.
                for i in 0..n {
                    let x = v[i] - mean_v;
                    let left = if i > 0 { v[i - 1] - mean_v } else { 0.0 };
                    let right = if i + 1 < n { v[i + 1] - mean_v } else { 0.0 };
                    let mut diag = 2.0;
                    if i == 0 {
                        diag += ends[0];
                    }
                    if i + 1 == n {
                        diag += ends[1];
                    }
                    out[i] = (diag * x - left - right) * inv_h2;
                }
                let off = -inv_h2;
                let mut prev = 0.0;
                for i in 0..n {
                    prev = (out[i] - off * prev) * inv_denom[i];
                    out[i] = prev;
                }
                for i in (0..n.saturating_sub(1)).rev() {
                    out[i] -= upper[i] * out[i + 1];
                }
            }
            Precond::Separable {
                solver,
                walls,
                cells,
                strides,
                inv_h2,
                ..
            } => {
                let d = cells.len();
                let av: Vec<f64> = (0..n)
                    .into_par_iter()
                    .with_min_len(CHUNK)
                    .map(|i| {
                        let x = v[i] - mean_v;
                        let mut acc = 0.0;
                        for a in 0..d {
                            let c = (i / strides[a]) % cells[a];
                            let st = strides[a];
                            let mut diag = 2.0;
                            let mut nb = 0.0;
                            if c > 0 {
                                nb += v[i - st] - mean_v;
                            } else {
                                diag += if walls[a][0] { 1.0 } else { -1.0 };
                            }
                            if c + 1 < cells[a] {
                                nb += v[i + st] - mean_v;
                            } else {
                                diag += if walls[a][1] { 1.0 } else { -1.0 };
                            }
                            acc += (diag * x - nb) * inv_h2[a];
                        }
                        acc
                    })
                    .collect();
                let x = solver.solve(&av);
                out.copy_from_slice(&x);
            }
        }
        if singular {
            let m = out.iter().sum::<f64>() / n as f64;
            out.iter_mut().for_each(|o| *o += mean_v - m);
        }
    }
}

/// Right-preconditioned restarted GMRES for J x = b from x = 0; returns the iterations
/// and the achieved relative residual.
#[allow(clippy::too_many_arguments)]
fn gmres(
    apply_j: &mut dyn FnMut(&[f64], &mut [f64]),
    precond: &Precond,
    b: &[f64],
    x: &mut [f64],
    rtol: f64,
    restart: usize,
    max_iter: usize,
) -> (usize, f64) {
    let n = b.len();
    x.iter_mut().for_each(|v| *v = 0.0);
    let beta0 = norm(b);
    if beta0 == 0.0 {
        return (0, 0.0);
    }
    let m = restart.max(1);
    let mut basis: Vec<Vec<f64>> = (0..=m).map(|_| vec![0.0; n]).collect();
    let mut hess = vec![0.0; (m + 1) * m];
    let (mut cs, mut sn) = (vec![0.0; m], vec![0.0; m]);
    let mut gvec = vec![0.0; m + 1];
    let mut z = vec![0.0; n];
    let mut w = vec![0.0; n];
    let mut r = b.to_vec();
    let mut total = 0;
    let mut rel = 1.0;
    while total < max_iter {
        let beta = norm(&r);
        rel = beta / beta0;
        if rel <= rtol {
            break;
        }
        basis[0].iter_mut().zip(&r).for_each(|(v, r)| *v = r / beta);
        gvec.iter_mut().for_each(|g| *g = 0.0);
        gvec[0] = beta;
        let mut j_used = 0;
        for j in 0..m {
            precond.apply(&basis[j], &mut z);
            apply_j(&z, &mut w);
            // Modified Gram–Schmidt, twice (the basis stays orthogonal to rounding).
            for _ in 0..2 {
                for i in 0..=j {
                    let hij = dot(&w, &basis[i]);
                    hess[i * m + j] += hij;
                    w.iter_mut().zip(&basis[i]).for_each(|(w, v)| *w -= hij * v);
                }
            }
            let hn = norm(&w);
            hess[(j + 1) * m + j] = hn;
            if hn > 0.0 {
                basis[j + 1]
                    .iter_mut()
                    .zip(&w)
                    .for_each(|(v, w)| *v = w / hn);
            }
            for i in 0..j {
                let (a, bb) = (hess[i * m + j], hess[(i + 1) * m + j]);
                hess[i * m + j] = cs[i] * a + sn[i] * bb;
                hess[(i + 1) * m + j] = -sn[i] * a + cs[i] * bb;
            }
            let (a, bb) = (hess[j * m + j], hess[(j + 1) * m + j]);
            let den = a.hypot(bb);
            let (c, s) = if den == 0.0 {
                (1.0, 0.0)
            } else {
                (a / den, bb / den)
            };
            cs[j] = c;
            sn[j] = s;
            hess[j * m + j] = den;
            hess[(j + 1) * m + j] = 0.0;
            gvec[j + 1] = -s * gvec[j];
            gvec[j] *= c;
            total += 1;
            j_used = j + 1;
            rel = gvec[j + 1].abs() / beta0;
            if rel <= rtol || total >= max_iter || hn == 0.0 {
                break;
            }
        }
        // y = H^{-1} g, x += M (V y).
        let mut y = vec![0.0; j_used];
        for i in (0..j_used).rev() {
            let mut v = gvec[i];
            for c in i + 1..j_used {
                v -= hess[i * m + c] * y[c];
            }
            y[i] = if hess[i * m + i] != 0.0 {
                v / hess[i * m + i]
            } else {
                0.0
            };
        }
        w.iter_mut().for_each(|v| *v = 0.0);
        for (i, yi) in y.iter().enumerate() {
            w.iter_mut().zip(&basis[i]).for_each(|(w, v)| *w += yi * v);
        }
        precond.apply(&w, &mut z);
        x.iter_mut().zip(&z).for_each(|(x, z)| *x += z);
        hess.iter_mut().for_each(|h| *h = 0.0);
        if rel <= rtol || total >= max_iter {
            break;
        }
        // The true residual for the restart.
        apply_j(x, &mut w);
        r.iter_mut()
            .zip(b.iter().zip(&w))
            .for_each(|(r, (b, w))| *r = b - w);
    }
    (total, rel)
}

/// Solves the stationary equations of `solver`'s problem on its grid (module docs): the
/// masses and the initial guess of psi are those of the solver's current densities.
pub fn solve_grid_equilibrium(
    solver: &EulerianSolver,
    options: &EquilibriumOptions,
) -> Result<GridEquilibrium, EulerianError> {
    let eq = Eq::new(solver)?;
    let fail = |reason: String| EulerianError::Equilibrium { reason };
    let names: Vec<String> = solver.species.iter().map(|s| s.name.clone()).collect();
    let mut st = eq.new_state();
    let coupled = solver.coupled && eq.theta > 0.0;
    let green = solver.poisson.as_ref();
    let (psi, iterations, krylov, residual) = if !coupled {
        st.c = eq.initial_constants(None);
        let it = eq.solve_constants(None, &mut st).map_err(fail)?;
        (None, it, 0, eq.mass_error(&st))
    } else {
        let green = green.expect("a coupled solver has a Poisson solve");
        let (psi, it, kr, r) = newton(&eq, green, &mut st, options)?;
        (Some(psi), it, kr, r)
    };
    // Exact masses: a rescaling within 1e-13 of 1.
    let k = eq.k;
    let mut densities: Vec<Vec<f64>> = (0..k)
        .map(|j| st.rho.iter().skip(j).step_by(k).copied().collect())
        .collect();
    for (j, r) in densities.iter_mut().enumerate() {
        let m: f64 = r.iter().sum::<f64>() * eq.dv;
        let f = eq.sp[j].mass / m;
        r.iter_mut().for_each(|x| *x *= f);
    }
    let psi = match (psi, green) {
        (Some(p), _) => p,
        (None, Some(g)) => solver.full_psi(g, &densities),
        (None, None) => vec![0.0; eq.n],
    };
    let energy = solver.energy_of(&densities);
    let max_packing = solver
        .steric
        .map_or(0.0, |s| super::max_packing_of(&s, &densities).1);
    Ok(GridEquilibrium {
        names,
        masses: eq.sp.iter().map(|s| s.mass).collect(),
        densities,
        psi,
        constants: st.c.clone(),
        iterations,
        krylov_iterations: krylov,
        residual,
        energy,
        max_packing,
    })
}

/// The damped Newton–Krylov iteration on F(psi) = 0 (module docs). Returns psi, the
/// Newton steps, the GMRES iterations and the final residual; `st` holds the state of psi.
fn newton(
    eq: &Eq,
    green: &Green,
    st: &mut State,
    options: &EquilibriumOptions,
) -> Result<(Vec<f64>, usize, usize, f64), EulerianError> {
    let fail = |reason: String| EulerianError::Equilibrium { reason };
    let solver = eq.solver;
    let n = eq.n;
    let theta = eq.theta;
    let mut psi = solver.psi();
    st.c = eq.initial_constants(Some(&psi));
    eq.solve_constants(Some(&psi), st)
        .map_err(|e| fail(format!("at the initial state: {e}")))?;
    let (mut f, mut gq) = eq.residual(green, &psi, st);
    let ext_max = solver.external.as_deref().map_or(0.0, max_abs);
    let mut trial = eq.new_state();
    let mut delta = vec![0.0; n];
    let mut tmp = vec![0.0; n];
    let mut krylov_total = 0;
    let rhs_of = |f: &[f64]| -> Vec<f64> { f.iter().map(|x| -x).collect() };
    for it in 0..=options.max_iterations {
        if crate::util::interrupt::requested() {
            return Err(EulerianError::Interrupted { iterations: it });
        }
        let r = theta * max_abs(&f);
        let floor = 100.0 * f64::EPSILON * theta * max_abs(&psi).max(max_abs(&gq)).max(ext_max);
        if !r.is_finite() {
            return Err(fail(format!(
                "the residual is not finite after {it} Newton steps"
            )));
        }
        if r <= options.tolerance.max(floor) {
            return Ok((psi, it, krylov_total, r));
        }
        if it == options.max_iterations {
            return Err(fail(format!(
                "Newton's method did not converge in {} steps (residual {r:.3e} thermal units, \
                 tolerance {:.1e}); try a finer [grid] (several cells per Debye length), a lower \
                 applied potential or coupling, a smaller steric volume, or start closer to the \
                 equilibrium (the initial laws of a `jko eulerian` run's end)",
                options.max_iterations, options.tolerance
            )));
        }
        let lin = eq.linearize(st).map_err(fail)?;
        let pre = Precond::new(solver, &lin.a);
        let rtol = (1e-3 * options.tolerance).max(r.min(1e-2));
        let b = rhs_of(&f);
        let (kit, _) = {
            let mut apply_j = |v: &[f64], out: &mut [f64]| {
                eq.apply_aprime(&lin, v, &mut tmp);
                let g = green.solve(&tmp);
                out.iter_mut()
                    .zip(v.iter().zip(&g))
                    .for_each(|(o, (v, g))| *o = v + g);
            };
            gmres(
                &mut apply_j,
                &pre,
                &b,
                &mut delta,
                rtol,
                options.krylov_restart,
                options.max_krylov,
            )
        };
        krylov_total += kit;
        let dmax = theta * max_abs(&delta);
        if !dmax.is_finite() {
            return Err(fail(format!(
                "the Newton step {it} is not finite (GMRES broke down)"
            )));
        }
        let mut t = if dmax > options.step_cap {
            options.step_cap / dmax
        } else {
            1.0
        };
        let merit = norm(&f);
        let mut accepted = None;
        for _ in 0..40 {
            let p: Vec<f64> = psi.iter().zip(&delta).map(|(p, d)| p + t * d).collect();
            trial.c.copy_from_slice(&st.c);
            trial.ell.copy_from_slice(&st.ell);
            if eq.solve_constants(Some(&p), &mut trial).is_ok() {
                let (ft, gt) = eq.residual(green, &p, &trial);
                let mt = norm(&ft);
                if mt.is_finite() && mt <= (1.0 - 1e-4 * t) * merit {
                    accepted = Some((p, ft, gt));
                    break;
                }
            }
            t *= 0.5;
        }
        match accepted {
            Some((p, ft, gt)) => {
                psi = p;
                f = ft;
                gq = gt;
                std::mem::swap(st, &mut trial);
            }
            None if r <= 1e4 * floor => return Ok((psi, it, krylov_total, r)),
            None => {
                return Err(fail(format!(
                    "Newton's method stalled at step {it} (residual {r:.3e} thermal units: no \
                     step along the Newton direction lowers it); try a finer [grid], a lower \
                     applied potential or coupling, or a smaller steric volume"
                )));
            }
        }
    }
    unreachable!("the loop returns at max_iterations")
}

/// What [`equilibrium_to_dir`] reports.
#[derive(Debug, Clone)]
pub struct EquilibriumSummary {
    /// Newton steps.
    pub iterations: usize,
    /// GMRES iterations summed over the Newton steps.
    pub krylov_iterations: usize,
    /// The final residual (thermal units, [`equilibrium`](self) module docs).
    pub residual: f64,
    /// The discrete free energy of the initial cell densities.
    pub initial_energy: f64,
    /// The discrete free energy of the equilibrium.
    pub final_energy: f64,
    /// max_i v s_i of the equilibrium (0 without steric term).
    pub max_packing: f64,
    /// The product W2 distance between the initial densities and the equilibrium (d = 1;
    /// 0 in d = 2, 3), the `w2_step` of step 1.
    pub w2_step: f64,
    /// Messages for the user (mass the grid does not hold, mass at the walls in free space).
    pub warnings: Vec<String>,
}

use crate::driver::record::{Command, Phase, RunRecord};
use crate::error::Error;
use crate::io::scenario::Scenario;
use std::path::Path;

/// The scenario-level checks and the solve, errors naming the scenario's keys.
fn solve_built(s: &Scenario, solver: &EulerianSolver) -> Result<GridEquilibrium, Error> {
    if let Some((k, _)) = s
        .species
        .iter()
        .enumerate()
        .find(|(_, sp)| sp.diffusion.is_nan() || sp.diffusion <= 0.0)
    {
        return Err(Error::input(
            &s.path,
            format!("species[{k}].diffusion"),
            "is 0: the grid equilibrium needs D > 0 for every species (without diffusion a \
             species' equilibrium is a point mass at the minimum of its potential, which no \
             grid resolves)",
        ));
    }
    let attracting = s.coupling.strength < 0.0 && s.species.iter().any(|sp| sp.charge != 0.0);
    if s.domain.as_box().is_none()
        && !attracting
        && !s.species.iter().any(|sp| sp.potential.confines())
    {
        return Err(Error::input(
            &s.path,
            "species[0].potential",
            "in free space (no [domain] box) this scenario has no equilibrium: no species has a \
             confining potential (quadratic with positive stiffness, or double_well) and \
             nothing attracts (coupling.strength >= 0), so the species spread without end and \
             a state on the grid would be an artifact of the grid's walls; add a confining \
             potential or a [domain] box",
        ));
    }
    solve_grid_equilibrium(solver, &EquilibriumOptions::default()).map_err(|e| match e {
        EulerianError::Equilibrium { reason } => Error::Numerical(format!(
            "the grid equilibrium of {}: {reason}",
            s.path.display()
        )),
        EulerianError::Interrupted { iterations } => Error::Cancelled(format!(
            "the grid equilibrium stopped after {iterations} Newton steps; nothing was written \
             (there is no checkpoint: run it again)"
        )),
        other => Error::input(&s.path, "species", other.to_string()),
    })
}

/// The equilibrium of a scenario on its `[grid]` (SPEC §9 with `--grid`; module docs):
/// its masses are those of the initial cell densities (the species' masses when the grid
/// holds them). Bad input is [`Error::Input`] naming the key (no `[grid]`, a species with
/// D = 0, free space with nothing that confines, an initial state with v s >= 1); a solve
/// that does not converge is [`Error::Numerical`] with what to try.
pub fn solve_equilibrium(s: &Scenario) -> Result<GridEquilibrium, Error> {
    let (solver, _) = super::run::build_solver(s)?;
    solve_built(s, &solver)
}

/// The product W2 distance sqrt(sum_k W2^2(a_k, b_k)) between two sets of 1D cell
/// densities of equal masses (uniform on each cell: piecewise-linear quantile functions,
/// integrated exactly).
pub fn product_w2_1d(grid: &super::Grid, a: &[&[f64]], b: &[&[f64]]) -> f64 {
    let lower = grid.lower()[0];
    let h = grid.spacing(0);
    // Pieces (t0, t1, x0, x1) of the quantile function of mass fraction t.
    let pieces = |r: &[f64]| -> Vec<(f64, f64, f64, f64)> {
        let m: f64 = r.iter().sum();
        let last = r.iter().rposition(|&x| x > 0.0).unwrap_or(0);
        let (mut acc, mut t0) = (0.0, 0.0);
        let mut out = Vec::new();
        for (i, &x) in r.iter().enumerate().take(last + 1) {
            if x <= 0.0 {
                continue;
            }
            acc += x;
            let t1 = if i == last { 1.0 } else { acc / m };
            if t1 > t0 {
                let x0 = lower + i as f64 * h;
                out.push((t0, t1, x0, x0 + h));
                t0 = t1;
            }
        }
        out
    };
    let at = |p: &(f64, f64, f64, f64), t: f64| {
        let s = ((t - p.0) / (p.1 - p.0)).clamp(0.0, 1.0);
        p.2 + (p.3 - p.2) * s
    };
    let mut total = 0.0;
    for (ra, rb) in a.iter().zip(b) {
        let mass: f64 = ra.iter().sum::<f64>() * grid.cell_volume();
        let (pa, pb) = (pieces(ra), pieces(rb));
        let (mut i, mut j, mut t, mut w2) = (0, 0, 0.0, 0.0);
        while i < pa.len() && j < pb.len() {
            let t1 = pa[i].1.min(pb[j].1);
            if t1 > t {
                let d0 = at(&pa[i], t) - at(&pb[j], t);
                let d1 = at(&pa[i], t1) - at(&pb[j], t1);
                w2 += (t1 - t) * (d0 * d0 + d0 * d1 + d1 * d1) / 3.0;
                t = t1;
            }
            if pa[i].1 <= t {
                i += 1;
            }
            if j < pb.len() && pb[j].1 <= t {
                j += 1;
            }
        }
        total += mass * w2;
    }
    total.sqrt()
}

/// `jko equilibrium SCENARIO --out DIR --grid`: solves the grid equilibrium and writes
/// DIR/density.csv with two written steps, 0 (the initial cell densities, as `jko
/// eulerian` writes them) and 1 (the equilibrium), both at time 0, and DIR/energy.csv with
/// two rows (step 0: the initial energy; step 1: the equilibrium's, with the Newton
/// steps as `iterations`, the final residual as `gradient_norm` and the 1D product W2
/// between the two states as `w2_step`, 0 in d = 2, 3), plus the scenario copy; the
/// directory rules and crash safety of `jko eulerian` (nothing is written before the
/// solve has succeeded; no half-written file is ever left).
pub fn equilibrium_to_dir(
    s: &Scenario,
    dir: &Path,
    force: bool,
) -> Result<EquilibriumSummary, Error> {
    let mut record = RunRecord::begin(Command::EquilibriumGrid, s, dir);
    let result = equilibrium_recorded(s, dir, force, &mut record);
    record.finish(result)
}

fn equilibrium_recorded(
    s: &Scenario,
    dir: &Path,
    force: bool,
    record: &mut RunRecord,
) -> Result<EquilibriumSummary, Error> {
    let (solver, mut warnings) = super::run::build_solver(s)?;
    record.enter(Phase::Steps);
    let eq = solve_built(s, &solver)?;
    record.enter(Phase::Output);
    record.progress(1, eq.iterations as u64, eq.krylov_iterations as u64);
    if !solver.in_box() {
        for (k, r) in eq.densities.iter().enumerate() {
            let peak = r.iter().cloned().fold(0.0, f64::max);
            let wall = (0..r.len())
                .filter(|&i| solver.grid().is_boundary(i))
                .map(|i| r[i])
                .fold(0.0, f64::max);
            if peak > 0.0 && wall > 1e-3 * peak {
                warnings.push(format!(
                    "species \"{}\": the equilibrium has {:.3e} of its peak density at the \
                     grid's walls; in free space the walls are not part of the problem: enlarge \
                     [grid]",
                    eq.names[k],
                    wall / peak
                ));
            }
        }
    }
    let (mut out, mut density, mut energy) = super::run::open_output(s, dir, force)?;
    let centers = solver.cell_centers();
    let names: Vec<&str> = eq.names.iter().map(|n| n.as_str()).collect();
    let initial: Vec<&[f64]> = (0..solver.num_species())
        .map(|k| solver.density(k))
        .collect();
    let fin: Vec<&[f64]> = eq.densities.iter().map(|r| r.as_slice()).collect();
    let e0 = solver.energy();
    let w2 = if solver.grid().dim() == 1 {
        product_w2_1d(solver.grid(), &initial, &fin)
    } else {
        0.0
    };
    let mut vtk = super::run::vtk_series(s, dir)?;
    energy.row(0, 0.0, &e0, 0.0, 0, 0.0)?;
    super::run::write_density_frame(&mut density, &centers, &names, &initial, 0, 0.0)?;
    super::run::write_vtk_frame(&mut vtk, solver.grid(), &names, &initial, 0, 0.0)?;
    energy.row(1, 0.0, &eq.energy, w2, eq.iterations as u64, eq.residual)?;
    super::run::write_density_frame(&mut density, &centers, &names, &fin, 1, 0.0)?;
    super::run::write_vtk_frame(&mut vtk, solver.grid(), &names, &fin, 1, 0.0)?;
    super::run::conclude(&mut out, density, energy, record)?;
    Ok(EquilibriumSummary {
        iterations: eq.iterations,
        krylov_iterations: eq.krylov_iterations,
        residual: eq.residual,
        initial_energy: e0.total(),
        final_energy: eq.energy.total(),
        max_packing: eq.max_packing,
        w2_step: w2,
        warnings,
    })
}
