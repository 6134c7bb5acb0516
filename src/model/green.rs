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

/// Natural logarithm of a positive normal number, branch-free so that loops
/// calling it vectorize (std's `ln` is a libm call). The fdlibm algorithm:
/// a = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f/(2 + f),
/// log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), R a degree-7 minimax
/// polynomial; error below 1 ulp. Zero, subnormal, infinite and NaN inputs
/// are outside its domain (a pair sum never produces them: a >= delta^2 > 0).
#[inline(always)]
pub fn ln(a: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const LG: [f64; 7] = [
        6.666_666_666_666_735e-1,
        3.999_999_999_940_942e-1,
        2.857_142_874_366_239e-1,
        2.222_219_843_214_978_4e-1,
        1.818_357_216_161_805e-1,
        1.531_383_769_920_937_3e-1,
        1.479_819_860_511_658_6e-1,
    ];
    // Magic-number conversion of the biased exponent to f64 (vectorizes
    // without a 64-bit integer-to-float instruction).
    const TWO52: f64 = 4_503_599_627_370_496.0;
    let bits = a.to_bits();
    let e_biased = f64::from_bits(TWO52.to_bits() | (bits >> 52)) - TWO52;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = e_biased - 1023.0 + if big { 1.0 } else { 0.0 };
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    e * LN2_HI - ((hfsq - (s * (hfsq + r) + e * LN2_LO)) - f)
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
