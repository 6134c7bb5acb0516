//! 1D sorted evaluator vs direct sums: exact to rounding, with and without softening,
//! with ties, mixed charges and far-off-origin coordinates.
use crate::support::clouds::*;
use jko::coupling::{SortedCoupling1d, direct_evaluate};

#[test]
fn sorted_matches_direct() {
    let n = 20_000;
    for kind in CLOUDS {
        let (mut x, q) = cloud::<1>(kind, n, 31);
        for i in 0..n / 20 {
            x[(i * 7) % n] = x[(i * 13) % n]; // exact ties
        }
        for xi in x.iter_mut() {
            xi[0] += 100.0; // away from the origin
        }
        let mut s = SortedCoupling1d::new(0.0);
        for delta in [0.0, 1e-8, 1e-3, 0.1, 10.0] {
            if delta != s.softening() {
                s = SortedCoupling1d::new(delta);
            }
            let (mut p, mut g) = (vec![0.0; n], vec![[0.0; 1]; n]);
            s.evaluate(&x, &q, &mut p, &mut g);
            let (mut pd, mut gd) = (vec![0.0; n], vec![[0.0; 1]; n]);
            direct_evaluate(&x, &q, delta, &mut pd, &mut gd);
            let (ep, eg) = (rel_max(&p, &pd), rel_max_vec(&g, &gd));
            println!("ERRTABLE D=1 cloud={kind} delta={delta:e} phi={ep:.2e} grad={eg:.2e}");
            assert!(
                ep < 1e-12 && eg < 1e-12,
                "{kind} delta={delta}: {ep:e} {eg:e}"
            );
        }
    }
}
