//! The helpers of the integration tests (physics, numerics, run, eulerian),
//! as `crate::support`.
//!
//! - here: scenarios from text, cloud moments, vector literals, and the one
//!   central difference every gradient test uses;
//! - [`clouds`]: synthetic point clouds with mixed charges and error norms;
//! - [`run`]: the `jko` binary, a standard scenario, a run's output files;
//! - [`grid`]: problems and moments of the Eulerian (grid) solver.
// Some helpers serve only builds with a feature (mpi, fault-injection).
#![allow(dead_code)]

pub mod clouds;
pub mod grid;
pub mod run;

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

/// Central difference of `f` in the coordinate `a` of point `i`:
/// `(f(x + h e_ia) - f(x - h e_ia)) / 2h`, truncation error `h^2 |f'''| / 6`.
///
/// The point is moved by `+h` and then by `-2h` (not reset to `x` in
/// between), so the result is bit-identical to the differences the tests
/// wrote out before this helper.
pub fn central_difference<const D: usize>(
    x: &[[f64; D]],
    i: usize,
    a: usize,
    h: f64,
    mut f: impl FnMut(&[[f64; D]]) -> f64,
) -> f64 {
    let mut xp = x.to_vec();
    xp[i][a] += h;
    let fp = f(&xp);
    xp[i][a] -= 2.0 * h;
    let fm = f(&xp);
    (fp - fm) / (2.0 * h)
}
