//! Finite-difference checks that `grad` is the derivative of `phi` (direct and tree),
//! `phi_i` differenced in `x_i` by `support::central_difference`.
use crate::support::central_difference;
use crate::support::clouds::*;
use jko::coupling::{SortedCoupling1d, TreeCoupling, direct_evaluate};

fn check<const D: usize>(tree: bool, tol: f64) {
    let n = if tree { 10_000 } else { 2_000 };
    let (x, q) = cloud::<D>("gaussian", n, 21);
    let delta = 0.01;
    let mut tc = TreeCoupling::<D>::new(delta, 1e-9);
    let mut eval = |x: &[[f64; D]]| -> (Vec<f64>, Vec<[f64; D]>) {
        let (mut p, mut g) = (vec![0.0; n], vec![[0.0; D]; n]);
        if tree {
            tc.evaluate(x, &q, &mut p, &mut g);
        } else {
            direct_evaluate(x, &q, delta, &mut p, &mut g);
        }
        (p, g)
    };
    let (_, g) = eval(&x);
    let gmax = g.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let h = 1e-5;
    for i in [0, n / 3, n - 1] {
        for d in 0..D {
            let num = central_difference(&x, i, d, h, |x| eval(x).0[i]);
            let err = (num - g[i][d]).abs() / gmax;
            println!(
                "D={D} tree={tree} i={i} d={d} fd={num:.12e} grad={:.12e} rel={err:.2e}",
                g[i][d]
            );
            assert!(
                err < tol,
                "D={D} tree={tree} i={i} d={d}: {num} vs {}",
                g[i][d]
            );
        }
    }
}

#[test]
fn direct_gradient_is_derivative() {
    check::<2>(false, 1e-7);
    check::<3>(false, 1e-7);
}

#[test]
fn tree_gradient_is_derivative() {
    // accuracy 1e-9: phi errors of ~1e-9 |phi| are amplified by 1/h in the difference
    check::<2>(true, 1e-4);
    check::<3>(true, 1e-4);
}

#[test]
fn sorted_1d_gradient_is_derivative() {
    let n = 5_000;
    let (x, q) = cloud::<1>("gaussian", n, 22);
    let mut s = SortedCoupling1d::new(0.05);
    let mut eval = |x: &[[f64; 1]]| {
        let (mut p, mut g) = (vec![0.0; n], vec![[0.0; 1]; n]);
        s.evaluate(x, &q, &mut p, &mut g);
        (p, g)
    };
    let (_, g) = eval(&x);
    let gmax = g.iter().fold(0.0f64, |m, v| m.max(v[0].abs()));
    for i in [0, n / 2, n - 1] {
        let num = central_difference(&x, i, 0, 1e-6, |x| eval(x).0[i]);
        assert!((num - g[i][0]).abs() < 1e-6 * gmax, "{num} vs {}", g[i][0]);
    }
}
