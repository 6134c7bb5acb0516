//! `kind = "uniform"`: uniform on the box [lower, upper], x_a = lower_a +
//! (upper_a - lower_a) u_a with u_a uniform on [0, 1).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::InitialSpec;
use crate::error::Result;
use crate::util::checks::{Checker, strict};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kind` is read by the dispatcher; kept so serde accepts it
struct Raw {
    kind: String,
    sampling: Option<toml::Value>,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

/// `initial = { kind = "uniform", lower = [...], upper = [...] }`.
pub(super) fn parse(c: &Checker, key: &str, v: &toml::Value) -> Result<InitialSpec> {
    let r: Raw = strict(c.file, key, "uniform", v)?;
    let lower = c.vector(&format!("{key}.lower"), &r.lower)?;
    let upper = c.vector(&format!("{key}.upper"), &r.upper)?;
    for a in 0..c.dimension {
        if upper[a] <= lower[a] {
            return Err(c.err(
                &format!("{key}.upper"),
                format!(
                    "must exceed lower on every axis (axis {a}: {} <= {})",
                    upper[a], lower[a]
                ),
            ));
        }
    }
    Ok(InitialSpec::Uniform { lower, upper })
}

/// One draw.
pub(super) fn draw<const D: usize>(lower: &[f64], upper: &[f64], rng: &mut ChaCha8Rng) -> [f64; D] {
    std::array::from_fn(|a| lower[a] + (upper[a] - lower[a]) * rng.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::super::{drawn, moments};

    #[test]
    fn draws_fill_the_box_evenly() {
        let x = drawn::<2>(
            "kind = \"uniform\"\nlower = [-1, 2]\nupper = [1, 2.5]",
            1.0,
            40_000,
        );
        assert!(
            x.iter()
                .all(|p| (-1.0..1.0).contains(&p[0]) && (2.0..2.5).contains(&p[1]))
        );
        // Mean (l + u)/2, variance (u - l)^2/12.
        for (a, (l, u)) in [(-1.0, 1.0), (2.0, 2.5)].into_iter().enumerate() {
            let (mean, var) = moments(&x, a);
            let width: f64 = u - l;
            assert!(
                (mean - (l + u) / 2.0).abs() < 0.01 * width,
                "axis {a}: {mean}"
            );
            assert!(
                (var / (width * width / 12.0) - 1.0).abs() < 0.03,
                "axis {a}: {var}"
            );
        }
    }

    #[test]
    fn an_empty_box_is_refused() {
        let c = crate::util::checks::test_checker(2);
        let t = crate::util::checks::table("kind = \"uniform\"\nlower = [0, 0]\nupper = [1, 0]");
        let e = super::parse(&c, "i", &t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml: i.upper: must exceed lower on every axis (axis 1: 0 <= 0)"
        );
    }
}
