//! Bound-constrained minimization for a JKO step in a box: projected L-BFGS
//! with an active set.
//!
//! The step minimizes J(Y) over the box lo <= Y <= hi (per coordinate; the
//! box [lower, upper] of the domain in the scaled displacements of
//! [`super::step`]). With P the projection onto the box, an iteration:
//!
//! 1. the active set A = { k : Y_k = lo_k and g_k > 0, or Y_k = hi_k and g_k < 0 }
//!    (the coordinates held at a wall by a gradient pushing outward);
//! 2. the direction d = -H g on the free coordinates, H the L-BFGS inverse
//!    Hessian from the last m pairs (two-loop recursion), d_k = 0 on A; if d
//!    is not a descent direction the memory is dropped and d = -g (free);
//! 3. a backtracking (Armijo) search along the projected path
//!    Y(t) = P(Y + t d), t = 1, 1/2, ..., accepting the first t with
//!    J(Y(t)) <= J(Y) + c1 g . (Y(t) - Y) and J(Y(t)) < J(Y) (a decrease
//!    J's rounding hides is none); a trial where J cannot be evaluated
//!    (non-finite: beyond close packing) counts as too long a step;
//! 4. the pair (s, r) = (Y(t) - Y, g(t) - g) is kept when s . r > 0 (the
//!    curvature condition, which keeps H positive definite). A search that
//!    fails along the quasi-Newton direction drops the memory and tries the
//!    steepest descent; one that fails along the steepest descent ends the
//!    minimization.
//!
//! It stops when the projected gradient Y - P(Y - g) is below the tolerance:
//! that is the first-order (KKT) condition of the bound-constrained problem,
//! zero exactly at a constrained minimizer. Every trial point is feasible, so
//! no particle ever leaves the box, and every accepted iteration lowers J.
//!
//! Under a team of several members (MPI ranks) each member holds its part
//! of every vector (its range of a `util::shard::Cut`: Y, the gradient, the direction,
//! the history), and every dot product and norm is summed over fixed chunks
//! in order and shared (`util::shard::sum_parts`): the single process's
//! sums, so every member takes the same decisions with the same bits. The
//! objective gathers the whole Y itself.
//!
//! Why this and not L-BFGS-B: L-BFGS-B's generalized Cauchy point search
//! handles many bounds becoming active at once more cleverly, but its only
//! Rust bindings build C with bindgen (libclang), which a fresh machine with
//! only the Rust toolchain lacks; with the scaled variables the Hessian of J
//! is close to the identity, so the projected step with t = 1 is already
//! well scaled and few particles sit at a wall at any time.

use crate::util::shard::{Cut, sum_parts};
use crate::util::team::{Solo, Team};

/// Sufficient-decrease constant of the Armijo search.
const C1: f64 = 1e-4;

/// Halvings of the trial step before the search gives up (t = 2^-30: in
/// the scaled variables the Hessian is about the identity, so a direction
/// that needs a smaller step is no descent direction to rounding).
const MAX_BACKTRACKS: usize = 30;

/// The box of one minimization, per coordinate.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// Lower bounds lo_k (may be -inf).
    pub lo: Vec<f64>,
    /// Upper bounds hi_k >= lo_k (may be +inf).
    pub hi: Vec<f64>,
}

impl Bounds {
    /// Projects `y` onto the box.
    pub fn project(&self, y: &mut [f64]) {
        self.whole().project(y);
    }

    /// Collective: |Y - P(Y - g)|, the norm of the projected gradient
    /// (`g(k)` its component k, asked for the components of this member's
    /// range of `cut` only), each member summing its own range (the single
    /// process's sum to the bit).
    pub fn projected_gradient_norm(
        &self,
        team: &dyn Team,
        cut: &Cut,
        y: &[f64],
        g: impl Fn(usize) -> f64 + Sync,
    ) -> f64 {
        let (own, part) = self.part(team, cut);
        part.projected_gradient_norm(&y[own.clone()], |k| g(own.start + k))
    }

    /// This member's range of the coordinates under `cut`, and its part of
    /// the box.
    fn part<'a>(&'a self, team: &'a dyn Team, cut: &Cut) -> (std::ops::Range<usize>, Part<'a>) {
        let own = cut.own(team);
        let part = Part {
            team,
            cut: cut.clone(),
            lo: &self.lo[own.clone()],
            hi: &self.hi[own.clone()],
        };
        (own, part)
    }

    fn whole(&self) -> Part<'_> {
        Part {
            team: &Solo,
            cut: Cut::even(self.lo.len(), 1),
            lo: &self.lo,
            hi: &self.hi,
        }
    }
}

/// A member's part of the box (its range of the coordinates under a
/// [`Cut`]), and the team's reductions over the parts.
struct Part<'a> {
    team: &'a dyn Team,
    /// How the whole vector is divided.
    cut: Cut,
    lo: &'a [f64],
    hi: &'a [f64],
}

impl Part<'_> {
    fn project(&self, y: &mut [f64]) {
        for ((v, &l), &h) in y.iter_mut().zip(self.lo).zip(self.hi) {
            *v = v.clamp(l, h);
        }
    }

    /// Collective: sum over the whole vector of `f(k)`, k local.
    fn sum(&self, f: impl Fn(usize) -> f64 + Sync) -> f64 {
        sum_parts(self.team, &self.cut, f)
    }

    fn dot(&self, a: &[f64], b: &[f64]) -> f64 {
        self.sum(|k| a[k] * b[k])
    }

    fn projected_gradient_norm(&self, y: &[f64], g: impl Fn(usize) -> f64 + Sync) -> f64 {
        self.sum(|k| {
            let p = y[k] - (y[k] - g(k)).clamp(self.lo[k], self.hi[k]);
            p * p
        })
        .sqrt()
    }

    fn is_active(&self, k: usize, y: f64, g: f64) -> bool {
        (y <= self.lo[k] && g > 0.0) || (y >= self.hi[k] && g < 0.0)
    }
}

/// Why the objective gave no value at a point.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// J is not finite there (beyond close packing, say): a trial point of
    /// the line search that is too far; shorter steps are tried.
    TooFar(String),
    /// The minimization must end here (an error, an interrupt, or the
    /// objective's own signal that a trial point met the tolerance).
    Stop(String),
}

/// What the minimization needs of the objective: J and its gradient at a
/// feasible point, or why it has none.
pub trait Objective {
    /// (J(Y), this member's part of grad J(Y)), or why not, where `y` is this
    /// member's part of Y (all of it for a team of one; module docs).
    fn evaluate(&mut self, y: &[f64]) -> Result<(f64, Vec<f64>), Refusal>;
}

/// How a minimization ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Iterations taken.
    pub iterations: u64,
    /// Why it stopped.
    pub termination: String,
    /// Whether it gave up (an evaluation error or a failed line search)
    /// rather than meeting the tolerance or the iteration cap.
    pub failed: bool,
    /// The largest curvature r.r / s.r seen over the accepted pairs (1
    /// without pairs): with the Hessian's largest eigenvalue about this, a
    /// point of gradient g can lower J by only about g^2 / (2 curvature), so
    /// the rounding floor of the gradient grows like its square root.
    pub curvature: f64,
}

/// Minimizes `f` over `bounds` from `y0` (projected first) with memory
/// `memory`, until the projected gradient norm is at most `tolerance` or
/// after `max_iterations` iterations. Collective over the team of
/// `(team, cut)`, whose members all pass the same arguments and hold their
/// ranges of `cut` of every vector (module docs).
pub fn minimize(
    f: &mut dyn Objective,
    bounds: &Bounds,
    y0: &[f64],
    memory: usize,
    max_iterations: usize,
    tolerance: f64,
    (team, cut): (&dyn Team, &Cut),
) -> Outcome {
    let (own, bounds) = bounds.part(team, cut);
    let mut y = y0[own].to_vec();
    bounds.project(&mut y);
    let (mut fy, mut g) = match f.evaluate(&y) {
        Ok(v) => v,
        Err(Refusal::TooFar(why) | Refusal::Stop(why)) => return give_up(0, why, 1.0),
    };
    let n = y.len();
    let mut pairs: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    let (mut d, mut trial, mut free) = (vec![0.0; n], vec![0.0; n], vec![false; n]);
    // The next (s, r) pair is computed here, so no iteration allocates.
    let mut spare: (Vec<f64>, Vec<f64>) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut curvature: f64 = 1.0;
    for iteration in 0..max_iterations as u64 {
        if bounds.projected_gradient_norm(&y, |k| g[k]) <= tolerance {
            return Outcome {
                iterations: iteration,
                termination: "projected gradient below the tolerance".into(),
                failed: false,
                curvature,
            };
        }
        for k in 0..n {
            free[k] = !bounds.is_active(k, y[k], g[k]);
        }
        direction(&bounds, &pairs, &g, &free, &mut d);
        let mut slope = bounds.dot(&g, &d);
        if !(slope < 0.0) {
            pairs.clear();
            for k in 0..n {
                d[k] = if free[k] { -g[k] } else { 0.0 };
            }
            slope = bounds.dot(&g, &d);
            if !(slope < 0.0) {
                // Every coordinate is held at a wall: a constrained stationary point.
                return Outcome {
                    iterations: iteration,
                    termination: "every moving coordinate is at a wall".into(),
                    failed: false,
                    curvature,
                };
            }
        }
        let mut t = 1.0;
        let mut accepted = None;
        // A trial J cannot be evaluated at (a non-finite energy: beyond close
        // packing, a mesh refusing the spread) is too far: shorter steps are
        // tried, and its reason reported only if every one fails.
        let mut refused: Option<String> = None;
        for _ in 0..MAX_BACKTRACKS {
            for k in 0..n {
                trial[k] = y[k] + t * d[k];
            }
            bounds.project(&mut trial);
            let (ft, gt) = match f.evaluate(&trial) {
                Ok(v) => v,
                Err(Refusal::TooFar(why)) => {
                    refused = Some(why);
                    t *= 0.5;
                    continue;
                }
                Err(Refusal::Stop(why)) => return give_up(iteration, why, curvature),
            };
            let moved = bounds.sum(|k| g[k] * (trial[k] - y[k]));
            // A decrease must show in J: a trial whose J equals J(Y) to the
            // last bit passes the Armijo test when c1 g.s is below J's
            // rounding, and accepting it would stall the iteration at Y.
            if ft <= fy + C1 * moved && ft < fy && ft.is_finite() {
                accepted = Some((ft, gt));
                break;
            }
            t *= 0.5;
        }
        let Some((ft, gt)) = accepted else {
            if !pairs.is_empty() {
                // The quasi-Newton model misled the search: start it again
                // from the steepest descent.
                pairs.clear();
                continue;
            }
            let why = match refused {
                Some(why) => format!("line search failed: {why}"),
                None => {
                    "line search failed: no sufficient decrease along the projected path".into()
                }
            };
            return give_up(iteration, why, curvature);
        };
        let (s, r) = &mut spare;
        s.clear();
        s.extend((0..n).map(|k| trial[k] - y[k]));
        r.clear();
        r.extend((0..n).map(|k| gt[k] - g[k]));
        let (sr, ss, rr) = (bounds.dot(s, r), bounds.dot(s, s), bounds.dot(r, r));
        if sr > 1e-12 * ss.sqrt() * rr.sqrt() && sr > 0.0 {
            curvature = curvature.max(rr / sr);
            // The oldest pair's buffers become the spare once the memory is full.
            let next = match pairs.len() >= memory {
                true => pairs
                    .pop_front()
                    .map(|(s, r, _)| (s, r))
                    .unwrap_or_default(),
                false => (Vec::with_capacity(n), Vec::with_capacity(n)),
            };
            let (s, r) = std::mem::replace(&mut spare, next);
            pairs.push_back((s, r, sr));
        }
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

fn give_up(iterations: u64, why: String, curvature: f64) -> Outcome {
    Outcome {
        iterations,
        termination: why,
        failed: true,
        curvature,
    }
}

/// d = -H g restricted to the free coordinates (two-loop recursion on the
/// masked gradient, the result masked again), H0 = (s.r / r.r) I of the
/// newest pair (the identity without pairs).
fn direction(
    part: &Part,
    pairs: &std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)>,
    g: &[f64],
    free: &[bool],
    d: &mut [f64],
) {
    let n = g.len();
    for k in 0..n {
        d[k] = if free[k] { g[k] } else { 0.0 };
    }
    let mut alpha = Vec::with_capacity(pairs.len());
    for (s, r, sr) in pairs.iter().rev() {
        let a = part.dot(s, d) / sr;
        for k in 0..n {
            d[k] -= a * r[k];
        }
        alpha.push(a);
    }
    let gamma = pairs.back().map_or(1.0, |(_, r, sr)| sr / part.dot(r, r));
    for v in d.iter_mut() {
        *v *= gamma;
    }
    for ((s, r, sr), a) in pairs.iter().zip(alpha.iter().rev()) {
        let b = part.dot(r, d) / sr;
        for k in 0..n {
            d[k] += (a - b) * s[k];
        }
    }
    for k in 0..n {
        d[k] = if free[k] { -d[k] } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// J(y) = sum_k a_k (y_k - c_k)^2 / 2 + b (y_0 - y_1)^2 / 2: a
    /// coupled convex quadratic.
    struct Quadratic {
        a: Vec<f64>,
        c: Vec<f64>,
        b: f64,
    }

    impl Objective for Quadratic {
        fn evaluate(&mut self, y: &[f64]) -> Result<(f64, Vec<f64>), Refusal> {
            let mut f = 0.0;
            let mut g = vec![0.0; y.len()];
            for k in 0..y.len() {
                f += 0.5 * self.a[k] * (y[k] - self.c[k]).powi(2);
                g[k] = self.a[k] * (y[k] - self.c[k]);
            }
            let e = y[0] - y[1];
            f += 0.5 * self.b * e * e;
            g[0] += self.b * e;
            g[1] -= self.b * e;
            Ok((f, g))
        }
    }

    /// A known bound-constrained optimum. With b = 0 the problem separates
    /// and the minimizer is the clamped center, c clipped to [lo, hi]. With
    /// the coupling b, coordinates 0 and 1 (both pushed past their walls)
    /// stay at the walls, and the KKT conditions fix the rest. The
    /// tolerance 1e-5 on the projected gradient: J ~ 100 rounds at 2e-14,
    /// which hides the decrease g^2 / (2 a_max) of a gradient below 6e-7
    /// (a_max = 7), so the search cannot resolve much less (the stepper's
    /// rounding floor says the same). We check the separable optimum to
    /// 1e-5 (the curvature is at least 1; the coordinates held at a wall
    /// exactly) and, in the coupled case, the KKT conditions: projected
    /// gradient below 1e-5, the active coordinates' gradients pointing out
    /// of the box.
    #[test]
    fn finds_a_known_bound_constrained_minimum() {
        let n = 40;
        let a: Vec<f64> = (0..n).map(|k| 1.0 + (k % 7) as f64).collect();
        let c: Vec<f64> = (0..n).map(|k| ((k * 37) % 11) as f64 - 5.0).collect();
        let bounds = Bounds {
            lo: vec![-2.0; n],
            hi: (0..n).map(|k| if k % 3 == 0 { 1.0 } else { 3.0 }).collect(),
        };
        let mut q = Quadratic {
            a: a.clone(),
            c: c.clone(),
            b: 0.0,
        };
        let mut y = vec![0.0; n];
        let mut best = Vec::new();
        struct Record<'a>(&'a mut Quadratic, &'a mut Vec<f64>);
        impl Objective for Record<'_> {
            fn evaluate(&mut self, y: &[f64]) -> Result<(f64, Vec<f64>), Refusal> {
                *self.1 = y.to_vec();
                self.0.evaluate(y)
            }
        }
        let out = minimize(
            &mut Record(&mut q, &mut best),
            &bounds,
            &y,
            5,
            200,
            1e-5,
            (&Solo, &Cut::even(n, 1)),
        );
        assert!(!out.failed, "{out:?}");
        for k in 0..n {
            let want = c[k].clamp(bounds.lo[k], bounds.hi[k]);
            // Pushed past a wall: held exactly at it.
            let held = c[k] < bounds.lo[k] || c[k] > bounds.hi[k];
            let tol = if held { 0.0 } else { 1e-5 };
            assert!(
                (best[k] - want).abs() <= tol,
                "k={k}: {} vs {want}",
                best[k]
            );
        }
        q.b = 10.0;
        y.iter_mut().for_each(|v| *v = 0.5);
        let out = minimize(
            &mut Record(&mut q, &mut best),
            &bounds,
            &y,
            5,
            500,
            1e-5,
            (&Solo, &Cut::even(n, 1)),
        );
        assert!(!out.failed, "{out:?}");
        let (_, g) = q.evaluate(&best).unwrap();
        assert!(
            bounds.projected_gradient_norm(&Solo, &Cut::even(best.len(), 1), &best, |k| g[k])
                <= 1e-5
        );
        let at_wall = (0..n)
            .filter(|&k| best[k] == bounds.lo[k] || best[k] == bounds.hi[k])
            .count();
        assert!(at_wall > 5, "the test must have active bounds");
        for k in 0..n {
            if best[k] == bounds.lo[k] {
                assert!(g[k] >= 0.0, "k={k}");
            } else if best[k] == bounds.hi[k] {
                assert!(g[k] <= 0.0, "k={k}");
            } else {
                assert!(g[k].abs() <= 1e-5, "k={k}: {}", g[k]);
            }
        }
    }
}
