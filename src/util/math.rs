//! Scalar functions written so that loops calling them vectorize.

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

/// Cubic B-spline weights B(f + 1 - j) of the nodes floor(u) - 1 + j,
/// j = 0..4, for the fractional part f of u, and their derivatives in u.
#[inline(always)]
pub fn cubic_bspline(f: f64) -> ([f64; 4], [f64; 4]) {
    let (f2, g) = (f * f, 1.0 - f);
    let f3 = f2 * f;
    (
        [
            g * g * g / 6.0,
            (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0,
            (-3.0 * f3 + 3.0 * f2 + 3.0 * f + 1.0) / 6.0,
            f3 / 6.0,
        ],
        [
            -0.5 * g * g,
            0.5 * (3.0 * f2 - 4.0 * f),
            0.5 * (-3.0 * f2 + 2.0 * f + 1.0),
            0.5 * f2,
        ],
    )
}
