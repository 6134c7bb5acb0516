//! Invariants of every run: exact mass per species, energy that never
//! increases, and the Coulomb energy against an independent integral.

use crate::support;

use jko::Simulation;
use jko::coupling::{CouplingBackend, DirectSum};

/// Two-species PNP (and attractive Keller–Segel-like) runs in 1, 2 and 3D:
/// - mass: weights never change, so each species' mass is bit-identical at
///   every step (the tolerance is zero);
/// - energy: the accepted point has J(X^{n+1}) <= J(X^n) = E(X^n), hence
///   E(X^{n+1}) + W^2/(2h) <= E(X^n): the energy decreases by at least the
///   transport cost. Checked with rounding slack 1e-12 |E|.
fn check_run<const D: usize>(lambda: f64, m: f64) {
    let zero = support::vec_of(D, 0.0);
    let text = format!(
        r#"
dimension = {D}
time_step = 0.02
steps = 8
seed = 9
[coupling]
strength = {lambda}
method = "direct"
softening = 0.1
[density]
bandwidth = "auto"
[[species]]
name = "u"
charge = 1.0
diffusion = 0.5
exponent = {m}
particles = 300
potential = {{ kind = "quadratic", center = {zero}, stiffness = 1.0 }}
initial = {{ kind = "gaussian", mean = {m0}, std = 0.4 }}
[[species]]
name = "v"
charge = -1.0
diffusion = 0.3
exponent = {m}
mass = 0.7
particles = 200
potential = {{ kind = "double_well", center = {zero}, radius = 0.8, depth = 0.5 }}
initial = {{ kind = "uniform", lower = {lo}, upper = {hi} }}
"#,
        m0 = support::vec_of(D, 0.3),
        lo = support::vec_of(D, -1.0),
        hi = support::vec_of(D, 0.5),
    );
    let s = support::scenario(&text);
    let mut sim = Simulation::<D>::new(&s).unwrap();
    let masses: Vec<f64> = (0..2).map(|k| sim.cloud.species_mass(k)).collect();
    // The weights are mass/N: their sum is the species' mass up to rounding.
    assert!(
        (masses[0] - 1.0).abs() < 1e-13 && (masses[1] - 0.7).abs() < 1e-13,
        "{masses:?}"
    );
    let mut e_prev = sim.initial_report().unwrap().parts.total();
    for _ in 0..s.steps {
        let r = sim.advance().unwrap();
        for k in 0..2 {
            assert_eq!(
                sim.cloud.species_mass(k).to_bits(),
                masses[k].to_bits(),
                "mass of species {k}"
            );
        }
        let e = r.parts.total();
        let dissipation = r.w2_step * r.w2_step / (2.0 * s.time_step);
        assert!(
            e + dissipation <= e_prev + 1e-12 * e_prev.abs(),
            "d={D} lambda={lambda} m={m} step {}: E {e_prev} -> {e} with transport {dissipation}",
            sim.step
        );
        assert!(r.w2_step > 0.0, "nothing moved: the test would be vacuous");
        e_prev = e;
    }
}

#[test]
fn mass_is_exact_and_energy_decreases() {
    for (lambda, m) in [(1.0, 1.0), (-1.0, 1.0), (2.0, 2.0)] {
        check_run::<1>(lambda, m);
        check_run::<2>(lambda, m);
        check_run::<3>(lambda, m);
    }
}

/// 1D, delta = 0: for point charges with zero net charge the pair sum is
/// exactly (lambda/2) int |psi'|^2: psi' = -Q(x), Q(x) = sum of charges left
/// of x, so (lambda/2) int Q(x)^2 dx, a sum of rectangles between sorted
/// particles. (G(0) = 0 in 1D, so there is no self energy to exclude.)
#[test]
fn coulomb_energy_1d_equals_field_energy() {
    let n = 400;
    let x: Vec<[f64; 1]> = (0..2 * n)
        .map(|i| [((i as f64) * 0.754_877_666).fract() * 2.0 - (i % 2) as f64 * 0.3])
        .collect();
    // u: +1/n each (even i), v: -1/n each (odd i): zero net charge.
    let q: Vec<f64> = (0..2 * n)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } / n as f64)
        .collect();
    let mut field = vec![[0.0; 1]; 2 * n];
    let lambda = 1.7;
    let energy = lambda * DirectSum::<1>::new(0.0).energy_and_field(&x, &q, &mut field);
    let mut order: Vec<usize> = (0..2 * n).collect();
    order.sort_by(|&a, &b| x[a][0].partial_cmp(&x[b][0]).unwrap());
    let mut cum = 0.0;
    let mut integral = 0.0;
    for w in order.windows(2) {
        cum += q[w[0]];
        integral += cum * cum * (x[w[1]][0] - x[w[0]][0]);
    }
    let field_energy = 0.5 * lambda * integral;
    assert!(field_energy > 0.0);
    assert!(
        (energy - field_energy).abs() <= 1e-12 * field_energy,
        "pair sum {energy} vs (lambda/2) int |psi'|^2 = {field_energy}"
    );
}

/// 3D, concentric uniform balls: u (charge +1, mass 1) in the ball of radius
/// a, v (charge -1, mass 1/2) in the ball of radius b > a. Gauss's law gives
/// |grad psi|(r) = Q(r) / (4 pi r^2), Q(r) the charge inside radius r, so
///   (lambda/2) int |grad psi|^2 = (lambda/2) int_0^inf Q(r)^2 / (4 pi r^2) dr,
/// by the midpoint rule up to b (error < 1e-9) and exactly beyond, where
/// Q = qu + qv (net charge 1/2).
///
/// The particles are a low-discrepancy sample of each ball (radii at exact
/// quantiles, Fibonacci directions). The pair sum omits each particle's own
/// cell: a cell of volume V/N holds charge Q/N, and its self energy, summed
/// over the N cells, is about U_ball N^{-2/3} (U_ball = (3/5) Q^2/(4 pi R), the
/// ball's energy; exact for spherical cells). The softening changes the pair
/// energy by O(delta^2 / a^2). Stated tolerance: sum over species of
/// U_k N_k^{-2/3} relative to the total, times 1.5 for non-spherical cells,
/// plus 1e-3: about 0.7% here.
#[test]
fn coulomb_energy_3d_equals_field_energy() {
    let (a, b, lambda, delta) = (0.5, 1.5, 1.0, 0.005);
    let (nu, nv) = (8000usize, 4000usize);
    let (qu, qv) = (1.0, -0.5);
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    let ball = |n: usize, radius: f64, shift: f64| -> Vec<[f64; 3]> {
        (0..n)
            .map(|i| {
                let u = (i as f64 + 0.5) / n as f64;
                let r = radius * u.cbrt();
                // Directions on a Fibonacci sphere, decorrelated from the radius.
                let k = (i * 7919) % n;
                let z = 1.0 - 2.0 * (k as f64 + 0.5) / n as f64;
                let phi = golden * k as f64 + shift;
                let s = (1.0 - z * z).sqrt();
                [r * s * phi.cos(), r * s * phi.sin(), r * z]
            })
            .collect()
    };
    let mut x = ball(nu, a, 0.0);
    x.extend(ball(nv, b, 1.0));
    let q: Vec<f64> = (0..nu + nv)
        .map(|i| {
            if i < nu {
                qu / nu as f64
            } else {
                qv / nv as f64
            }
        })
        .collect();
    let mut field = vec![[0.0; 3]; nu + nv];
    let energy = lambda * DirectSum::<3>::new(delta).energy_and_field(&x, &q, &mut field);

    let pi = std::f64::consts::PI;
    let steps = 200_000;
    let mut integral = 0.0;
    for i in 0..steps {
        let r = (i as f64 + 0.5) / steps as f64 * b;
        let qr = qu * (r / a).min(1.0).powi(3) + qv * (r / b).powi(3);
        integral += qr * qr / (4.0 * pi * r * r) * b / steps as f64;
    }
    // Outside b the net charge qu + qv acts as a point charge: int_b^inf Q^2/(4 pi r^2) dr.
    integral += (qu + qv) * (qu + qv) / (4.0 * pi * b);
    let field_energy = 0.5 * lambda * integral;
    let rel = (energy - field_energy).abs() / field_energy;
    let self_u = 0.6 * qu * qu / (4.0 * pi * a) * (nu as f64).powf(-2.0 / 3.0);
    let self_v = 0.6 * qv * qv / (4.0 * pi * b) * (nv as f64).powf(-2.0 / 3.0);
    let tol = 1.5 * lambda * (self_u + self_v) / field_energy + 1e-3;
    eprintln!(
        "3D balls: pair sum {energy:.6}, field energy {field_energy:.6}, relative difference {rel:.2e} (stated {tol:.2e})"
    );
    assert!(
        rel < tol,
        "pair sum {energy} vs (lambda/2) int |grad psi|^2 = {field_energy}"
    );
}
