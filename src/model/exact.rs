//! Closed-form solutions used to validate the solvers.
//!
//! These are mathematics, not code under test: the tests compare simulations
//! against them.

use std::f64::consts::PI;

/// Ornstein–Uhlenbeck (linear Fokker–Planck) moments:
/// d/dt rho = div(D grad rho + k rho (x - c)) (quadratic potential, per-axis
/// stiffness k_a). For ANY initial law the mean and the per-axis variance
/// solve linear ODEs:
///   mean_a(t) = c_a + (mean_a(0) - c_a) e^{-k_a t},
///   var_a(t)  = D/k_a + (var_a(0) - D/k_a) e^{-2 k_a t},
/// and the off-diagonal covariances decay as e^{-(k_a + k_b) t}.
pub fn ou_mean(m0: f64, c: f64, k: f64, t: f64) -> f64 {
    c + (m0 - c) * (-k * t).exp()
}

/// See [`ou_mean`].
pub fn ou_variance(v0: f64, d: f64, k: f64, t: f64) -> f64 {
    d / k + (v0 - d / k) * (-2.0 * k * t).exp()
}

/// The JKO scheme applied exactly to a 1D Gaussian N(mu, sigma^2) under OU:
/// the minimizer of W2^2/(2h) + E over all laws is Gaussian, with
///   mu' = (mu + h k c)/(1 + h k),
///   (1 + h k) sigma'^2 - sigma sigma' - D h = 0.
/// It isolates the time-discretization error of JKO from the particle error.
pub fn ou_jko_step(mu: f64, sigma: f64, c: f64, d: f64, k: f64, h: f64) -> (f64, f64) {
    let a = 1.0 + h * k;
    let mu1 = (mu + h * k * c) / a;
    let sigma1 = (sigma + (sigma * sigma + 4.0 * a * d * h).sqrt()) / (2.0 * a);
    (mu1, sigma1)
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9), relative error ~1e-15 for x > 0.5.
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The Barenblatt solution of d/dt rho = D Laplace rho^m (m > 1) in R^d, mass M:
///   rho(t, x) = s^{-alpha} (C - kappa |x|^2 s^{-2 beta})_+^{1/(m-1)},  s = t0 + D t,
///   alpha = d beta, beta = 1/(d(m-1) + 2), kappa = (m-1) beta / (2m),
/// with C fixed by the mass. The support radius is R(t) = sqrt(C/kappa) s^beta.
#[derive(Debug, Clone, Copy)]
pub struct Barenblatt {
    /// Dimension d.
    pub d: usize,
    /// Exponent m > 1.
    pub m: f64,
    /// Mass M > 0.
    pub mass: f64,
    /// Diffusion coefficient D > 0.
    pub diffusion: f64,
    beta: f64,
    c: f64,
    kappa: f64,
    t0: f64,
}

impl Barenblatt {
    /// The Barenblatt solution whose support radius is `radius` at t = 0.
    pub fn with_radius(d: usize, m: f64, mass: f64, diffusion: f64, radius: f64) -> Self {
        let df = d as f64;
        let beta = 1.0 / (df * (m - 1.0) + 2.0);
        let kappa = (m - 1.0) * beta / (2.0 * m);
        let p = 1.0 / (m - 1.0);
        // int (1 - |y|^2)_+^p dy over R^d = pi^{d/2} Gamma(p+1) / Gamma(p + 1 + d/2).
        let omega = (0.5 * df * PI.ln() + ln_gamma(p + 1.0) - ln_gamma(p + 1.0 + 0.5 * df)).exp();
        // M = C^{p + d/2} kappa^{-d/2} omega (independent of s).
        let c = (mass * kappa.powf(0.5 * df) / omega).powf(1.0 / (p + 0.5 * df));
        // R(0)^2 = (C/kappa) t0^{2 beta}.
        let t0 = (radius * radius * kappa / c).powf(1.0 / (2.0 * beta));
        Barenblatt {
            d,
            m,
            mass,
            diffusion,
            beta,
            c,
            kappa,
            t0,
        }
    }

    fn s(&self, t: f64) -> f64 {
        self.t0 + self.diffusion * t
    }

    /// Support radius R(t).
    pub fn radius(&self, t: f64) -> f64 {
        (self.c / self.kappa).sqrt() * self.s(t).powf(self.beta)
    }

    /// Density at time t and distance r from the center.
    pub fn density(&self, t: f64, r: f64) -> f64 {
        let s = self.s(t);
        let alpha = self.d as f64 * self.beta;
        let inner = self.c - self.kappa * r * r * s.powf(-2.0 * self.beta);
        if inner <= 0.0 {
            0.0
        } else {
            s.powf(-alpha) * inner.powf(1.0 / (self.m - 1.0))
        }
    }

    /// Second moment int |x - center|^2 rho = M R^2 E\[u\], u ~ Beta(d/2, m/(m-1)).
    pub fn second_moment(&self, t: f64) -> f64 {
        let a = 0.5 * self.d as f64;
        let b = self.m / (self.m - 1.0);
        self.mass * self.radius(t).powi(2) * a / (a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Barenblatt density integrates to its mass and its support is R.
    #[test]
    fn barenblatt_mass_and_moment_by_quadrature() {
        for (d, m) in [(1usize, 2.0), (2, 2.0), (2, 3.0)] {
            let b = Barenblatt::with_radius(d, m, 1.7, 0.5, 0.8);
            let t = 0.3;
            let r = b.radius(t);
            let n = 200_000;
            let (mut mass, mut m2) = (0.0, 0.0);
            for i in 0..n {
                let x = (i as f64 + 0.5) / n as f64 * r;
                let shell = if d == 1 { 2.0 } else { 2.0 * PI * x };
                mass += b.density(t, x) * shell * r / n as f64;
                m2 += b.density(t, x) * x * x * shell * r / n as f64;
            }
            assert!((mass / 1.7 - 1.0).abs() < 1e-6, "d={d} m={m} mass={mass}");
            assert!(
                (m2 / b.second_moment(t) - 1.0).abs() < 1e-6,
                "d={d} m={m} m2={m2}"
            );
            assert!((b.radius(0.0) - 0.8).abs() < 1e-12);
        }
    }

    /// The Barenblatt profile solves the PDE: check d/dt rho = D Lap rho^m at
    /// an interior point by finite differences (radial Laplacian).
    #[test]
    fn barenblatt_solves_the_pde() {
        let b = Barenblatt::with_radius(2, 2.0, 1.0, 0.7, 1.0);
        let (t, r, e) = (0.2, 0.4, 1e-4);
        let dt = (b.density(t + e, r) - b.density(t - e, r)) / (2.0 * e);
        let u = |r: f64| b.density(t, r).powf(2.0);
        let lap =
            (u(r + e) - 2.0 * u(r) + u(r - e)) / (e * e) + (u(r + e) - u(r - e)) / (2.0 * e * r);
        assert!(
            (dt - 0.7 * lap).abs() < 1e-5 * dt.abs().max(1.0),
            "dt={dt} D lap={}",
            0.7 * lap
        );
    }

    #[test]
    fn ou_jko_step_converges_to_ode() {
        // Many tiny JKO steps reproduce the exact variance.
        let (mut mu, mut s) = (1.0, 0.5);
        let n = 100_000;
        for _ in 0..n {
            (mu, s) = ou_jko_step(mu, s, 0.0, 1.0, 2.0, 1.0 / n as f64);
        }
        assert!((mu - ou_mean(1.0, 0.0, 2.0, 1.0)).abs() < 1e-4);
        assert!((s * s - ou_variance(0.25, 1.0, 2.0, 1.0)).abs() < 1e-4);
    }
}
