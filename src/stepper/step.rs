//! One JKO (minimizing movement) step with L-BFGS:
//!
//!   X^{n+1} = argmin_X  J(X),   J(X) = sum_i w_i |X_i - X_i^n|^2 / (2h) + E_N(X).
//!
//! The optimizer works in scaled displacements Y_i = (X_i - X_i^n) / s_i with
//! s_i = sqrt(h / w_i). Then the transport cost is |Y|^2/2 whatever the
//! weights, the Hessian of J is I + (terms of E), and
//!
//!   dJ/dY_i = Y_i + s_i dE/dX_i,   |dJ/dY| = sqrt(h) ||r||_w,
//!   r_i = (X_i - X_i^n)/h + (dE/dX_i)/w_i,
//!
//! the optimality residual in velocity units, measured in the weighted L2
//! norm of the transport metric. An explicit Euler step is exactly Y = -dJ/dY(0).
//!
//! Stopping rule (README, "Choosing the solver tolerance"): stop when
//! |dJ/dY| <= max(tolerance * |dJ/dY at Y = 0|, floor), i.e. when the residual
//! has fallen by the factor `tolerance` relative to the velocity of the
//! explicit step, or below the rounding floor of J (`rounding_floor` with
//! `STOP_ULPS`), the smallest gradient whose decrease of J a line search
//! can still see (near a steady state the relative target falls below it).
//!
//! In a box (SPEC §7) the minimization is over positions in the box: the
//! bounds lower <= X^n + s Y <= upper on Y, by projected L-BFGS
//! ([`super::projected`]), the stopping rule on the projected gradient
//! Y - P(Y - dJ/dY) instead of dJ/dY; positions are clamped to the box
//! against the rounding of X^n + s Y.
//!
//! The vectors Y and dJ/dY hold the particles in the Morton order of X^n
//! ([`super::layout`]), so that a range of them is a region of space.
//! argmin's L-BFGS works on [`Shard`]s: its iterates, gradients, search
//! directions and history divided among the members of the process's team
//! (MPI ranks; one process is a team of one) in such ranges, cut by the
//! work of their particles in the previous step ([`Layout::cut`]), its dot
//! products and norms reduced in a fixed order, so every member takes the
//! same decisions and a divided run has the single process's bits. The
//! energy is evaluated on the whole Y, gathered at each evaluation; a
//! member reads dE/dX of the particles of its range only, and tells the
//! energy so ([`FreeEnergy::want`]); the whole dE/dX is gathered once per
//! step, for the next step's start. The projected L-BFGS of a box divides
//! its vectors the same way ([`super::projected`]).
//!
//! A step evaluates one first guess (the previous step's displacement, or
//! the explicit Euler step) and starts from it or from Y = 0. J(0) = E(X^n)
//! and its gradient are not evaluated again when the previous step ended at
//! X^n: they come from its last point ([`StartPoint`], checkpointed).
//!
//! Every evaluation is recorded and the step returns the best point seen.
//! A step is *rejected* ([`StepError::Rejected`]) when the optimizer errs
//! (line-search failure, not a descent direction, a non-finite value) before
//! meeting the tolerance, or ends without lowering J below J(0) = E(X^n); the
//! caller restores the positions and retries with smaller steps. A step that
//! stops at the iteration cap with J lowered is accepted (`converged` false).
//! So an accepted step never raises the energy above E(X^n).

use std::cell::RefCell;
use std::sync::Arc;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

use super::layout::Layout;
use super::projected::{self, Bounds, Refusal};
use crate::energy::{EnergyParts, FreeEnergy, Part};
use crate::util::fault::{self, EvalFault};
use crate::util::interrupt;
use crate::util::parallel::sum_indexed;
use crate::util::shard::{Cut, Shard, sum_parts};
use crate::util::team::{self, Ownership, Team};

/// Why a step attempt produced no new positions.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StepError {
    /// The attempt failed (the failure says how); retry with a smaller step.
    Rejected(StepFailure),
    /// An interrupt was requested during the step.
    Interrupted,
}

/// How an attempt at a step failed, typed so that callers and events never
/// match on text; `Display` gives the message written to events.csv.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StepFailure {
    /// The energy at the step's start could not be evaluated.
    AtStart(Box<StepFailure>),
    /// A value was not finite: trial positions, the energy (`part` names
    /// the terms and their keys), its gradient, the gradient norm, or a
    /// column of the accepted step's report.
    NonFinite {
        /// Which value.
        value: NonFiniteValue,
        /// Where it was found (the energy part and its keys, or the column).
        detail: String,
    },
    /// An injected evaluation fault (the `fault-injection` feature).
    InjectedFault,
    /// The optimizer gave up: a line-search failure, not a descent
    /// direction (argmin's words in `detail`).
    LineSearch(String),
    /// The optimizer stopped short of the tolerance without lowering the
    /// objective J (its value at the start and at the best point).
    NoDecrease {
        /// The optimizer's reason for stopping.
        termination: String,
        /// J at the step's start.
        objective: f64,
    },
    /// L-BFGS could not be set up.
    Setup(String),
}

/// Which value of an evaluation was not finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonFiniteValue {
    /// Trial positions.
    Positions,
    /// The free energy.
    Energy,
    /// The transport cost sum_i w_i |X_i - X_i^n|^2 / (2h).
    TransportCost,
    /// The gradient of the objective.
    Gradient,
    /// The gradient norm.
    GradientNorm,
    /// A column of energy.csv in the accepted step's report.
    Report,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepFailure::AtStart(e) => write!(f, "energy at the start of the step: {e}"),
            StepFailure::NonFinite { value, detail } => match value {
                NonFiniteValue::Positions => write!(f, "non-finite trial positions"),
                NonFiniteValue::Energy => write!(f, "non-finite energy: {detail}"),
                NonFiniteValue::TransportCost => write!(
                    f,
                    "non-finite transport cost {detail} (the trial point is too far)"
                ),
                NonFiniteValue::Gradient => write!(f, "non-finite energy gradient: {detail}"),
                NonFiniteValue::GradientNorm => write!(f, "the gradient norm overflows: {detail}"),
                NonFiniteValue::Report => write!(f, "{detail}"),
            },
            StepFailure::InjectedFault => write!(f, "injected evaluation failure"),
            StepFailure::LineSearch(why) => write!(f, "{why}"),
            StepFailure::NoDecrease {
                termination,
                objective,
            } => write!(
                f,
                "{termination}; the objective did not decrease (J = {objective:.17e} at the start and at the best point)"
            ),
            StepFailure::Setup(why) => write!(f, "cannot set up L-BFGS: {why}"),
        }
    }
}

/// The message of the error that stops argmin on an interrupt request.
const INTERRUPTED: &str = "interrupted";

/// What one JKO step did (the columns of energy.csv, and diagnostics).
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Energy parts at the new positions.
    pub parts: EnergyParts,
    /// sqrt(sum_i w_i |X_i^{n+1} - X_i^n|^2).
    pub w2_step: f64,
    /// L-BFGS iterations.
    pub iterations: u64,
    /// Energy + gradient evaluations (each one pass over the particles).
    pub evaluations: usize,
    /// Final ||r||_w, the optimality residual in velocity units.
    pub gradient_norm: f64,
    /// ||r||_w at the start of the step (the explicit velocity).
    pub initial_gradient_norm: f64,
    /// Whether the stopping rule was met.
    pub converged: bool,
    /// Why the optimizer stopped.
    pub termination: String,
}

impl StepReport {
    /// The first column of energy.csv this report would write as a
    /// non-finite number, named, or `None`: such a report is never a result.
    pub fn non_finite(&self) -> Option<String> {
        let columns = [
            ("diffusion", self.parts.diffusion),
            ("potential", self.parts.potential),
            ("interaction", self.parts.interaction),
            ("energy", self.parts.total()),
            ("w2_step", self.w2_step),
            ("gradient_norm", self.gradient_norm),
        ];
        columns
            .iter()
            .find(|(_, v)| !v.is_finite())
            .map(|(name, v)| format!("the step's {name} is {v}"))
    }
}

/// The state the objective shares with the stepper: the last evaluation
/// (argmin asks for cost and gradient in separate calls at the same point)
/// and the best point seen.
struct Evaluator<'a, const D: usize> {
    energy: &'a mut FreeEnergy<D>,
    x0: &'a [[f64; D]],
    layout: &'a Layout,
    /// The members dividing the vectors, how they divide them, and this
    /// member's range of them: the components of dJ/dY it reads.
    team: &'a dyn Team,
    cut: &'a Cut,
    own: std::ops::Range<usize>,
    x: Vec<[f64; D]>,
    grad_x: Vec<[f64; D]>,
    last: Option<Point<D>>,
    best: Option<Point<D>>,
    evaluations: usize,
    /// Gradient tolerance of the L-BFGS run (0 before it starts) and J(0).
    tolerance: f64,
    start_cost: f64,
    /// The first point, trial points of the line search included, with
    /// |grad J| <= tolerance and J <= J(0): the run stops there. Without this,
    /// near the tolerance the line search can spend hundreds of evaluations
    /// on sufficient-decrease tests that compare J values differing by less
    /// than their rounding (BENCHMARKS.md, "Full JKO steps").
    converged: Option<Point<D>>,
    /// Why the last evaluation failed, typed.
    failure: Option<StepFailure>,
    /// The fault a robustness test injects into this attempt (never outside tests).
    fault: Option<EvalFault>,
    /// In a box: the bounds on Y, and the box itself (positions are kept in
    /// it against the rounding of X^n + s Y).
    bounds: Option<(&'a Bounds, [f64; D], [f64; D])>,
}

/// |dJ/dY| below which a step is stationary to the rounding of J, allowing
/// `ulps` roundings of J's terms: with the Hessian of J about I (scaled
/// displacements), a point with gradient g can still lower J by about
/// |g|^2/2, against a rounding of J of about ulps eps sum |terms|, so below
/// sqrt(2 ulps eps sum |terms|) a line search cannot see the decrease.
fn rounding_floor(parts: &EnergyParts, ulps: f64) -> f64 {
    let magnitude = parts.diffusion.abs() + parts.potential.abs() + parts.interaction.abs();
    (2.0 * ulps * f64::EPSILON * magnitude).sqrt()
}

/// Roundings of J assumed by the stopping rule's floor: about what the
/// deterministic chunked sums of E lose (a few ulps of sum |terms|).
const STOP_ULPS: f64 = 10.0;

/// Roundings of J within which an attempt that failed or did not lower J is
/// still accepted as stationary: generous (1e3 ulps), as a rejection costs
/// a halving of the step.
const ACCEPT_ULPS: f64 = 1e3;

/// The message of the error that stops argmin at a converged trial point.
const CONVERGED_AT_TRIAL: &str = "gradient tolerance reached";

#[derive(Clone)]
struct Point<const D: usize> {
    y: Vec<f64>,
    cost: f64,
    /// dE/dX at X^n + s Y, in the layout's order like Y, this member's
    /// range `own` of it only (the next step's start, [`StartPoint`], once
    /// gathered and restored to the particles' order); dJ/dY is computed
    /// from it where asked ([`Point::dj`]), not stored.
    grad: Vec<f64>,
    own: std::ops::Range<usize>,
    parts: EnergyParts,
}

impl<const D: usize> Point<D> {
    /// Component k of dJ/dY = Y + s dE/dX (s the particles' scales), for k
    /// in this member's range.
    #[inline]
    fn dj(&self, layout: &Layout, k: usize) -> f64 {
        self.y[k] + layout.scale_at(k / D) * self.grad[k - self.own.start]
    }

    /// Collective: dE/dX whole, in the particles' order.
    fn whole_gradient(&self, layout: &Layout, team: &dyn Team, cut: &Cut) -> Vec<[f64; D]> {
        let mut full = vec![0.0; self.y.len()];
        crate::util::shard::gather(team, cut, &self.grad, &mut full);
        layout.restore(&full)
    }
}

/// E and dE/dX at the positions the last accepted step ended on: the next
/// step's J(0) and dJ/dY(0) without an evaluation (checkpointed with the
/// positions, so a resumed run takes the same steps).
#[derive(Debug, Clone, PartialEq)]
pub struct StartPoint<const D: usize> {
    /// The positions they belong to (the cache holds only for these bits).
    pub x: Vec<[f64; D]>,
    /// E's parts there.
    pub parts: EnergyParts,
    /// dE/dX there.
    pub grad: Vec<[f64; D]>,
}

impl<const D: usize> Evaluator<'_, D> {
    /// Whether the step stops at `p`, of stationarity measure `grad_norm`: the
    /// first point, once the tolerance is set, that is stationary within it
    /// and no worse than J(0).
    fn stops_at(&self, p: &Point<D>, grad_norm: f64) -> bool {
        self.tolerance > 0.0
            && p.cost <= self.start_cost
            && self.converged.is_none()
            && grad_norm <= self.tolerance
    }

    /// Records why this evaluation failed (argmin's error carries text only).
    fn fail<T>(&mut self, why: StepFailure) -> std::result::Result<T, argmin::core::Error> {
        let message = why.to_string();
        self.failure = Some(why);
        Err(argmin::core::Error::msg(message))
    }

    fn evaluate(&mut self, y: &[f64]) -> std::result::Result<&Point<D>, argmin::core::Error> {
        if self.last.as_ref().is_some_and(|p| p.y == y) {
            return Ok(self.last.as_ref().unwrap());
        }
        // The solver starts from the better of Y = 0 and the first guess,
        // which is not the last point evaluated when Y = 0 wins. Both were
        // evaluated before the tolerance was set, so the stop test runs here,
        // as on a new evaluation.
        if self.best.as_ref().is_some_and(|p| p.y == y) {
            let best = self.best.as_ref().unwrap();
            if self.stops_at(
                best,
                stationarity(
                    best,
                    self.layout,
                    self.bounds.map(|b| b.0),
                    self.team,
                    self.cut,
                ),
            ) {
                self.converged = self.best.clone();
                return Err(argmin::core::Error::msg(CONVERGED_AT_TRIAL));
            }
            return Ok(self.best.as_ref().unwrap());
        }
        self.layout.positions(self.x0, y, &mut self.x);
        if let Some((_, lower, upper)) = &self.bounds {
            for xi in self.x.iter_mut() {
                for a in 0..D {
                    xi[a] = xi[a].clamp(lower[a], upper[a]);
                }
            }
        }
        if interrupt::requested() {
            return Err(argmin::core::Error::msg(INTERRUPTED));
        }
        // The energy terms assume finite positions (the 1D coupling sorts them).
        if !self.x.iter().flatten().all(|v| v.is_finite()) {
            return self.fail(StepFailure::NonFinite {
                value: NonFiniteValue::Positions,
                detail: String::new(),
            });
        }
        let mut parts = self.energy.evaluate(&self.x, &mut self.grad_x);
        self.evaluations += 1;
        match self.fault {
            None => {}
            Some(EvalFault::Nan) => parts.diffusion = f64::NAN,
            Some(EvalFault::Error) => return self.fail(StepFailure::InjectedFault),
            Some(EvalFault::FlipGradient) => {
                self.grad_x.iter_mut().flatten().for_each(|g| *g = -*g)
            }
        }
        self.record(y, parts)
    }

    /// The point Y = 0 from the previous step's last point instead of an
    /// evaluation: E and dE/dX at X^n, turned into J and dJ/dY by the same
    /// code as an evaluation's.
    fn start_from(
        &mut self,
        start: &StartPoint<D>,
        zero: &[f64],
    ) -> std::result::Result<&Point<D>, argmin::core::Error> {
        self.x.copy_from_slice(&start.x);
        self.grad_x.copy_from_slice(&start.grad);
        self.record(zero, start.parts)
    }

    /// J and dJ/dY at Y from E's `parts` and dE/dX (in `self.grad_x`) at
    /// the positions `self.x`: checked, kept as the last point, the best
    /// if it is, and the converged one if it stops the step.
    fn record(
        &mut self,
        y: &[f64],
        parts: EnergyParts,
    ) -> std::result::Result<&Point<D>, argmin::core::Error> {
        let layout = self.layout;
        let transport = 0.5 * sum_indexed(y.len(), |k| y[k] * y[k]);
        let cost = transport + parts.total();
        if !cost.is_finite() {
            return self.fail(if transport.is_finite() {
                StepFailure::NonFinite {
                    value: NonFiniteValue::Energy,
                    detail: describe_non_finite(&parts),
                }
            } else {
                StepFailure::NonFinite {
                    value: NonFiniteValue::TransportCost,
                    detail: transport.to_string(),
                }
            });
        }
        let mut p = self.last.take().unwrap_or_else(|| Point {
            y: Vec::new(),
            cost: 0.0,
            grad: Vec::new(),
            own: self.own.clone(),
            parts,
        });
        p.y.clear();
        p.y.extend_from_slice(y);
        layout.arrange_part(&self.grad_x, self.own.clone(), &mut p.grad);
        p.cost = cost;
        p.parts = parts;
        // Not finite when a component of dE/dX is not (`stationarity`), so
        // the members agree on a failure without a message of their own.
        let grad_norm = stationarity(&p, layout, self.bounds.map(|b| b.0), self.team, self.cut);
        if !grad_norm.is_finite() {
            let finite = p.grad.iter().all(|g| g.is_finite());
            let value = if crate::util::shard::all_hold(self.team, finite) {
                NonFiniteValue::GradientNorm
            } else {
                NonFiniteValue::Gradient
            };
            let detail = non_finite_terms(self.energy, &self.x, &scales(layout));
            return self.fail(StepFailure::NonFinite { value, detail });
        }
        let stop = self.stops_at(&p, grad_norm);
        if stop {
            self.converged = Some(p.clone());
        }
        if self.best.as_ref().is_none_or(|b| cost < b.cost) {
            match &mut self.best {
                Some(b) => b.clone_from(&p),
                None => self.best = Some(p.clone()),
            }
        }
        self.last = Some(p);
        if stop {
            return Err(argmin::core::Error::msg(CONVERGED_AT_TRIAL));
        }
        Ok(self.last.as_ref().unwrap())
    }
}

/// The scenario keys that set a part of the energy, for messages.
fn keys_of(part: Part) -> &'static str {
    match part {
        Part::Diffusion => "species[k].diffusion, species[k].exponent, density.bandwidth",
        Part::Potential => "species[k].potential (stiffness, depth, center)",
        Part::Interaction => "coupling.strength, coupling.softening, species[k].charge",
        Part::Steric => {
            "steric.volume, steric.temperature (a trial point at or beyond close packing)"
        }
    }
}

fn part_name(part: Part) -> &'static str {
    match part {
        Part::Diffusion => "diffusion",
        Part::Potential => "potential",
        Part::Interaction => "interaction",
        Part::Steric => "steric",
    }
}

/// The non-finite parts of `parts`, each with the keys that set it.
pub fn describe_non_finite(parts: &EnergyParts) -> String {
    let named = [
        (Part::Diffusion, parts.diffusion),
        (Part::Potential, parts.potential),
        (Part::Interaction, parts.interaction),
    ];
    let bad: Vec<String> = named
        .iter()
        .filter(|(_, v)| !v.is_finite())
        .map(|(p, v)| {
            // The diffusion column holds the steric term too (`Part::Steric`).
            let steric = match p {
                Part::Diffusion => format!("; with [steric]: {}", keys_of(Part::Steric)),
                _ => String::new(),
            };
            format!(
                "the {} energy is {v} (check {}{steric})",
                part_name(*p),
                keys_of(*p)
            )
        })
        .collect();
    if bad.is_empty() {
        format!(
            "the parts are finite (diffusion {:e}, potential {:e}, interaction {:e}) but their sum overflows",
            parts.diffusion, parts.potential, parts.interaction
        )
    } else {
        bad.join("; ")
    }
}

/// Which terms of E have a non-finite value, gradient, or gradient norm
/// (in the optimizer's scaled units, sqrt(sum_i s_i^2 |dE/dX_i|^2)) at `x`.
/// Each term is evaluated on its own, so this costs one more evaluation of
/// E; it runs only on the way to rejecting an attempt.
pub fn non_finite_terms<const D: usize>(
    energy: &mut FreeEnergy<D>,
    x: &[[f64; D]],
    scale: &[f64],
) -> String {
    // Every particle's gradient is checked: the terms compute them all.
    let wanted = energy.take_wanted();
    let found = terms_not_finite(energy, x, scale);
    energy.want(wanted);
    found
}

fn terms_not_finite<const D: usize>(
    energy: &mut FreeEnergy<D>,
    x: &[[f64; D]],
    scale: &[f64],
) -> String {
    let mut grad = vec![[0.0; D]; x.len()];
    let mut bad = Vec::new();
    for term in energy.terms_mut() {
        grad.fill([0.0; D]);
        let value = term.value_and_gradient(x, &mut grad);
        let finite = grad.iter().flatten().all(|g| g.is_finite());
        let norm2 = sum_indexed(x.len(), |i| {
            scale[i] * scale[i] * grad[i].iter().map(|g| g * g).sum::<f64>()
        });
        let what = if !value.is_finite() {
            format!("energy {value}")
        } else if !finite {
            "a non-finite gradient component".to_string()
        } else if !norm2.is_finite() {
            let largest = grad.iter().flatten().fold(0.0f64, |m, g| m.max(g.abs()));
            format!("gradient components up to {largest:e}, whose norm overflows")
        } else {
            continue;
        };
        let part = term.part();
        bad.push(format!(
            "the {} term has {what} (check {})",
            part_name(part),
            keys_of(part)
        ));
    }
    if bad.is_empty() {
        "each term is finite on its own but their sum is not".to_string()
    } else {
        bad.join("; ")
    }
}

/// argmin's view of the objective J(Y). argmin's vectors are [`Shard`]s,
/// divided among the team's members (module docs); the energy needs all of
/// Y, gathered into `full` (the same Y on every member, so whether it is the
/// last evaluation's point is decided alike everywhere).
///
/// argmin asks for the cost and the gradient of a point in two calls; the
/// second finds every member's part already in `full` and gathers nothing
/// (one agreement of one number per member instead of N d numbers).
struct Objective<'r, 'a, const D: usize> {
    evaluator: &'r RefCell<Evaluator<'a, D>>,
    full: RefCell<Vec<f64>>,
}

impl<const D: usize> Objective<'_, '_, D> {
    /// The whole of `y` in `full`, gathered unless some member's part differs.
    fn whole(&self, y: &Shard) -> std::cell::RefMut<'_, Vec<f64>> {
        let mut full = self.full.borrow_mut();
        let held = full.len() == y.len()
            && full[y.range()]
                .iter()
                .zip(y.part())
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !crate::util::shard::all_hold(y.team(), held) {
            y.gather(&mut full);
        }
        full
    }
}

impl<const D: usize> CostFunction for Objective<'_, '_, D> {
    type Param = Shard;
    type Output = f64;
    fn cost(&self, y: &Shard) -> std::result::Result<f64, argmin::core::Error> {
        let full = self.whole(y);
        Ok(self.evaluator.borrow_mut().evaluate(&full)?.cost)
    }
}

impl<const D: usize> Gradient for Objective<'_, '_, D> {
    type Param = Shard;
    type Gradient = Shard;
    fn gradient(&self, y: &Shard) -> std::result::Result<Shard, argmin::core::Error> {
        let full = self.whole(y);
        let mut ev = self.evaluator.borrow_mut();
        let layout = ev.layout;
        let p = ev.evaluate(&full)?;
        Ok(y.like_with(|k| p.dj(layout, k)))
    }
}

/// s_i of every particle, in the particles' order (for messages).
fn scales(layout: &Layout) -> Vec<f64> {
    (0..layout.len()).map(|i| layout.scale_of(i)).collect()
}

/// Whether two position arrays are the same bits.
pub(super) fn same_bits<const D: usize>(a: &[[f64; D]], b: &[[f64; D]]) -> bool {
    a.len() == b.len()
        && a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(u, v)| u.to_bits() == v.to_bits())
}

/// Collective: the stopping rule's measure at `p`, |dJ/dY|, or in a box
/// the norm of the projected gradient Y - P(Y - dJ/dY) (zero exactly at a
/// constrained minimizer, [`super::projected`]). Each member sums its own
/// range, the single process's sum to the bit ([`sum_parts`]). Not finite
/// when a component of dJ/dY is not (a projection could hide an infinite
/// one behind a wall).
fn stationarity<const D: usize>(
    p: &Point<D>,
    layout: &Layout,
    bounds: Option<&Bounds>,
    team: &dyn Team,
    cut: &Cut,
) -> f64 {
    let g = |k| {
        let v = p.dj(layout, k);
        if v.is_finite() { v } else { f64::NAN }
    };
    match bounds {
        None => {
            let start = p.own.start;
            sum_parts(team, cut, |l| g(start + l).powi(2)).sqrt()
        }
        Some(b) => b.projected_gradient_norm(team, cut, &p.y, g),
    }
}

/// The projected minimization's view of the objective: it passes this
/// member's part of Y (its range of the step's [`Cut`]), gathered into
/// `full`.
struct Constrained<'r, 'a, const D: usize> {
    evaluator: &'r RefCell<Evaluator<'a, D>>,
    team: &'r dyn Team,
    cut: &'r Cut,
    full: Vec<f64>,
}

impl<const D: usize> projected::Objective for Constrained<'_, '_, D> {
    fn evaluate(&mut self, y: &[f64]) -> std::result::Result<(f64, Vec<f64>), Refusal> {
        crate::util::shard::gather(self.team, self.cut, y, &mut self.full);
        let own = self.cut.own(self.team);
        let mut ev = self.evaluator.borrow_mut();
        let layout = ev.layout;
        match ev.evaluate(&self.full) {
            Ok(p) => Ok((p.cost, own.map(|k| p.dj(layout, k)).collect())),
            // A non-finite energy at a trial point (and nothing else) is a
            // step too long; the signal that a trial met the tolerance, an
            // interrupt or an injected error end the minimization.
            Err(e) => match &ev.failure {
                Some(StepFailure::NonFinite {
                    value: NonFiniteValue::Energy,
                    ..
                }) if ev.converged.is_none() && !interrupt::requested() => {
                    Err(Refusal::TooFar(e.to_string()))
                }
                _ => Err(Refusal::Stop(e.to_string())),
            },
        }
    }
}

/// Optimizer settings (extension of SPEC §3, documented in the README).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Solver {
    /// Stop a JKO step when the objective's gradient norm has fallen by this factor.
    pub tolerance: f64,
    /// Most L-BFGS iterations per JKO step.
    pub max_iterations: usize,
    /// L-BFGS history length.
    pub memory: usize,
    /// A rejected step is retried as 2, 4, ... sub-steps, at most 2^max_halvings.
    pub max_halvings: u32,
}

impl Default for Solver {
    fn default() -> Self {
        Solver {
            tolerance: 1e-6,
            max_iterations: 1000,
            memory: 10,
            max_halvings: 6,
        }
    }
}

/// Advances particle positions by JKO steps of the free energy.
pub struct JkoStepper<const D: usize> {
    energy: FreeEnergy<D>,
    weights: Vec<f64>,
    solver: Solver,
    /// X^n - X^{n-1} and the step size that made it, for the extrapolated
    /// first guess.
    last_move: Option<(f64, Vec<[f64; D]>)>,
    /// (step, attempt) of the step being taken, for fault injection.
    context: (u64, u32),
    /// The box [lower, upper] the positions are confined to, if any.
    walls: Option<([f64; D], [f64; D])>,
    /// Accept a minimization that stopped short of the tolerance (a failed
    /// line search) whenever it lowered J (the equilibrium's continuation,
    /// which judges convergence by E's own gradient).
    accept_descent: bool,
    /// The members that divide L-BFGS's vectors (the process's team).
    team: Arc<dyn Team>,
    /// E and dE/dX where the last accepted step ended.
    start: Option<StartPoint<D>>,
    /// The cut of the vectors among the team, in chunks, kept from step to
    /// step while balanced, and the energy's work per particle in the last
    /// step, which weighs it ([`Layout::cut`]; under a team only).
    balance: Ownership,
    costs: Option<Vec<f64>>,
}

impl<const D: usize> JkoStepper<D> {
    /// A stepper minimizing `energy` plus the transport cost with particle weights `weights`.
    pub fn new(energy: FreeEnergy<D>, weights: Vec<f64>, solver: Solver) -> Self {
        JkoStepper {
            energy,
            weights,
            solver,
            last_move: None,
            context: (0, 0),
            walls: None,
            accept_descent: false,
            team: team::current(),
            start: None,
            balance: Ownership::default(),
            costs: None,
        }
    }

    /// Divides L-BFGS's vectors among `team`'s members instead of the
    /// process's team (tests run members as threads); every member must
    /// step the same problem.
    pub fn with_team(mut self, team: Arc<dyn Team>) -> Self {
        self.team = team;
        self
    }

    /// Change the optimizer settings; with `accept_descent`, a step whose
    /// minimization stopped short of the tolerance is still accepted when it
    /// lowered J (reported as not converged).
    pub fn set_solver(&mut self, solver: Solver, accept_descent: bool) {
        self.solver = solver;
        self.accept_descent = accept_descent;
    }

    /// Confines every step to the box [lower, upper]: each step is then the
    /// minimization over positions in the box, by projected L-BFGS
    /// ([`super::projected`]), and the positions must start in it.
    pub fn confined_to(mut self, lower: [f64; D], upper: [f64; D]) -> Self {
        self.walls = Some((lower, upper));
        self
    }

    /// Which step and attempt (0 first) the next [`step`](Self::step) is; only
    /// fault injection uses it.
    pub fn set_context(&mut self, step: u64, attempt: u32) {
        self.context = (step, attempt);
    }

    /// Forget the previous step (after a rejected attempt).
    pub fn clear_history(&mut self) {
        self.last_move = None;
    }

    /// The previous step's displacement and its step size (checkpointed: the
    /// next step's first guess depends on it).
    pub fn last_move(&self) -> Option<&(f64, Vec<[f64; D]>)> {
        self.last_move.as_ref()
    }

    /// Restore the previous step's displacement and its step size (from a checkpoint).
    pub fn set_last_move(&mut self, m: Option<(f64, Vec<[f64; D]>)>) {
        self.last_move = m;
    }

    /// Which terms of E are non-finite at `x`, with the keys that set them,
    /// gradient norms in the velocity units of ||r||_w (see [`non_finite_terms`]).
    pub fn non_finite_terms(&mut self, x: &[[f64; D]]) -> String {
        let scale: Vec<f64> = self.weights.iter().map(|w| 1.0 / w.sqrt()).collect();
        non_finite_terms(&mut self.energy, x, &scale)
    }

    /// The methods of the energy's terms that name one ([`FreeEnergy::methods`]).
    pub fn methods(&self) -> Vec<String> {
        self.energy.methods()
    }

    /// E_N(x) and its gradient (overwrites `grad`).
    pub fn energy(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> EnergyParts {
        self.energy.evaluate(x, grad)
    }

    /// How many times the cut of the vectors among the team moved by cost
    /// ([`Layout::cut`]; reports and tests).
    pub fn rebalances(&self) -> usize {
        self.balance.rebalances
    }

    /// E and dE/dX where the last accepted step ended, which the next step
    /// starts from without an evaluation (checkpointed).
    pub fn start_point(&self) -> Option<&StartPoint<D>> {
        self.start.as_ref()
    }

    /// Restore [`start_point`](Self::start_point) (from a checkpoint, or
    /// from the energy of the initial state): the next step starting at
    /// `start.x` takes its J(0) from it.
    pub fn set_start_point(&mut self, start: Option<StartPoint<D>>) {
        self.start = start;
    }

    /// One JKO step of size `h` from `x`, overwritten with X^{n+1} when the
    /// step is accepted and left unchanged when it is not.
    pub fn step(&mut self, x: &mut [[f64; D]], h: f64) -> Result<StepReport, StepError> {
        let result = self.step_in_layout(x, h);
        // Outside a step (the driver's energies, tests) E's gradient is
        // whole, and its sums in no step's frame.
        self.energy.want(None);
        self.energy.frame(None);
        result
    }

    /// [`step`](Self::step), the energy asked for this member's particles
    /// of the step's layout only.
    fn step_in_layout(&mut self, x: &mut [[f64; D]], h: f64) -> Result<StepReport, StepError> {
        let n = x.len();
        assert_eq!(n, self.weights.len());
        // Caches that outlive an evaluation (the multipole tree's topology) start
        // afresh from X^n, so the step depends on X^n and the start point alone,
        // both checkpointed: a resumed run takes the same steps as one never
        // stopped.
        self.energy.reset();
        let fault = fault::evaluation(self.context.0, self.context.1);
        // E(X^n) and its gradient from where the previous step ended, when
        // that is X^n to the bit (not after a rejected sub-step, say); an
        // injected fault must meet the evaluation at Y = 0.
        let cached = fault.is_none() && self.start.as_ref().is_some_and(|s| same_bits(&s.x, x));
        let x0 = x.to_vec();
        let layout = Layout::new(&x0, &self.weights, h);
        self.energy.frame(Some(Layout::frame_of(&x0)));
        let team = &*self.team;
        let cut = layout.cut(D, team.size(), self.costs.as_deref(), &mut self.balance);
        let own = cut.own(team);
        self.energy
            .want((team.size() > 1).then(|| layout.particles_in(own.clone(), D)));
        // The box in scaled displacements: lower <= X^n + s Y <= upper.
        let bounds = self.walls.map(|(lower, upper)| {
            let bound = |wall: [f64; D], i: usize| -> [f64; D] {
                std::array::from_fn(|a| (wall[a] - x0[i][a]) / layout.scale_of(i))
            };
            let (mut lo, mut hi) = (Vec::new(), Vec::new());
            layout.arrange_with(&mut lo, |i| bound(lower, i).map(|v| v.min(0.0)));
            layout.arrange_with(&mut hi, |i| bound(upper, i).map(|v| v.max(0.0)));
            Bounds { lo, hi }
        });
        let cell = RefCell::new(Evaluator {
            energy: &mut self.energy,
            x0: &x0,
            layout: &layout,
            team,
            cut: &cut,
            own: own.clone(),
            x: vec![[0.0; D]; n],
            grad_x: vec![[0.0; D]; n],
            last: None,
            best: None,
            evaluations: 0,
            tolerance: 0.0,
            start_cost: f64::INFINITY,
            converged: None,
            failure: None,
            fault,
            bounds: bounds
                .as_ref()
                .zip(self.walls)
                .map(|(b, (lower, upper))| (b, lower, upper)),
        });

        // J at Y = 0 is E(X^n); its gradient gives the explicit step and the scale
        // of the stopping rule. The point itself stays in the evaluator (its
        // `best` until another point is lower), not copied: at 1e6
        // particles each copy is tens of MB.
        let first = {
            let zero = vec![0.0; n * D];
            let mut ev = cell.borrow_mut();
            match self.start.as_ref().filter(|_| cached) {
                Some(s) => ev.start_from(s, &zero).map(|p| (p.cost, p.parts)),
                None => ev.evaluate(&zero).map(|p| (p.cost, p.parts)),
            }
        };
        let (start_cost, start_parts) = match first {
            Ok(p) => p,
            Err(_) if interrupt::requested() => return Err(StepError::Interrupted),
            Err(e) => {
                let why = cell.borrow_mut().failure.take();
                let why = why.unwrap_or_else(|| StepFailure::LineSearch(e.to_string()));
                return Err(StepError::Rejected(StepFailure::AtStart(Box::new(why))));
            }
        };
        // The one point evaluated so far, Y = 0.
        let g0 = {
            let ev = cell.borrow();
            stationarity(
                ev.last.as_ref().unwrap(),
                &layout,
                bounds.as_ref(),
                team,
                &cut,
            )
        };
        let mut report = StepReport {
            parts: start_parts,
            w2_step: 0.0,
            iterations: 0,
            evaluations: cell.borrow().evaluations,
            gradient_norm: g0 / h.sqrt(),
            initial_gradient_norm: g0 / h.sqrt(),
            converged: true,
            termination: "already stationary".into(),
        };
        if g0 == 0.0 {
            self.last_move = Some((h, vec![[0.0; D]; n]));
            let at_zero = cell.into_inner().last.expect("Y = 0 was recorded");
            self.start = Some(StartPoint {
                x: x.to_vec(),
                parts: start_parts,
                grad: at_zero.whole_gradient(&layout, team, &cut),
            });
            return Ok(report);
        }

        // First guess: the previous step's displacement, rescaled to this
        // step, or without one (the first step, after a rejection) the
        // explicit Euler step; both first-order accurate. Evaluating it
        // records it as a candidate for the best point: the solver starts
        // from the better of it and Y = 0. (Evaluating both guesses and
        // taking the better cost one evaluation per step and saved no
        // iteration: BENCHMARKS.md, "One first guess".)
        let mut guess: Vec<f64> = match &self.last_move {
            Some((h_prev, m)) => {
                // A displacement made with step h_prev, rescaled to this step.
                let r = h / h_prev;
                let mut guess = Vec::new();
                layout.arrange_with(&mut guess, |i| m[i].map(|v| r * v / layout.scale_of(i)));
                guess
            }
            None => {
                let ev = cell.borrow();
                let at_zero = ev.last.as_ref().expect("Y = 0 was recorded");
                let part: Vec<f64> = own.clone().map(|k| -at_zero.dj(&layout, k)).collect();
                let mut guess = vec![0.0; n * D];
                crate::util::shard::gather(team, &cut, &part, &mut guess);
                guess
            }
        };
        if let Some(b) = &bounds {
            b.project(&mut guess);
        }
        // A guess whose energy is not finite is simply not a candidate.
        let _ = cell.borrow_mut().evaluate(&guess);
        drop(guess);
        // The solver starts from the better of Y = 0 and the guess.
        let best_y = |cell: &RefCell<Evaluator<D>>| cell.borrow().best.as_ref().unwrap().y.clone();

        // The relative tolerance, but never below the rounding floor of J
        // (`rounding_floor`): near a steady state tolerance * |dJ/dY(0)| can
        // ask for decreases of J that its rounding hides, and L-BFGS then
        // spends its whole iteration budget in failing line searches.
        let floor = rounding_floor(&start_parts, STOP_ULPS);
        let tol = (self.solver.tolerance * g0).max(floor);
        {
            let mut ev = cell.borrow_mut();
            ev.tolerance = tol;
            ev.start_cost = start_cost;
        }
        // The curvature of J the floors assume (about 1 in the scaled
        // variables; the projected search measures it, argmin does not).
        let mut curvature = 1.0;
        let (iterations, termination, failed) = if let Some(b) = &bounds {
            let mut objective = Constrained {
                evaluator: &cell,
                team: &*self.team,
                cut: &cut,
                full: vec![0.0; n * D],
            };
            let out = projected::minimize(
                &mut objective,
                b,
                &best_y(&cell),
                self.solver.memory,
                self.solver.max_iterations,
                tol,
                (&*self.team, &cut),
            );
            curvature = out.curvature;
            (out.iterations, out.termination, out.failed)
        } else {
            let outcome = LBFGS::new(MoreThuenteLineSearch::new(), self.solver.memory)
                .with_tolerance_grad(tol)
                .and_then(|s| s.with_tolerance_cost(0.0))
                .map(|solver| {
                    let objective = Objective {
                        evaluator: &cell,
                        full: RefCell::new(Vec::new()),
                    };
                    let y0 = Shard::cut(self.team.clone(), cut.clone(), &best_y(&cell));
                    Executor::new(objective, solver)
                        .configure(|s| s.param(y0).max_iters(self.solver.max_iterations as u64))
                        .ctrlc(false)
                        .timer(false)
                        .run()
                });
            // `failed`: the optimizer gave up (an error, or argmin's own exit on a
            // line-search failure such as "not a descent direction").
            match outcome {
                Ok(Ok(res)) => {
                    let st = res.state();
                    match st.get_termination_reason() {
                        Some(TerminationReason::MaxItersReached) => {
                            (st.get_iter(), "iteration cap reached".to_string(), false)
                        }
                        Some(TerminationReason::SolverExit(why)) => {
                            (st.get_iter(), format!("optimizer exit: {why}"), true)
                        }
                        _ => {
                            let why = match st.get_termination_status() {
                                TerminationStatus::Terminated(r) => r.text().to_string(),
                                TerminationStatus::NotTerminated => "not terminated".to_string(),
                            };
                            (st.get_iter(), why, false)
                        }
                    }
                }
                // argmin loses its iterate on an error; the best point is still ours.
                Ok(Err(e)) => (0, format!("optimizer error: {e}"), true),
                Err(e) => return Err(StepError::Rejected(StepFailure::Setup(e.to_string()))),
            }
        };
        if interrupt::requested() {
            return Err(StepError::Interrupted);
        }

        let Evaluator {
            converged,
            best,
            evaluations,
            ..
        } = cell.into_inner();
        let (best, termination) = match converged {
            // Within rounding of the best J, and below J(0): the energy still
            // cannot increase.
            Some(p) => (p, CONVERGED_AT_TRIAL.to_string()),
            None => (best.expect("at least Y = 0 was evaluated"), termination),
        };
        let gnorm = stationarity(&best, &layout, bounds.as_ref(), team, &cut);
        let mut converged = gnorm <= tol;
        let mut termination = if converged && tol == floor {
            format!("stationary to rounding (|grad J| {gnorm:.3e} <= {floor:.3e})")
        } else {
            termination
        };
        if !converged && failed && self.accept_descent && best.cost < start_cost {
            termination = format!("{termination} (accepted: J decreased)");
        } else if !converged && (failed || best.cost >= start_cost) {
            // The optimizer stopped (failed, or without lowering J) short of
            // the tolerance: still stationary if within the generous floor.
            // With curvature c a gradient g lowers J by about g^2 / (2c):
            // the floor grows like sqrt(c) (large steps h stiffen J).
            let accept = rounding_floor(&start_parts, ACCEPT_ULPS) * curvature.max(1.0).sqrt();
            if gnorm > accept {
                return Err(StepError::Rejected(if failed {
                    StepFailure::LineSearch(termination)
                } else {
                    StepFailure::NoDecrease {
                        termination,
                        objective: start_cost,
                    }
                }));
            }
            converged = true;
            termination = format!("stationary to rounding (|grad J| {gnorm:.3e} <= {accept:.3e})");
        }
        layout.positions(&x0, &best.y, x);
        // As in every evaluation: X^n + s Y can round past a wall by an ulp.
        if let Some((lower, upper)) = self.walls {
            for xi in x.iter_mut() {
                for a in 0..D {
                    xi[a] = xi[a].clamp(lower[a], upper[a]);
                }
            }
        }
        self.last_move = Some((
            h,
            x.iter()
                .zip(&x0)
                .map(|(p, q)| std::array::from_fn(|a| p[a] - q[a]))
                .collect(),
        ));
        report.parts = best.parts;
        report.w2_step = (h * sum_indexed(best.y.len(), |k| best.y[k] * best.y[k])).sqrt();
        report.iterations = iterations;
        report.evaluations = evaluations;
        self.start = None;
        self.start = Some(StartPoint {
            x: x.to_vec(),
            parts: best.parts,
            grad: best.whole_gradient(&layout, team, &cut),
        });
        report.gradient_norm = gnorm / h.sqrt();
        report.converged = converged;
        report.termination = termination;
        if team.size() > 1 {
            self.costs = self.energy.costs(n);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every energy.csv column of a report is checked, and the first
    /// non-finite one is named.
    #[test]
    fn a_report_with_a_non_finite_column_is_named() {
        let good = StepReport {
            parts: EnergyParts {
                diffusion: 1.0,
                potential: 2.0,
                interaction: -1.0,
            },
            w2_step: 0.1,
            iterations: 3,
            evaluations: 4,
            gradient_norm: 1e-7,
            initial_gradient_norm: 1.0,
            converged: true,
            termination: String::new(),
        };
        assert_eq!(good.non_finite(), None);
        let mut r = good.clone();
        r.w2_step = f64::INFINITY;
        assert!(r.non_finite().unwrap().contains("w2_step"));
        let mut r = good.clone();
        r.gradient_norm = f64::NAN;
        assert!(r.non_finite().unwrap().contains("gradient_norm"));
        let mut r = good.clone();
        r.parts.potential = f64::MAX;
        r.parts.diffusion = f64::MAX;
        assert!(r.non_finite().unwrap().contains("energy"));
        let msg = describe_non_finite(&EnergyParts {
            diffusion: 0.0,
            potential: f64::NEG_INFINITY,
            interaction: 0.0,
        });
        assert!(
            msg.contains("potential") && msg.contains("stiffness"),
            "{msg}"
        );
    }

    /// E = sum_i w_i k/2 |x_i|^2, whose JKO step is known in closed form.
    struct Quadratic {
        k: f64,
        w: Vec<f64>,
    }

    impl<const D: usize> crate::energy::EnergyTerm<D> for Quadratic {
        fn part(&self) -> crate::energy::Part {
            crate::energy::Part::Potential
        }

        fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
            let mut e = 0.0;
            for ((xi, gi), wi) in x.iter().zip(grad.iter_mut()).zip(&self.w) {
                for a in 0..D {
                    e += 0.5 * wi * self.k * xi[a] * xi[a];
                    gi[a] += wi * self.k * xi[a];
                }
            }
            e
        }
    }

    /// E = sum_i w_i (|x_i|^4 / 4 + a sin(3 x_i0) cos(2 x_i1) - b x_i0): not
    /// quadratic, so L-BFGS needs its history; b pushes towards +x_0 (to
    /// ~1.26 against the quartic at b = 2).
    struct Anharmonic {
        a: f64,
        b: f64,
        w: Vec<f64>,
        /// The particles the caller reads ([`EnergyTerm::want`]): the others'
        /// gradient entries are NaN, so that a step reading one fails.
        wanted: Option<Vec<u32>>,
        /// The particles with x_0 < 0 at the last evaluation, which report
        /// [`Anharmonic::HEAVY`] pairs each ([`EnergyTerm::add_costs`]):
        /// a region of space dearer than the rest, as a dense cluster's
        /// neighbour lists are.
        heavy: Vec<bool>,
    }

    impl Anharmonic {
        const HEAVY: f64 = 5000.0;

        fn new(a: f64, b: f64, w: Vec<f64>) -> Self {
            Anharmonic {
                a,
                b,
                w,
                wanted: None,
                heavy: Vec::new(),
            }
        }
    }

    impl crate::energy::EnergyTerm<2> for Anharmonic {
        fn part(&self) -> crate::energy::Part {
            crate::energy::Part::Potential
        }

        fn value_and_gradient(&mut self, x: &[[f64; 2]], grad: &mut [[f64; 2]]) -> f64 {
            let mut e = 0.0;
            for ((xi, gi), wi) in x.iter().zip(grad.iter_mut()).zip(&self.w) {
                let r2 = xi[0] * xi[0] + xi[1] * xi[1];
                let (s, c) = ((3.0 * xi[0]).sin(), (2.0 * xi[1]).cos());
                e += wi * (0.25 * r2 * r2 + self.a * s * c - self.b * xi[0]);
                gi[0] += wi * (r2 * xi[0] + 3.0 * self.a * (3.0 * xi[0]).cos() * c - self.b);
                gi[1] += wi * (r2 * xi[1] - 2.0 * self.a * s * (2.0 * xi[1]).sin());
            }
            self.heavy.clear();
            self.heavy.extend(x.iter().map(|xi| xi[0] < 0.0));
            if let Some(wanted) = &self.wanted {
                let mut next = wanted.iter().peekable();
                for (i, gi) in grad.iter_mut().enumerate() {
                    if next.next_if_eq(&&(i as u32)).is_none() {
                        *gi = [f64::NAN; 2];
                    }
                }
                assert!(next.peek().is_none(), "the wanted particles are ascending");
            }
            e
        }

        fn want(&mut self, particles: Option<&[u32]>) {
            self.wanted = particles.map(<[u32]>::to_vec);
        }

        fn add_costs(&self, cost: &mut [f64]) {
            for (c, &heavy) in cost.iter_mut().zip(&self.heavy) {
                *c += if heavy { Self::HEAVY } else { 0.0 };
            }
        }
    }

    /// E = sum_i w_i (|x_i|^2 / 2 + |x_i|^4 / 4), recording every point it is
    /// evaluated at (the bits of x).
    struct Recorded {
        seen: Arc<std::sync::Mutex<Vec<Vec<u64>>>>,
        w: Vec<f64>,
    }

    impl crate::energy::EnergyTerm<2> for Recorded {
        fn part(&self) -> crate::energy::Part {
            crate::energy::Part::Potential
        }

        fn value_and_gradient(&mut self, x: &[[f64; 2]], grad: &mut [[f64; 2]]) -> f64 {
            self.seen
                .lock()
                .unwrap()
                .push(x.iter().flatten().map(|v| v.to_bits()).collect());
            let mut e = 0.0;
            for ((xi, gi), wi) in x.iter().zip(grad.iter_mut()).zip(&self.w) {
                let r2 = xi[0] * xi[0] + xi[1] * xi[1];
                e += wi * (0.5 * r2 + 0.25 * r2 * r2);
                for a in 0..2 {
                    gi[a] += wi * (1.0 + r2) * xi[a];
                }
            }
            e
        }
    }

    /// n spread points in 2D (inside `walls`, if any) for the Recorded tests.
    fn spread_cloud(n: usize, walls: Option<([f64; 2], [f64; 2])>) -> Vec<[f64; 2]> {
        (0..n)
            .map(|i| [(i as f64 * 0.37).sin() * 1.5, (i as f64 * 0.91).cos()])
            .map(|p| match walls {
                Some((lo, hi)) => [p[0].clamp(lo[0], hi[0]), p[1].clamp(lo[1], hi[1])],
                None => p,
            })
            .collect()
    }

    /// A stepper of the [`Recorded`] energy, in the box `walls` if any.
    fn recorded_stepper(
        seen: &Arc<std::sync::Mutex<Vec<Vec<u64>>>>,
        w: &[f64],
        walls: Option<([f64; 2], [f64; 2])>,
    ) -> JkoStepper<2> {
        let energy = FreeEnergy::new(vec![Box::new(Recorded {
            seen: seen.clone(),
            w: w.to_vec(),
        }) as Box<dyn crate::energy::EnergyTerm<2>>]);
        let stepper =
            JkoStepper::new(energy, w.to_vec(), Solver::default()).with_team(Arc::new(team::Solo));
        match walls {
            Some((lo, hi)) => stepper.confined_to(lo, hi),
            None => stepper,
        }
    }

    /// A step that starts where the previous one ended takes E(X^n) and its
    /// gradient from that step's last point: it evaluates nothing at X^n,
    /// and (this energy keeping no state) it takes, to the bit, the step of
    /// a stepper that evaluates them. In free space and in a box.
    #[test]
    fn a_step_starts_from_the_previous_steps_last_point() {
        for walls in [None, Some(([-1.2, -0.8], [1.2, 0.8]))] {
            let n = 300;
            let w = vec![1.0 / n as f64; n];
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let two_steps = |forget: bool| {
                let mut stepper = recorded_stepper(&seen, &w, walls);
                let mut x = spread_cloud(n, walls);
                stepper.step(&mut x, 0.05).expect("the first step succeeds");
                let start = stepper.start_point().expect("a start point").clone();
                assert!(start.x == x, "walls {walls:?}: kept for the step's end");
                if forget {
                    stepper.set_start_point(None);
                }
                let x1: Vec<u64> = x.iter().flatten().map(|v| v.to_bits()).collect();
                seen.lock().unwrap().clear();
                let r = stepper
                    .step(&mut x, 0.05)
                    .expect("the second step succeeds");
                let at_start = seen.lock().unwrap().iter().filter(|s| **s == x1).count();
                let bits: Vec<u64> = x.iter().flatten().map(|v| v.to_bits()).collect();
                (r, at_start, bits)
            };
            let (kept, forgot) = (two_steps(false), two_steps(true));
            assert_eq!(kept.1, 0, "walls {walls:?}: X^n evaluated again");
            assert_eq!(forgot.1, 1, "walls {walls:?}");
            assert_eq!(
                kept.0.evaluations + 1,
                forgot.0.evaluations,
                "walls {walls:?}"
            );
            assert!(kept.0.iterations >= 3, "too easy: {:?}", kept.0);
            assert_eq!(
                kept.0,
                StepReport {
                    evaluations: kept.0.evaluations,
                    ..forgot.0.clone()
                }
            );
            assert!(kept.2 == forgot.2, "walls {walls:?}: other positions");
        }
    }

    /// A step evaluates no point twice. The solver starts from the better of
    /// Y = 0 and the first guess, and here that is not the last point
    /// evaluated: after the cloud is reversed, the previous displacement (the
    /// guess) points away from the well's center and Y = 0 wins. In free
    /// space and in a box (the projected L-BFGS).
    #[test]
    fn a_step_evaluates_no_point_twice() {
        for walls in [None, Some(([-2.0, -2.0], [2.0, 2.0]))] {
            let n = 300;
            let w = vec![1.0 / n as f64; n];
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut stepper = recorded_stepper(&seen, &w, walls);
            // Inside the walls: the clamp changes nothing.
            let mut x = spread_cloud(n, walls);
            stepper.step(&mut x, 0.05).expect("the first step succeeds");
            x.iter_mut().for_each(|p| *p = [-p[0], -p[1]]);
            seen.lock().unwrap().clear();
            let r = stepper
                .step(&mut x, 0.05)
                .expect("the second step succeeds");
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), r.evaluations, "walls {walls:?}");
            assert!(r.iterations >= 3, "too easy: {r:?}");
            let distinct: std::collections::HashSet<&Vec<u64>> = seen.iter().collect();
            assert_eq!(
                distinct.len(),
                seen.len(),
                "walls {walls:?}: a point was evaluated twice"
            );
        }
    }

    /// L-BFGS's vectors divided among 2 and 3 members (threads) take, to the
    /// bit, the single process's steps: the same positions, iterations and
    /// evaluations (every reduction has the single process's bits,
    /// `util::shard`); in free space (argmin's L-BFGS on shards) and in a box
    /// whose wall x_0 = 1.1 holds particles pushed against it (the projected
    /// L-BFGS on parts). 2500 particles in 2D: 5 chunks of vector, so every
    /// member holds a part and one holds the short last chunk.
    ///
    /// Each member reads dE/dX of its own particles only (`EnergyTerm::want`):
    /// the energy gives the others NaN on every member but a single process,
    /// so a member that read another's would fail its step or move its bits.
    /// The energy reports the particles with x_0 < 0 as dearer
    /// (`EnergyTerm::add_costs`): after the first step the members re-cut
    /// the vectors by cost (`Layout::cut`), unevenly, and keep the bits.
    #[test]
    fn divided_vectors_take_the_single_process_steps() {
        for walls in [None, Some(([-1.5, -1.3], [1.1, 0.9]))] {
            divided_steps(walls);
        }
    }

    fn divided_steps(walls: Option<([f64; 2], [f64; 2])>) {
        let n = 2500;
        let w: Vec<f64> = (0..n)
            .map(|i| (1.0 + (i % 3) as f64) / (2.0 * n as f64))
            .collect();
        let x0: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let x = [(i as f64 * 0.37).sin() * 1.5, (i as f64 * 0.91).cos() - 0.2];
                match walls {
                    Some((lo, hi)) => [x[0].clamp(lo[0], hi[0]), x[1].clamp(lo[1], hi[1])],
                    None => x,
                }
            })
            .collect();
        let steps = |team: Arc<dyn Team>| {
            let (a, b) = (0.3, 2.0);
            let energy = FreeEnergy::new(vec![Box::new(Anharmonic::new(a, b, w.clone()))]);
            let mut stepper = JkoStepper::new(energy, w.clone(), Solver::default()).with_team(team);
            if let Some((lo, hi)) = walls {
                stepper = stepper.confined_to(lo, hi);
            }
            let mut x = x0.clone();
            let counts: Vec<(usize, usize)> = (0..3)
                .map(|_| {
                    let r = stepper.step(&mut x, 0.05).expect("the step succeeds");
                    (r.iterations as usize, r.evaluations)
                })
                .collect();
            let bits: Vec<u64> = x.iter().flatten().map(|v| v.to_bits()).collect();
            (bits, counts, stepper.rebalances())
        };
        let single = steps(Arc::new(team::Solo));
        assert!(
            single.1.iter().all(|&(it, _)| it >= 5),
            "too easy to test the history: {:?}",
            single.1
        );
        if let Some((_, hi)) = walls {
            let held = single
                .0
                .chunks(2)
                .filter(|p| f64::from_bits(p[0]) == hi[0])
                .count();
            assert!(held > 100, "the wall must hold particles: {held}");
        }
        for members in [2, 3] {
            let counted = |team: Arc<dyn Team>| {
                let counting = Arc::new(CountingTeam {
                    inner: team,
                    whole: n * 2,
                    gathers: Default::default(),
                });
                let out = steps(counting.clone());
                (
                    out,
                    counting.gathers.load(std::sync::atomic::Ordering::Relaxed),
                )
            };
            for (rank, (out, gathers)) in crate::util::team::ThreadTeam::run(members, counted)
                .into_iter()
                .enumerate()
            {
                let at = format!("{members} members, rank {rank}, walls {walls:?}");
                assert_eq!(out.1, single.1, "iterations, {at}");
                assert!(out.0 == single.0, "positions, {at}");
                assert!(out.2 >= 1, "the cut must move by cost, {at}");
                // argmin asks for J and dJ/dY of a point in two calls: Y is
                // gathered once per point; besides, the explicit first guess
                // of the first step once, and dE/dX once per step (the next
                // step's start).
                let evaluations: usize = out.1.iter().map(|c| c.1).sum();
                assert!(
                    gathers <= evaluations + 1 + out.1.len(),
                    "{gathers} gathers of the whole Y for {evaluations} evaluations, {at}"
                );
            }
        }
    }

    /// A team that counts the gathers of `whole` numbers (the whole Y).
    struct CountingTeam {
        inner: Arc<dyn Team>,
        whole: usize,
        gathers: std::sync::atomic::AtomicUsize,
    }

    impl Team for CountingTeam {
        fn rank(&self) -> usize {
            self.inner.rank()
        }
        fn size(&self) -> usize {
            self.inner.size()
        }
        fn all_gather(&self, mine: &[f64], counts: &[usize], all: &mut [f64]) {
            if all.len() == self.whole {
                self.gathers
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            self.inner.all_gather(mine, counts, all)
        }
        fn send(&self, to: usize, data: &[f64]) {
            self.inner.send(to, data)
        }
        fn receive(&self, from: usize) -> Vec<f64> {
            self.inner.receive(from)
        }
    }

    /// The JKO step of a quadratic energy: argmin sum_i w_i (|x_i - x0_i|^2/(2h) +
    /// k/2 |x_i|^2) is x_i = x0_i / (1 + h k), for any weights. With the
    /// stopping rule at 1e-10 of the initial gradient, the positions are
    /// within 1e-9 of it (J is quadratic: the error shrinks with the
    /// gradient, times the condition number 1 here). The step reports the
    /// energy and w2_step of that point.
    #[test]
    fn a_quadratic_energy_takes_its_closed_form_step() {
        let n = 50;
        let w: Vec<f64> = (0..n).map(|i| (1.0 + (i % 5) as f64) / 150.0).collect();
        let x0: Vec<[f64; 2]> = (0..n)
            .map(|i| [(i as f64 * 0.37).sin() * 2.0, (i as f64 * 0.91).cos() - 0.3])
            .collect();
        let (k, h) = (3.0, 0.1);
        let energy = FreeEnergy::new(vec![Box::new(Quadratic { k, w: w.clone() })]);
        let solver = Solver {
            tolerance: 1e-10,
            ..Solver::default()
        };
        let mut stepper = JkoStepper::new(energy, w.clone(), solver);
        let mut x = x0.clone();
        let report = stepper.step(&mut x, h).expect("a convex step succeeds");
        let mut w2 = 0.0;
        let mut e = 0.0;
        for i in 0..n {
            for a in 0..2 {
                let exact = x0[i][a] / (1.0 + h * k);
                assert!(
                    (x[i][a] - exact).abs() <= 1e-9,
                    "x[{i}][{a}] = {} vs {exact}",
                    x[i][a]
                );
                w2 += w[i] * (exact - x0[i][a]).powi(2);
                e += 0.5 * w[i] * k * exact * exact;
            }
        }
        assert!(
            (report.w2_step - w2.sqrt()).abs() <= 1e-9,
            "{} vs {}",
            report.w2_step,
            w2.sqrt()
        );
        assert!(
            (report.parts.potential - e).abs() <= 1e-12,
            "{:?} vs {e}",
            report.parts
        );
        assert!(report.converged, "{}", report.termination);
    }
}
