//! `kind = "none"`: U = 0.

use serde::Deserialize;

use super::{Potential, PotentialSpec};
use crate::error::Result;
use crate::util::checks::{Checker, strict};

/// U = 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPotential;

impl<const D: usize> Potential<D> for NoPotential {
    fn value(&self, _: &[f64; D]) -> f64 {
        0.0
    }
    fn gradient(&self, _: &[f64; D]) -> [f64; D] {
        [0.0; D]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kind` is read by the dispatcher; kept so serde accepts it
struct Raw {
    kind: String,
}

/// `potential = { kind = "none" }`.
pub(super) fn parse(c: &Checker, key: &str, v: &toml::Value) -> Result<PotentialSpec> {
    strict::<Raw>(c.file, key, "none", v)?;
    Ok(PotentialSpec::None)
}

#[cfg(test)]
mod tests {
    use super::super::{assert_gradient, parsed};

    #[test]
    fn the_gradient_is_the_derivative_of_the_value() {
        let u = parsed::<2>("kind = \"none\"");
        assert_eq!(u.value(&[0.3, -2.0]), 0.0);
        assert_gradient(u.as_ref(), [0.3, -2.0], 1e-12);
    }
}
