//! The Green's functions of -Laplace in R^d and their Plummer softening
//! (SPEC §1-2): the one statement of G and G_delta in the crate.
//!
//! G is the fundamental solution of -Laplace in R^d (SPEC §1):
//!   d = 1: G(x) = -|x| / 2
//!   d = 2: G(x) = -log|x| / (2 pi) = -log(|x|^2) / (4 pi)
//!   d = 3: G(x) = 1 / (4 pi |x|)
//! and G_delta is G evaluated at sqrt(|x|^2 + delta^2) (SPEC §2):
//!   d = 1: G_delta(x) = -sqrt(x^2 + delta^2) / 2
//!   d = 2: G_delta(x) = -log(|x|^2 + delta^2) / (4 pi)
//!   d = 3: G_delta(x) = 1 / (4 pi sqrt(|x|^2 + delta^2))
//! All are radial, so they are written as g(s) with s = |x|^2; then
//! grad G_delta(x) = 2 g'(s) x.
//!
//! Every G_delta is `scale(d) k(a)` with a = |x|^2 + delta^2 and k(a) =
//! sqrt(a), log(a), a^(-1/2) for d = 1, 2, 3 ([`scale`]). The vectorized pair
//! loops (`coupling::pair_kernel`, `coupling::direct`, the multipole tree,
//! the sorted 1D sum) accumulate the unscaled k for speed and multiply by
//! [`scale`] once; their tests check them against [`softened`]. The Eulerian
//! solver integrates [`newton_kernel`] over cells.

use std::f64::consts::PI;

pub use crate::util::math::ln;

/// The factor c_d of G_delta = c_d k(|x|^2 + delta^2), k(a) = sqrt(a),
/// log(a), a^(-1/2): -1/2, -1/(4 pi), 1/(4 pi) for d = 1, 2, 3.
pub const fn scale(d: usize) -> f64 {
    match d {
        1 => -0.5,
        2 => -1.0 / (4.0 * PI),
        _ => 1.0 / (4.0 * PI),
    }
}

/// G(x), the unsoftened Green's function of -Laplace in R^d, d = x.len()
/// (1, 2 or 3; singular at 0 in d = 2, 3). Evaluated with std's `ln` and
/// `sqrt` (the grid solver's cell integrals of it must be exact to ~1e-15).
pub fn newton_kernel(x: &[f64]) -> f64 {
    match x.len() {
        1 => -x[0].abs() / 2.0,
        2 => -(x[0] * x[0] + x[1] * x[1]).ln() / (4.0 * PI),
        3 => 1.0 / (4.0 * PI * (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]).sqrt()),
        d => panic!("newton_kernel: dimension {d}"),
    }
}

/// (g(s), 2 g'(s)) for s = |x|^2, so that G_delta(x) = first and
/// grad G_delta(x) = second * x; `delta2` = delta^2.
///
/// With delta = 0 in d = 1 and s = 0 this returns slope 0, i.e. the
/// one-sided derivatives are averaged (sign(0) = 0), which is what makes the
/// pair sum's gradient antisymmetric.
#[inline(always)]
pub fn softened<const D: usize>(s: f64, delta2: f64) -> (f64, f64) {
    let a = s + delta2;
    match D {
        1 => {
            let r = a.sqrt();
            // Written as a select, not a branch, so pair loops vectorize.
            let slope = if r > 0.0 { -0.5 / r } else { 0.0 };
            (-0.5 * r, slope)
        }
        2 => (-ln(a) / (4.0 * PI), -1.0 / (2.0 * PI * a)),
        _ => {
            let inv = 1.0 / a.sqrt();
            (inv / (4.0 * PI), -inv * inv * inv / (4.0 * PI))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_ln_within_one_ulp_of_std() {
        let mut worst: f64 = 0.0;
        let mut x = 1e-300;
        while x < 1e300 {
            for k in 0..50 {
                let v = x * (1.0 + k as f64 * 0.0213);
                let (a, b) = (ln(v), v.ln());
                let ulp = (b.abs() * f64::EPSILON).max(f64::MIN_POSITIVE);
                worst = worst.max((a - b).abs() / ulp);
            }
            x *= 1.7;
        }
        // Near 1 the absolute error matters: log(1 + f) for tiny f.
        for k in 1..1000 {
            let v = 1.0 + k as f64 * 1e-12;
            assert!(
                (ln(v) - v.ln()).abs() <= 2.0 * f64::EPSILON * v.ln().abs(),
                "v={v}"
            );
        }
        assert!(worst <= 1.0, "worst error {worst} ulp");
    }

    #[test]
    fn slopes_are_derivatives() {
        fn check<const D: usize>() {
            let d2 = 0.01;
            for &r in &[0.03, 0.4, 2.5] {
                let h = 1e-6 * r;
                let fd = (softened::<D>((r + h) * (r + h), d2).0
                    - softened::<D>((r - h) * (r - h), d2).0)
                    / (2.0 * h);
                let an = softened::<D>(r * r, d2).1 * r;
                assert!(
                    (fd - an).abs() <= 1e-7 * an.abs(),
                    "D={D} r={r} fd={fd} an={an}"
                );
            }
        }
        check::<1>();
        check::<2>();
        check::<3>();
    }

    /// G_delta at delta = 0 is G, and scale(d) k(a) is G_delta.
    #[test]
    fn one_statement_of_g_and_its_softening() {
        fn check<const D: usize>() {
            for &r in &[0.03, 0.4, 2.5] {
                let mut x = [0.0; 3];
                x[D - 1] = r;
                let g = newton_kernel(&x[..D]);
                let g0 = softened::<D>(r * r, 0.0).0;
                assert!((g - g0).abs() <= 4e-15 * g.abs(), "D={D} r={r}: {g} {g0}");
                let d2 = 0.01;
                let a: f64 = r * r + d2;
                let k = [a.sqrt(), a.ln(), 1.0 / a.sqrt()][D - 1];
                let gd = softened::<D>(r * r, d2).0;
                assert!((scale(D) * k - gd).abs() <= 4e-15 * gd.abs(), "D={D} r={r}");
            }
        }
        check::<1>();
        check::<2>();
        check::<3>();
    }
}
