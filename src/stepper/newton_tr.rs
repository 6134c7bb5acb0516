//! Truncated Newton in a trust region (Steihaug-CG) for an unconstrained JKO
//! step, Hessian-vector products by forward differences of gradients as in
//! [`super::newton`]. Experiment for the nonconvex first step (issue 19 item
//! 3): at an iid cloud J has directions of negative curvature (smallest
//! eigenvalue about -16 in the scaled variables), where a line-search Newton
//! truncates CG at the first such direction and crawls; Steihaug's CG
//! follows it to the trust-region boundary instead.
//!
//! CG on H p = -g from p = 0 stops at the boundary |p| = Delta (on a direction
//! of non-positive curvature, or when the next iterate would leave the
//! region), or when |H p + g| <= max(eta |g|, tolerance / 2). The model
//! m(p) = g.p + p.H.p/2 is tracked along CG; the step is accepted when the
//! actual decrease is at least 1e-4 of the predicted one; the radius is
//! quartered when the ratio is below 1/4 and doubled when it is above 3/4 at
//! the boundary.

use super::projected::{Objective, Outcome, Refusal};
use crate::util::parallel::sum_indexed;

const DIFFERENCE_STEP: f64 = 1e-5;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    sum_indexed(a.len(), |k| a[k] * b[k])
}

/// tau >= 0 with |z + tau d| = radius.
fn to_boundary(z: &[f64], d: &[f64], radius: f64) -> f64 {
    let (a, b, c) = (dot(d, d), 2.0 * dot(z, d), dot(z, z) - radius * radius);
    (-b + (b * b - 4.0 * a * c).max(0.0).sqrt()) / (2.0 * a)
}

/// Minimizes J from `y0` until |grad J| <= `tolerance`, at most
/// `max_iterations` outer iterations.
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
    // The explicit step's length: the Hessian of J is about I.
    let mut radius = g_start;
    let mut curvature: f64 = 1.0;
    let (mut p, mut r, mut d, mut hd, mut trial) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
    );
    let trace = std::env::var_os("JKO_NEWTON_TRACE").is_some();
    let mut rejected = 0;
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
        p.fill(0.0);
        r.copy_from_slice(&g);
        for k in 0..n {
            d[k] = -r[k];
        }
        let mut rr = gnorm * gnorm;
        let mut model = 0.0;
        let mut products = 0;
        let mut boundary = false;
        loop {
            let dnorm = dot(&d, &d).sqrt();
            let delta = DIFFERENCE_STEP * (n as f64).sqrt() / dnorm;
            for k in 0..n {
                trial[k] = y[k] + delta * d[k];
            }
            let gd = match f.evaluate(&trial) {
                Ok((_, gd)) => gd,
                Err(Refusal::TooFar(why) | Refusal::Stop(why)) => {
                    return give_up(iteration, why, curvature);
                }
            };
            for k in 0..n {
                hd[k] = (gd[k] - g[k]) / delta;
            }
            products += 1;
            let dhd = dot(&d, &hd);
            let rd = dot(&r, &d);
            let alpha = if dhd > 0.0 { rr / dhd } else { f64::INFINITY };
            if dhd > 0.0 {
                curvature = curvature.max(dhd / (dnorm * dnorm));
            }
            // Would the CG step leave the region (or is the curvature not positive)?
            let leaves = dhd <= 0.0 || {
                let z2: f64 = sum_indexed(n, |k| (p[k] + alpha * d[k]).powi(2));
                z2.sqrt() >= radius
            };
            if leaves {
                let tau = to_boundary(&p, &d, radius);
                for k in 0..n {
                    p[k] += tau * d[k];
                }
                model += tau * rd + 0.5 * tau * tau * dhd;
                boundary = true;
                break;
            }
            model += alpha * rd + 0.5 * alpha * alpha * dhd;
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
        for k in 0..n {
            trial[k] = y[k] + p[k];
        }
        let pnorm = dot(&p, &p).sqrt();
        let (ratio, next) = match f.evaluate(&trial) {
            Ok((ft, gt)) => ((ft - fy) / model, Some((ft, gt))),
            Err(Refusal::TooFar(_)) => (-1.0, None),
            Err(Refusal::Stop(why)) => return give_up(iteration, why, curvature),
        };
        if trace {
            eprintln!(
                "tr {iteration}: |g| {gnorm:.3e} radius {radius:.3e} |p| {pnorm:.3e} products {products} boundary {boundary} ratio {ratio:.3}"
            );
        }
        if ratio < 0.25 {
            radius = 0.25 * pnorm;
        } else if ratio > 0.75 && boundary {
            radius *= 2.0;
        }
        match next {
            Some((ft, gt)) if ratio > 1e-4 && ft < fy => {
                y.copy_from_slice(&trial);
                fy = ft;
                g = gt;
                rejected = 0;
            }
            _ => {
                rejected += 1;
                if rejected > 30 {
                    return give_up(
                        iteration,
                        "the trust region shrank to nothing".into(),
                        curvature,
                    );
                }
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
