//! Free-space (not periodic, not walled) Poisson solve on the grid by a zero-padded FFT
//! convolution (Hockney–Eastwood).
//!
//! The charge q is taken piecewise constant on the cells (value q_j = cell average). The
//! potential at the center x_i of cell i is then exactly
//!
//! ```text
//!   psi_i = sum_j q_j * g(x_i - x_j),     g(r) = int_{cell centered at r} G(y) dy,
//! ```
//!
//! with G the Newtonian kernel of -Laplace in R^d ([`newton_kernel`], stated in
//! [`crate::model::green`]), so -Laplace psi = q, with psi ~ -(Q/2) |x| (d = 1),
//! -(Q/(2 pi)) log|x| (d = 2), Q/(4 pi |x|) (d = 3) far away, Q = int q. The weight g(r) is
//! the kernel integrated over one cell (units: G times volume), computed from closed-form
//! antiderivatives near the singularity (so the self-cell term is exact) and by product
//! Gauss–Legendre rules further out (relative accuracy ~1e-15). g is even in every
//! coordinate, so the matrix g(x_i - x_j) is symmetric: the discrete interaction energy
//! (1/2) sum_i q_i psi_i dV is a symmetric quadratic form whose derivative in rho_k at
//! cell i is z_k psi_i (no factor 1/2), the identity the flux relies on.
//!
//! The sum over j is a linear (aperiodic) convolution: q is zero-padded to 2 n_a per axis,
//! the kernel is laid out with negative offsets wrapped, and one forward and one inverse
//! complex FFT per solve give psi (cost O(2^d N log N)).

use super::Grid;
use crate::util::fft::GridFft;
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use std::f64::consts::PI;

/// 6-point Gauss–Legendre nodes and weights on [-1, 1].
const GL6: [(f64, f64); 6] = [
    (-0.932_469_514_203_152, 0.171_324_492_379_170_35),
    (-0.661_209_386_466_264_5, 0.360_761_573_048_138_6),
    (-0.238_619_186_083_196_9, 0.467_913_934_572_691_05),
    (0.238_619_186_083_196_9, 0.467_913_934_572_691_05),
    (0.661_209_386_466_264_5, 0.360_761_573_048_138_6),
    (0.932_469_514_203_152, 0.171_324_492_379_170_35),
];
/// 4-point Gauss–Legendre nodes and weights on [-1, 1].
const GL4: [(f64, f64); 4] = [
    (-0.861_136_311_594_052_6, 0.347_854_845_137_453_85),
    (-0.339_981_043_584_856_3, 0.652_145_154_862_546_1),
    (0.339_981_043_584_856_3, 0.652_145_154_862_546_1),
    (0.861_136_311_594_052_6, 0.347_854_845_137_453_85),
];

pub use crate::model::green::newton_kernel;

/// Antiderivative in 2D: d^2 F / dx dy = log(x^2 + y^2),
/// F = x y log(x^2+y^2) - 3 x y + x^2 atan(y/x) + y^2 atan(x/y) (terms with a zero factor are 0).
fn anti2(x: f64, y: f64) -> f64 {
    let r2 = x * x + y * y;
    let mut f = 0.0;
    if x != 0.0 && y != 0.0 {
        f += x * y * (r2.ln() - 3.0);
    }
    if x != 0.0 {
        f += x * x * (y / x).atan();
    }
    if y != 0.0 {
        f += y * y * (x / y).atan();
    }
    f
}

/// log(z + sqrt(s + z^2)) for s = x^2 + y^2 >= 0, without cancellation when z < 0.
fn log_z_plus_r(z: f64, s: f64, r: f64) -> f64 {
    if z >= 0.0 {
        (z + r).ln()
    } else {
        (s / (r - z)).ln()
    }
}

/// Antiderivative in 3D: d^3 Phi / dx dy dz = 1/|x|,
/// Phi = xy log(z+r) + yz log(x+r) + zx log(y+r)
///       - x^2/2 atan(yz/(x r)) - y^2/2 atan(zx/(y r)) - z^2/2 atan(xy/(z r)).
fn anti3(x: f64, y: f64, z: f64) -> f64 {
    let r = (x * x + y * y + z * z).sqrt();
    let mut f = 0.0;
    if x != 0.0 && y != 0.0 {
        f += x * y * log_z_plus_r(z, x * x + y * y, r);
    }
    if y != 0.0 && z != 0.0 {
        f += y * z * log_z_plus_r(x, y * y + z * z, r);
    }
    if z != 0.0 && x != 0.0 {
        f += z * x * log_z_plus_r(y, z * z + x * x, r);
    }
    if x != 0.0 {
        f -= 0.5 * x * x * (y * z / (x * r)).atan();
    }
    if y != 0.0 {
        f -= 0.5 * y * y * (z * x / (y * r)).atan();
    }
    if z != 0.0 {
        f -= 0.5 * z * z * (x * y / (z * r)).atan();
    }
    f
}

/// Product Gauss–Legendre integral of G over the cell centered at `r` with widths `h`.
fn gauss_cell(r: &[f64], h: &[f64], rule: &[(f64, f64)]) -> f64 {
    let d = r.len();
    let vol: f64 = h.iter().product();
    let n = rule.len();
    let mut sum = 0.0;
    let mut p = [0.0; 3];
    for idx in 0..n.pow(d as u32) {
        let mut w = 1.0;
        let mut k = idx;
        for a in 0..d {
            let (t, wt) = rule[k % n];
            k /= n;
            p[a] = r[a] + 0.5 * h[a] * t;
            w *= 0.5 * wt;
        }
        sum += w * newton_kernel(&p[..d]);
    }
    sum * vol
}

/// g(r) = int over the cell [r - h/2, r + h/2] of G(y) dy, where `offset` is r in cell
/// units (r_a = offset_a * h_a). Exact antiderivatives when the Chebyshev distance is at
/// most 8 cells; Gauss–Legendre 6^d points up to 32 cells, 4^d points beyond (the nearest
/// singularity is then at least 16 resp. 64 half-widths away: errors below 1e-16 relative).
pub fn cell_integrated_kernel(h: &[f64], offset: &[i64]) -> f64 {
    let d = h.len();
    assert_eq!(d, offset.len());
    let dist = offset.iter().map(|o| o.unsigned_abs()).max().unwrap_or(0);
    let r: Vec<f64> = (0..d).map(|a| offset[a] as f64 * h[a]).collect();
    if d == 1 {
        // G linear on each side of 0: A(y) = -y|y|/4 is exact.
        let anti = |y: f64| -y * y.abs() / 4.0;
        return anti(r[0] + 0.5 * h[0]) - anti(r[0] - 0.5 * h[0]);
    }
    if dist > 32 {
        return gauss_cell(&r, h, &GL4);
    }
    if dist > 8 {
        return gauss_cell(&r, h, &GL6);
    }
    let lo: Vec<f64> = (0..d).map(|a| r[a] - 0.5 * h[a]).collect();
    let hi: Vec<f64> = (0..d).map(|a| r[a] + 0.5 * h[a]).collect();
    let mut s = 0.0;
    for corner in 0..(1usize << d) {
        let mut p = [0.0; 3];
        let mut sign = 1.0;
        for a in 0..d {
            if corner >> a & 1 == 1 {
                p[a] = hi[a];
            } else {
                p[a] = lo[a];
                sign = -sign;
            }
        }
        s += sign
            * if d == 2 {
                anti2(p[0], p[1])
            } else {
                anti3(p[0], p[1], p[2])
            };
    }
    // The factors of G (`model::green::scale`), divided rather than
    // multiplied as [`newton_kernel`] does, so both round alike.
    if d == 2 {
        -s / (4.0 * PI)
    } else {
        s / (4.0 * PI)
    }
}

/// Precomputed free-space Poisson solver of one grid.
pub struct FreeSpacePoisson {
    cells: Vec<usize>,
    padded: Vec<usize>,
    kernel_hat: Vec<Complex<f64>>,
    fft: GridFft,
}

impl FreeSpacePoisson {
    /// Builds the cell-integrated kernel and its transform for a (validated) grid.
    pub fn new(grid: &Grid) -> Self {
        let d = grid.dim();
        let cells = grid.cells().to_vec();
        let padded: Vec<usize> = cells.iter().map(|n| 2 * n).collect();
        let h: Vec<f64> = (0..d).map(|a| grid.spacing(a)).collect();
        // Table of g over non-negative offsets (g is even in each coordinate).
        let n_tab: usize = cells.iter().product();
        let table: Vec<f64> = (0..n_tab)
            .into_par_iter()
            .map(|idx| {
                let mut off = [0i64; 3];
                let mut k = idx;
                for a in 0..d {
                    off[a] = (k % cells[a]) as i64;
                    k /= cells[a];
                }
                cell_integrated_kernel(&h, &off[..d])
            })
            .collect();
        let p_total: usize = padded.iter().product();
        let mut kernel: Vec<Complex<f64>> = (0..p_total)
            .into_par_iter()
            .map(|m| {
                let mut k = m;
                let mut t = 0usize;
                let mut stride = 1usize;
                for a in 0..d {
                    let ma = k % padded[a];
                    k /= padded[a];
                    let off = if ma < cells[a] {
                        ma
                    } else if ma > cells[a] {
                        padded[a] - ma
                    } else {
                        return Complex::new(0.0, 0.0); // offset n_a is never needed
                    };
                    t += off * stride;
                    stride *= cells[a];
                }
                Complex::new(table[t], 0.0)
            })
            .collect();
        let fft = GridFft::new(&padded);
        fft.forward(&mut kernel, &mut Vec::new());
        FreeSpacePoisson {
            cells,
            padded,
            kernel_hat: kernel,
            fft,
        }
    }

    /// psi_i = sum_j q_j g(x_i - x_j) for cell averages `q` (row-major, x fastest).
    pub fn solve(&self, q: &[f64]) -> Vec<f64> {
        let d = self.cells.len();
        let n_total: usize = self.cells.iter().product();
        assert_eq!(q.len(), n_total);
        let p_total: usize = self.padded.iter().product();
        let mut buf = vec![Complex::new(0.0, 0.0); p_total];
        let map = |idx: usize, from: &[usize], to: &[usize]| {
            let (mut k, mut t, mut stride) = (idx, 0usize, 1usize);
            for a in 0..d {
                t += (k % from[a]) * stride;
                k /= from[a];
                stride *= to[a];
            }
            t
        };
        for (i, &v) in q.iter().enumerate() {
            buf[map(i, &self.cells, &self.padded)] = Complex::new(v, 0.0);
        }
        let mut lines = Vec::new();
        self.fft.forward(&mut buf, &mut lines);
        buf.par_iter_mut()
            .zip(self.kernel_hat.par_iter())
            .for_each(|(b, k)| *b *= k);
        self.fft.inverse(&mut buf, &mut lines);
        let scale = 1.0 / p_total as f64;
        (0..n_total)
            .map(|i| buf[map(i, &self.cells, &self.padded)].re * scale)
            .collect()
    }
}
