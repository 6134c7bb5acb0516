//! The Plummer-softened Newtonian kernel G_delta of SPEC §2.
//!
//! G is the fundamental solution of -Laplace in R^d, evaluated at
//! sqrt(|x|^2 + delta^2):
//!   d = 1: G_delta(x) = -sqrt(x^2 + delta^2) / 2
//!   d = 2: G_delta(x) = -log(|x|^2 + delta^2) / (4 pi)
//!   d = 3: G_delta(x) = 1 / (4 pi sqrt(|x|^2 + delta^2))
//! All are radial, so they are written as g(s) with s = |x|^2; then
//! grad G_delta(x) = 2 g'(s) x.

use std::f64::consts::PI;

pub use crate::util::math::ln;

/// (g(s), 2 g'(s)) for s = |x|^2, so that grad G_delta(x) = second * x.
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
}
