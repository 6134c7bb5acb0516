//! Exact 1D coupling by sorting and prefix sums, O(N log N).
//!
//! Kernel (d = 1): `G_delta(u) = -sqrt(u^2 + delta^2) / 2` of [`crate::model::green`]
//! (its factor `-1/2` is [`crate::model::green::scale`]), so
//! `phi_i = -1/2 sum_{j != i} q_j sqrt((x_i - x_j)^2 + delta^2)` and
//! `grad_i = -1/2 sum_{j != i} q_j (x_i - x_j) / sqrt((x_i - x_j)^2 + delta^2)`
//! (`-1/2 sum q_j sign(x_i - x_j)` when `delta = 0`, with `sign(0) = 0`).
//!
//! Method: split `sqrt(u^2 + delta^2) = |u| + c(u)`, `c(u) = delta^2 / (sqrt(u^2+delta^2) + |u|)`.
//!
//! * `|u|` part, exactly: with the particles sorted by `x` and a group `E` of particles at
//!   the same position `x`, `sum_j q_j |x - x_j| = x (Q_L - Q_R) - (S_L - S_R)` and
//!   `sum_j q_j sign(x - x_j) = Q_L - Q_R`, where `Q_L, S_L` (`Q_R, S_R`) are the sums of
//!   `q_j`, `q_j x_j` over particles strictly left (right) of the group. Left sums are
//!   prefix sums, right sums suffix sums (no subtraction of totals), accumulated in
//!   double-double (compensated) arithmetic, with coordinates centered first.
//! * `c(u)` part (only if `delta > 0`): `c` is smooth away from `u = 0`, bounded by
//!   `delta`, with `c(u) <= delta^2 / (2 |u|)`. Particles at one position are merged
//!   (their pairs contribute `c(0) = delta` each, and nothing to the gradient), and the
//!   distinct positions' sums go to `correction`: a one-dimensional black-box fast
//!   multipole method on the sorted order, O(N) after the sort, exact to rounding in
//!   the same sense: its interpolation error `~rho^-NODES` multiplies `c`, which is
//!   itself `<= delta` while the `|u|` part is of size `|u|`.

mod correction;

use rayon::prelude::*;

use correction::Correction;

/// Exact O(N log N) evaluator for `D = 1` (see module docs).
pub struct SortedCoupling1d {
    delta: f64,
    order: Vec<(f64, u32)>,
    /// Per sorted particle: left sums (q, q x) and right sums, double-double.
    left: Vec<[f64; 4]>,
    right: Vec<[f64; 4]>,
    correction: Option<Correction>,
    /// Distinct positions, their summed charges, and the correction's sums there.
    distinct: Vec<f64>,
    charge: Vec<f64>,
    c_phi: Vec<f64>,
    c_grad: Vec<f64>,
}

impl SortedCoupling1d {
    /// `softening = delta >= 0`.
    pub fn new(softening: f64) -> Self {
        Self::build(softening, Correction::new)
    }

    /// As [`Self::new`] with the correction's Chebyshev points per node, separation
    /// ratio and leaf size (the tuning probe below).
    #[cfg(test)]
    fn with_params(softening: f64, points: usize, separation: f64, leaf: usize) -> Self {
        Self::build(softening, |delta| {
            Correction::with_params(delta, points, separation, leaf)
        })
    }

    fn build(softening: f64, correction: impl FnOnce(f64) -> Correction) -> Self {
        assert!(
            softening >= 0.0 && softening.is_finite(),
            "softening must be finite and >= 0"
        );
        let correction = (softening > 0.0).then(|| {
            assert!(
                softening * softening >= f64::MIN_POSITIVE,
                "softening^2 must be a normal number"
            );
            correction(softening)
        });
        Self {
            delta: softening,
            order: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            correction,
            distinct: Vec::new(),
            charge: Vec::new(),
            c_phi: Vec::new(),
            c_grad: Vec::new(),
        }
    }

    /// The Plummer softening delta >= 0.
    pub fn softening(&self) -> f64 {
        self.delta
    }

    /// Overwrites `phi[i]` and `grad[i]` (see module docs). Panics only on length mismatch.
    pub fn evaluate(&mut self, x: &[[f64; 1]], q: &[f64], phi: &mut [f64], grad: &mut [[f64; 1]]) {
        let n = x.len();
        assert!(
            q.len() == n && phi.len() == n && grad.len() == n,
            "length mismatch"
        );
        if n == 0 {
            return;
        }
        self.sort(x);
        let center = self.order[n / 2].0;
        self.prefix_sums(q, center);
        self.correct(q);
        // Each group of equal positions shares its left / right sums.
        let scale = crate::model::green::scale(1);
        let (mut k, mut g) = (0, 0);
        while k < n {
            let xk = self.order[k].0;
            let mut e = k + 1;
            while e < n && self.order[e].0 == xk {
                e += 1;
            }
            let (l, r) = (self.left[k], self.right[e - 1]);
            let xc = xk - center;
            let (ql, qr) = (l[0] + l[1], r[0] + r[1]);
            let (sl, sr) = (l[2] + l[3], r[2] + r[3]);
            let abs_sum = xc * (ql - qr) - (sl - sr);
            let sign_sum = ql - qr;
            for &(_, i) in &self.order[k..e] {
                let i = i as usize;
                let (c, c_grad) = match self.correction {
                    // Pairs within the group: c(0) = delta each, no force.
                    Some(_) => (
                        self.c_phi[g] + (self.charge[g] - q[i]) * self.delta,
                        self.c_grad[g],
                    ),
                    None => (0.0, 0.0),
                };
                phi[i] = scale * (abs_sum + c);
                grad[i][0] = scale * (sign_sum + c_grad);
            }
            k = e;
            g += 1;
        }
    }

    /// The correction's sums at the distinct positions (nothing without softening).
    fn correct(&mut self, q: &[f64]) {
        let Some(correction) = self.correction.as_mut() else {
            return;
        };
        self.distinct.clear();
        self.charge.clear();
        for &(x, i) in &self.order {
            if self.distinct.last() == Some(&x) {
                *self.charge.last_mut().expect("a group is open") += q[i as usize];
            } else {
                self.distinct.push(x);
                self.charge.push(q[i as usize]);
            }
        }
        let m = self.distinct.len();
        self.c_phi.resize(m, 0.0);
        self.c_grad.resize(m, 0.0);
        correction.evaluate(
            &self.distinct,
            &self.charge,
            &mut self.c_phi,
            &mut self.c_grad,
        );
    }

    /// Sorts `(x_i, i)` by position then index (a total order: deterministic),
    /// starting from the last call's order: between evaluations the particles
    /// move little, and a nearly sorted input sorts faster.
    fn sort(&mut self, x: &[[f64; 1]]) {
        if self.order.len() == x.len() {
            for p in &mut self.order {
                p.0 = x[p.1 as usize][0];
            }
        } else {
            self.order.clear();
            self.order
                .extend(x.iter().enumerate().map(|(i, p)| (p[0], i as u32)));
        }
        assert!(
            self.order.iter().all(|p| p.0.is_finite()),
            "positions must be finite"
        );
        self.order
            .par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }

    /// `left[k]` = compensated sums of `q_j`, `q_j (x_j - center)` over sorted `j < k`,
    /// `right[k]` = the same over `j > k`; each stored as (hi, lo, hi, lo).
    fn prefix_sums(&mut self, q: &[f64], center: f64) {
        let n = self.order.len();
        self.left.resize(n, [0.0; 4]);
        self.right.resize(n, [0.0; 4]);
        let term = |k: usize| {
            let (xk, i) = self.order[k];
            let qi = q[i as usize];
            (qi, qi * (xk - center))
        };
        let mut acc = [0.0; 4];
        for k in 0..n {
            self.left[k] = acc;
            let (a, b) = term(k);
            add_compensated(&mut acc, 0, a);
            add_compensated(&mut acc, 2, b);
        }
        let mut acc = [0.0; 4];
        for k in (0..n).rev() {
            self.right[k] = acc;
            let (a, b) = term(k);
            add_compensated(&mut acc, 0, a);
            add_compensated(&mut acc, 2, b);
        }
    }
}

/// `(acc[at], acc[at+1])` += `v` in double-double arithmetic (Knuth two-sum).
#[inline]
fn add_compensated(acc: &mut [f64; 4], at: usize, v: f64) {
    let s = acc[at] + v;
    let bp = s - acc[at];
    let err = (acc[at] - (s - bp)) + (v - bp);
    acc[at] = s;
    acc[at + 1] += err;
}

#[cfg(test)]
mod tuning {
    use super::*;

    /// Time and accuracy of the correction's settings on the bench cloud: Chebyshev
    /// points per node, separation ratio, leaf size
    /// (`SORTED1D_SETTINGS="p,sep,leaf;..." cargo test --release --lib sorted1d_tuning
    /// -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn sorted1d_tuning() {
        let n: usize = std::env::var("SORTED1D_N").map_or(4000, |v| v.parse().unwrap());
        let x: Vec<[f64; 1]> = (0..n)
            .map(|i| {
                let u = (i as f64 + 0.5) / n as f64;
                [
                    0.5 * crate::particles::initial::quasi::inverse_normal_cdf(u)
                        + 1e-3 * ((i * 7919) % 13) as f64,
                ]
            })
            .collect();
        let q: Vec<f64> = (0..n)
            .map(|i| (if i % 2 == 0 { 1.0 } else { -1.0 }) / n as f64)
            .collect();
        let (mut pe, mut ge) = (vec![0.0; n], vec![[0.0]; n]);
        crate::coupling::direct_evaluate(&x, &q, 0.05, &mut pe, &mut ge);
        let settings: Vec<(usize, f64, usize)> = std::env::var("SORTED1D_SETTINGS")
            .map(|s| {
                s.split(';')
                    .map(|t| {
                        let v: Vec<&str> = t.split(',').collect();
                        (
                            v[0].parse().unwrap(),
                            v[1].parse().unwrap(),
                            v[2].parse().unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or(vec![(
                correction::NODES,
                correction::SEPARATION,
                correction::LEAF,
            )]);
        for (points, separation, leaf) in settings {
            let mut s = SortedCoupling1d::with_params(0.05, points, separation, leaf);
            let (mut phi, mut grad) = (vec![0.0; n], vec![[0.0]; n]);
            s.evaluate(&x, &q, &mut phi, &mut grad);
            let scale_p = pe.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let scale_g = ge.iter().fold(0.0f64, |m, v| m.max(v[0].abs()));
            let ep = (0..n).fold(0.0f64, |m, i| m.max((phi[i] - pe[i]).abs())) / scale_p;
            let eg = (0..n).fold(0.0f64, |m, i| m.max((grad[i][0] - ge[i][0]).abs())) / scale_g;
            let reps = (800_000 / n).max(3);
            // This thread's CPU time (the machine is shared: wall time is noise);
            // the parallel sort runs on rayon's threads and is not counted.
            let cpu = || -> f64 {
                let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
                stat.split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<f64>()
                    .unwrap()
                    * 1e-9
            };
            let start = cpu();
            for _ in 0..reps {
                s.evaluate(&x, &q, &mut phi, &mut grad);
            }
            let per = (cpu() - start) / reps as f64;
            println!(
                "n {n} points {points} separation {separation} leaf {leaf}: {:.1} us CPU/eval (one thread: RAYON_NUM_THREADS=1), err phi {ep:.2e} grad {eg:.2e}",
                per * 1e6,
            );
        }
    }
}

#[cfg(test)]
mod coincident_tests {
    use super::*;

    /// Uniform random clouds of a few thousand particles, through one
    /// evaluator (each sort starts from the last cloud's order): the bits of
    /// a fresh evaluator, and the direct sum to 1e-12 of the largest value.
    #[test]
    fn random_uniform_clouds_are_summed() {
        use rand::{RngExt, SeedableRng};
        let n = 3000;
        let q: Vec<f64> = (0..n)
            .map(|i| if i < n / 2 { -0.0008 } else { 0.0008 })
            .collect();
        let mut reused = SortedCoupling1d::new(0.002);
        for seed in 0..20u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let x: Vec<[f64; 1]> = (0..n).map(|_| [2.0 * rng.random::<f64>()]).collect();
            let (mut phi, mut grad) = (vec![0.0; n], vec![[0.0]; n]);
            reused.evaluate(&x, &q, &mut phi, &mut grad);
            let (mut pf, mut gf) = (vec![0.0; n], vec![[0.0]; n]);
            SortedCoupling1d::new(0.002).evaluate(&x, &q, &mut pf, &mut gf);
            assert!(phi.iter().zip(&pf).all(|(a, b)| a.to_bits() == b.to_bits()));
            assert!(
                grad.iter()
                    .zip(&gf)
                    .all(|(a, b)| a[0].to_bits() == b[0].to_bits())
            );
            if seed < 2 {
                let (mut pe, mut ge) = (vec![0.0; n], vec![[0.0]; n]);
                crate::coupling::direct_evaluate(&x, &q, 0.002, &mut pe, &mut ge);
                let top = |v: &[f64]| v.iter().fold(0.0f64, |m, a| m.max(a.abs()));
                let (tp, tg) = (top(&pe), top(&ge.iter().map(|g| g[0]).collect::<Vec<_>>()));
                for i in 0..n {
                    assert!((phi[i] - pe[i]).abs() <= 1e-12 * tp, "phi {i}");
                    assert!((grad[i][0] - ge[i][0]).abs() <= 1e-12 * tg, "grad {i}");
                }
            }
        }
    }

    /// Many particles at one point (a wall of a box, where the projected
    /// steps put them) must not break the softened correction's tree.
    #[test]
    fn coincident_particles_are_summed() {
        let n = 3000;
        let x: Vec<[f64; 1]> = (0..n)
            .map(|i| match i % 6 {
                0 => [0.0],
                3 => [-8.673617379884035e-19 * (i % 5) as f64],
                _ => [(i as f64 * 0.618_034).fract() * 2.0],
            })
            .collect();
        let q: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } / n as f64)
            .collect();
        let mut s = SortedCoupling1d::new(0.002);
        let (mut phi, mut grad) = (vec![0.0; n], vec![[0.0]; n]);
        s.evaluate(&x, &q, &mut phi, &mut grad);
        let (mut pe, mut ge) = (vec![0.0; n], vec![[0.0]; n]);
        crate::coupling::direct_evaluate(&x, &q, 0.002, &mut pe, &mut ge);
        for i in (0..n).step_by(97) {
            assert!(
                (phi[i] - pe[i]).abs() < 1e-8,
                "i={i}: {} vs {}",
                phi[i],
                pe[i]
            );
        }
    }
}
