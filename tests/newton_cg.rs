//! `[solver] method = "newton-cg"` (truncated Newton, `jko::stepper::newton`):
//! its Hessian-vector product against the exact one, the minimization on a
//! convex quadratic and a nonconvex function, and a small PNP run against
//! the default L-BFGS (same steps to the tolerance, energy decreasing).

use std::path::Path;

use jko::stepper::newton::{self, Stiff};
use jko::stepper::projected::{Objective, Refusal};
use jko::{Scenario, Simulation};

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

/// J(y) = y.A.y/2 - b.y with A = I + c L, L the 1D periodic Laplacian
/// stencil (2, -1, -1): symmetric positive definite, condition 1 + 4c.
struct Quadratic {
    c: f64,
    b: Vec<f64>,
}

impl Quadratic {
    fn apply(&self, y: &[f64]) -> Vec<f64> {
        let n = y.len();
        (0..n)
            .map(|k| y[k] + self.c * (2.0 * y[k] - y[(k + 1) % n] - y[(k + n - 1) % n]))
            .collect()
    }
}

impl Objective for Quadratic {
    fn evaluate(&mut self, y: &[f64]) -> Result<(f64, Vec<f64>), Refusal> {
        let ay = self.apply(y);
        let g: Vec<f64> = ay.iter().zip(&self.b).map(|(a, b)| a - b).collect();
        Ok((0.5 * dot(y, &ay) - dot(&self.b, y), g))
    }
}

impl Stiff for Quadratic {
    fn stiff_gradient(&mut self, y: &[f64]) -> Option<Vec<f64>> {
        Some(self.evaluate(y).unwrap().1)
    }
}

fn pseudo_random(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

/// The difference product equals A d on random y and d (to the difference's
/// rounding, 1e-6 relative), and so is symmetric: u.(H v) = v.(H u).
#[test]
fn the_difference_product_is_the_hessian_product() {
    let n = 200;
    let mut q = Quadratic {
        c: 4.0,
        b: pseudo_random(n, 1),
    };
    let y = pseudo_random(n, 2);
    let base = q.stiff_gradient(&y).unwrap();
    let mut trial = vec![0.0; n];
    let product = |q: &mut Quadratic, d: &[f64], trial: &mut Vec<f64>| {
        let mut out = vec![0.0; n];
        newton::difference_product(q, &y, &base, d, trial, &mut out).unwrap();
        out
    };
    let (u, v) = (pseudo_random(n, 3), pseudo_random(n, 4));
    for d in [&u, &v] {
        let exact = q.apply(d);
        let hd = product(&mut q, d, &mut trial);
        let err: f64 = hd.iter().zip(&exact).map(|(a, b)| (a - b).powi(2)).sum();
        assert!(
            err.sqrt() <= 1e-6 * dot(&exact, &exact).sqrt(),
            "|Hd - Ad| = {}",
            err.sqrt()
        );
    }
    let (hu, hv) = (
        product(&mut q, &u, &mut trial),
        product(&mut q, &v, &mut trial),
    );
    let (a, b) = (dot(&u, &hv), dot(&v, &hu));
    assert!((a - b).abs() <= 1e-6 * a.abs().max(b.abs()), "{a} vs {b}");
    // Positive definite, as A: v.Hv > 0.
    assert!(dot(&v, &hv) > 0.0);
}

/// On a quadratic of condition 33, Newton-CG meets the tolerance at y = A^-1 b
/// (the error is at most |grad| / lambda_min = the tolerance).
#[test]
fn newton_cg_minimizes_a_quadratic() {
    let n = 300;
    let mut q = Quadratic {
        c: 8.0,
        b: pseudo_random(n, 5),
    };
    let tolerance = 1e-10;
    let y0 = vec![0.0; n];
    let out = newton::minimize(&mut q, &y0, 100, tolerance);
    assert!(!out.failed, "{}", out.termination);
    assert!(out.iterations <= 10, "{} iterations", out.iterations);
}

/// The extended Rosenbrock function, nonconvex (negative curvature away
/// from the valley): Newton-CG reaches its minimizer (1, ..., 1).
/// The lowest point evaluated is kept, to read the minimizer off.
struct Rosenbrock {
    best: (f64, Vec<f64>),
}

impl Objective for Rosenbrock {
    fn evaluate(&mut self, y: &[f64]) -> Result<(f64, Vec<f64>), Refusal> {
        let (f, g) = rosenbrock(y);
        if f < self.best.0 {
            self.best = (f, y.to_vec());
        }
        Ok((f, g))
    }
}

fn rosenbrock(y: &[f64]) -> (f64, Vec<f64>) {
    {
        let n = y.len();
        let (mut f, mut g) = (0.0, vec![0.0; n]);
        for k in (0..n).step_by(2) {
            let (a, b) = (y[k], y[k + 1]);
            f += (1.0 - a).powi(2) + 10.0 * (b - a * a).powi(2);
            g[k] += -2.0 * (1.0 - a) - 40.0 * a * (b - a * a);
            g[k + 1] += 20.0 * (b - a * a);
        }
        (f, g)
    }
}

impl Stiff for Rosenbrock {
    fn stiff_gradient(&mut self, y: &[f64]) -> Option<Vec<f64>> {
        Some(rosenbrock(y).1)
    }
}

#[test]
fn newton_cg_minimizes_a_nonconvex_function() {
    let n = 20;
    let y0: Vec<f64> = (0..n)
        .map(|k| if k % 2 == 0 { -1.2 } else { 1.0 })
        .collect();
    let mut f = Rosenbrock {
        best: (f64::INFINITY, Vec::new()),
    };
    let out = newton::minimize(&mut f, &y0, 500, 1e-9);
    assert!(!out.failed, "{}", out.termination);
    assert!(out.termination.contains("tolerance"), "{}", out.termination);
    // The only stationary point is (1, ..., 1), the Hessian there has
    // smallest eigenvalue ~0.4: a gradient of 1e-9 puts y within ~1e-8.
    let y = &f.best.1;
    assert!(y.iter().all(|v| (v - 1.0).abs() <= 1e-7), "{y:?}");
}

/// A small 2D PNP (2 x 300 particles, h D / eps^2 = 4, so the blob energy is
/// stiff, the tree coupling) stepped with L-BFGS and with Newton-CG at
/// tolerance 1e-8: every step lowers the energy, and the positions agree to
/// 1e-5 of the step's own length in the transport metric.
#[test]
fn newton_cg_takes_the_same_steps_as_lbfgs() {
    let text = |method: &str| {
        format!(
            "dimension = 2\ntime_step = 0.01\nsteps = 3\nseed = 3\n\
             [coupling]\nstrength = 1.0\nmethod = \"tree\"\naccuracy = 1e-6\nsoftening = 0.02\n\
             [density]\nbandwidth = 0.05\n\
             [solver]\ntolerance = 1e-8\nmethod = \"{method}\"\n\
             [[species]]\nname = \"u\"\ncharge = 1.0\nparticles = 300\n\
             potential = {{ kind = \"quadratic\", center = [0.0, 0.0], stiffness = 1.0 }}\n\
             initial = {{ kind = \"gaussian\", sampling = \"quasi\", mean = [0.5, 0.0], std = 0.3 }}\n\
             [[species]]\nname = \"v\"\ncharge = -1.0\nparticles = 300\n\
             potential = {{ kind = \"quadratic\", center = [0.0, 0.0], stiffness = 1.0 }}\n\
             initial = {{ kind = \"gaussian\", sampling = \"quasi\", mean = [-0.5, 0.0], std = 0.3 }}\n"
        )
    };
    let scenario = |m: &str| Scenario::from_toml(&text(m), Path::new("test.toml")).unwrap();
    let (sl, sn) = (scenario("lbfgs"), scenario("newton-cg"));
    // Energy decay at every step, from the sampled cloud (J is not convex
    // there: the first step may end in another local minimizer than
    // L-BFGS's, so the positions are compared from X^2 on, below).
    let mut newton = Simulation::<2>::new(&sn).unwrap();
    let mut energy = newton.initial_report().unwrap().parts.total();
    for step in 1..=3 {
        let rn = newton.advance().unwrap();
        assert!(rn.converged, "step {step}: {}", rn.termination);
        let e = rn.parts.total();
        assert!(e < energy, "step {step}: energy {e} after {energy}");
        energy = e;
    }
    let mut lbfgs = Simulation::<2>::new(&sl).unwrap();
    lbfgs.advance().unwrap();
    lbfgs.advance().unwrap();
    let w = lbfgs.cloud.weights.clone();
    for step in 3..=4 {
        newton.cloud.positions.clone_from(&lbfgs.cloud.positions);
        let rl = lbfgs.advance().unwrap();
        let rn = newton.advance().unwrap();
        assert!(rn.converged, "step {step}: {}", rn.termination);
        let diff: f64 = (0..w.len())
            .map(|i| {
                let (a, b) = (lbfgs.cloud.positions[i], newton.cloud.positions[i]);
                w[i] * ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2))
            })
            .sum::<f64>()
            .sqrt();
        assert!(
            diff <= 1e-5 * rl.w2_step,
            "step {step}: positions differ by {diff:e} (W2 step {:e})",
            rl.w2_step
        );
        let (el, en) = (rl.parts.total(), rn.parts.total());
        assert!((el - en).abs() <= 1e-7 * el.abs().max(1.0), "{el} vs {en}");
    }
}
