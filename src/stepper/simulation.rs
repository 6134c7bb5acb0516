//! A particle simulation: the problem turned into a cloud, a free energy and
//! a stepper, advanced step by step. A step whose optimizer fails is retried
//! as smaller sub-steps here; the run to a directory (files, checkpoints,
//! events) is [`crate::driver`].

use crate::density::{BlobDensity, DensityEstimator, DensityPlan, choose_estimator};
use crate::energy::steric::TotalDensity;
use crate::energy::{
    Diffusion, EnergyTerm, ExternalField, FreeEnergy, Interaction, PotentialEnergy, StericEnergy,
};
use crate::error::{Error, Result};
use crate::model::potential;
use crate::particles::Cloud;
use crate::stepper::Problem;
use crate::stepper::{JkoStepper, NonFiniteValue, StartPoint, StepError, StepFailure, StepReport};
use crate::util::parallel::sum_indexed;

/// After this many accepted steps in a row at a split level, the next step
/// tries the level above (twice the sub-step) again.
pub const RECOVER_AFTER: u32 = 4;

/// How a simulation computes its energy ([`Simulation::methods`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Methods {
    /// Per species, in the scenario's order.
    pub density: Vec<SpeciesMethod>,
    /// The coupling's backend (`None` without a coupling).
    pub coupling: Option<String>,
}

/// A species' density estimate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpeciesMethod {
    /// The species' name.
    pub species: String,
    /// The estimator summing its kernel densities.
    pub estimator: &'static str,
    /// Whether the estimate is reflected across a box's walls.
    pub reflected: bool,
    /// The kernel's standard deviation eps.
    pub bandwidth: f64,
}

/// A particle simulation of a scenario in dimension `D`.
///
/// Drive it from one of rayon's threads (wrap the loop in
/// [`crate::util::parallel::on_pool`], as `jko` and the Python package do):
/// from any other thread each parallel call inside a step pays two context
/// switches, a third of a small 1D run's time.
pub struct Simulation<const D: usize> {
    /// The problem being solved.
    pub problem: Problem,
    /// The particles at the current step.
    pub cloud: Cloud<D>,
    /// Kernel standard deviation of each species.
    pub bandwidths: Vec<f64>,
    /// Estimator and bandwidth of each species.
    pub plans: Vec<DensityPlan>,
    stepper: JkoStepper<D>,
    /// One estimator per species, for the density column of particles.csv.
    estimators: Vec<Box<dyn DensityEstimator<D>>>,
    /// With `[steric]`: the total density of all species at every particle.
    total: Option<TotalDensity<D>>,
    /// Last completed step (0: the initial cloud).
    pub step: u64,
    /// Simulated time t = step * h.
    pub time: f64,
    /// Steps are taken as 2^level sub-steps of h / 2^level.
    pub level: u32,
    /// Steps accepted in a row at the current level.
    pub calm_steps: u32,
    /// Rejected attempts so far.
    pub rejected_attempts: u64,
}

/// Where a simulation stands between steps (what a checkpoint stores).
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationState<const D: usize> {
    /// Positions of every particle.
    pub positions: Vec<[f64; D]>,
    /// The previous step's displacement and its step size (the next step's first guess).
    pub last_move: Option<(f64, Vec<[f64; D]>)>,
    /// E's parts and dE/dX at the positions, when known (the next step's
    /// start, taken without an evaluation). It names the positions it
    /// belongs to: a caller that changes `positions` leaves it unused.
    pub start: Option<StartPoint<D>>,
    /// Last completed step.
    pub step: u64,
    /// Steps are taken as 2^level sub-steps of h / 2^level.
    pub level: u32,
    /// Steps accepted in a row at the current level.
    pub calm_steps: u32,
    /// Rejected attempts so far.
    pub rejected_attempts: u64,
}

/// A thrown-away attempt at a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// 0 for the first attempt of the step.
    pub attempt: u32,
    /// The sub-step size of the attempt.
    pub substep: f64,
    /// Why it failed.
    pub reason: StepFailure,
}

/// What one step of the scenario did.
#[derive(Debug, Clone)]
pub struct Advance {
    /// Over the whole step: energy at the end, w2_step from X^n to X^{n+1},
    /// iterations and evaluations summed over sub-steps, the last sub-step's
    /// gradient norm; `converged` if every sub-step met the tolerance.
    pub report: StepReport,
    /// Attempts thrown away before the accepted one.
    pub rejections: Vec<Rejection>,
    /// Sub-steps of the accepted attempt.
    pub substeps: u32,
}

/// Why a step of the scenario could not be taken. The cloud and the stepper
/// are left as they were after the previous step.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AdvanceError {
    /// Every sub-step size down to h / 2^max_halvings was rejected.
    Failed(Vec<Rejection>),
    /// An interrupt was requested.
    Interrupted(Vec<Rejection>),
}

/// The particle free energy of a scenario for a given cloud and density
/// estimators (one plan per species; with `[steric]` the steric term smooths
/// each species at its plan's bandwidth, [`crate::energy::steric`]).
pub fn free_energy<const D: usize>(
    problem: &Problem,
    cloud: &Cloud<D>,
    plans: &[DensityPlan],
) -> Result<FreeEnergy<D>> {
    let mut terms: Vec<Box<dyn EnergyTerm<D>>> = Vec::new();
    let diffusion = Diffusion::new(cloud, plans);
    if !diffusion.is_empty() {
        terms.push(Box::new(diffusion));
    }
    if let Some(steric) = problem.steric {
        terms.push(Box::new(StericEnergy::new(
            cloud,
            steric,
            plans,
            problem.density.method,
        )));
    }
    let potentials = problem
        .species
        .iter()
        .map(|s| potential::from_spec::<D>(&s.potential))
        .collect();
    terms.push(Box::new(PotentialEnergy::new(cloud, potentials)));
    let strength = problem.coupling.strength;
    if strength != 0.0 {
        // In free space without backgrounds: the free-space backend alone.
        let (pair, field) = crate::coupling::domain_backends::<D>(
            &problem.coupling,
            &problem.domain,
            &problem.backgrounds,
            cloud.len(),
        )
        .map_err(|why| Error::input(&problem.path, "domain", why))?;
        terms.push(Box::new(Interaction::new(cloud, strength, pair)));
        if let Some(field) = field {
            terms.push(Box::new(ExternalField::new(cloud, strength, field)));
        }
    }
    Ok(FreeEnergy::new(terms))
}

/// The rules of SPEC §7-8 on a problem and its initial cloud: the
/// problem's own ([`Problem::check_domain`]), neutrality with the cloud's
/// masses, and every particle in the box.
fn check_domain<const D: usize>(problem: &Problem, cloud: &Cloud<D>) -> Result<()> {
    let at = |(key, why): (String, String)| Error::input(&problem.path, key, why);
    problem.check_domain().map_err(at)?;
    let masses: Vec<f64> = (0..cloud.blocks.len())
        .map(|k| cloud.species_mass(k))
        .collect();
    problem.check_neutral(&masses).map_err(at)?;
    if let Some(b) = problem.domain.as_box()
        && let Some(i) = cloud.positions.iter().position(|p| !b.contains(p))
    {
        let k = cloud
            .blocks
            .iter()
            .position(|s| s.range.contains(&i))
            .unwrap_or(0);
        return Err(Error::input(
            &problem.path,
            format!("species[{k}].initial"),
            format!(
                "particle {i} of the initial cloud, at {:?}, lies outside the domain's box",
                cloud.positions[i]
            ),
        ));
    }
    Ok(())
}

/// s_i at the cloud's positions; a refused mesh (after a reset, only
/// coordinates beyond its node indices) falls back to neighbour lists of
/// the same kernels.
fn total_at<const D: usize>(total: &mut TotalDensity<D>, cloud: &Cloud<D>) -> Vec<f64> {
    total.reset();
    match total.compute(&cloud.positions) {
        Ok(s) => s.to_vec(),
        Err(_) => total
            .on_neighbour_lists(cloud)
            .compute(&cloud.positions)
            .expect("neighbour lists refuse no cloud")
            .to_vec(),
    }
}

/// SPEC §10 on the initial cloud: the total density is below close packing
/// (v s_i < 1) at every particle, else the energy is infinite from the start.
fn check_packing<const D: usize>(
    problem: &Problem,
    cloud: &Cloud<D>,
    total: &mut TotalDensity<D>,
) -> Result<()> {
    let Some(steric) = problem.steric else {
        return Ok(());
    };
    let s = total_at(total, cloud);
    let packed = 1.0 / steric.volume;
    // The most crowded particle (NaN, which finite positions cannot give,
    // would count as crowded).
    let (i, top) = s
        .iter()
        .copied()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(j, m), (i, v)| {
            if v > m || v.is_nan() { (i, v) } else { (j, m) }
        });
    if steric.volume * top < 1.0 {
        return Ok(());
    }
    let over = s
        .iter()
        .filter(|&&v| v.is_nan() || steric.volume * v >= 1.0)
        .count();
    let (k, block) = cloud
        .blocks
        .iter()
        .enumerate()
        .find(|(_, b)| b.range.contains(&i))
        .expect("every particle is in a species");
    Err(Error::input(
        &problem.path,
        "steric.volume",
        format!(
            "the initial cloud is at or beyond close packing: at particle {} of species[{k}] (\"{}\"), \
             at {:?}, the total density of all species is {top:e}, and the close-packing density \
             1/v is {packed:e} (v = {}); {over} of the {} particles {} at or beyond it, where the \
             steric energy is infinite. Give a smaller steric.volume (below {:e}), or a wider initial \
             law (a larger std or box: fewer particles per unit volume), or a larger density.bandwidth \
             (a smoother estimate)",
            i - block.range.start,
            short(&block.name),
            cloud.positions[i],
            steric.volume,
            cloud.len(),
            if over == 1 { "is" } else { "are" },
            1.0 / top,
        ),
    ))
}

/// sqrt(sum_i w_i |a_i - b_i|^2).
fn weighted_distance<const D: usize>(w: &[f64], a: &[[f64; D]], b: &[[f64; D]]) -> f64 {
    sum_indexed(w.len(), |i| {
        w[i] * (0..D).map(|k| (a[i][k] - b[i][k]).powi(2)).sum::<f64>()
    })
    .sqrt()
}

/// Refuses a bandwidth the kernel cannot use (README, "Kernel and
/// bandwidth"): below what f64 resolves at the cloud's coordinates
/// ([`crate::density::MIN_RELATIVE_BANDWIDTH`]), or, with `bandwidth =
/// "auto"`, a species whose cloud has no spread for the rule to go by (one
/// particle, or particles at one point or on a line or plane). Either is
/// asked for a fixed bandwidth: the automatic rule would give eps ~ 1e-77
/// there, and with it a diffusion energy of hundreds and NaN gradients.
fn check_bandwidths<const D: usize>(
    scenario: &Problem,
    cloud: &Cloud<D>,
    plans: &[DensityPlan],
) -> Result<()> {
    use crate::density::Bandwidth;
    use crate::density::{degenerate_spread, unresolvable_bandwidth};
    let auto = scenario.density.bandwidth == Bandwidth::Auto;
    for (k, ((b, sp), plan)) in cloud
        .blocks
        .iter()
        .zip(&scenario.species)
        .zip(plans)
        .enumerate()
    {
        let (x, w) = (
            &cloud.positions[b.range.clone()],
            &cloud.weights[b.range.clone()],
        );
        let degenerate = auto && degenerate_spread(x, w);
        let unresolved = unresolvable_bandwidth(x, plan.eps);
        if !degenerate && unresolved.is_none() {
            continue;
        }
        let plural = if x.len() == 1 { "" } else { "s" };
        let species = format!(
            "species[{k}] (\"{}\", {} particle{plural})",
            short(&sp.name),
            x.len()
        );
        let message = if auto {
            let why = if degenerate {
                "its initial particles have no spread (a single particle, or all at one point or on a lower-dimensional set)".to_string()
            } else {
                "its initial cloud is too concentrated".to_string()
            };
            format!(
                "the automatic bandwidth cannot be used for {species}: {why}; the rule's {}. \
                 Set a fixed one, `bandwidth = <length>` in [density], the length over which densities are smoothed{}",
                unresolved.unwrap_or_else(|| format!("eps = {:e}", plan.eps)),
                suggestion(sp.diffusion, scenario.time_step)
            )
        } else {
            format!(
                "for {species}: {}; give a larger one",
                unresolved.unwrap_or_default()
            )
        };
        return Err(Error::input(&scenario.path, "density.bandwidth", message));
    }
    Ok(())
}

/// A species name as a message echoes it: at most 60 characters.
fn short(name: &str) -> String {
    match name.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &name[..cut]),
        None => name.to_string(),
    }
}

/// A bandwidth worth trying when the automatic rule has nothing to go by:
/// the diffusion length of one step (the rule's own floor, doubled).
fn suggestion(diffusion: f64, time_step: f64) -> String {
    let eps = (2.0 * diffusion * time_step).sqrt();
    if eps.is_finite() && eps > 0.0 {
        format!(" (e.g. {eps:.3e}, the diffusion length sqrt(2 D h) of one step)")
    } else {
        String::new()
    }
}

impl<const D: usize> Simulation<D> {
    /// Set up the simulation of `problem` (its dimension must be `D`; a
    /// [`crate::io::scenario::Scenario`] reads through to its problem).
    pub fn new(problem: &Problem) -> Result<Self> {
        assert_eq!(
            problem.dimension, D,
            "dispatch on the problem's dimension first"
        );
        let cloud = Cloud::<D>::sample_in(
            &problem.species,
            problem.seed,
            &problem.path,
            &problem.domain,
        )?;
        Self::from_cloud(problem, cloud)
    }

    /// Set up a run from an explicit initial cloud.
    pub fn from_cloud(problem: &Problem, cloud: Cloud<D>) -> Result<Self> {
        check_domain(problem, &cloud)?;
        let bx = problem.domain.as_box();
        let plans: Vec<DensityPlan> = cloud
            .blocks
            .iter()
            .zip(&problem.species)
            .map(|(b, sp)| {
                choose_estimator(
                    &cloud.positions[b.range.clone()],
                    &cloud.weights[b.range.clone()],
                    sp.diffusion,
                    sp.exponent,
                    problem.time_step,
                    &problem.density,
                )
            })
            .map(|plan| match bx {
                Some(b) => plan.in_box(&b.lower, &b.upper),
                None => plan,
            })
            .collect();
        check_bandwidths(problem, &cloud, &plans)?;
        let bandwidths = plans.iter().map(|p| p.eps).collect();
        let mut total = problem
            .steric
            .map(|_| TotalDensity::new(&cloud, &plans, problem.density.method));
        if let Some(total) = &mut total {
            check_packing(problem, &cloud, total)?;
        }

        let energy = free_energy(problem, &cloud, &plans)?;
        let mut stepper = JkoStepper::new(energy, cloud.weights.clone(), problem.solver);
        if let Some(b) = bx {
            stepper = stepper.confined_to(
                std::array::from_fn(|a| b.lower[a]),
                std::array::from_fn(|a| b.upper[a]),
            );
        }
        let estimators = plans.iter().map(|p| p.build()).collect();
        Ok(Simulation {
            problem: problem.clone(),
            cloud,
            bandwidths,
            plans,
            stepper,
            estimators,
            total,
            step: 0,
            time: 0.0,
            level: 0,
            calm_steps: 0,
            rejected_attempts: 0,
        })
    }

    /// The report of step 0: the energy of the current cloud, nothing moved.
    pub fn initial_report(&mut self) -> Result<StepReport> {
        let mut grad = vec![[0.0; D]; self.cloud.len()];
        let parts = self.stepper.energy(&self.cloud.positions, &mut grad);
        // The explicit velocity ||grad E / w||_w: the first step's scale.
        let w = &self.cloud.weights;
        let velocity = sum_indexed(w.len(), |i| {
            grad[i].iter().map(|g| g * g).sum::<f64>() / w[i]
        })
        .sqrt();
        if !(parts.total().is_finite() && velocity.is_finite()) {
            let which = self.stepper.non_finite_terms(&self.cloud.positions);
            return Err(Error::Numerical(format!(
                "the initial state's energy or its gradient is not finite: {which}; nothing was written"
            )));
        }
        // The first step starts here: it takes E and dE/dX from this evaluation.
        self.stepper.set_start_point(Some(StartPoint {
            x: self.cloud.positions.clone(),
            parts,
            grad,
        }));
        Ok(StepReport {
            parts,
            w2_step: 0.0,
            iterations: 0,
            evaluations: 1,
            gradient_norm: 0.0,
            initial_gradient_norm: 0.0,
            converged: true,
            termination: "initial state".into(),
        })
    }

    /// One step of the scenario's time step h. A rejected attempt is thrown
    /// away (positions restored, optimizer history cleared) and the step is
    /// retried as twice as many sub-steps, down to h / 2^max_halvings. The
    /// split level persists and relaxes by one after [`RECOVER_AFTER`] calm
    /// steps, so a hard stretch of the run is not re-attempted at full h on
    /// every step.
    pub fn try_advance(&mut self) -> std::result::Result<Advance, AdvanceError> {
        self.try_advance_by(self.problem.time_step)
    }

    /// [`try_advance`](Self::try_advance) with a step of size `h` instead of
    /// the problem's (the continuation of [`super::equilibrium`]); the
    /// simulated time still counts steps of the problem's h.
    pub fn try_advance_by(&mut self, h: f64) -> std::result::Result<Advance, AdvanceError> {
        let n = self.step + 1;
        let x_start = self.cloud.positions.clone();
        let history = self.stepper.last_move().cloned();
        let mut rejections = Vec::new();
        let mut attempt = 0u32;
        loop {
            let substeps = 1u32 << self.level;
            let hs = h / f64::from(substeps);
            match self.substeps(n, attempt, substeps, hs) {
                Ok(mut report) => {
                    report.w2_step =
                        weighted_distance(&self.cloud.weights, &self.cloud.positions, &x_start);
                    if let Some(detail) = report.non_finite() {
                        // Never a normal result: rejected like a failed attempt.
                        let why = StepFailure::NonFinite {
                            value: NonFiniteValue::Report,
                            detail,
                        };
                        if let Some(failed) =
                            self.reject(&x_start, &mut rejections, attempt, hs, why)
                        {
                            return Err(failed);
                        }
                        attempt += 1;
                        continue;
                    }
                    if rejections.is_empty() {
                        self.calm_steps += 1;
                        if self.level > 0 && self.calm_steps >= RECOVER_AFTER {
                            self.level -= 1;
                            self.calm_steps = 0;
                        }
                    }
                    self.step = n;
                    self.time = n as f64 * self.problem.time_step;
                    return Ok(Advance {
                        report,
                        rejections,
                        substeps,
                    });
                }
                Err(StepError::Interrupted) => {
                    self.cloud.positions.copy_from_slice(&x_start);
                    self.stepper.set_last_move(history);
                    return Err(AdvanceError::Interrupted(rejections));
                }
                Err(StepError::Rejected(reason)) => {
                    if let Some(failed) =
                        self.reject(&x_start, &mut rejections, attempt, hs, reason)
                    {
                        return Err(failed);
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// Throws an attempt away: positions restored, history cleared, the
    /// rejection recorded, the split level raised; the error that ends the
    /// step when the level is already the deepest.
    fn reject(
        &mut self,
        x_start: &[[f64; D]],
        rejections: &mut Vec<Rejection>,
        attempt: u32,
        substep: f64,
        reason: StepFailure,
    ) -> Option<AdvanceError> {
        self.cloud.positions.copy_from_slice(x_start);
        self.stepper.clear_history();
        self.rejected_attempts += 1;
        self.calm_steps = 0;
        rejections.push(Rejection {
            attempt,
            substep,
            reason,
        });
        if self.level >= self.problem.solver.max_halvings {
            return Some(AdvanceError::Failed(std::mem::take(rejections)));
        }
        self.level += 1;
        None
    }

    /// [`try_advance`](Self::try_advance) for callers that need only the
    /// step's report: a step no sub-step size could make is an error.
    pub fn advance(&mut self) -> Result<StepReport> {
        match self.try_advance() {
            Ok(a) => Ok(a.report),
            Err(AdvanceError::Interrupted(_)) => Err(Error::Interrupted { step: self.step }),
            Err(AdvanceError::Failed(rs)) => Err(Error::Numerical(format!(
                "step {}: every attempt failed (last: {})",
                self.step + 1,
                rs.last().map_or(String::new(), |r| r.reason.to_string())
            ))),
        }
    }

    /// `count` JKO steps of size `hs`, as one attempt at step `n`.
    fn substeps(
        &mut self,
        n: u64,
        attempt: u32,
        count: u32,
        hs: f64,
    ) -> std::result::Result<StepReport, StepError> {
        let mut total: Option<StepReport> = None;
        for _ in 0..count {
            self.stepper.set_context(n, attempt);
            let r = self.stepper.step(&mut self.cloud.positions, hs)?;
            total = Some(match total {
                None => r,
                Some(t) => StepReport {
                    iterations: t.iterations + r.iterations,
                    evaluations: t.evaluations + r.evaluations,
                    initial_gradient_norm: t.initial_gradient_norm,
                    converged: t.converged && r.converged,
                    termination: if r.converged {
                        t.termination
                    } else {
                        r.termination.clone()
                    },
                    ..r
                },
            });
        }
        Ok(total.expect("at least one sub-step"))
    }

    /// How the run computes its energy, as run.json records it: each
    /// species' density estimator and bandwidth (`[density]`, chosen when
    /// `"auto"`), and the coupling's backend (`[coupling] method`, likewise).
    pub fn methods(&self) -> Methods {
        use crate::density::Estimator;
        let density = self
            .problem
            .species
            .iter()
            .zip(&self.plans)
            .map(|(sp, plan)| SpeciesMethod {
                species: sp.name.clone(),
                estimator: match plan.estimator {
                    Estimator::Neighbours => "neighbour lists",
                    Estimator::Mesh { .. } => "particle mesh",
                    Estimator::Sorted1d => "sorted 1D sums",
                },
                reflected: plan.walls.is_some(),
                bandwidth: plan.eps,
            })
            .collect();
        Methods {
            density,
            coupling: self.stepper.methods().into_iter().next(),
        }
    }

    /// How many times this process's steps re-cut their vectors among the
    /// team by cost ([`JkoStepper::rebalances`]; 0 on a single process).
    pub fn recuts(&self) -> usize {
        self.stepper.rebalances()
    }

    /// Each particle's estimated density of its own species.
    pub fn densities(&mut self) -> Vec<f64> {
        let mut out = vec![0.0; self.cloud.len()];
        for (b, est) in self.cloud.blocks.iter().zip(&mut self.estimators) {
            let r = b.range.clone();
            // A fresh list: the column must not depend on earlier frames.
            est.reset();
            let (x, w) = (
                &self.cloud.positions[r.clone()],
                &self.cloud.weights[r.clone()],
            );
            match est.compute(x, w) {
                Ok(rho) => out[r].copy_from_slice(rho),
                // After the reset the mesh refuses only coordinates beyond
                // its node indices (an accepted step cannot hold them); the
                // same kernel summed over neighbours still gives a column.
                Err(_) => out[r].copy_from_slice(BlobDensity::new(est.bandwidth()).compute(x, w)),
            }
        }
        out
    }

    /// Optimizer settings of the steps from now on (see
    /// [`JkoStepper::set_solver`]); the problem's own are unchanged.
    pub fn set_solver(&mut self, solver: crate::stepper::Solver, accept_descent: bool) {
        self.stepper.set_solver(solver, accept_descent);
    }

    /// E_N at the current cloud and the norm of its Wasserstein gradient,
    /// ||grad E_N||_w = sqrt(sum_i |grad_i E_N|^2 / w_i) (the L^2(w) norm of
    /// the velocity -grad E_N / w; zero exactly at a stationary state). In a
    /// box a component pushing a particle on a wall outward is left out: the
    /// wall holds it (the KKT condition of the constrained minimum).
    pub fn stationarity(&mut self) -> (crate::energy::EnergyParts, f64) {
        let mut grad = vec![[0.0; D]; self.cloud.len()];
        let parts = self.stepper.energy(&self.cloud.positions, &mut grad);
        if let Some(b) = self.problem.domain.as_box() {
            for (g, x) in grad.iter_mut().zip(&self.cloud.positions) {
                for a in 0..D {
                    let held =
                        (x[a] <= b.lower[a] && g[a] > 0.0) || (x[a] >= b.upper[a] && g[a] < 0.0);
                    if held {
                        g[a] = 0.0;
                    }
                }
            }
        }
        let w = &self.cloud.weights;
        let norm = sum_indexed(w.len(), |i| {
            grad[i].iter().map(|g| g * g).sum::<f64>() / w[i]
        })
        .sqrt();
        (parts, norm)
    }

    /// With `[steric]`: the total density s_i of all species at every
    /// particle (SPEC §10, [`crate::energy::steric`]), in the cloud's order,
    /// at the current positions; `None` without `[steric]`.
    pub fn total_densities(&mut self) -> Option<Vec<f64>> {
        let total = self.total.as_mut()?;
        Some(total_at(total, &self.cloud))
    }

    /// The state a resumed run needs beyond the problem.
    pub fn state(&self) -> SimulationState<D> {
        SimulationState {
            positions: self.cloud.positions.clone(),
            last_move: self.stepper.last_move().cloned(),
            // Only for these positions: after a failed step they are the
            // step's start again, and the start point may be a sub-step's.
            start: self
                .stepper
                .start_point()
                .filter(|s| super::step::same_bits(&s.x, &self.cloud.positions))
                .cloned(),
            step: self.step,
            level: self.level,
            calm_steps: self.calm_steps,
            rejected_attempts: self.rejected_attempts,
        }
    }

    /// Continue from `state` (taken from a simulation of the same problem;
    /// the caller checks that it belongs to it). Positions and the stored
    /// move must hold one entry per particle.
    pub fn set_state(&mut self, state: SimulationState<D>) {
        assert_eq!(
            state.positions.len(),
            self.cloud.len(),
            "one position per particle"
        );
        self.stepper.set_start_point(state.start);
        self.cloud.positions = state.positions;
        self.stepper.set_last_move(state.last_move);
        self.step = state.step;
        self.time = self.step as f64 * self.problem.time_step;
        self.level = state.level;
        self.calm_steps = state.calm_steps;
        self.rejected_attempts = state.rejected_attempts;
    }
}
