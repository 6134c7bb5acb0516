//! `kind = "barenblatt"`: the Barenblatt profile of the species' exponent
//! m > 1, rho ∝ (1 - |x - c|^2 / R^2)_+^p with p = 1/(m - 1), support radius
//! R and center c (the origin unless given).
//!
//! Sampling: u = |x - c|^2 / R^2 follows Beta(d/2, p + 1) (the radial
//! density r^(d-1) (1 - r^2/R^2)^p in the variable u), and the direction is
//! uniform on the sphere (a random sign in d = 1).

use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, StandardNormal};
use serde::Deserialize;

use super::InitialSpec;
use crate::error::Result;
use crate::util::checks::{Checker, strict};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kind` is read by the dispatcher; kept so serde accepts it
struct Raw {
    kind: String,
    center: Option<Vec<f64>>,
    radius: f64,
}

/// `initial = { kind = "barenblatt", center = [...], radius = ... }` (the
/// species' section checks that its exponent is > 1).
pub(super) fn parse(c: &Checker, key: &str, v: &toml::Value) -> Result<InitialSpec> {
    let r: Raw = strict(c.file, key, "barenblatt", v)?;
    let (center, radius) = c.center_and_radius(key, &r.center, r.radius)?;
    Ok(InitialSpec::Barenblatt { center, radius })
}

/// One draw for exponent m = `exponent` > 1.
pub(super) fn draw<const D: usize>(
    center: &[f64],
    radius: f64,
    exponent: f64,
    rng: &mut ChaCha8Rng,
) -> [f64; D] {
    let p = 1.0 / (exponent - 1.0);
    let u = Beta::new(D as f64 / 2.0, p + 1.0)
        .expect("valid Beta parameters")
        .sample(rng);
    let r = radius * f64::sqrt(u);
    let dir = unit_vector::<D>(rng);
    std::array::from_fn(|a| center[a] + r * dir[a])
}

/// A uniformly distributed unit vector (a random sign in d = 1).
fn unit_vector<const D: usize>(rng: &mut ChaCha8Rng) -> [f64; D] {
    loop {
        let v: [f64; D] = std::array::from_fn(|_| StandardNormal.sample(rng));
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 1e-12 {
            return v.map(|x| x / n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::drawn;

    #[test]
    fn draws_fill_the_support_with_the_profile_s_radial_law() {
        // d = 2, m = 2: p = 1, u = r^2/R^2 ~ Beta(1, 2) of mean 1/3.
        let (c, radius) = ([0.5, -1.0], 2.0);
        let x = drawn::<2>(
            "kind = \"barenblatt\"\ncenter = [0.5, -1]\nradius = 2",
            2.0,
            40_000,
        );
        let u: Vec<f64> = x
            .iter()
            .map(|p| ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)) / (radius * radius))
            .collect();
        assert!(u.iter().all(|&u| u <= 1.0));
        let mean = u.iter().sum::<f64>() / u.len() as f64;
        assert!((mean - 1.0 / 3.0).abs() < 0.005, "{mean}");
        // The direction is uniform: the center of mass is the center.
        let cx = x.iter().map(|p| p[0]).sum::<f64>() / x.len() as f64;
        assert!((cx - c[0]).abs() < 0.02, "{cx}");
    }
}
