//! The blob density in d = 1, exactly, in O(N log N): sorted sweeps of the
//! kernel's polynomial moments instead of neighbour lists.
//!
//! The 1D Wendland C2 kernel is a polynomial in q = |u|/R on its support,
//!
//!   K(u) = C P(q),   P(q) = (1 - q)^4 (1 + 4q) = 1 - 10 q^2 + 20 q^3 - 15 q^4 + 4 q^5,
//!   K'(u) = (C/R) P'(q) sign(u),   P'(q) = -20 q + 60 q^2 - 60 q^3 + 20 q^4,
//!
//! (R = eps sqrt(14), C = 3/(2R), [`WendlandC2`]). So with the particles
//! sorted by x, every sum sum_j s_j F(q_ij) over the j left of i within R
//! (F = P or P', coefficients a_l) is sum_l a_l M_l(i) with the moments
//!
//!   M_l(i) = sum_{j < i, q_ij <= 1} s_j q_ij^l,   q_ij = (x_i - x_j)/R,   l = 0..5,
//!
//! and likewise on the right. A sweep keeps the moments about an origin
//! y_o of the window (y = x/R), m_l = sum_j s_j (y_o - y_j)^l: moving to
//! the next particle adds particle i - 1 and removes those now beyond R,
//! and the sum at i is sum_l a_l sum_k C(l,k) (y_i - y_o)^(l-k) m_k. When
//! y_i runs more than `RECENTER` = R/2 ahead of the origin, i becomes the
//! origin and the moments are summed afresh over the window. That is O(1)
//! per particle amortized (a window of k particles is re-summed once per
//! k/2 or so), O(N log N) with the sort, against O(N k) for the neighbour
//! lists (k in the hundreds at the bandwidths of 1D runs).
//!
//! Accuracy. Moments carried by shifting (m_l <- sum C(l,k) delta^(l-k) m_k
//! at every particle) were tried first: the shift multiplies the rounding
//! left by removed particles by up to (1 + delta)^5 at each step, 1e-9
//! relative after a few sparse steps. About a fixed origin nothing
//! compounds: every |y_o - y_j| <= 3/2, every term of the final sum is at
//! most (3/2)^5 s_j times coefficients of up to 20, so the error of rho_i
//! is a few hundred ulps of the window's mass times C: relative to
//! rho_i >= C w_i (the self term) below 1e-12 for windows of up to ~1e3
//! particles of comparable weights. Measured against the neighbour lists
//! on 20,000 particles with windows up to ~2,000: 4e-13 at worst (test).
//!
//! Ties (equal positions) contribute K(0) to each other, as in the
//! definition; q = 1 contributes P(1) = 0 whichever side of the test it
//! falls. Each sweep runs in sorted order on one thread (the left and right
//! sweeps on two): the result does not depend on the thread count.

use super::{DensityEstimator, EstimateRefused};
use crate::model::kernel::{RadialKernel, WendlandC2};

/// How far (in units of R) the sweep's point may run ahead of the origin of
/// its moments before they are summed afresh about a new one.
const RECENTER: f64 = 0.5;

/// P(q) by powers of q.
const P: [f64; 6] = [1.0, 0.0, -10.0, 20.0, -15.0, 4.0];
/// P'(q) by powers of q.
const DP: [f64; 6] = [0.0, -20.0, 60.0, -60.0, 20.0, 0.0];

/// Binomial coefficients C(l, m), l, m <= 5.
const BINOM: [[f64; 6]; 6] = [
    [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    [1.0, 2.0, 1.0, 0.0, 0.0, 0.0],
    [1.0, 3.0, 3.0, 1.0, 0.0, 0.0],
    [1.0, 4.0, 6.0, 4.0, 1.0, 0.0],
    [1.0, 5.0, 10.0, 10.0, 5.0, 1.0],
];

fn powers(q: f64) -> [f64; 6] {
    let q2 = q * q;
    [1.0, q, q2, q2 * q, q2 * q2, q2 * q2 * q]
}

/// For every i of the ascending `y` (in units of R) and every weight vector
/// `s[w]`, the one-sided sum sum_{j < i, y_i - y_j <= 1} s_w,j F(y_i - y_j),
/// F = sum_l a_l q^l (module docs), into `out[w]`. The weight vectors share
/// the window, its origin and the powers; each one's moments and sums are
/// the operations a sweep of it alone does, so its bits are the same.
fn sweep<const K: usize>(y: &[f64], s: [&[f64]; K], a: &[f64; 6], mut out: [&mut [f64]; K]) {
    let n = y.len();
    // Moments about the origin y[o]: m_l = sum_{j in window} s_j (y_o - y_j)^l.
    let mut m = [[0.0f64; 6]; K];
    let (mut lo, mut o) = (0usize, 0usize);
    let add = |m: &mut [[f64; 6]; K], j: usize, t: &[f64; 6]| {
        for (mw, sw) in m.iter_mut().zip(&s) {
            for l in 0..6 {
                mw[l] += sw[j] * t[l];
            }
        }
    };
    let remove = |m: &mut [[f64; 6]; K], j: usize, t: &[f64; 6]| {
        for (mw, sw) in m.iter_mut().zip(&s) {
            for l in 0..6 {
                mw[l] -= sw[j] * t[l];
            }
        }
    };
    for i in 0..n {
        if i > 0 {
            add(&mut m, i - 1, &powers(y[o] - y[i - 1]));
        }
        while lo < i && y[i] - y[lo] > 1.0 {
            remove(&mut m, lo, &powers(y[o] - y[lo]));
            lo += 1;
        }
        if lo == i || y[i] - y[o] > RECENTER {
            // A new origin, the moments summed afresh: the rounding of what
            // was added and removed goes with them.
            o = i;
            m = [[0.0; 6]; K];
            for j in lo..i {
                add(&mut m, j, &powers(y[o] - y[j]));
            }
        }
        // sum_j s_j (y_i - y_j)^l = sum_k C(l, k) d^(l-k) m_k, d = y_i - y_o.
        let d = powers(y[i] - y[o]);
        for (mw, ow) in m.iter().zip(out.iter_mut()) {
            let mut f = 0.0;
            for l in 0..6 {
                if a[l] != 0.0 {
                    let sl: f64 = (0..=l).map(|k| BINOM[l][k] * d[l - k] * mw[k]).sum();
                    f += a[l] * sl;
                }
            }
            ow[i] = f;
        }
    }
}

/// The blob density of one species in d = 1 by sorted moment sweeps.
#[derive(Debug, Clone)]
pub struct SortedDensity1d {
    eps: f64,
    kernel: WendlandC2,
    /// Particle indices in ascending x (kept between calls: re-sorting a
    /// nearly sorted order is cheap).
    order: Vec<u32>,
    /// Sorted positions in units of R, and reversed and negated ones.
    y: Vec<f64>,
    y_rev: Vec<f64>,
    /// Up to two weight vectors in sorted and reversed order, and their
    /// sweeps' outputs.
    s: [Vec<f64>; 2],
    s_rev: [Vec<f64>; 2],
    left: [Vec<f64>; 2],
    right: [Vec<f64>; 2],
    rho: Vec<f64>,
    /// Gradient scratch: c_i = w_i g'(rho_i), and the two derivative sums.
    cw: Vec<f64>,
    tw: Vec<f64>,
    tc: Vec<f64>,
}

impl SortedDensity1d {
    /// Estimator with kernel standard deviation `eps`.
    pub fn new(eps: f64) -> Self {
        SortedDensity1d {
            eps,
            kernel: WendlandC2::new(1, eps),
            order: Vec::new(),
            y: Vec::new(),
            y_rev: Vec::new(),
            s: Default::default(),
            s_rev: Default::default(),
            left: Default::default(),
            right: Default::default(),
            rho: Vec::new(),
            cw: Vec::new(),
            tw: Vec::new(),
            tc: Vec::new(),
        }
    }

    fn sort<const D: usize>(&mut self, x: &[[f64; D]]) {
        assert!(D == 1, "the sorted estimate is for d = 1");
        let n = x.len();
        if self.order.len() != n {
            self.order = (0..n as u32).collect();
        }
        // By position, then index: the order is a function of x alone.
        self.order.sort_unstable_by(|&i, &j| {
            x[i as usize][0]
                .total_cmp(&x[j as usize][0])
                .then(i.cmp(&j))
        });
        let inv_r = 1.0 / self.kernel.support();
        self.y.clear();
        self.y
            .extend(self.order.iter().map(|&i| x[i as usize][0] * inv_r));
        self.y_rev.clear();
        self.y_rev.extend(self.y.iter().rev().map(|v| -v));
    }

    /// Both one-sided sums of the weights `w[k]` (particle order) with the
    /// polynomial `a`, in sorted order: `left[k]` and `right[k]`.
    fn sums<const K: usize>(&mut self, w: [&[f64]; K], a: &[f64; 6]) {
        let n = self.order.len();
        for k in 0..K {
            let (s, s_rev) = (&mut self.s[k], &mut self.s_rev[k]);
            s.clear();
            s.extend(self.order.iter().map(|&i| w[k][i as usize]));
            s_rev.clear();
            s_rev.extend(s.iter().rev());
            self.left[k].resize(n, 0.0);
            self.right[k].resize(n, 0.0);
        }
        // The left and right sweeps are independent: one per thread when
        // there are two (each runs in sorted order, so the bits do not
        // depend on it).
        let (y, y_rev) = (&self.y, &self.y_rev);
        let s: [&[f64]; K] = std::array::from_fn(|k| &self.s[k][..]);
        let s_rev: [&[f64]; K] = std::array::from_fn(|k| &self.s_rev[k][..]);
        let (left, right) = (first_mut(&mut self.left), first_mut(&mut self.right));
        rayon::join(|| sweep(y, s, a, left), || sweep(y_rev, s_rev, a, right));
        for r in &mut self.right[..K] {
            r.reverse();
        }
    }
}

/// The first `K` of `v`, as slices.
fn first_mut<const K: usize>(v: &mut [Vec<f64>; 2]) -> [&mut [f64]; K] {
    let mut each = v.iter_mut().map(|x| &mut x[..]);
    std::array::from_fn(|_| each.next().expect("at most two weight vectors"))
}

/// scale (left - right): the sums over both sides of a derivative's sweeps.
fn both_sides(scale: f64, left: &[f64], right: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend(left.iter().zip(right).map(|(l, r)| scale * (l - r)));
}

/// Implemented for every `D` so that the registration
/// ([`DensityPlan::build`](crate::density::DensityPlan::build)) needs no cast,
/// but only meaningful for `D = 1`: it reads the first axis and refuses any
/// other dimension.
impl<const D: usize> DensityEstimator<D> for SortedDensity1d {
    fn bandwidth(&self) -> f64 {
        self.eps
    }

    fn compute(&mut self, x: &[[f64; D]], w: &[f64]) -> Result<&[f64], EstimateRefused> {
        self.sort(x);
        self.sums([w], &P);
        let c = self.kernel.norm();
        self.rho.resize(x.len(), 0.0);
        for (k, &i) in self.order.iter().enumerate() {
            let i = i as usize;
            self.rho[i] = c * (w[i] + self.left[0][k] + self.right[0][k]);
        }
        Ok(&self.rho)
    }

    fn add_gradient(&mut self, x: &[[f64; D]], w: &[f64], slope: &[f64], grad: &mut [[f64; D]]) {
        let mut c = std::mem::take(&mut self.cw);
        c.clear();
        c.extend(w.iter().zip(slope).map(|(w, s)| w * s));
        self.add_linear_gradient(x, w, &c, grad);
        self.cw = c;
    }

    /// dL/dX_l = c_l sum_j w_j K'(X_l - X_j) + w_l sum_j c_j K'(X_l - X_j).
    fn add_linear_gradient(&mut self, x: &[[f64; D]], w: &[f64], c: &[f64], grad: &mut [[f64; D]]) {
        if self.y.len() != x.len() {
            self.sort(x);
        }
        // sum_j s_j K'(x_i - x_j) for s = w and s = c, in sorted order.
        self.sums([w, c], &DP);
        let scale = self.kernel.norm() / self.kernel.support();
        both_sides(scale, &self.left[0], &self.right[0], &mut self.tw);
        both_sides(scale, &self.left[1], &self.right[1], &mut self.tc);
        for (k, &i) in self.order.iter().enumerate() {
            let i = i as usize;
            grad[i][0] += c[i] * self.tw[k] + w[i] * self.tc[k];
        }
    }

    fn reset(&mut self) {}

    /// Sixteen arrays of N numbers: within the per-particle allowance the
    /// run's estimate makes for neighbour lists, so nothing beyond it.
    fn extra_memory(&self, _x: &[[f64; D]], _w: &[f64]) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::BlobDensity;

    /// A cloud with clumps, exact ties, a lone particle and gaps wider than
    /// the kernel, weights varying by 5x: `n` points on about [-3, 3].
    fn cloud(n: usize) -> (Vec<[f64; 1]>, Vec<f64>) {
        let mut x: Vec<[f64; 1]> = (0..n)
            .map(|i| {
                let u = ((i as f64 + 0.5) * 0.618_033_988_749_895).fract();
                let v = 2.0 * u - 1.0;
                [3.0 * v * v * v + if i % 2 == 0 { 0.3 } else { -0.3 }]
            })
            .collect();
        x[7] = x[3];
        x[8] = x[3];
        x[n - 1] = [9.0];
        let w = (0..n).map(|i| (1.0 + (i % 5) as f64) / n as f64).collect();
        (x, w)
    }

    /// Against the neighbour lists (the definition to rounding) on 20,000
    /// particles with windows of up to ~2,000: the densities to 1e-12
    /// relative each (the bound argued in the module docs), and the
    /// gradient of sum_i w_i log rho_i to 1e-12 of its largest component.
    #[test]
    fn sweeps_match_the_neighbour_sums() {
        let (x, w) = cloud(20_000);
        for eps in [0.002, 0.02, 0.05] {
            let mut lists = BlobDensity::<1>::new(eps);
            let mut sorted = SortedDensity1d::new(eps);
            let a = DensityEstimator::compute(&mut lists, &x, &w)
                .unwrap()
                .to_vec();
            let b = sorted.compute(&x, &w).unwrap().to_vec();
            let worst = a
                .iter()
                .zip(&b)
                .map(|(a, b)| ((a - b) / a).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 1e-12,
                "eps {eps}: worst relative density error {worst:e}"
            );
            let slope: Vec<f64> = a.iter().map(|r| 1.0 / r).collect();
            let (mut ga, mut gb) = (vec![[0.0]; x.len()], vec![[0.0]; x.len()]);
            DensityEstimator::add_gradient(&mut lists, &x, &w, &slope, &mut ga);
            sorted.add_gradient(&x, &w, &slope, &mut gb);
            let scale = ga.iter().map(|g| g[0].abs()).fold(0.0, f64::max);
            let worst = ga
                .iter()
                .zip(&gb)
                .map(|(a, b)| (a[0] - b[0]).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 1e-12 * scale,
                "eps {eps}: gradient error {worst:e} of {scale:e}"
            );
        }
    }

    /// The test can fail: a kernel 0.1% too wide is caught by 1e6 margins.
    #[test]
    fn a_wrong_width_is_caught() {
        let (x, w) = cloud(2000);
        let a = BlobDensity::<1>::new(0.02).compute(&x, &w).to_vec();
        let b = SortedDensity1d::new(0.02002)
            .compute(&x, &w)
            .unwrap()
            .to_vec();
        let worst = a
            .iter()
            .zip(&b)
            .map(|(a, b)| ((a - b) / a).abs())
            .fold(0.0, f64::max);
        assert!(worst > 1e-6, "{worst:e}");
    }
}
