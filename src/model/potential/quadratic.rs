//! `kind = "quadratic"`: U = sum_a k_a/2 (x_a - c_a)^2, with a per-axis
//! stiffness k_a >= 0 (a number is broadcast to every axis) and the center c
//! (the origin unless given).

use serde::Deserialize;

use super::{Potential, PotentialSpec};
use crate::error::Result;
use crate::util::checks::{Checker, Scalars, strict};

/// U = sum_a k_a/2 (x_a - c_a)^2 (per-axis stiffness k_a >= 0).
#[derive(Debug, Clone, Copy)]
pub struct Quadratic<const D: usize> {
    /// c.
    pub center: [f64; D],
    /// k_a.
    pub stiffness: [f64; D],
}

impl<const D: usize> Potential<D> for Quadratic<D> {
    fn value(&self, x: &[f64; D]) -> f64 {
        (0..D)
            .map(|a| 0.5 * self.stiffness[a] * (x[a] - self.center[a]).powi(2))
            .sum()
    }
    fn gradient(&self, x: &[f64; D]) -> [f64; D] {
        std::array::from_fn(|a| self.stiffness[a] * (x[a] - self.center[a]))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kind` is read by the dispatcher; kept so serde accepts it
struct Raw {
    kind: String,
    center: Option<Vec<f64>>,
    stiffness: Scalars,
}

/// `potential = { kind = "quadratic", center = [...], stiffness = ... }`.
pub(super) fn parse(c: &Checker, key: &str, v: &toml::Value) -> Result<PotentialSpec> {
    let r: Raw = strict(c.file, key, "quadratic", v)?;
    let stiffness = c.per_axis(&format!("{key}.stiffness"), &r.stiffness)?;
    for (a, &s) in stiffness.iter().enumerate() {
        c.non_negative(&format!("{key}.stiffness[{a}]"), s)?;
    }
    Ok(PotentialSpec::Quadratic {
        center: c.center(&format!("{key}.center"), &r.center)?,
        stiffness,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{assert_gradient, parsed};

    #[test]
    fn the_gradient_is_the_derivative_of_the_value() {
        let u = parsed::<3>("kind = \"quadratic\"\ncenter = [0.5, 0, -1]\nstiffness = [1, 2.5, 0]");
        // U = 1/2 (0.2^2) + 2.5/2 (1^2) + 0.
        assert!((u.value(&[0.7, 1.0, 4.0]) - 1.27).abs() < 1e-12);
        for x in [[0.7, 1.0, 4.0], [-3.0, 0.1, 0.0]] {
            assert_gradient(u.as_ref(), x, 1e-7);
        }
    }

    #[test]
    fn a_number_is_every_axis_stiffness_and_the_center_defaults_to_the_origin() {
        let u = parsed::<2>("kind = \"quadratic\"\nstiffness = 2");
        assert_eq!(u.gradient(&[1.0, -0.5]), [2.0, -1.0]);
    }
}
