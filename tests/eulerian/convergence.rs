//! Grid self-convergence on smooth problems: e(n) = || rho_n - R rho_2n ||_L1 (R = average of
#![allow(clippy::needless_range_loop)]
//! the 2^d children, exact for cell averages), summed over species, at a fixed time. For a
//! scheme of order p, e(n)/e(2n) -> 2^p; the observed order is log2 of that ratio.
use crate::support::grid::*;
use jko::eulerian::*;

fn run(mut s: EulerianSolver, t_end: f64, steps: usize, background: bool) -> Vec<Vec<f64>> {
    for _ in 0..steps {
        s.advance(t_end / steps as f64).unwrap();
    }
    // With a positive background the walls are touched on purpose (zero-flux walls then matter).
    assert_eq!(s.touches_walls(), background);
    (0..s.num_species())
        .map(|k| s.density(k).to_vec())
        .collect()
}

fn orders(
    label: &str,
    d: usize,
    ns: &[usize],
    half: f64,
    make: &dyn Fn(usize) -> EulerianSolver,
    t_end: f64,
    background: bool,
) -> Vec<f64> {
    let sols: Vec<Vec<Vec<f64>>> = ns
        .iter()
        .map(|&n| run(make(n), t_end, 5, background))
        .collect();
    let mut errs = Vec::new();
    for w in 0..ns.len() - 1 {
        let n = ns[w];
        let dv = (2.0 * half / n as f64).powi(d as i32);
        let e: f64 = (0..sols[w].len())
            .map(|k| {
                let r = restrict(&sols[w + 1][k], n, d);
                sols[w][k]
                    .iter()
                    .zip(&r)
                    .map(|(a, b)| (a - b).abs())
                    .sum::<f64>()
                    * dv
            })
            .sum();
        errs.push(e);
    }
    println!("{label}\n   n    L1 |rho_n - R rho_2n|   order");
    let mut ords = Vec::new();
    for (w, e) in errs.iter().enumerate() {
        if w == 0 {
            println!("{:>5}   {e:.4e}", ns[w]);
        } else {
            let p = (errs[w - 1] / e).log2();
            ords.push(p);
            println!("{:>5}   {e:.4e}             {p:.3}", ns[w]);
        }
    }
    ords
}

#[test]
fn pnp_1d_linear_diffusion_second_order() {
    // Two species of opposite charge, lambda = 2, U = |x|^2/2, D = 1 and 0.5, t = 0.5.
    let o = orders(
        "1D PNP m=1 (Scharfetter–Gummel)",
        1,
        &[40, 80, 160, 320, 640],
        5.0,
        &|n| pnp(1, n, 5.0, 1.0, 2.0, 1.0, 0.5, 1.0),
        0.5,
        false,
    );
    assert!(o.iter().all(|&p| p > 1.8), "orders {o:?}");
}

#[test]
fn porous_1d_positive_data_second_order() {
    // m = 2 upwind-in-xi scheme with MC reconstruction; data bounded away from 0 (smooth),
    // coupled (lambda = 1), t = 0.2.
    let make = |n: usize| {
        let g = grid(1, n, 4.0);
        let base = gaussian_cell_averages(&g, &[0.4], &[0.6], 1.0).unwrap();
        let mk = |name: &str, z: f64, shift: f64| EulerianSpecies {
            name: name.into(),
            charge: z,
            diffusion: 0.5,
            exponent: 2.0,
            potential: quadratic(0.02, vec![shift]),
            initial: base.iter().map(|r| r + 0.3).collect(),
        };
        let species = vec![mk("u", 1.0, 0.0), mk("v", -1.0, 0.5)];
        EulerianSolver::new(EulerianProblem {
            grid: g,
            species,
            coupling_strength: 1.0,
        })
        .unwrap()
    };
    let o = orders(
        "1D porous m=2 (upwind in xi, MC limiter)",
        1,
        &[40, 80, 160, 320, 640],
        4.0,
        &make,
        0.2,
        true,
    );
    assert!(o.iter().all(|&p| p > 1.7), "orders {o:?}");
}

#[test]
fn pnp_2d_linear_diffusion_second_order() {
    let o = orders(
        "2D PNP m=1 (Scharfetter–Gummel)",
        2,
        &[24, 48, 96, 192],
        4.0,
        &|n| pnp(2, n, 4.0, 1.0, 2.0, 0.5, 0.5, 1.0),
        0.1,
        false,
    );
    assert!(o.iter().all(|&p| p > 1.8), "orders {o:?}");
}

#[test]
fn porous_2d_positive_data_second_order() {
    let make = |n: usize| {
        let g = grid(2, n, 3.0);
        let base = gaussian_cell_averages(&g, &[0.4, -0.2], &[0.8, 0.7], 1.0).unwrap();
        let species = vec![EulerianSpecies {
            name: "u".into(),
            charge: 1.0,
            diffusion: 0.5,
            exponent: 2.0,
            potential: Box::new(|_: &[f64]| 0.0),
            initial: base.iter().map(|r| r + 0.3).collect(),
        }];
        EulerianSolver::new(EulerianProblem {
            grid: g,
            species,
            coupling_strength: -1.0,
        })
        .unwrap()
    };
    let o = orders(
        "2D porous m=2, attractive (upwind in xi, MC limiter)",
        2,
        &[24, 48, 96, 192],
        3.0,
        &make,
        0.1,
        true,
    );
    assert!(o.iter().all(|&p| p > 1.7), "orders {o:?}");
}
