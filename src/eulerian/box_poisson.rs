//! Finite-volume Poisson solve in a box whose walls each carry a condition on psi
//! (SPEC §7): an electrode, psi = V (Dirichlet), or an insulating wall,
//! d psi / d nu = sigma (Neumann, nu the outward normal).
//!
//! Discretization (cell-centered, second order): on cell averages, along each axis,
//!
//! ```text
//!   (A psi)_i = (-psi_{i-1} + 2 psi_i - psi_{i+1}) / h^2,
//! ```
//!
//! with a ghost value beyond each wall: psi_ghost = -psi_wallcell for a homogeneous
//! electrode (psi = 0 on the face) and psi_ghost = psi_wallcell for a homogeneous
//! insulating wall (zero flux through the face). A = sum over axes is symmetric (all
//! cells have the same volume dV). The walls' data move to the right-hand side as a
//! source b in the cells next to each wall (units of charge density):
//!
//! ```text
//!   electrode at potential V:   b = 2 V / h^2      (the ghost is 2 V - psi_wallcell)
//!   insulating, charge sigma:   b = sigma / h      (the face flux -d psi/d nu = -sigma)
//! ```
//!
//! so the discrete -Laplace psi = q with the walls' conditions reads A psi = q + b,
//! psi = A^{-1} q + A^{-1} b: A^{-1} is the discrete G_box, A^{-1} b the discrete
//! phi_walls. (sum_i b_i dV = sigma x wall area for a charged wall: the discrete box is
//! neutral exactly when the continuous one is.)
//!
//! With no electrode A is singular (the constants); then psi is the pseudo-inverse
//! solution: the right-hand side loses its mean (in a neutral box the mean is zero) and
//! psi has **zero mean over the box's cells**, the convention of
//! [`crate::model::interval`]'s Neumann G_box. (SPEC §7 fixes the boundary mean instead:
//! the two differ by a constant, which the dynamics never see and which shifts the
//! energy by lambda c sum_k z_k M_k, a constant of the run.) A^+ is symmetric too, so
//! (1/2) q.A^+ q dV has derivative A^+ q dV in every case.
//!
//! Method: A is diagonalized exactly along axes 1..d-1 by its eigenvectors (sines and
//! cosines of the four wall pairings, applied as dense orthonormal transforms, cost n_a per
//! value), and along axis 0 (the contiguous one) each line is a tridiagonal system
//! (A_0 + mu) x = r, mu the other axes' eigenvalue sum, solved by the Thomas algorithm
//! with coefficients precomputed per line (A_0 + mu is symmetric positive definite,
//! so no pivoting is needed). In d = 1 the solve is one tridiagonal system, O(n).
//! Every output value is one fixed sequential sum: the result does not depend on the
//! number of threads.

use super::Grid;
use crate::model::domain::WallCondition;
use rayon::prelude::*;
use std::f64::consts::PI;

/// The eigenvectors (rows, orthonormal) and eigenvalues of the 1D operator A_a on n
/// cells of width h, with `dirichlet` = (lower wall is an electrode, upper wall is one).
///
/// Eigenvectors, c = i + 1/2 the cell position in cell units:
/// insulating-insulating cos(pi k c / n), k = 0..n-1 (k = 0: the constants);
/// electrode-electrode sin(pi (k+1) c / n); electrode-insulating sin(pi (k+1/2) c / n);
/// insulating-electrode cos(pi (k+1/2) c / n). Eigenvalue (2 - 2 cos theta_k) / h^2.
pub fn axis_eigen(n: usize, h: f64, dirichlet: (bool, bool)) -> (Vec<f64>, Vec<f64>) {
    let mut vecs = vec![0.0; n * n];
    let mut vals = vec![0.0; n];
    for k in 0..n {
        let (theta, sine) = match dirichlet {
            (false, false) => (PI * k as f64 / n as f64, false),
            (true, true) => (PI * (k as f64 + 1.0) / n as f64, true),
            (true, false) => (PI * (k as f64 + 0.5) / n as f64, true),
            (false, true) => (PI * (k as f64 + 0.5) / n as f64, false),
        };
        // 2 - 2 cos t = 4 sin^2(t/2): no cancellation for the small eigenvalues.
        vals[k] = 4.0 * (0.5 * theta).sin().powi(2) / (h * h);
        let row = &mut vecs[k * n..(k + 1) * n];
        for (i, v) in row.iter_mut().enumerate() {
            let t = theta * (i as f64 + 0.5);
            *v = if sine { t.sin() } else { t.cos() };
        }
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    (vecs, vals)
}

/// One axis b >= 1 of the transform: orthonormal eigenvector rows and eigenvalues.
struct Axis {
    n: usize,
    stride: usize,
    vecs: Vec<f64>,
    vals: Vec<f64>,
}

/// Precomputed solver of A psi = f on one box grid (module docs).
pub struct BoxPoisson {
    len: usize,
    n0: usize,
    /// Axes 1..d-1 (empty in 1D).
    axes: Vec<Axis>,
    /// Thomas coefficients per line along axis 0: c'_i and 1/denominator_i.
    upper: Vec<f64>,
    inv_denom: Vec<f64>,
    /// Axis 0's 1/h^2.
    inv_h2: f64,
    /// No electrode anywhere: the line of the constant mode is singular.
    singular: bool,
    /// The discrete wall source b (module docs).
    wall_source: Vec<f64>,
}

impl BoxPoisson {
    /// The solver of a (validated) grid with `walls[axis] = [lower, upper]`.
    pub fn new(grid: &Grid, walls: &[[WallCondition; 2]]) -> Self {
        Self::shifted(grid, walls, 0.0)
    }

    /// The solver of (A + shift) psi = f, a constant `shift` >= 0 added to the diagonal
    /// (the grid equilibrium's preconditioner, [`super::equilibrium`]); `shift = 0` is
    /// [`new`](Self::new). With a positive shift the operator is never singular.
    pub fn shifted(grid: &Grid, walls: &[[WallCondition; 2]], shift: f64) -> Self {
        let d = grid.dim();
        assert_eq!(walls.len(), d, "one pair of walls per axis");
        let dir = |a: usize| (walls[a][0].is_electrode(), walls[a][1].is_electrode());
        let axes: Vec<Axis> = (1..d)
            .map(|a| {
                let (vecs, vals) = axis_eigen(grid.cells()[a], grid.spacing(a), dir(a));
                Axis {
                    n: grid.cells()[a],
                    stride: grid.stride(a),
                    vecs,
                    vals,
                }
            })
            .collect();
        let n0 = grid.cells()[0];
        let h0 = grid.spacing(0);
        let inv_h2 = 1.0 / (h0 * h0);
        let singular = !walls.iter().flatten().any(|w| w.is_electrode()) && shift == 0.0;
        let lines = grid.len() / n0;
        let (mut upper, mut inv_denom) = (vec![0.0; grid.len()], vec![0.0; grid.len()]);
        let (lo, hi) = dir(0);
        for j in 0..lines {
            // mu: the sum of the other axes' eigenvalues of this line's mode.
            let (mut rest, mut mu) = (j, shift);
            for ax in &axes {
                mu += ax.vals[rest % ax.n];
                rest /= ax.n;
            }
            let range = j * n0..(j + 1) * n0;
            thomas_coefficients(
                n0,
                inv_h2,
                mu,
                (lo, hi),
                &mut upper[range.clone()],
                &mut inv_denom[range],
            );
        }
        BoxPoisson {
            len: grid.len(),
            n0,
            axes,
            upper,
            inv_denom,
            inv_h2,
            singular,
            wall_source: wall_source(grid, walls),
        }
    }

    /// The source b of the walls' data (module docs), cell values.
    pub fn wall_source(&self) -> &[f64] {
        &self.wall_source
    }

    /// psi = A^{-1} f (A^+ f, zero mean, with no electrode), f cell values.
    pub fn solve(&self, f: &[f64]) -> Vec<f64> {
        assert_eq!(f.len(), self.len);
        let mut a = f.to_vec();
        let mut b = vec![0.0; self.len];
        for ax in &self.axes {
            transform(ax, &a, &mut b, false);
            std::mem::swap(&mut a, &mut b);
        }
        let n0 = self.n0;
        a.par_chunks_mut(n0)
            .zip(self.upper.par_chunks(n0))
            .zip(self.inv_denom.par_chunks(n0))
            .enumerate()
            .with_min_len((4096 / n0).max(1))
            .for_each(|(j, ((line, c), inv))| {
                if self.singular && j == 0 {
                    neumann_zero_mean(line, self.inv_h2);
                } else {
                    thomas_solve(line, c, inv, self.inv_h2);
                }
            });
        for ax in self.axes.iter().rev() {
            transform(ax, &a, &mut b, true);
            std::mem::swap(&mut a, &mut b);
        }
        a
    }

    /// psi for the walls' data alone (phi_walls, the discrete harmonic wall term).
    pub fn wall_potential(&self) -> Vec<f64> {
        self.solve(&self.wall_source)
    }
}

/// The source b: 2 V / h^2 next to an electrode, sigma / h next to a charged
/// insulating wall (module docs).
fn wall_source(grid: &Grid, walls: &[[WallCondition; 2]]) -> Vec<f64> {
    let mut b = vec![0.0; grid.len()];
    for (a, pair) in walls.iter().enumerate() {
        let h = grid.spacing(a);
        for (side, w) in pair.iter().enumerate() {
            let value = match *w {
                WallCondition::Electrode { potential } => 2.0 * potential / (h * h),
                WallCondition::Insulating { surface_charge } => surface_charge / h,
            };
            if value == 0.0 {
                continue;
            }
            let wall_coord = if side == 0 { 0 } else { grid.cells()[a] - 1 };
            for (i, bi) in b.iter_mut().enumerate() {
                if grid.coord(i, a) == wall_coord {
                    *bi += value;
                }
            }
        }
    }
    b
}

/// Forward (`inverse = false`: coefficients c_k = sum_i V_ki x_i) or inverse
/// (x_i = sum_k V_ki c_k) transform of `src` along one axis into `dst`.
fn transform(ax: &Axis, src: &[f64], dst: &mut [f64], inverse: bool) {
    let (n, s) = (ax.n, ax.stride);
    // Output chunk c (length s) is the row k = c % n of block c / n.
    dst.par_chunks_mut(s)
        .enumerate()
        .with_min_len((4096 / s).max(1))
        .for_each(|(c, out)| {
            let (block, k) = (c / n, c % n);
            let base = block * s * n;
            out.iter_mut().for_each(|o| *o = 0.0);
            for i in 0..n {
                let w = if inverse {
                    ax.vecs[i * n + k]
                } else {
                    ax.vecs[k * n + i]
                };
                let line = &src[base + i * s..base + (i + 1) * s];
                out.iter_mut().zip(line).for_each(|(o, x)| *o += w * x);
            }
        });
}

/// Thomas coefficients of the symmetric tridiagonal (A_0 + mu) on n cells:
/// off-diagonal -1/h^2, diagonal 2/h^2 + mu, except 3/h^2 + mu next to an
/// electrode and 1/h^2 + mu next to an insulating wall. `upper[i]` = c'_i,
/// `inv_denom[i]` = 1 / (b_i - a c'_{i-1}). The singular case (both walls
/// insulating, mu = 0) gets coefficients too, but is solved by
/// [`neumann_zero_mean`].
fn thomas_coefficients(
    n: usize,
    inv_h2: f64,
    mu: f64,
    dirichlet: (bool, bool),
    upper: &mut [f64],
    inv_denom: &mut [f64],
) {
    let off = -inv_h2;
    let mut prev = 0.0;
    for i in 0..n {
        let mut diag = 2.0 * inv_h2 + mu;
        if i == 0 {
            diag += if dirichlet.0 { inv_h2 } else { -inv_h2 };
        }
        if i + 1 == n {
            diag += if dirichlet.1 { inv_h2 } else { -inv_h2 };
        }
        let denom = diag - off * prev;
        let inv = if denom != 0.0 { 1.0 / denom } else { 0.0 };
        inv_denom[i] = inv;
        prev = off * inv;
        upper[i] = prev;
    }
}

/// Solves (A_0 + mu) x = r in place from precomputed coefficients.
#[inline]
fn thomas_solve(line: &mut [f64], upper: &[f64], inv_denom: &[f64], inv_h2: f64) {
    let off = -inv_h2;
    let n = line.len();
    let mut prev = 0.0;
    for i in 0..n {
        prev = (line[i] - off * prev) * inv_denom[i];
        line[i] = prev;
    }
    for i in (0..n.saturating_sub(1)).rev() {
        line[i] -= upper[i] * line[i + 1];
    }
}

/// The zero-mean solution of A_0 x = r - mean(r) with both walls insulating (the
/// constant mode of a box with no electrode): the face fluxes are partial sums of the
/// projected r (exact), x follows by summing them, then loses its mean.
fn neumann_zero_mean(line: &mut [f64], inv_h2: f64) {
    let n = line.len();
    let mean = line.iter().sum::<f64>() / n as f64;
    let h2 = 1.0 / inv_h2;
    // slope_i = x_{i+1} - x_i = -h^2 sum_{j <= i} (r_j - mean).
    let (mut x, mut acc) = (0.0, 0.0);
    for v in line.iter_mut() {
        let r = *v - mean;
        *v = x;
        acc -= h2 * r;
        x += acc;
    }
    let shift = line.iter().sum::<f64>() / n as f64;
    line.iter_mut().for_each(|v| *v -= shift);
}
