//! One axis of the box mesh: its nodes, how a node index outside the box
//! folds back onto a node inside (the walls' images), and the sine/cosine
//! transform that diagonalizes -d^2/dx^2 with the axis' two wall conditions.
//!
//! Nodes sit at x_m = lower + m h, m = 0..=n, h = L / n (walls on nodes).
//! The image system of a charge (odd across an electrode, even across an
//! insulating wall) is periodic of period P = 2n (both walls alike) or 4n
//! (one of each) nodes, and a node j of Z stands for node fold(j) in 0..=n
//! with a sign (0 on an electrode's node, where the images cancel).
//!
//! Per kind, the basis b_k(m), its wavenumbers kappa_k, and the weight
//! nu_k of the inverse (so that G(m, m') = sum_k nu_k b_k(m) b_k(m') / kappa_k^2
//! is the 1D Green's function on the nodes, images included):
//!
//! | kind (lower, upper) | b_k(m)                  | kappa_k          | k        | nu_k       |
//! |---------------------|-------------------------|------------------|----------|------------|
//! | insulating, insul.  | cos(pi k m / n)         | pi k / L         | 0..=n    | mu_k / L   |
//! | electrode, electr.  | sin(pi k m / n)         | pi k / L         | 1..n     | 2 / L      |
//! | electrode, insul.   | sin(pi (k+1/2) m / n)   | pi (k+1/2) / L   | 0..n     | 2 / L      |
//! | insulating, electr. | cos(pi (k+1/2) m / n)   | pi (k+1/2) / L   | 0..n     | 2 / L      |
//!
//! (mu_k = 1 at k = 0 and n, else 2.) The transform a_k = sum_m v_m b_k(m)
//! is the real or minus the imaginary part of the FFT of length P of the
//! line, zero-padded, at index k (first two kinds) or 2k + 1 (quarter-wave
//! kinds); the synthesis v_m = sum_k c_k b_k(m) is the same FFT with the
//! roles of m and k exchanged (b_k(m) is symmetric in the two).

use std::sync::Arc;

use rayon::prelude::*;
use rustfft::{Fft, FftPlanner, num_complex::Complex};

use crate::model::domain::WallCondition;

/// The pair of conditions on an axis' two walls, for psi's homogeneous problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Insulating at both ends (Neumann-Neumann: cosines, DCT-I).
    Nn,
    /// Electrodes at both ends (Dirichlet-Dirichlet: sines, DST-I).
    Dd,
    /// Electrode at the lower end, insulating at the upper (quarter-wave sines).
    Dn,
    /// Insulating at the lower end, electrode at the upper (quarter-wave cosines).
    Nd,
}

impl Kind {
    pub(crate) fn of(walls: &[WallCondition; 2]) -> Kind {
        match (walls[0].is_electrode(), walls[1].is_electrode()) {
            (false, false) => Kind::Nn,
            (true, true) => Kind::Dd,
            (true, false) => Kind::Dn,
            (false, true) => Kind::Nd,
        }
    }

    /// Whether the basis is of cosines (read the real part of the FFT).
    fn cosine(self) -> bool {
        matches!(self, Kind::Nn | Kind::Nd)
    }

    /// Whether the wavenumbers are the quarter-wave ones (k + 1/2).
    fn quarter(self) -> bool {
        matches!(self, Kind::Dn | Kind::Nd)
    }

    /// Whether the wall at `side` (0 lower, 1 upper) is an electrode.
    pub(crate) fn dirichlet(self, side: usize) -> bool {
        match self {
            Kind::Nn => false,
            Kind::Dd => true,
            Kind::Dn => side == 0,
            Kind::Nd => side == 1,
        }
    }
}

pub(crate) use crate::util::math::cubic_bspline as bspline;

/// The Fourier transform of the cubic B-spline of unit spacing at
/// theta = kappa h: sinc(theta / 2)^4.
pub(crate) fn bspline_hat(theta: f64) -> f64 {
    let t = 0.5 * theta;
    if t.abs() < 1e-8 {
        1.0
    } else {
        (t.sin() / t).powi(4)
    }
}

/// One axis of the mesh (module docs).
#[derive(Clone)]
pub(crate) struct Axis {
    pub(crate) kind: Kind,
    /// Cells: nodes 0..=n.
    pub(crate) n: usize,
    pub(crate) lower: f64,
    pub(crate) length: f64,
    pub(crate) h: f64,
    pub(crate) inv_h: f64,
    /// Period of the image system, in nodes (2n or 4n).
    period: usize,
    fft: Arc<dyn Fft<f64>>,
}

impl Axis {
    pub(crate) fn new(kind: Kind, lower: f64, upper: f64, n: usize) -> Self {
        let length = upper - lower;
        let period = if kind.quarter() { 4 * n } else { 2 * n };
        Axis {
            kind,
            n,
            lower,
            length,
            h: length / n as f64,
            inv_h: n as f64 / length,
            period,
            fft: FftPlanner::<f64>::new().plan_fft_forward(period),
        }
    }

    /// The node of 0..=n that node j of Z stands for, and the sign of its
    /// value there (0 on an electrode's node).
    #[inline(always)]
    pub(crate) fn fold(&self, j: i64) -> (usize, f64) {
        let (n, p) = (self.n as i64, self.period as i64);
        let m = j.rem_euclid(p);
        let (idx, sign) = match self.kind {
            Kind::Nn => (if m <= n { m } else { p - m }, 1.0),
            Kind::Dd => {
                if m <= n {
                    (m, 1.0)
                } else {
                    (p - m, -1.0)
                }
            }
            // Odd about 0 (period 4n), even about n.
            Kind::Dn => {
                let (r, s) = if m <= 2 * n { (m, 1.0) } else { (p - m, -1.0) };
                if r <= n { (r, s) } else { (2 * n - r, s) }
            }
            // Even about 0, odd about n.
            Kind::Nd => {
                let r = if m <= 2 * n { m } else { p - m };
                if r <= n { (r, 1.0) } else { (2 * n - r, -1.0) }
            }
        };
        let idx = idx as usize;
        if self.node_is_free(idx) {
            (idx, sign)
        } else {
            (idx, 0.0)
        }
    }

    /// Whether node m carries a value (not on an electrode).
    #[inline(always)]
    pub(crate) fn node_is_free(&self, m: usize) -> bool {
        !((m == 0 && self.kind.dirichlet(0)) || (m == self.n && self.kind.dirichlet(1)))
    }

    /// The wavenumber of spectral slot k (0..=n), `None` for an unused slot.
    pub(crate) fn wavenumber(&self, k: usize) -> Option<f64> {
        let scale = std::f64::consts::PI / self.length;
        match self.kind {
            Kind::Nn => Some(k as f64 * scale),
            Kind::Dd => (k >= 1 && k < self.n).then_some(k as f64 * scale),
            Kind::Dn | Kind::Nd => (k < self.n).then_some((k as f64 + 0.5) * scale),
        }
    }

    /// nu_k of the module docs (0 for an unused slot).
    pub(crate) fn weight(&self, k: usize) -> f64 {
        match (self.kind, self.wavenumber(k)) {
            (_, None) => 0.0,
            (Kind::Nn, _) if k == 0 || k == self.n => 1.0 / self.length,
            _ => 2.0 / self.length,
        }
    }

    /// int_lower^upper b_k(x) dx: the expansion of 1 is sum_k nu_k (this) b_k.
    pub(crate) fn integral(&self, k: usize) -> f64 {
        let Some(kappa) = self.wavenumber(k) else {
            return 0.0;
        };
        if kappa == 0.0 {
            return self.length;
        }
        let kl = kappa * self.length;
        if self.kind.cosine() {
            kl.sin() / kappa
        } else {
            (1.0 - kl.cos()) / kappa
        }
    }

    /// Position in the FFT buffer of spectral slot k.
    #[inline(always)]
    fn spectral_position(&self, k: usize) -> usize {
        if self.kind.quarter() { 2 * k + 1 } else { k }
    }

    /// Reads b-sums from an FFT output entry.
    #[inline(always)]
    fn take(&self, v: Complex<f64>) -> f64 {
        if self.kind.cosine() { v.re } else { -v.im }
    }

    /// Fills a zeroed FFT line from `get(slot)` for the analysis (`inverse`
    /// false: node values in) or the synthesis (spectral values in).
    #[inline(always)]
    fn fill(&self, line: &mut [Complex<f64>], inverse: bool, get: impl Fn(usize) -> f64) {
        line.fill(Complex::new(0.0, 0.0));
        for s in 0..=self.n {
            if inverse {
                if self.wavenumber(s).is_some() {
                    line[self.spectral_position(s)].re = get(s);
                }
            } else if self.node_is_free(s) {
                line[s].re = get(s);
            }
        }
    }

    /// The transformed value of slot s from the FFT of a filled line.
    #[inline(always)]
    fn read(&self, line: &[Complex<f64>], inverse: bool, s: usize) -> f64 {
        if inverse {
            if self.node_is_free(s) {
                self.take(line[s])
            } else {
                0.0
            }
        } else if self.wavenumber(s).is_some() {
            self.take(line[self.spectral_position(s)])
        } else {
            0.0
        }
    }
}

/// Applies the axis' transform (the analysis a_k = sum_m v_m b_k(m), or with
/// `inverse` the synthesis v_m = sum_k c_k b_k(m)) along `axis` of a
/// row-major (axis 0 fastest) array of shape `shape`, whose extent along
/// `axis` is n + 1. `lines` is scratch space kept by the caller.
pub(crate) fn transform_axis(
    data: &mut [f64],
    shape: &[usize],
    axis: usize,
    ax: &Axis,
    inverse: bool,
    lines: &mut Vec<Complex<f64>>,
) {
    let n1 = shape[axis];
    debug_assert_eq!(n1, ax.n + 1);
    let s: usize = shape[..axis].iter().product();
    let p = ax.period;
    let count = data.len() / n1;
    lines.resize(count * p, Complex::new(0.0, 0.0));
    // Line l = (o, i) holds data[o s n1 + j s + i], j = 0..n1.
    let per = (16384 / p).max(1);
    {
        let src: &[f64] = data;
        let scratch_len = ax.fft.get_inplace_scratch_len();
        lines.par_chunks_mut(per * p).enumerate().for_each_init(
            || vec![Complex::new(0.0, 0.0); scratch_len],
            |scratch, (c, batch)| {
                for (k, line) in batch.chunks_mut(p).enumerate() {
                    let l = c * per + k;
                    let base = (l / s) * s * n1 + l % s;
                    ax.fill(line, inverse, |j| src[base + j * s]);
                }
                ax.fft.process_with_scratch(batch, scratch);
            },
        );
    }
    let lines: &[Complex<f64>] = lines;
    data.par_chunks_mut(s * n1)
        .enumerate()
        .for_each(|(o, block)| {
            for i in 0..s {
                let line = &lines[(o * s + i) * p..(o * s + i + 1) * p];
                for j in 0..n1 {
                    block[j * s + i] = ax.read(line, inverse, j);
                }
            }
        });
}
