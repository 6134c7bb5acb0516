//! Finite ion size: the Bikerman lattice-gas entropy of the solvent (SPEC §10).
//!
//! With v the volume of one lattice site and T the temperature (energy units
//! of D_k log rho), the free energy gains
//!
//! ```text
//!   E_st = (T / v) int (1 - v s) log(1 - v s) dx,    s = sum_k rho_k,
//! ```
//!
//! finite only where v s < 1 (a state with v s >= 1 anywhere has infinite
//! energy). Written per unit of ion mass, E_st = int s g(s) with
//!
//! ```text
//!   g(s)  = T (1 - u) log(1 - u) / u,                 u = v s,
//!   g'(s) = T v (-u - log(1 - u)) / u^2               (> 0: crowding costs),
//! ```
//!
//! so particles estimate it as sum_i w_i g(s_i) over every particle, s_i the
//! total blob density at X_i. Its variational derivative, the chemical
//! potential every species gains, is
//!
//! ```text
//!   mu_st(s) = d/ds [(T/v)(1 - v s) log(1 - v s)] = -T (log(1 - v s) + 1).
//! ```
//!
//! At equilibrium with D_k = T, U_k = 0 and charges z = +-1 this gives the
//! Bikerman (modified Poisson–Boltzmann) profiles of [`bikerman_density`].
//! For small u, g(s) = T(-1 + u/2 + u^2/6 + ...) and the constant -T per
//! unit mass changes no gradient: E_st is then a weak quadratic repulsion
//! (T v / 2) int s^2.

/// The steric term's settings (SPEC §10, `[steric]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steric {
    /// v > 0: the volume of one lattice site (an ion or a solvent molecule).
    pub volume: f64,
    /// T > 0: the temperature, in the units of the diffusion coefficients.
    pub temperature: f64,
}

/// Below this u = v s the series of g and g' are used: the closed forms
/// lose digits to cancellation there (g' as 1/u relative).
const SERIES_BELOW: f64 = 1e-3;

impl Steric {
    /// g(s) = T (1 - v s) log(1 - v s) / (v s), per unit mass of ions;
    /// +infinity at or beyond close packing (v s >= 1).
    #[inline]
    pub fn per_mass(&self, s: f64) -> f64 {
        let u = self.volume * s;
        if !(u < 1.0) {
            return f64::INFINITY;
        }
        if u < SERIES_BELOW {
            // (1-u) log(1-u) / u = -1 + u/2 + u^2/6 + u^3/12 + u^4/20 + O(u^5).
            return self.temperature
                * (-1.0 + u * (0.5 + u * (1.0 / 6.0 + u * (1.0 / 12.0 + u / 20.0))));
        }
        self.temperature * (1.0 - u) * (-u).ln_1p() / u
    }

    /// g'(s) = T v (-u - log(1 - u)) / u^2, u = v s; +infinity at or beyond
    /// close packing.
    #[inline]
    pub fn per_mass_slope(&self, s: f64) -> f64 {
        let u = self.volume * s;
        if !(u < 1.0) {
            return f64::INFINITY;
        }
        let tv = self.temperature * self.volume;
        if u < SERIES_BELOW {
            // (-u - log(1-u)) / u^2 = 1/2 + u/3 + u^2/4 + u^3/5 + O(u^4).
            return tv * (0.5 + u * (1.0 / 3.0 + u * (0.25 + u * 0.2)));
        }
        tv * (-u - (-u).ln_1p()) / (u * u)
    }

    /// The free-energy density (T / v)(1 - v s) log(1 - v s) (= s g(s)).
    #[inline]
    pub fn density(&self, s: f64) -> f64 {
        let u = self.volume * s;
        if !(u < 1.0) {
            return f64::INFINITY;
        }
        self.temperature / self.volume * (1.0 - u) * (-u).ln_1p()
    }

    /// The chemical potential mu_st(s) = -T (log(1 - v s) + 1) each species gains.
    #[inline]
    pub fn chemical_potential(&self, s: f64) -> f64 {
        let u = self.volume * s;
        if !(u < 1.0) {
            return f64::INFINITY;
        }
        -self.temperature * ((-u).ln_1p() + 1.0)
    }

    /// 1/v: the close-packing density, which no total density reaches.
    pub fn packing_density(&self) -> f64 {
        1.0 / self.volume
    }
}

/// The Bikerman profile of one ion species of charge z = +-1 (SPEC §10):
///
/// ```text
///   rho = c0 exp(-z phi) / (1 + 2 v c0 (cosh phi - 1)),   phi = lambda psi / T,
/// ```
///
/// c0 the bulk concentration of each species where psi = 0. With v = 0 it
/// is the Boltzmann (Gouy–Chapman) profile; for large |phi| it saturates at
/// 1/v for the counter-ion.
pub fn bikerman_density(c0: f64, volume: f64, charge: f64, phi: f64) -> f64 {
    // exp(-z phi) / (1 + 2 v c0 (cosh phi - 1)), written so that neither
    // factor overflows at the large |phi| of a crowded layer.
    let a = phi.abs();
    let e = (-charge * phi - a).exp(); // exp(-z phi) / e^|phi|
    let denom = (-a).exp() * (1.0 - 2.0 * volume * c0) + volume * c0 * (1.0 + (-2.0 * a).exp());
    c0 * e / denom
}

#[cfg(test)]
mod tests {
    use super::*;

    /// g and g' at the switch between series and closed form agree to
    /// rounding, and g' is the derivative of g (central differences), and
    /// s g(s) is the free-energy density whose derivative is mu_st.
    #[test]
    fn the_per_mass_form_and_its_slope_are_consistent() {
        let st = Steric {
            volume: 0.3,
            temperature: 1.7,
        };
        for &s in &[
            1e-9,
            1e-4,
            SERIES_BELOW / 0.3 * 0.999,
            SERIES_BELOW / 0.3 * 1.001,
            0.5,
            2.0,
            3.3,
        ] {
            let h = 1e-6 * s.max(1e-3);
            let fd = (st.per_mass(s + h) - st.per_mass(s - h)) / (2.0 * h);
            let slope = st.per_mass_slope(s);
            assert!(
                (fd - slope).abs() <= 1e-6 * slope.abs(),
                "s = {s}: {fd} vs {slope}"
            );
            assert!(
                (s * st.per_mass(s) - st.density(s)).abs() <= 1e-14 * st.temperature / st.volume
            );
            let fd = (st.density(s + h) - st.density(s - h)) / (2.0 * h);
            let mu = st.chemical_potential(s);
            assert!(
                (fd - mu).abs() <= 1e-6 * mu.abs().max(1.0),
                "s = {s}: {fd} vs {mu}"
            );
        }
        // The series branch against the closed form just above the switch.
        let u = SERIES_BELOW * 0.999;
        let closed = st.temperature * (1.0 - u) * (-u).ln_1p() / u;
        assert!((st.per_mass(u / st.volume) - closed).abs() <= 1e-13);
        assert_eq!(st.per_mass(1.0 / 0.3), f64::INFINITY);
        assert_eq!(st.per_mass_slope(10.0), f64::INFINITY);
        assert_eq!(st.chemical_potential(f64::NAN), f64::INFINITY);
    }

    /// The Bikerman profile is the Boltzmann one at v = 0, c0 at phi = 0,
    /// and the counter-ion saturates below 1/v at large potentials.
    #[test]
    fn the_bikerman_profile_has_its_limits() {
        let (c0, v) = (0.1, 0.5);
        for &phi in &[-3.0, -0.2, 0.0, 1.0, 5.0] {
            let b = bikerman_density(c0, 0.0, 1.0, phi);
            assert!((b - c0 * (-phi).exp()).abs() <= 1e-15 * b.max(1.0), "{phi}");
        }
        assert!((bikerman_density(c0, v, -1.0, 0.0) - c0).abs() < 1e-16);
        let top = bikerman_density(c0, v, -1.0, 20.0);
        assert!(top.is_finite() && top < 1.0 / v && top > 0.999 / v, "{top}");
        let direct =
            |z: f64, phi: f64| c0 * (-z * phi).exp() / (1.0 + 2.0 * v * c0 * (phi.cosh() - 1.0));
        for &phi in &[-4.0, 0.3, 2.5] {
            for z in [1.0, -1.0] {
                let (a, b) = (bikerman_density(c0, v, z, phi), direct(z, phi));
                assert!((a - b).abs() <= 1e-13 * b, "{z} {phi}: {a} vs {b}");
            }
        }
    }
}
