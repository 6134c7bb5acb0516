//! Porous medium equation (m = 2, no potential, no coupling) from a Barenblatt
//! profile in d = 1 and 2: the second moment follows the exact Barenblatt
//! second moment M2(t) = M R(t)^2 d/(d + 2m/(m-1)), R(t) ∝ (t0 + D t)^beta.
//!
//! The run goes from t = 0 to t = 3 t0 (the support radius grows by 4^beta:
//! x1.59 in 1D, x1.41 in 2D). Error sources, and the stated tolerance on the
//! relative error of the second-moment growth M2(T) - M2(0):
//!   - time discretization: JKO is first order, relative error O(h / t0);
//!   - blob smoothing: the pressure is computed from K_eps * rho, which adds
//!     O(eps^2 / R^2) to the growth rate;
//!   - sampling: the initial cloud's second moment differs from the exact one
//!     by O(N^{-1/2}); the test starts the exact curve from the sampled
//!     cloud's M2 (the Barenblatt time t0 is matched to it).
//!
//! Tolerance: 3% of the growth for the coarse run (h = t0/10, eps = R/25 in
//! 1D, R/12.5 in 2D), and halving h and eps (N x2 in 1D, x4 in 2D) must cut
//! the error by at least 30% (first order predicts 50%; measured 50% in 1D,
//! 42% in 2D).

use crate::support;

use jko::Simulation;
use jko::model::exact::Barenblatt;

fn run<const D: usize>(n: usize, steps: usize, eps: f64) -> f64 {
    run_with::<D>(n, steps, eps, "neighbours")
}

/// `method`: the `[density] method` of the scenario.
fn run_with<const D: usize>(n: usize, steps: usize, eps: f64, method: &str) -> f64 {
    let (mass, diffusion, radius) = (1.0, 1.0, 0.5);
    let exact0 = Barenblatt::with_radius(D, 2.0, mass, diffusion, radius);
    // t0 of the profile, from R(t)/R(0) = ((t0 + D t)/t0)^beta at a small t.
    let beta = 1.0 / (D as f64 + 2.0);
    let probe = 1e-3;
    let t0 = probe * diffusion / ((exact0.radius(probe) / radius).powf(1.0 / beta) - 1.0);
    let t_end = 3.0 * t0;
    let h = t_end / steps as f64;
    let text = format!(
        r#"
dimension = {D}
time_step = {h}
steps = {steps}
seed = 5
[density]
bandwidth = {eps}
method = "{method}"
[solver]
tolerance = 1e-6
[[species]]
name = "rho"
diffusion = {diffusion}
exponent = 2.0
mass = {mass}
particles = {n}
initial = {{ kind = "barenblatt", center = {zero}, radius = {radius} }}
"#,
        zero = support::vec_of(D, 0.0)
    );
    let s = support::scenario(&text);
    let mut sim = Simulation::<D>::new(&s).unwrap();
    let m2 = |x: &[[f64; D]], w: &[f64]| -> f64 {
        x.iter()
            .zip(w)
            .map(|(p, wi)| wi * p.iter().map(|v| v * v).sum::<f64>())
            .sum()
    };
    let m2_start = m2(&sim.cloud.positions, &sim.cloud.weights);
    for _ in 0..steps {
        sim.advance().unwrap();
    }
    let m2_end = m2(&sim.cloud.positions, &sim.cloud.weights);
    // Exact curve through the sampled start: M2 ∝ (t0' + D t)^{2 beta}, with t0'
    // chosen so that M2(0) is the sampled second moment.
    let scale = m2_start / exact0.second_moment(0.0);
    let t0s = t0 * scale.powf(1.0 / (2.0 * beta));
    let exact_end = m2_start * ((t0s + diffusion * sim.time) / t0s).powf(2.0 * beta);
    let err = ((m2_end - m2_start) - (exact_end - m2_start)).abs() / (exact_end - m2_start);
    eprintln!(
        "d={D} N={n} steps={steps} eps={eps} {method}: M2 {m2_start:.5} -> {m2_end:.5}, exact {exact_end:.5}, growth error {err:.4}"
    );
    err
}

#[test]
fn barenblatt_1d() {
    let coarse = run::<1>(1000, 30, 0.01);
    let fine = run::<1>(2000, 60, 0.005);
    assert!(coarse < 0.03, "coarse growth error {coarse}");
    assert!(
        fine < 0.7 * coarse,
        "error did not fall at first order: {coarse} -> {fine}"
    );
}

#[test]
fn barenblatt_2d() {
    let coarse = run::<2>(2000, 30, 0.02);
    let fine = run::<2>(8000, 60, 0.01);
    assert!(coarse < 0.03, "coarse growth error {coarse}");
    assert!(
        fine < 0.7 * coarse,
        "error did not fall at first order: {coarse} -> {fine}"
    );
}

/// The same runs with the densities on the mesh (B-spline deposit, FFT
/// convolution): same tolerances, the effective kernel having the same
/// mass and variance as the Wendland kernel it stands for.
#[test]
fn barenblatt_2d_mesh() {
    let coarse = run_with::<2>(2000, 30, 0.02, "mesh");
    let fine = run_with::<2>(8000, 60, 0.01, "mesh");
    assert!(coarse < 0.03, "coarse growth error {coarse}");
    assert!(
        fine < 0.7 * coarse,
        "error did not fall at first order: {coarse} -> {fine}"
    );
}
