//! Every energy term's analytic gradient against central finite differences.
//!
//! Tolerance: |fd - analytic| <= 1e-6 * max_i |grad_i| for every checked
//! component. Attainable because the terms are C^2 (the Wendland C2 kernel
//! is C^2, and so are the mesh estimate's cubic B-splines; G_delta is
//! smooth for delta > 0), so the
//! central difference with step t has truncation error ~ t^2 |E'''| ~ 1e-10
//! relative for t = 1e-5 at length scales >= 0.1, and rounding error
//! ~ eps_mach |E| / t ~ 1e-11 absolute, both far below 1e-6 of the
//! gradient scale (~ 1/N).

use crate::support;

use jko::density::DensityPlan;
use jko::energy::{FreeEnergy, Part};
use jko::particles::Cloud;
use jko::stepper::free_energy;

fn scenario_text(d: usize, m: f64, lambda: f64, softening: f64, with_potential: bool) -> String {
    let zero = support::vec_of(d, 0.0);
    let pot = if with_potential {
        format!(
            "potential = {{ kind = \"double_well\", center = {zero}, radius = 0.7, depth = 0.8 }}"
        )
    } else {
        String::new()
    };
    let pot2 = if with_potential {
        format!(
            "potential = {{ kind = \"quadratic\", center = {}, stiffness = 1.3 }}",
            support::vec_of(d, 0.1)
        )
    } else {
        String::new()
    };
    format!(
        r#"
dimension = {d}
time_step = 0.01
steps = 1
seed = 11
[coupling]
strength = {lambda}
method = "direct"
softening = {softening}
[density]
bandwidth = 0.25
[[species]]
name = "a"
charge = 1.0
diffusion = 0.7
exponent = {m}
particles = 60
{pot}
initial = {{ kind = "gaussian", mean = {zero}, std = 0.5 }}
[[species]]
name = "b"
charge = -2.0
diffusion = 0.4
exponent = {m}
mass = 0.5
particles = 45
{pot2}
initial = {{ kind = "uniform", lower = {lo}, upper = {hi} }}
"#,
        lo = support::vec_of(d, -0.6),
        hi = support::vec_of(d, 0.8),
    )
}

/// Check every term separately, then the sum.
fn check<const D: usize>(m: f64, lambda: f64, softening: f64) {
    check_with::<D>(m, lambda, softening, false);
}

/// `mesh`: the diffusion term sums its densities on the mesh.
fn check_with<const D: usize>(m: f64, lambda: f64, softening: f64, mesh: bool) {
    let s = support::scenario(&scenario_text(D, m, lambda, softening, true));
    let cloud = Cloud::<D>::sample(&s.species, s.seed, &s.path).unwrap();
    let eps: Vec<DensityPlan> = cloud
        .blocks
        .iter()
        .map(|b| match mesh {
            true => DensityPlan::mesh(&cloud.positions[b.range.clone()], 0.25),
            false => DensityPlan::neighbours(0.25),
        })
        .collect();
    let mut energy: FreeEnergy<D> = free_energy(&s, &cloud, &eps).unwrap();
    let x = cloud.positions.clone();
    let n = x.len();
    let nterms = energy.terms_mut().len();
    assert_eq!(nterms, if lambda == 0.0 { 2 } else { 3 });
    for t in 0..nterms {
        let term = &mut energy.terms_mut()[t];
        let mut grad = vec![[0.0; D]; n];
        term.value_and_gradient(&x, &mut grad);
        let scale = grad.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(
            scale > 0.0,
            "term {:?} has a zero gradient: the test would be vacuous",
            term.part()
        );
        let step = 1e-5;
        let mut worst: f64 = 0.0;
        // Every 7th component: all particles of both species, all axes over the loop.
        for k in (0..n * D).step_by(7) {
            let (i, a) = (k / D, k % D);
            let mut sink = vec![[0.0; D]; n];
            let fd = support::central_difference(&x, i, a, step, |xp| {
                term.value_and_gradient(xp, &mut sink)
            });
            worst = worst.max((fd - grad[i][a]).abs() / scale);
        }
        assert!(
            worst <= 1e-6,
            "d={D} m={m} lambda={lambda} delta={softening} mesh={mesh} term {:?}: worst relative error {worst:e}",
            term.part()
        );
    }
    // The whole energy, whose coupling runs beside the densities, has the
    // bits of its terms evaluated one after the other.
    let mut one_by_one = vec![[0.0; D]; n];
    let mut values = Vec::new();
    for t in energy.terms_mut() {
        values.push((t.part(), t.value_and_gradient(&x, &mut one_by_one)));
    }
    let mut grad = vec![[0.0; D]; n];
    let parts = energy.evaluate(&x, &mut grad);
    let same = |a: &[[f64; D]], b: &[[f64; D]]| {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(u, v)| u.to_bits() == v.to_bits())
    };
    assert!(
        same(&grad, &one_by_one),
        "d={D} m={m} lambda={lambda}: gradient bits"
    );
    for (part, v) in values {
        let got = match part {
            Part::Diffusion => parts.diffusion,
            Part::Potential => parts.potential,
            Part::Interaction => parts.interaction,
            other => unreachable!("no {other:?} term here"),
        };
        assert_eq!(got.to_bits(), v.to_bits(), "{part:?}");
    }
}

#[test]
fn gradients_1d() {
    for m in [1.0, 2.0, 1.5] {
        check::<1>(m, 1.0, 0.05);
        check::<1>(m, -1.0, 0.05);
    }
    // delta = 0 is allowed in 1D: the kernel -|x|/2 is smooth away from coincident points.
    check::<1>(1.0, 1.0, 0.0);
}

#[test]
fn gradients_2d() {
    for m in [1.0, 2.0, 1.5] {
        check::<2>(m, 1.0, 0.1);
        check::<2>(m, -1.0, 0.1);
    }
}

#[test]
fn gradients_3d() {
    for m in [1.0, 2.0] {
        check::<3>(m, 1.0, 0.1);
        check::<3>(m, -1.0, 0.1);
    }
}

/// The diffusion term with the mesh estimate (B-spline deposit, FFT
/// convolution, interpolation): its gradient is taken through all three.
#[test]
fn gradients_mesh() {
    for m in [1.0, 2.0] {
        check_with::<1>(m, 1.0, 0.05, true);
        check_with::<2>(m, 1.0, 0.1, true);
        check_with::<3>(m, -1.0, 0.1, true);
    }
}

#[test]
fn no_coupling_term_when_lambda_is_zero() {
    check::<2>(1.0, 0.0, 0.1);
}
