//! `kind = "gaussian"`: independent normal coordinates, x_a = mean_a +
//! std_a z_a with z_a standard normal (a number `std` is broadcast to every
//! axis).

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Deserialize;

use super::InitialSpec;
use crate::error::Result;
use crate::util::checks::{Checker, Scalars, strict};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kind` is read by the dispatcher; kept so serde accepts it
struct Raw {
    kind: String,
    sampling: Option<toml::Value>,
    mean: Vec<f64>,
    std: Scalars,
}

/// `initial = { kind = "gaussian", mean = [...], std = ... }`.
pub(super) fn parse(c: &Checker, key: &str, v: &toml::Value) -> Result<InitialSpec> {
    let r: Raw = strict(c.file, key, "gaussian", v)?;
    let std = c.per_axis(&format!("{key}.std"), &r.std)?;
    for (a, &s) in std.iter().enumerate() {
        c.positive(&format!("{key}.std[{a}]"), s)?;
    }
    Ok(InitialSpec::Gaussian {
        mean: c.vector(&format!("{key}.mean"), &r.mean)?,
        std,
    })
}

/// One draw.
pub(super) fn draw<const D: usize>(mean: &[f64], std: &[f64], rng: &mut ChaCha8Rng) -> [f64; D] {
    std::array::from_fn(|a| {
        let z: f64 = StandardNormal.sample(rng);
        mean[a] + std[a] * z
    })
}

#[cfg(test)]
mod tests {
    use super::super::{drawn, moments};

    #[test]
    fn draws_have_the_mean_and_the_std_of_each_axis() {
        let x = drawn::<2>(
            "kind = \"gaussian\"\nmean = [1, -2]\nstd = [0.5, 2]",
            1.0,
            40_000,
        );
        for (a, (m, s)) in [(1.0, 0.5), (-2.0, 2.0)].into_iter().enumerate() {
            let (mean, var) = moments(&x, a);
            assert!((mean - m).abs() < 0.02 * s * 2.0, "axis {a}: mean {mean}");
            assert!(
                (var.sqrt() / s - 1.0).abs() < 0.02,
                "axis {a}: std {}",
                var.sqrt()
            );
        }
    }

    #[test]
    fn the_std_must_be_positive_on_every_axis() {
        let c = crate::util::checks::test_checker(2);
        let t = crate::util::checks::table("kind = \"gaussian\"\nmean = [0, 0]\nstd = [1, -1]");
        let e = super::parse(&c, "i", &t).unwrap_err();
        assert_eq!(e.to_string(), "t.toml: i.std[1]: must be positive, got -1");
    }
}
