//! `sampling = "quasi"` for the "gaussian" and "uniform" laws: the
//! particles are a scrambled Sobol point set pushed through the law's
//! inverse distribution function, instead of independent draws.
//!
//! Why: N independent draws carry O(N^-1/2) sampling noise (a 2D cloud of
//! 1e5 draws has density fluctuations of a few percent at the kernel's
//! scale), which the first JKO steps spend their iterations relaxing, and
//! which sits in every moment of the run. A low-discrepancy set integrates
//! smooth functions with error O(N^-1 log^d N), so moments and densities
//! start at the law's own values.
//!
//! The point set. Point i of axis a is u_a(i) = S(sigma_a(Sobol_a(i))):
//! Sobol_a(i) the Sobol sequence's a-th coordinate (Joe and Kuo's direction
//! numbers; axes 1-3 are the primitive polynomials 1, x + 1 and x^2 + x + 1)
//! as a 32-bit fraction, sigma_a a nested uniform (Owen) scramble of its
//! 64-bit extension, computed by hashing as in Burley, "Practical
//! hash-based Owen scrambling" (JCGT 2020): in bit-reversed order, every
//! step of the hash (add a seed, xor with a multiple by an even constant)
//! changes each bit as a function of the more significant bits only, which
//! is what an Owen scramble is; its 64 bits also fill the digits beyond the
//! 32 of the sequence with random ones. S maps the top 53 bits to the
//! midpoint of their cell, so u is never 0 or 1. The seeds come from the
//! species' own random stream (the scenario's `seed`), one per axis.
//! Scrambling keeps the net property: for N = 2^m, every interval
//! [k 2^-m, (k+1) 2^-m) of one axis holds exactly one point, and every
//! elementary box of area 2^-m of the first two axes holds exactly one
//! (tested).
//!
//! The laws. "uniform": x_a = lower_a + (upper_a - lower_a) u_a, on the
//! intersection with the domain's box if there is one. "gaussian":
//! x_a = mean_a + std_a Phi^-1(u_a), or within a box [l, r] the truncated
//! normal Phi^-1(Phi(l') + u (Phi(r') - Phi(l'))) (l', r' standardized),
//! in the upper tail through the complementary function so that a box far
//! from the mean keeps its digits. No point is rejected: the set stays a
//! low-discrepancy set of the law restricted to the box.
//!
//! Why by hand: the crates with scrambled Sobol sequences give f32 and at
//! most 2^16 points (sobol_burley); the particles need f64 and up to 2^31.
//! Three axes need three direction-number recurrences, written out below.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::InitialSpec;
use crate::model::domain::BoxDomain;

/// How the particles of a sampled law are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sampling {
    /// Independent draws (the default; SPEC §3).
    #[default]
    Random,
    /// A scrambled Sobol set through the inverse distribution function.
    Quasi,
}

/// The 32 direction numbers v_k = m_k 2^(32-k) of Sobol axis `a` (0, 1, 2).
fn directions(a: usize) -> [u32; 32] {
    let mut m = [0u64; 33];
    for k in 1..=32usize {
        m[k] = match (a, k) {
            (0, _) => 1,
            (1, 1) => 1,
            // x + 1: m_k = 2 m_{k-1} xor m_{k-1}.
            (1, _) => (m[k - 1] << 1) ^ m[k - 1],
            (2, 1) => 1,
            (2, 2) => 3,
            // x^2 + x + 1: m_k = 2 m_{k-1} xor 4 m_{k-2} xor m_{k-2}.
            (2, _) => (m[k - 1] << 1) ^ (m[k - 2] << 2) ^ m[k - 2],
            _ => unreachable!("three axes"),
        };
    }
    std::array::from_fn(|j| (m[j + 1] << (31 - j)) as u32)
}

/// Nested uniform scramble of the 64-bit fraction `x` (see module docs).
fn owen_scramble(x: u64, seed: u64) -> u64 {
    let mut r = x.reverse_bits();
    r = r.wrapping_add(seed);
    r ^= r.wrapping_mul(0x6c50_b47c_d3a4_f2e2);
    r ^= r.wrapping_mul(0xb82f_1e52_9f2c_7a34);
    r ^= r.wrapping_mul(0xc7af_e638_51ba_9e06);
    r ^= r.wrapping_mul(0x8d22_f6e6_2b4c_3d18);
    r.reverse_bits()
}

/// A scrambled Sobol point set in (0, 1)^D, D <= 3.
#[derive(Debug, Clone)]
pub struct ScrambledSobol<const D: usize> {
    directions: [[u32; 32]; D],
    seeds: [u64; D],
}

impl<const D: usize> ScrambledSobol<D> {
    /// A set scrambled by seeds drawn from `rng`.
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        assert!(D <= 3, "Sobol axes are written out for d <= 3");
        ScrambledSobol {
            directions: std::array::from_fn(directions),
            seeds: std::array::from_fn(|_| rng.random::<u64>()),
        }
    }

    /// Point `i` (i < 2^32).
    pub fn point(&self, i: u64) -> [f64; D] {
        debug_assert!(i < 1 << 32);
        std::array::from_fn(|a| {
            let mut s = 0u32;
            let mut bits = i as u32;
            let mut k = 0;
            while bits != 0 {
                if bits & 1 == 1 {
                    s ^= self.directions[a][k];
                }
                bits >>= 1;
                k += 1;
            }
            let x = owen_scramble(u64::from(s) << 32, self.seeds[a]);
            ((x >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
        })
    }
}

/// Phi(z), the standard normal distribution function.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2)
}

/// Phi^-1(p) for p in (0, 1): Acklam's rational approximation (relative
/// error 1.2e-9) and one Halley step on Phi(z) = p through erfc, which
/// brings it to rounding: Phi(Phi^-1(p)) = p to 1e-12 relative down to
/// p = 1e-300, the bound z's own rounding allows there (tested).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    debug_assert!(p > 0.0 && p < 1.0);
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        let t = (-2.0 * q.ln()).sqrt();
        (((((C[0] * t + C[1]) * t + C[2]) * t + C[3]) * t + C[4]) * t + C[5])
            / ((((D[0] * t + D[1]) * t + D[2]) * t + D[3]) * t + 1.0)
    };
    let z = if p < 0.02425 {
        tail(p)
    } else if p > 1.0 - 0.02425 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Halley on f(z) = Phi(z) - p, f' = phi(z), f'' = -z phi(z); near the
    // upper end through the complement so that 1 - p keeps its digits.
    let e = if p > 0.5 {
        // Phi(z) - p = (1 - p) - (1 - Phi(z)).
        (1.0 - p) - 0.5 * libm::erfc(z * std::f64::consts::FRAC_1_SQRT_2)
    } else {
        normal_cdf(z) - p
    };
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * z * z).exp();
    z - u / (1.0 + 0.5 * z * u)
}

/// The standard normal restricted to [lo, hi] (standardized bounds, lo <
/// hi, either may be infinite) at the quantile u in (0, 1), and the mass
/// of the interval.
fn truncated_normal(lo: f64, hi: f64, u: f64) -> (f64, f64) {
    if lo > 0.0 {
        // Upper tail: by symmetry, the lower tail of -x on [-hi, -lo].
        let (z, mass) = truncated_normal(-hi, -lo, 1.0 - u);
        return (-z, mass);
    }
    let (a, b) = (normal_cdf(lo), normal_cdf(hi));
    let p = (a + u * (b - a)).clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON / 2.0);
    (inverse_normal_cdf(p).clamp(lo, hi), b - a)
}

/// The quasi-random particles of `law` (gaussian or uniform) within `within`:
/// n points, or the mass fraction of the law inside the box if it is below
/// `min_mass` (the law has no particles to give there).
pub(super) fn points<const D: usize>(
    law: &InitialSpec,
    n: usize,
    within: Option<&BoxDomain>,
    rng: &mut ChaCha8Rng,
    min_mass: f64,
) -> std::result::Result<Vec<[f64; D]>, f64> {
    let set = ScrambledSobol::<D>::new(rng);
    let bound = |a: usize| {
        within.map_or((f64::NEG_INFINITY, f64::INFINITY), |b| {
            (b.lower[a], b.upper[a])
        })
    };
    match law {
        InitialSpec::Uniform { lower, upper } => {
            let lo: Vec<f64> = (0..D).map(|a| lower[a].max(bound(a).0)).collect();
            let hi: Vec<f64> = (0..D).map(|a| upper[a].min(bound(a).1)).collect();
            let fraction: f64 = (0..D)
                .map(|a| ((hi[a] - lo[a]) / (upper[a] - lower[a])).max(0.0))
                .product();
            if fraction < min_mass {
                return Err(fraction);
            }
            Ok((0..n as u64)
                .map(|i| {
                    let u = set.point(i);
                    std::array::from_fn(|a| (lo[a] + (hi[a] - lo[a]) * u[a]).min(hi[a]))
                })
                .collect())
        }
        InitialSpec::Gaussian { mean, std } => {
            let z: Vec<(f64, f64)> = (0..D)
                .map(|a| {
                    let (l, r) = bound(a);
                    ((l - mean[a]) / std[a], (r - mean[a]) / std[a])
                })
                .collect();
            let fraction: f64 = z
                .iter()
                .map(|&(l, r)| truncated_normal(l, r, 0.5).1)
                .product();
            if fraction < min_mass {
                return Err(fraction);
            }
            Ok((0..n as u64)
                .map(|i| {
                    let u = set.point(i);
                    std::array::from_fn(|a| {
                        let x = mean[a] + std[a] * truncated_normal(z[a].0, z[a].1, u[a]).0;
                        let (l, r) = bound(a);
                        x.clamp(l, r)
                    })
                })
                .collect())
        }
        _ => unreachable!("validated: quasi sampling of gaussian and uniform laws only"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn set<const D: usize>(seed: u64) -> ScrambledSobol<D> {
        ScrambledSobol::new(&mut ChaCha8Rng::seed_from_u64(seed))
    }

    /// Every axis of the first 2^m points is a (0, m, 1)-net: one point in
    /// each of the 2^m intervals; and so are the 2^m elementary boxes of
    /// every shape 2^-j x 2^-(m-j) of axes 1-2 (Sobol's first two axes are
    /// a (0, 2)-sequence, and scrambling keeps nets).
    #[test]
    fn scrambled_points_are_nets() {
        let m = 10;
        let n = 1usize << m;
        for seed in [1, 2, 3] {
            let s = set::<3>(seed);
            let pts: Vec<[f64; 3]> = (0..n as u64).map(|i| s.point(i)).collect();
            for a in 0..3 {
                let mut hit = vec![0; n];
                for p in &pts {
                    hit[(p[a] * n as f64) as usize] += 1;
                }
                assert!(hit.iter().all(|&h| h == 1), "axis {a}, seed {seed}");
            }
            for j in 0..=m {
                let (nx, ny) = (1usize << j, 1usize << (m - j));
                let mut hit = vec![0; n];
                for p in &pts {
                    hit[(p[0] * nx as f64) as usize * ny + (p[1] * ny as f64) as usize] += 1;
                }
                assert!(hit.iter().all(|&h| h == 1), "boxes 2^-{j} x 2^-{}", m - j);
            }
        }
        // The seed changes the set.
        assert_ne!(set::<2>(1).point(5), set::<2>(2).point(5));
    }

    #[test]
    fn the_inverse_normal_inverts_phi_to_rounding() {
        let mut worst: f64 = 0.0;
        for k in 1..2000 {
            for p in [
                k as f64 / 2000.0,
                (k as f64 / 2000.0).powi(40),
                1e-300 * k as f64,
            ] {
                let z = inverse_normal_cdf(p);
                let back = normal_cdf(z);
                worst = worst.max(((back - p) / p).abs());
            }
        }
        // The attainable bound: z itself is rounded (ulp(z) ~ |z| 2^-52) and
        // Phi amplifies a change dz by |z| relative to Phi in the lower
        // tail, so at p ~ 1e-300 (z ~ -37) the best is ~37^2 2.2e-16 = 3e-13.
        assert!(worst < 1e-12, "worst relative error {worst:e}");
        // Against AS241 (Python's statistics.NormalDist().inv_cdf, ~1e-16).
        assert!((inverse_normal_cdf(0.975) - 1.959_963_984_540_054).abs() < 1e-14);
        assert!((inverse_normal_cdf(1e-10) + 6.361_340_902_404_056).abs() < 1e-13);
        assert_eq!(inverse_normal_cdf(0.5), 0.0);
    }

    /// Quasi-random moments beat the Monte Carlo error N^-1/2 by far: at
    /// N = 4096 the mean and variance of a standard normal are within 2e-3
    /// (random draws: standard error 1.6e-2 and 2.2e-2).
    #[test]
    fn quasi_gaussian_moments_are_far_below_sampling_noise() {
        let law = InitialSpec::Gaussian {
            mean: vec![1.0, -2.0],
            std: vec![0.5, 2.0],
        };
        for seed in 0..4 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let x = points::<2>(&law, 4096, None, &mut rng, 1e-3).unwrap();
            for (a, (m, s)) in [(1.0, 0.5), (-2.0, 2.0)].into_iter().enumerate() {
                let (mean, var) = super::super::moments(&x, a);
                assert!(((mean - m) / s).abs() < 2e-3, "axis {a}: mean {mean}");
                assert!((var / (s * s) - 1.0).abs() < 2e-3, "axis {a}: var {var}");
            }
        }
    }

    /// In a box, the truncated law: every point inside, the mean that of the
    /// truncated normal (exact: mean + std (phi(l) - phi(r)) / (Phi(r) - Phi(l))).
    #[test]
    fn quasi_gaussian_in_a_box_is_the_truncated_law() {
        let b = BoxDomain::insulating(vec![0.0], vec![3.0]);
        let law = InitialSpec::Gaussian {
            mean: vec![-1.0],
            std: vec![1.0],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x = points::<1>(&law, 8192, Some(&b), &mut rng, 1e-3).unwrap();
        assert!(x.iter().all(|p| p[0] >= 0.0 && p[0] <= 3.0));
        let phi = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let exact = -1.0 + (phi(1.0) - phi(4.0)) / (normal_cdf(4.0) - normal_cdf(1.0));
        let (mean, _) = super::super::moments(&x, 0);
        assert!((mean - exact).abs() < 1e-4, "{mean} vs {exact}");
        // A box with no mass of the law: the fraction is reported.
        let far = BoxDomain::insulating(vec![40.0], vec![41.0]);
        let e = points::<1>(&law, 10, Some(&far), &mut rng, 1e-3).unwrap_err();
        assert!(e < 1e-300);
    }
}
