//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use jko::Scenario;

/// Parse scenario text (named `test.toml` in messages).
pub fn scenario(text: &str) -> Scenario {
    Scenario::from_toml(text, Path::new("test.toml"))
        .unwrap_or_else(|e| panic!("bad test scenario: {e}"))
}

/// Weighted mean and covariance of a cloud.
pub fn moments<const D: usize>(x: &[[f64; D]], w: &[f64]) -> ([f64; D], [[f64; D]; D]) {
    let m: f64 = w.iter().sum();
    let mean: [f64; D] =
        std::array::from_fn(|a| x.iter().zip(w).map(|(p, wi)| wi * p[a]).sum::<f64>() / m);
    let cov = std::array::from_fn(|a| {
        std::array::from_fn(|b| {
            x.iter()
                .zip(w)
                .map(|(p, wi)| wi * (p[a] - mean[a]) * (p[b] - mean[b]))
                .sum::<f64>()
                / m
        })
    });
    (mean, cov)
}

/// A vector literal of length d filled with `v`.
pub fn vec_of(d: usize, v: f64) -> String {
    format!("[{}]", vec![format!("{v:?}"); d].join(", "))
}
