//! Radial smoothing kernels for the blob density estimate (SPEC §2).
//!
//! rho_eps(x) = sum_j w_j K_eps(x - X_j). The kernel must have unit mass,
//! per-axis variance eps^2, and a continuous first derivative (L-BFGS needs a
//! gradient consistent with the energy it sees).

use std::f64::consts::PI;

use crate::util::lanes::V;

/// A radial kernel of compact support, evaluated from the squared distance
/// (the neighbour loops have it; q = |x|/R still takes one square root).
pub trait RadialKernel: Send + Sync {
    /// Radius beyond which K vanishes.
    fn support(&self) -> f64;
    /// (K(x), g) for |x|^2 = r2, where grad K(x) = g * x.
    fn value_and_slope(&self, r2: f64) -> (f64, f64);
    /// K(x) for |x|^2 = r2.
    fn value(&self, r2: f64) -> f64 {
        self.value_and_slope(r2).0
    }
}

/// The Wendland C2 kernel K(x) = C (1 - q)^4 (1 + 4q), q = |x|/R < 1, 0 beyond.
///
/// Why this kernel: its Fourier transform is positive in d <= 3 (Wendland
/// functions are positive definite), which is what keeps particles from
/// collapsing into clumps of sub-kernel size (the "pairing instability" of
/// SPH, Dehnen & Aly 2012). The triweight and B-spline kernels lack it: with
/// many neighbours, blob diffusion then merges particles into clusters spaced
/// about R apart, which stop interacting, and diffusion stalls.
///
/// K is C^2 everywhere: C^2 at the center (K = C (1 - 10 q^2 + 20 q^3 - ...))
/// and C^3 at the support edge, so the blob energy has a continuous gradient
///   grad K(x) = -20 C / R^2 (1 - q)^3 x.
/// Unit mass and per-axis variance eps^2 fix, from
/// I_k = int_0^1 (1-r)^4 (1+4r) r^k dr (I_0 = 1/3, I_1 = 1/14, I_2 = 1/42,
/// I_3 = 5/504, I_4 = 1/210):
///   R = eps sqrt(d I_{d-1} / I_{d+1}) = eps sqrt(14), sqrt(72/5), sqrt(15),
///   C = 1 / (|S^{d-1}| R^d I_{d-1}) = 3/(2R), 7/(pi R^2), 21/(2 pi R^3)
/// for d = 1, 2, 3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WendlandC2 {
    radius: f64,
    inv_r: f64,
    norm: f64,
}

impl WendlandC2 {
    /// Support radius per unit standard deviation, R/eps, in dimension `d`.
    pub fn radius_per_bandwidth(d: usize) -> f64 {
        match d {
            1 => 14f64.sqrt(),
            2 => (72.0f64 / 5.0).sqrt(),
            _ => 15f64.sqrt(),
        }
    }

    /// The kernel in dimension `d` with per-axis standard deviation `eps`.
    pub fn new(d: usize, eps: f64) -> Self {
        assert!((1..=3).contains(&d) && eps > 0.0);
        let radius = eps * Self::radius_per_bandwidth(d);
        let norm = match d {
            1 => 1.5 / radius,
            2 => 7.0 / (PI * radius * radius),
            _ => 21.0 / (2.0 * PI * radius.powi(3)),
        };
        WendlandC2 {
            radius,
            inv_r: 1.0 / radius,
            norm,
        }
    }
}

impl WendlandC2 {
    /// The normalization C.
    pub fn norm(&self) -> f64 {
        self.norm
    }

    /// 1 / R.
    pub fn inv_radius(&self) -> f64 {
        self.inv_r
    }

    /// Lanes of (1 - q)^4 (1 + 4q) and (1 - q)^3, q = sqrt(r2)/R, both 0 for
    /// q >= 1: K = C times the first, grad K(x) = -20 C/R^2 times the second
    /// times x (the same operations as [`RadialKernel::value_and_slope`]).
    #[inline(always)]
    pub fn shape_lanes(&self, r2: V) -> (V, V) {
        let q = r2.sqrt() * V::splat(self.inv_r);
        let t = (V::splat(1.0) - q).map(|v| v.max(0.0));
        let t3 = t * t * t;
        (t3 * t * (V::splat(1.0) + V::splat(4.0) * q), t3)
    }
}

impl RadialKernel for WendlandC2 {
    fn support(&self) -> f64 {
        self.radius
    }

    #[inline(always)]
    fn value_and_slope(&self, r2: f64) -> (f64, f64) {
        // Branch-free so the loops that call it vectorize: t = max(0, 1 - q).
        let q = r2.sqrt() * self.inv_r;
        let t = (1.0 - q).max(0.0);
        let t3 = t * t * t;
        (
            self.norm * t3 * t * (1.0 + 4.0 * q),
            -20.0 * self.norm * self.inv_r * self.inv_r * t3,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit mass and per-axis variance eps^2, by quadrature on a fine grid.
    #[test]
    fn unit_mass_and_variance() {
        let eps = 0.7;
        for d in 1..=3usize {
            let k = WendlandC2::new(d, eps);
            let r = k.support();
            let n = match d {
                1 => 20_000,
                2 => 1_000,
                _ => 160,
            };
            let dx = 2.0 * r / n as f64;
            let (mut mass, mut var) = (0.0, 0.0);
            let mut idx = vec![0usize; d];
            loop {
                let x: Vec<f64> = idx.iter().map(|&i| -r + (i as f64 + 0.5) * dx).collect();
                let r2: f64 = x.iter().map(|v| v * v).sum();
                let kv = k.value(r2) * dx.powi(d as i32);
                mass += kv;
                var += kv * x[0] * x[0];
                let mut a = 0;
                while a < d {
                    idx[a] += 1;
                    if idx[a] < n {
                        break;
                    }
                    idx[a] = 0;
                    a += 1;
                }
                if a == d {
                    break;
                }
            }
            // Midpoint rule on a C^2 integrand: error O(dx^2), below 1e-4 here.
            assert!((mass - 1.0).abs() < 1e-4, "d={d} mass={mass}");
            assert!((var / (eps * eps) - 1.0).abs() < 1e-3, "d={d} var={var}");
        }
    }

    #[test]
    fn slope_is_the_derivative() {
        let k = WendlandC2::new(2, 0.3);
        for &r in &[0.05, 0.2, 0.5, 0.9] {
            let h = 1e-6;
            let fd = (k.value((r + h) * (r + h)) - k.value((r - h) * (r - h))) / (2.0 * h);
            let (_, g) = k.value_and_slope(r * r);
            // d/dr K = g * r
            assert!(
                (fd - g * r).abs() <= 1e-7 * (1.0 + fd.abs()),
                "r={r} fd={fd} g r={}",
                g * r
            );
        }
        assert_eq!(k.value_and_slope(k.support().powi(2) * 1.01), (0.0, -0.0));
    }
}
