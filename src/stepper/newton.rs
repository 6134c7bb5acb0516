//! Truncated Newton (line-search Newton-CG) for an unconstrained JKO step,
//! with Hessian-vector products by differences of gradients.
//!
//! Each outer iteration at Y with gradient g = dJ/dY solves the Newton system
//! H p = -g inexactly by conjugate gradients, H = I + s^2 Hess E the Hessian of
//! J in the scaled displacements of [`super::step`]; a product H d is the
//! forward difference
//!
//!   H d ~ (g(Y + delta d) - g(Y)) / delta,   |delta d| = DIFFERENCE_STEP sqrt(len),
//!
//! one gradient evaluation (the first-order error delta |d^3 J| is below the
//! CG's own tolerance for the small delta used; the rounding error grows like
//! 1/delta, hence not smaller). CG stops when its residual |H p + g| is below
//! eta |g|, with the forcing term eta = min(1/2, sqrt(|g| / |g_0|)) (superlinear
//! convergence: loose far from the minimizer, tight near it), or at the first
//! direction of non-positive curvature (then the last iterate, or -g if there
//! is none). An Armijo backtracking search along p (t = 1, 1/2, ...) gives the
//! next point; a trial where J is not finite counts as too long a step.
//!
//! The cost is the number of gradient evaluations: one per CG iteration plus
//! one per trial point. With the Hessian's spectrum in [lambda_min, lambda_max]
//! CG reduces the residual by about (sqrt(k) - 1)/(sqrt(k) + 1) per product,
//! k = lambda_max / lambda_min, the best a Krylov method without a
//! preconditioner can do on a quadratic; L-BFGS on the same problem is no
//! better and the question this module answers (BENCHMARKS.md, "Stiff steps:
//! preconditioning") is whether the nonlinear first steps, where L-BFGS takes
//! twice the iterations of later steps, do better with exact Newton
//! directions.

use super::projected::{Objective, Outcome, Refusal};
use crate::util::parallel::sum_indexed;

/// Sufficient-decrease constant of the Armijo search.
const C1: f64 = 1e-4;

/// Halvings of the trial step before the search gives up.
const MAX_BACKTRACKS: usize = 30;

/// RMS per coordinate of the difference step delta d (scaled displacements,
/// about 1e-4 of a typical step's displacement per coordinate in the bench
/// scenarios).
const DIFFERENCE_STEP: f64 = 1e-7;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    sum_indexed(a.len(), |k| a[k] * b[k])
}

/// Minimizes J from `y0` until |grad J| <= `tolerance`, at most
/// `max_iterations` Newton iterations; `Outcome::iterations` counts Newton
/// iterations, the CG products are gradient evaluations of `f`.
pub fn minimize(
    f: &mut dyn Objective,
    y0: &[f64],
    max_iterations: usize,
    tolerance: f64,
) -> Outcome {
    let give_up = |iterations: u64, why: String, curvature: f64| Outcome {
        iterations,
        termination: why,
        failed: true,
        curvature,
    };
    let n = y0.len();
    let mut y = y0.to_vec();
    let (mut fy, mut g) = match f.evaluate(&y) {
        Ok(v) => v,
        Err(Refusal::TooFar(why) | Refusal::Stop(why)) => return give_up(0, why, 1.0),
    };
    let g_start = dot(&g, &g).sqrt();
    let mut curvature: f64 = 1.0;
    let (mut p, mut r, mut d, mut hd, mut trial) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
    );
    for iteration in 0..max_iterations as u64 {
        let gnorm = dot(&g, &g).sqrt();
        if gnorm <= tolerance {
            return Outcome {
                iterations: iteration,
                termination: "gradient below the tolerance".into(),
                failed: false,
                curvature,
            };
        }
        let eta_max: f64 = std::env::var("JKO_NEWTON_ETA")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.5);
        let eta = (gnorm / g_start).sqrt().min(eta_max);
        // CG on H p = -g from p = 0: residual r = H p + g, direction d.
        p.fill(0.0);
        r.copy_from_slice(&g);
        for k in 0..n {
            d[k] = -r[k];
        }
        let mut rr = gnorm * gnorm;
        let mut products = 0;
        let mut negative = false;
        // The residual of the Newton system is about the next gradient: no
        // need to solve it below the stopping tolerance.
        let target = (eta * gnorm).max(0.5 * tolerance);
        loop {
            let dnorm = dot(&d, &d).sqrt();
            let step: f64 = std::env::var("JKO_NEWTON_DELTA")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(DIFFERENCE_STEP);
            let central = std::env::var_os("JKO_NEWTON_CENTRAL").is_some();
            let delta = step * (n as f64).sqrt() / dnorm;
            for k in 0..n {
                trial[k] = y[k] + delta * d[k];
            }
            let gd = match f.evaluate(&trial) {
                Ok((_, gd)) => gd,
                Err(Refusal::TooFar(why) | Refusal::Stop(why)) => {
                    return give_up(iteration, why, curvature);
                }
            };
            if central {
                for k in 0..n {
                    trial[k] = y[k] - delta * d[k];
                }
                let gm = match f.evaluate(&trial) {
                    Ok((_, gm)) => gm,
                    Err(Refusal::TooFar(why) | Refusal::Stop(why)) => {
                        return give_up(iteration, why, curvature);
                    }
                };
                for k in 0..n {
                    hd[k] = (gd[k] - gm[k]) / (2.0 * delta);
                }
            } else {
                for k in 0..n {
                    hd[k] = (gd[k] - g[k]) / delta;
                }
            }
            products += 1;
            let dhd = dot(&d, &hd);
            if dhd <= 0.0 {
                negative = true;
                if products == 1 {
                    p.copy_from_slice(&d);
                }
                break;
            }
            curvature = curvature.max(dhd / (dnorm * dnorm));
            let alpha = rr / dhd;
            for k in 0..n {
                p[k] += alpha * d[k];
                r[k] += alpha * hd[k];
            }
            let rr_new = dot(&r, &r);
            if rr_new.sqrt() <= target || products >= n {
                break;
            }
            let beta = rr_new / rr;
            rr = rr_new;
            for k in 0..n {
                d[k] = -r[k] + beta * d[k];
            }
        }
        // Armijo backtracking along p.
        let slope = dot(&g, &p);
        if slope >= 0.0 {
            return give_up(
                iteration,
                "the Newton-CG direction is not a descent direction".into(),
                curvature,
            );
        }
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..MAX_BACKTRACKS {
            for k in 0..n {
                trial[k] = y[k] + t * p[k];
            }
            match f.evaluate(&trial) {
                Ok((ft, gt)) if ft <= fy + C1 * t * slope && ft < fy => {
                    accepted = Some((ft, gt));
                    break;
                }
                Ok(_) | Err(Refusal::TooFar(_)) => t *= 0.5,
                Err(Refusal::Stop(why)) => return give_up(iteration, why, curvature),
            }
        }
        if std::env::var_os("JKO_NEWTON_TRACE").is_some() {
            eprintln!(
                "newton {iteration}: |g| {gnorm:.3e} eta {eta:.2e} products {products} t {t} curvature {curvature:.2} negative {}",
                negative
            );
        }
        match accepted {
            Some((ft, gt)) => {
                y.copy_from_slice(&trial);
                fy = ft;
                g = gt;
            }
            None => {
                return give_up(
                    iteration,
                    "line search failed along the Newton-CG direction".into(),
                    curvature,
                );
            }
        }
    }
    Outcome {
        iterations: max_iterations as u64,
        termination: "iteration cap reached".into(),
        failed: false,
        curvature,
    }
}
