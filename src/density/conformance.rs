//! The conformance harness of the density estimators: every estimator of
//! [`ESTIMATORS`] against the O(N^2) definition of the blob density and
//! against central differences of an energy it computes (and of a linear
//! form sum_i c_i rho_i whose sources are a part of the points), in free space and
//! (reflected across the walls) in the unit box. Adding an
//! estimator adds its line to [`ESTIMATORS`] (with the accuracy it claims
//! against the definition).

use super::{DensityEstimator, DensityPlan, dist2};
use crate::model::kernel::{RadialKernel, WendlandC2};

/// One estimator under test: its name, how to build it for a cloud and a
/// bandwidth, and its claimed rms relative error against the definition
/// (neighbour lists: rounding; the mesh: its documented interpolation error,
/// below 0.3% rms in `mesh` tests, given 1% here).
struct Entry {
    name: &'static str,
    plan: fn(&[[f64; 3]], usize, f64) -> DensityPlan,
    rms: f64,
    /// In the unit box [0, 1]^d with reflecting walls ([`super::reflect`]):
    /// the definition then sums the particles' mirror images too.
    walls: bool,
}

fn mesh_plan(x: &[[f64; 3]], d: usize, eps: f64) -> DensityPlan {
    match d {
        1 => DensityPlan::mesh(&project::<1>(x), eps),
        2 => DensityPlan::mesh(&project::<2>(x), eps),
        _ => DensityPlan::mesh(x, eps),
    }
}

const UNIT: [f64; 3] = [1.0; 3];

const ESTIMATORS: [Entry; 6] = [
    Entry {
        name: "neighbours",
        plan: |_, _, eps| DensityPlan::neighbours(eps),
        rms: 1e-12,
        walls: false,
    },
    Entry {
        name: "mesh",
        plan: mesh_plan,
        rms: 1e-2,
        walls: false,
    },
    Entry {
        name: "neighbours in a box",
        plan: |_, d, eps| DensityPlan::neighbours(eps).in_box(&[0.0; 3][..d], &UNIT[..d]),
        rms: 1e-12,
        walls: true,
    },
    Entry {
        name: "mesh in a box",
        plan: |x, d, eps| mesh_plan(x, d, eps).in_box(&[0.0; 3][..d], &UNIT[..d]),
        rms: 1e-2,
        walls: true,
    },
    // d = 1 only (other d build the lists, tested above).
    Entry {
        name: "sorted 1D",
        plan: |_, _, eps| DensityPlan::sorted_1d(eps),
        rms: 1e-12,
        walls: false,
    },
    Entry {
        name: "sorted 1D in a box",
        plan: |_, d, eps| DensityPlan::sorted_1d(eps).in_box(&[0.0; 3][..d], &UNIT[..d]),
        rms: 1e-12,
        walls: true,
    },
];

fn project<const D: usize>(x: &[[f64; 3]]) -> Vec<[f64; D]> {
    x.iter().map(|p| std::array::from_fn(|a| p[a])).collect()
}

/// A deterministic, uneven cloud: a quasi-random fill of [0, 1]^3 bent into
/// a denser core, with weights that vary by a factor 7.
fn cloud(n: usize) -> (Vec<[f64; 3]>, Vec<f64>) {
    let x = (0..n)
        .map(|i| {
            std::array::from_fn(|a| {
                let u = ((i + 1) as f64 * [0.754_877_7, 0.569_840_3, 0.438_579_5][a]).fract();
                u * u * (3.0 - 2.0 * u)
            })
        })
        .collect();
    let w: Vec<f64> = (0..n)
        .map(|i| (1.0 + (i % 7) as f64) / (4.0 * n as f64))
        .collect();
    (x, w)
}

/// rms relative error of `rho` against the definition at bandwidth `eps`;
/// with `walls`, the definition in the unit box: the sum over the particles
/// and their images x -> -x and x -> 2 - x on each axis (3^d of them; the
/// kernel's reach, at most 0.38 here, holds no further image).
fn definition_error<const D: usize>(
    rho: &[f64],
    x: &[[f64; D]],
    w: &[f64],
    eps: f64,
    walls: bool,
) -> f64 {
    let kernel = WendlandC2::new(D, eps);
    let images = if walls { 3usize.pow(D as u32) } else { 1 };
    let image = |p: &[f64; D], m: usize| -> [f64; D] {
        std::array::from_fn(|a| match (m / 3usize.pow(a as u32)) % 3 {
            0 => p[a],
            1 => -p[a],
            _ => 2.0 - p[a],
        })
    };
    let (mut err2, mut norm2) = (0.0, 0.0);
    for (xi, ri) in x.iter().zip(rho) {
        let exact: f64 = x
            .iter()
            .zip(w)
            .map(|(xj, wj)| {
                (0..images)
                    .map(|m| wj * kernel.value(dist2(xi, &image(xj, m))))
                    .sum::<f64>()
            })
            .sum();
        err2 += (ri - exact).powi(2);
        norm2 += exact * exact;
    }
    (err2 / norm2).sqrt()
}

fn check<const D: usize>(e: &Entry, n: usize, eps: f64) {
    let (x3, w) = cloud(n);
    let x = project::<D>(&x3);
    let mut est: Box<dyn DensityEstimator<D>> = (e.plan)(&x3, D, eps).build::<D>();
    assert_eq!(est.bandwidth(), eps, "{}", e.name);
    est.reset();
    let rho = est.compute(&x, &w).expect("a small cloud fits").to_vec();
    let rms = definition_error(&rho, &x, &w, eps, e.walls);
    assert!(
        rms <= e.rms,
        "{} d={D}: rms relative error {rms:e} > {:e}",
        e.name,
        e.rms
    );

    // The gradient of E = sum_i w_i log rho_i (slopes 1/rho) against central
    // differences of E computed by the same estimator. The step 1e-6 eps
    // keeps the truncation error (third derivative times h^2) and the
    // rounding (1e-16 E / h) both below 1e-7 of the largest gradient
    // component for these smooth kernels; 1e-6 is asked.
    let energy = |est: &mut Box<dyn DensityEstimator<D>>, x: &[[f64; D]]| -> f64 {
        let r = est.compute(x, &w).expect("fits");
        r.iter().zip(&w).map(|(r, w)| w * r.ln()).sum()
    };
    est.reset();
    let slope: Vec<f64> = est
        .compute(&x, &w)
        .unwrap()
        .iter()
        .map(|r| 1.0 / r)
        .collect();
    let mut grad = vec![[0.0; D]; n];
    est.add_gradient(&x, &w, &slope, &mut grad);
    let h = 1e-6 * eps;
    let scale = grad.iter().flatten().map(|g| g.abs()).fold(0.0, f64::max);
    for i in [0, n / 3, n - 1] {
        for a in 0..D {
            let mut xp = x.clone();
            xp[i][a] += h;
            let ep = energy(&mut est, &xp);
            xp[i][a] -= 2.0 * h;
            let em = energy(&mut est, &xp);
            let fd = (ep - em) / (2.0 * h);
            assert!(
                (fd - grad[i][a]).abs() <= 1e-6 * scale,
                "{} d={D} particle {i} axis {a}: gradient {} vs central difference {fd}",
                e.name,
                grad[i][a]
            );
        }
    }

    // The local functional (`local_functional`), the same E and gradient in
    // one call: the gradient from the same slopes, so to rounding of the
    // sums (1e-12 of the largest component; the neighbour lists give the
    // same bits), E summed in another order (the lists: chunks of slots),
    // so to rounding of N terms (1e-12 relative).
    let mut scratch = super::LocalScratch::default();
    let mut fused = vec![[0.0; D]; n];
    let log = |w: f64, r: f64| (w * r.ln(), 1.0 / r);
    est.reset();
    let value = est
        .local_functional(&x, &w, &log, &mut scratch, &mut fused)
        .expect("fits");
    est.reset();
    let e0 = energy(&mut est, &x);
    assert!(
        (value - e0).abs() <= 1e-12 * e0.abs().max(1.0),
        "{} d={D}: local functional {value} vs {e0}",
        e.name
    );
    for (i, (f, g)) in fused.iter().zip(&grad).enumerate() {
        for a in 0..D {
            assert!(
                (f[a] - g[a]).abs() <= 1e-12 * scale,
                "{} d={D} particle {i} axis {a}: local functional's gradient {} vs {}",
                e.name,
                f[a],
                g[a]
            );
        }
    }

    // The linear form's gradient (`add_linear_gradient`): densities from
    // every third particle left out of the sources (weight 0) but kept as
    // a point where the density is wanted, F = sum_i w_i log(1 + rho_i) over
    // all, c_i = w_i / (1 + rho_i); against central differences of F, with
    // the step and tolerance argued above. The left-out points, which move
    // no density, are among those checked.
    let u: Vec<f64> = w
        .iter()
        .enumerate()
        .map(|(j, wj)| if j % 3 == 0 { 0.0 } else { *wj })
        .collect();
    let form = |est: &mut Box<dyn DensityEstimator<D>>, x: &[[f64; D]]| -> f64 {
        let r = est.compute(x, &u).expect("fits");
        r.iter().zip(&w).map(|(r, w)| w * r.ln_1p()).sum()
    };
    est.reset();
    let c: Vec<f64> = est
        .compute(&x, &u)
        .unwrap()
        .iter()
        .zip(&w)
        .map(|(r, w)| w / (1.0 + r))
        .collect();
    let mut grad = vec![[0.0; D]; n];
    est.add_linear_gradient(&x, &u, &c, &mut grad);
    let scale = grad.iter().flatten().map(|g| g.abs()).fold(0.0, f64::max);
    for i in [0, 1, n / 3, n - 1] {
        for a in 0..D {
            let mut xp = x.clone();
            xp[i][a] += h;
            let ep = form(&mut est, &xp);
            xp[i][a] -= 2.0 * h;
            let em = form(&mut est, &xp);
            let fd = (ep - em) / (2.0 * h);
            assert!(
                (fd - grad[i][a]).abs() <= 1e-6 * scale,
                "{} d={D} particle {i} axis {a}: linear-form gradient {} vs central difference {fd}",
                e.name,
                grad[i][a]
            );
        }
    }
}

#[test]
fn every_estimator_matches_its_definition_and_its_derivative() {
    for e in &ESTIMATORS {
        check::<1>(e, 400, 0.02);
        check::<2>(e, 900, 0.05);
        check::<3>(e, 1200, 0.1);
    }
}

/// The measure can fail: an estimate 1% too wide is 1e3 times the
/// neighbour lists' tolerance away from the definition.
#[test]
fn a_wrong_estimate_is_caught() {
    let (x3, w) = cloud(300);
    let x = project::<2>(&x3);
    let mut est = DensityPlan::neighbours(0.0505).build::<2>();
    let rho = est.compute(&x, &w).unwrap().to_vec();
    let rms = definition_error(&rho, &x, &w, 0.05, false);
    assert!(rms > 1e3 * ESTIMATORS[0].rms, "{rms:e}");
}
