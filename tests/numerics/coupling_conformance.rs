//! Conformance of every coupling backend, from one list ([`BACKENDS`]), as
//! `jko run` builds it (`coupling::backend`): against the O(N^2) definition
//! (`coupling::direct_evaluate`) and against central differences of its own
//! energy.
//!
//! The backend returns `U = (1/2) sum_i q_i phi_i` and `field_i = grad phi_i`,
//! with `phi_i = sum_{j != i} q_j G_delta(x_i - x_j)`, and
//! `dU/dx_i = q_i field_i`. For each backend and cloud (mixed charges):
//!
//! - definition: `max_i |field_i - field_ref_i| <= tol max_i |field_ref_i|`
//!   and `|U - U_ref| <= tol (1/2) sum_i |q_i| max_j |phi_ref_j|` (the bound
//!   a relative error `tol` of every `phi_i` gives). `tol` is 1e-12 for the
//!   exact sums (direct, sorted 1D: rounding only) and the requested accuracy
//!   for the tree (its contract, as in `tree_accuracy`).
//! - derivative: `|(U(x + h e_ia) - U(x - h e_ia)) / 2h - q_i field_ia| <=
//!   1e-6 max_i |q_i field_i|` at three particles and every axis, h = 1e-5.
//!   Truncation is `h^2 |U'''| / 6`, about 1e-10 relative at length scales
//!   of 0.1 and above; rounding is `eps_mach sum |terms| / h`, about 1e-7 relative for
//!   N = 2000 (the terms of U number N^2, the derivative's N). The tree's
//!   energy is the integral of its field only to its accuracy, amplified by
//!   `1/h` in the difference; the moved evaluations refit the tree (same
//!   cells and lists), which keeps its energy smooth in x. Measured: at most
//!   3.1e-8 for every backend.

use crate::support::central_difference;
use crate::support::clouds::{cloud, rel_max_vec};
use jko::coupling::{CouplingMethod, backend, direct_evaluate};

/// Plummer softening of every check (small against the clouds' widths >= 0.05).
const SOFTENING: f64 = 0.01;

/// Requested accuracy of the tree.
const ACCURACY: f64 = 1e-9;

/// One backend: its name, how a scenario selects it, its dimension, the
/// particle count and the tolerance against the definition.
struct Backend {
    name: &'static str,
    method: CouplingMethod,
    dimension: usize,
    particles: usize,
    tol: f64,
}

/// Every coupling backend. A new backend adds its line here.
const BACKENDS: [Backend; 6] = [
    exact("direct 1D", CouplingMethod::Direct, 1),
    exact("direct 2D", CouplingMethod::Direct, 2),
    exact("direct 3D", CouplingMethod::Direct, 3),
    exact("sorted 1D", CouplingMethod::Tree, 1),
    tree("tree 2D", 2),
    tree("tree 3D", 3),
];

const fn exact(name: &'static str, method: CouplingMethod, dimension: usize) -> Backend {
    Backend {
        name,
        method,
        dimension,
        particles: 2_000,
        tol: 1e-12,
    }
}

/// The tree at 6000 particles: several levels, so far fields are expansions.
const fn tree(name: &'static str, dimension: usize) -> Backend {
    Backend {
        name,
        method: CouplingMethod::Tree,
        dimension,
        particles: 6_000,
        tol: ACCURACY,
    }
}

fn check<const D: usize>(b: &Backend, kind: &str, seed: u64) {
    let n = b.particles;
    let (x, q) = cloud::<D>(kind, n, seed);
    let mut backend = backend::<D>(b.method, SOFTENING, ACCURACY, n);
    let what = format!("{} on {kind}", b.name);

    // The O(N^2) definition.
    let (mut phi_ref, mut field_ref) = (vec![0.0; n], vec![[0.0; D]; n]);
    direct_evaluate(&x, &q, SOFTENING, &mut phi_ref, &mut field_ref);
    let u_ref: f64 = 0.5 * q.iter().zip(&phi_ref).map(|(q, p)| q * p).sum::<f64>();
    let mut field = vec![[0.0; D]; n];
    let u = backend.energy_and_field(&x, &q, &mut field);
    let field_error = rel_max_vec(&field, &field_ref);
    let phi_max = phi_ref.iter().fold(0.0f64, |m, p| m.max(p.abs()));
    let u_scale = 0.5 * q.iter().map(|q| q.abs()).sum::<f64>() * phi_max;
    let u_error = (u - u_ref).abs() / u_scale;
    println!("CONFORMANCE {what}: field {field_error:.2e}, energy {u_error:.2e}");
    assert!(field_error <= b.tol, "{what}: field error {field_error:e}");
    assert!(
        u_error <= b.tol,
        "{what}: energy {u} vs {u_ref}: {u_error:e}"
    );

    // The field is the gradient of the energy: dU/dx_i = q_i field_i.
    let force = |i: usize, a: usize| q[i] * field[i][a];
    let scale = (0..n)
        .flat_map(|i| (0..D).map(move |a| (i, a)))
        .fold(0.0f64, |m, (i, a)| m.max(force(i, a).abs()));
    let mut sink = vec![[0.0; D]; n];
    let mut worst: f64 = 0.0;
    for i in [0, n / 3, n - 1] {
        for a in 0..D {
            let fd = central_difference(&x, i, a, 1e-5, |xp| {
                backend.energy_and_field(xp, &q, &mut sink)
            });
            worst = worst.max((fd - force(i, a)).abs() / scale);
        }
    }
    println!("CONFORMANCE {what}: derivative {worst:.2e}");
    assert!(worst <= 1e-6, "{what}: derivative error {worst:e}");
    // A reset forgets the state the moved evaluations left (a refitted tree):
    // a fresh evaluation at x gives the first one's energy.
    backend.reset();
    let u_again = backend.energy_and_field(&x, &q, &mut sink);
    assert!(
        (u_again - u).abs() <= b.tol * u_scale,
        "{what}: energy after a reset {u_again} vs {u}"
    );
}

#[test]
fn every_backend_matches_its_definition_and_derivative() {
    for b in &BACKENDS {
        for (kind, seed) in [("gaussian", 41), ("two_clusters", 42)] {
            match b.dimension {
                1 => check::<1>(b, kind, seed),
                2 => check::<2>(b, kind, seed),
                3 => check::<3>(b, kind, seed),
                d => panic!("{}: dimension {d}", b.name),
            }
        }
    }
}
