//! Tree (FMM) vs direct sums: relative errors of phi and grad (max norms, see
//! `support::clouds::rel_max*`) below the requested accuracy, d = 2, 3, four clouds, mixed charges.
use crate::support::clouds::*;
use jko::coupling::{TreeCoupling, direct_evaluate};

const N: usize = 20_000;

fn check<const D: usize>(kind: &str, delta: f64) {
    let (x, q) = cloud::<D>(kind, N, 11);
    let (mut pd, mut gd) = (vec![0.0; N], vec![[0.0; D]; N]);
    direct_evaluate(&x, &q, delta, &mut pd, &mut gd);
    for acc in [1e-3, 1e-6, 1e-9] {
        let mut tc = TreeCoupling::<D>::new(delta, acc);
        let (mut p, mut g) = (vec![0.0; N], vec![[0.0; D]; N]);
        tc.evaluate(&x, &q, &mut p, &mut g);
        let (ep, eg) = (rel_max(&p, &pd), rel_max_vec(&g, &gd));
        println!(
            "ERRTABLE D={D} cloud={kind} delta={delta:e} accuracy={acc:e} phi={ep:.2e} grad={eg:.2e} grad_rms={:.2e} params={:?}",
            rel_rms_vec(&g, &gd),
            tc.params()
        );
        assert!(ep < acc, "D={D} {kind} acc={acc}: phi error {ep:e}");
        assert!(eg < acc, "D={D} {kind} acc={acc}: grad error {eg:e}");
    }
}

#[test]
fn d3_uniform() {
    check::<3>("uniform", 1e-3);
}
#[test]
fn d3_gaussian() {
    check::<3>("gaussian", 1e-3);
}
#[test]
fn d3_two_clusters() {
    check::<3>("two_clusters", 1e-3);
}
#[test]
fn d3_core_halo() {
    check::<3>("core_halo", 1e-3);
}
#[test]
fn d3_large_softening() {
    check::<3>("gaussian", 0.1);
}
#[test]
fn d2_uniform() {
    check::<2>("uniform", 1e-3);
}
#[test]
fn d2_gaussian() {
    check::<2>("gaussian", 1e-3);
}
#[test]
fn d2_two_clusters() {
    check::<2>("two_clusters", 1e-3);
}
#[test]
fn d2_core_halo() {
    check::<2>("core_halo", 1e-3);
}
#[test]
fn d2_large_softening() {
    check::<2>("gaussian", 0.1);
}

/// Reusing one evaluator on slightly moved particles (refit path) and on a completely
/// different cloud of the same size (rebuild path) stays accurate.
#[test]
fn refit_and_rebuild() {
    let (mut x, q) = cloud::<3>("gaussian", N, 5);
    let mut tc = TreeCoupling::<3>::new(1e-3, 1e-6);
    let (mut p, mut g) = (vec![0.0; N], vec![[0.0; 3]; N]);
    let (mut pd, mut gd) = (vec![0.0; N], vec![[0.0; 3]; N]);
    for step in 0..3 {
        for (i, xi) in x.iter_mut().enumerate() {
            xi[0] += 1e-3 * ((i * 7 + step) % 13) as f64 / 13.0;
        }
        tc.evaluate(&x, &q, &mut p, &mut g);
        direct_evaluate(&x, &q, 1e-3, &mut pd, &mut gd);
        assert!(
            rel_max(&p, &pd) < 1e-6 && rel_max_vec(&g, &gd) < 1e-6,
            "refit step {step}"
        );
    }
    assert_eq!(tc.stats().builds, 1, "small moves must refit, not rebuild");
    let (x2, q2) = cloud::<3>("core_halo", N, 6);
    tc.evaluate(&x2, &q2, &mut p, &mut g);
    direct_evaluate(&x2, &q2, 1e-3, &mut pd, &mut gd);
    assert!(
        rel_max(&p, &pd) < 1e-6 && rel_max_vec(&g, &gd) < 1e-6,
        "after rebuild"
    );
    assert_eq!(
        tc.stats().builds,
        2,
        "a different cloud must trigger a rebuild"
    );
}
