//! `kind = "double_well"`: U = depth (|x - c|^2 / r^2 - 1)^2, two wells at
//! c ± r in 1D, a ring in 2D, a shell in 3D, with a barrier of height
//! `depth` at the center c (the origin unless given).

use serde::Deserialize;

use super::{Potential, PotentialSpec};
use crate::error::Result;
use crate::util::checks::{Checker, strict};

/// U = depth (|x - c|^2 / r^2 - 1)^2: two wells at c ± r in 1D, a ring in 2D,
/// a shell in 3D, with a barrier of height `depth` at the center.
#[derive(Debug, Clone, Copy)]
pub struct DoubleWell<const D: usize> {
    /// c.
    pub center: [f64; D],
    /// r.
    pub radius: f64,
    /// The barrier height.
    pub depth: f64,
}

impl<const D: usize> Potential<D> for DoubleWell<D> {
    fn value(&self, x: &[f64; D]) -> f64 {
        let s = (0..D).map(|a| (x[a] - self.center[a]).powi(2)).sum::<f64>()
            / (self.radius * self.radius);
        self.depth * (s - 1.0).powi(2)
    }
    fn gradient(&self, x: &[f64; D]) -> [f64; D] {
        let r2 = self.radius * self.radius;
        let s = (0..D).map(|a| (x[a] - self.center[a]).powi(2)).sum::<f64>() / r2;
        // d/dx depth (s - 1)^2 = 4 depth (s - 1) (x - c) / r^2
        let f = 4.0 * self.depth * (s - 1.0) / r2;
        std::array::from_fn(|a| f * (x[a] - self.center[a]))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kind` is read by the dispatcher; kept so serde accepts it
struct Raw {
    kind: String,
    center: Option<Vec<f64>>,
    radius: f64,
    depth: f64,
}

/// `potential = { kind = "double_well", center = [...], radius = ..., depth = ... }`.
pub(super) fn parse(c: &Checker, key: &str, v: &toml::Value) -> Result<PotentialSpec> {
    let r: Raw = strict(c.file, key, "double_well", v)?;
    let (center, radius) = c.center_and_radius(key, &r.center, r.radius)?;
    Ok(PotentialSpec::DoubleWell {
        center,
        radius,
        depth: c.non_negative(&format!("{key}.depth"), r.depth)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{assert_gradient, parsed};

    #[test]
    fn the_gradient_is_the_derivative_of_the_value() {
        let u = parsed::<2>("kind = \"double_well\"\ncenter = [0.5, 0]\nradius = 1.5\ndepth = 2");
        // On the ring |x - c| = r the value is 0 and so is the gradient.
        assert!(u.value(&[2.0, 0.0]).abs() < 1e-12);
        assert_eq!(u.value(&[0.5, 0.0]), 2.0);
        for x in [[2.0, 0.0], [0.1, 0.7], [-2.0, 3.0]] {
            assert_gradient(u.as_ref(), x, 1e-7);
        }
    }

    #[test]
    fn the_radius_must_be_positive() {
        let c = crate::util::checks::test_checker(1);
        let t = crate::util::checks::table("kind = \"double_well\"\nradius = 0\ndepth = 1");
        let e = super::parse(&c, "p", &t).unwrap_err();
        assert_eq!(e.to_string(), "t.toml: p.radius: must be positive, got 0");
    }
}
