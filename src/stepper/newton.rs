//! Truncated Newton (line-search Newton-CG) for an unconstrained JKO step,
//! with Hessian-vector products of the stiff terms only, by differences of
//! their gradients (`[solver] method = "newton-cg"`).
//!
//! Each outer iteration at Y with gradient g = dJ/dY (all of E) solves the
//! Newton system H' p = -g inexactly by conjugate gradients, where
//!
//!   H' = I + s^2 Hess E',   H' d ~ (g'(Y + delta d) - g'(Y)) / delta,
//!
//! E' is E without the interaction term and g' = Y + s dE'/dX its part of the
//! gradient ([`Stiff`]); |delta d| = DIFFERENCE_STEP sqrt(len). Why leave the
//! interaction out of H': it is the costly term (the multipole tree: 10-15
//! times the blob density's evaluation at 1e4 particles per species) and the
//! weakly curved one (its part of H is about h lambda sum_k q_k^2 rho_k, a few
//! percent of I in the bench scenarios), while the blob energy sets the
//! spectrum (h D / eps^2 large, BENCHMARKS.md "Stiff steps"). So a product
//! costs one evaluation of the cheap terms, the Newton step is that of a
//! Hessian within a few percent of the true one (linear convergence at about
//! that rate near the minimizer), and full evaluations are spent only on the
//! line search.
//!
//! CG stops when its residual |H' p + g| is at most max(eta |g|, tolerance/2),
//! eta = min(1/2, sqrt(|g| / |g_0|)) (loose far from the minimizer, tight near
//! it; the residual is about the next gradient, so never below the stopping
//! tolerance), or at the first direction of non-positive curvature (J is not
//! convex at an iid cloud: BENCHMARKS.md), with the last iterate, or -g if
//! there is none. An Armijo backtracking search along p (t = 1, 1/2, ...)
//! gives the next point; a trial where J is not finite counts as too long a
//! step. The forward difference's error is delta times the third derivative;
//! its rounding error grows like 1/delta: DIFFERENCE_STEP = 1e-7 (per
//! coordinate, in the scaled units, about 1e-6 of a particle's step) was the
//! best of 1e-7 ... 1e-3 measured, and the mesh density estimator (piecewise
//! interpolation) wants it small.

use super::projected::{Objective, Outcome, Refusal};
use crate::util::parallel::sum_indexed;

/// Sufficient-decrease constant of the Armijo search.
const C1: f64 = 1e-4;

/// Halvings of the trial step before the search gives up.
const MAX_BACKTRACKS: usize = 30;

/// RMS per coordinate of the difference step delta d (scaled displacements).
const DIFFERENCE_STEP: f64 = 1e-7;

/// The gradient of the objective's stiff, cheap part, for Hessian-vector
/// products (the whole objective is a valid, slower choice).
pub trait Stiff {
    /// dJ'/dY at `y` (J without its costly, weakly curved terms), or `None`
    /// if it is not finite there.
    fn stiff_gradient(&mut self, y: &[f64]) -> Option<Vec<f64>>;
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    sum_indexed(a.len(), |k| a[k] * b[k])
}

/// H' d by the forward difference of the stiff gradient: `base` is
/// g'(y); writes (g'(y + delta d) - g'(y)) / delta into `out` (`trial` is
/// scratch), or `None` if g' is not finite at y + delta d.
pub fn difference_product<F: Stiff + ?Sized>(
    f: &mut F,
    y: &[f64],
    base: &[f64],
    d: &[f64],
    trial: &mut [f64],
    out: &mut [f64],
) -> Option<()> {
    let n = y.len();
    let delta = DIFFERENCE_STEP * (n as f64).sqrt() / dot(d, d).sqrt();
    for k in 0..n {
        trial[k] = y[k] + delta * d[k];
    }
    let gd = f.stiff_gradient(trial)?;
    for k in 0..n {
        out[k] = (gd[k] - base[k]) / delta;
    }
    Some(())
}

/// Minimizes J from `y0` until |grad J| <= `tolerance`, at most
/// `max_iterations` Newton iterations (`Outcome::iterations` counts them; the
/// CG products are evaluations of [`Stiff::stiff_gradient`]).
pub fn minimize<F: Objective + Stiff>(
    f: &mut F,
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
    let not_finite = "the stiff part's gradient is not finite".to_string();
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
        let eta = (gnorm / g_start).sqrt().min(0.5);
        let target = (eta * gnorm).max(0.5 * tolerance);
        let Some(base) = f.stiff_gradient(&y) else {
            return give_up(iteration, not_finite, curvature);
        };
        // CG on H' p = -g from p = 0: residual r = H' p + g, direction d.
        p.fill(0.0);
        r.copy_from_slice(&g);
        for k in 0..n {
            d[k] = -r[k];
        }
        let mut rr = gnorm * gnorm;
        let mut products = 0;
        loop {
            let dnorm = dot(&d, &d).sqrt();
            if difference_product(f, &y, &base, &d, &mut trial, &mut hd).is_none() {
                return give_up(iteration, not_finite, curvature);
            }
            products += 1;
            let dhd = dot(&d, &hd);
            if dhd <= 0.0 {
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
        let Some((ft, gt)) = accepted else {
            return give_up(
                iteration,
                "line search failed along the Newton-CG direction".into(),
                curvature,
            );
        };
        y.copy_from_slice(&trial);
        fy = ft;
        g = gt;
    }
    Outcome {
        iterations: max_iterations as u64,
        termination: "iteration cap reached".into(),
        failed: false,
        curvature,
    }
}
