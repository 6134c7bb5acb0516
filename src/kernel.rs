//! Radial smoothing kernels for the blob density estimate (SPEC §2).
//!
//! rho_eps(x) = sum_j w_j K_eps(x - X_j). The kernel must have unit mass,
//! per-axis variance eps^2, and a continuous first derivative (L-BFGS needs a
//! gradient consistent with the energy it sees).

use std::f64::consts::PI;

/// A radial kernel of compact support, evaluated from the squared distance
/// (so the hot loops never take a square root).
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

/// The triweight kernel K(x) = C (1 - |x|^2/R^2)^3 for |x| < R, 0 beyond.
///
/// It is C^2 at the edge of its support (value, first and second derivatives
/// vanish at |x| = R), so the blob energy has a continuous gradient. Its
/// per-axis variance is R^2/(d + 8) (from Beta integrals: E|x|^2 = d R^2/(d + 8)),
/// so R = eps sqrt(d + 8) gives standard deviation eps. The normalisation is
/// C = Gamma(d/2 + 4) / (6 pi^(d/2) R^d).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triweight {
    radius: f64,
    inv_r2: f64,
    norm: f64,
}

impl Triweight {
    /// The triweight kernel in dimension `d` with per-axis standard deviation `eps`.
    pub fn new(d: usize, eps: f64) -> Self {
        assert!((1..=3).contains(&d) && eps > 0.0);
        let radius = eps * ((d + 8) as f64).sqrt();
        // Gamma(d/2 + 4) for d = 1, 2, 3.
        let gamma = match d {
            1 => 11.631_728_396_567_448, // Gamma(4.5) = 105 sqrt(pi) / 16
            2 => 24.0,                   // Gamma(5)
            _ => 52.342_777_784_553_52,  // Gamma(5.5) = 945 sqrt(pi) / 32
        };
        let norm = gamma / (6.0 * PI.powf(d as f64 / 2.0) * radius.powi(d as i32));
        Triweight {
            radius,
            inv_r2: 1.0 / (radius * radius),
            norm,
        }
    }

    /// Kernel standard deviation eps.
    pub fn bandwidth(&self, d: usize) -> f64 {
        self.radius / ((d + 8) as f64).sqrt()
    }
}

impl RadialKernel for Triweight {
    fn support(&self) -> f64 {
        self.radius
    }

    #[inline(always)]
    fn value_and_slope(&self, r2: f64) -> (f64, f64) {
        // Branch-free so the loops that call it vectorize: t = max(0, 1 - r^2/R^2).
        let t = (1.0 - r2 * self.inv_r2).max(0.0);
        let t2 = t * t;
        (self.norm * t2 * t, -6.0 * self.norm * self.inv_r2 * t2)
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
            let k = Triweight::new(d, eps);
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
        let k = Triweight::new(2, 0.3);
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
