//! Ornstein–Uhlenbeck: m = 1, D = 1, U = 1/2 (x-c)^T A (x-c), no coupling. The exact law
#![allow(clippy::needless_range_loop)]
//! stays Gaussian with mean c + e^{-At}(mu0 - c) and covariance
//! e^{-At} S0 e^{-At} + D A^{-1} (I - e^{-2At}).
use crate::support::grid::*;
use jko::eulerian::*;

/// e^{-A t} for a symmetric 2x2 A = [[a, b], [b, c]] (eigen-decomposition), row-major.
fn expm_sym2(a: f64, b: f64, c: f64, t: f64) -> [f64; 4] {
    let tr = 0.5 * (a + c);
    let disc = (0.25 * (a - c) * (a - c) + b * b).sqrt();
    let (l1, l2) = (tr + disc, tr - disc);
    // Eigenvector of l1: (b, l1 - a) (or (1,0) if b = 0 and a >= c).
    let (vx, vy) = if b.abs() > 0.0 {
        (b, l1 - a)
    } else if a >= c {
        (1.0, 0.0)
    } else {
        (0.0, 1.0)
    };
    let nrm = (vx * vx + vy * vy).sqrt();
    let (vx, vy) = (vx / nrm, vy / nrm);
    let (e1, e2) = ((-l1 * t).exp(), (-l2 * t).exp());
    // P1 = v v^T, P2 = I - P1.
    [
        e1 * vx * vx + e2 * (1.0 - vx * vx),
        (e1 - e2) * vx * vy,
        (e1 - e2) * vx * vy,
        e1 * vy * vy + e2 * (1.0 - vy * vy),
    ]
}

fn mul2(p: &[f64; 4], q: &[f64; 4]) -> [f64; 4] {
    [
        p[0] * q[0] + p[1] * q[2],
        p[0] * q[1] + p[1] * q[3],
        p[2] * q[0] + p[3] * q[2],
        p[2] * q[1] + p[3] * q[3],
    ]
}

/// Runs OU to t = 1 (outer step 0.05) and returns (max |mean error|, max |cov error|, h).
fn ou_2d(n: usize) -> (f64, f64, f64) {
    let (a, b, c) = (1.5, 0.5, 1.0);
    let center = [0.2, -0.3];
    let (mu0, s0) = ([1.0, 0.5], [0.5, 0.4]);
    let g = grid(2, n, 5.0);
    let h = g.spacing(0);
    let species = vec![EulerianSpecies {
        name: "ou".into(),
        charge: 1.0,
        diffusion: 1.0,
        exponent: 1.0,
        potential: Box::new(move |x: &[f64]| {
            let (dx, dy) = (x[0] - center[0], x[1] - center[1]);
            0.5 * (a * dx * dx + 2.0 * b * dx * dy + c * dy * dy)
        }),
        initial: gaussian_cell_averages(&g, &mu0, &s0, 1.0).unwrap(),
    }];
    let mut s = EulerianSolver::new(EulerianProblem {
        grid: g,
        species,
        coupling_strength: 0.0,
    })
    .unwrap();
    for _ in 0..20 {
        s.advance(0.05).unwrap();
    }
    assert!(!s.touches_walls());
    let t = 1.0;
    let e = expm_sym2(a, b, c, t);
    let mean = [
        center[0] + e[0] * (mu0[0] - center[0]) + e[1] * (mu0[1] - center[1]),
        center[1] + e[2] * (mu0[0] - center[0]) + e[3] * (mu0[1] - center[1]),
    ];
    let s0m = [s0[0] * s0[0], 0.0, 0.0, s0[1] * s0[1]];
    let transported = mul2(&mul2(&e, &s0m), &e);
    let e2 = mul2(&e, &e);
    let det = a * c - b * b;
    let ainv = [c / det, -b / det, -b / det, a / det];
    let ie2 = [1.0 - e2[0], -e2[1], -e2[2], 1.0 - e2[3]];
    let stat = mul2(&ainv, &ie2);
    let cov: Vec<f64> = (0..4).map(|i| transported[i] + stat[i]).collect();
    let (m, cv) = moments(&s, 0);
    let em = (0..2).map(|i| (m[i] - mean[i]).abs()).fold(0.0, f64::max);
    let ec = (0..4).map(|i| (cv[i] - cov[i]).abs()).fold(0.0, f64::max);
    println!(
        "2D n={n:<4} h={h:.4}  mean {m:.6?} exact {mean:.6?}  cov {cv:.6?} exact {cov:.6?}  err mean {em:.2e} cov {ec:.2e}"
    );
    (em, ec, h)
}

fn ou_1d(n: usize) -> (f64, f64, f64) {
    let (k, center, mu0, s0) = (1.0, -0.5, 1.0, 0.4);
    let g = grid(1, n, 7.0);
    let h = g.spacing(0);
    let species = vec![EulerianSpecies {
        name: "ou".into(),
        charge: 0.0,
        diffusion: 1.0,
        exponent: 1.0,
        potential: quadratic(k, vec![center]),
        initial: gaussian_cell_averages(&g, &[mu0], &[s0], 1.0).unwrap(),
    }];
    let mut s = EulerianSolver::new(EulerianProblem {
        grid: g,
        species,
        coupling_strength: 0.0,
    })
    .unwrap();
    for _ in 0..20 {
        s.advance(0.05).unwrap();
    }
    assert!(!s.touches_walls());
    let t: f64 = 1.0;
    let mean = center + (mu0 - center) * (-k * t).exp();
    let var = 1.0 / k + (s0 * s0 - 1.0 / k) * (-2.0 * k * t).exp();
    let (m, v) = moments(&s, 0);
    println!(
        "1D n={n:<4} h={h:.4}  mean {:.8} exact {mean:.8}  var {:.8} exact {var:.8}  err mean {:.2e} var {:.2e}",
        m[0],
        v[0],
        (m[0] - mean).abs(),
        (v[0] - var).abs()
    );
    ((m[0] - mean).abs(), (v[0] - var).abs(), h)
}

/// Tolerances. The time error is negligible (SSP-RK2 with dt <= 0.8 h^2/(2dD): O(dt^2) = O(h^4)).
/// The space error is O(h^2): for U = k/2 |x-c|^2 the Scharfetter–Gummel flux expands as the
/// centered flux plus (Delta^2/12)(D/h)(rho_L - rho_R), Delta = k h (x-c)/D, which biases the
/// mean velocity by about (k^2 h^2/6)(mu - c); integrated to t = 1 from |mu0 - c| = 1.5 this is
/// ~0.16 h^2 (measured: 0.09 h^2 in 1D, 0.065 h^2 in 2D). Covariance errors (cell averages vs
/// point values, O(h^2/12)) measured 0.006 h^2 (1D) and 0.04 h^2 (2D). Asserted:
/// |mean error| <= 0.25 h^2, |covariance error| <= 0.1 h^2, and halving h divides each error by > 3.
#[test]
fn ornstein_uhlenbeck_1d_and_2d_match_exact_gaussian() {
    // (label, run(n) -> (mean error, covariance error, h), the two n).
    type Run = (&'static str, fn(usize) -> (f64, f64, f64), [usize; 2]);
    let runs: [Run; 2] = [("1D", ou_1d, [140, 280]), ("2D", ou_2d, [50, 100])];
    for (label, run, ns) in runs {
        let (m1, c1, h1) = run(ns[0]);
        let (m2, c2, h2) = run(ns[1]);
        for (em, ec, h) in [(m1, c1, h1), (m2, c2, h2)] {
            assert!(
                em <= 0.25 * h * h,
                "{label} h={h}: mean error {em:e} > 0.25 h^2"
            );
            assert!(
                ec <= 0.1 * h * h,
                "{label} h={h}: covariance error {ec:e} > 0.1 h^2"
            );
        }
        assert!(
            m1 / m2 > 3.0 && c1 / c2 > 3.0,
            "{label}: error ratios {} {} not second order",
            m1 / m2,
            c1 / c2
        );
    }
}
