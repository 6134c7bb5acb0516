//! `jko equilibrium` with particles: the least-energy state of SPEC §9 to a
//! directory, by the continuation of [`crate::stepper::equilibrium`].
//!
//! The directory follows the rules of a run ([`super::run`]): the files are
//! `.partial` until complete, a checkpoint is written after every stage of
//! the continuation, `--resume` continues from it (the stages are
//! deterministic, so the bytes are those of a run never stopped), `--force`
//! replaces. The output is SPEC §9's: particles.csv and energy.csv with two
//! written steps, 0 (the initial clouds) and 1 (the minimizer), time 0 for
//! both; step 1's row has the L-BFGS iterations summed over the stages, the
//! final ||grad E_N||_w as gradient_norm, and as w2_step the distance from
//! the initial clouds, sqrt(sum_i w_i |X*_i - X^0_i|^2). events.csv records
//! rejected stage attempts and, when the continuation stops short, an
//! `equilibrium_not_reached` row; the files then hold the last iterate as
//! step 1 and the error ([`Error::NotConverged`]) has its own exit status.

use std::path::Path;

use super::books::Books;
use super::dir::OutputDir;
use super::events::{Event, EventKind};
use super::files::{self, RunWriter};
use super::record::{Command, Phase, RunRecord};
use super::resources::{check_list_memory, check_resources};
use super::start::{Start, all_run_file_names, input_entries, input_paths, inspect};
use super::{Observer, RunOptions};
use crate::error::{Error, Result};
use crate::io::checkpoint::{Checkpoint, FileEntry, RunKind, Status};
use crate::io::output;
use crate::io::scenario::Scenario;
use crate::stepper::equilibrium::{check_existence, max_stage_step, stage_step};
use crate::stepper::{AdvanceError, Simulation, StepReport};
use crate::util::fault;
use crate::util::interrupt;
use crate::util::parallel::sum_indexed;

/// A stage that fails when ||grad E||_w is within this factor of the target
/// ends the continuation as stationary to rounding; further from it, the
/// failure is reported (a wider margin once accepted a higher local minimum
/// of E_N for the least-energy one).
pub const ROUNDING_MARGIN: f64 = 10.0;

/// Most halvings of a stage's step size before the stage counts as failed.
pub const STAGE_HALVINGS: u32 = 2;

/// One finished stage of the continuation (what the progress bar shows).
#[derive(Debug, Clone)]
pub struct Stage {
    /// 1-based stage number.
    pub stage: u64,
    /// Its JKO step size h_j.
    pub step_size: f64,
    /// E_N after the stage.
    pub energy: f64,
    /// ||grad E_N||_w after the stage.
    pub gradient_norm: f64,
    /// The stopping rule's bound on ||grad E_N||_w.
    pub target: f64,
    /// L-BFGS iterations of the stage.
    pub iterations: u64,
}

/// How the continuation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// ||grad E_N||_w fell below tolerance times its initial value.
    Tolerance,
    /// A stage could not lower E_N any more (its step at the largest size
    /// moved nothing, or no sub-step lowered J with ||grad E_N||_w within
    /// [`ROUNDING_MARGIN`] of the target): stationary to the rounding of E.
    Rounding,
}

/// Summary of `jko equilibrium`.
#[derive(Debug, Clone, Default)]
pub struct EquilibriumSummary {
    /// Stages of the continuation done.
    pub stages: u64,
    /// E_N of the initial clouds.
    pub initial_energy: f64,
    /// E_N of the minimizer.
    pub final_energy: f64,
    /// ||grad E_N||_w of the initial clouds.
    pub initial_gradient_norm: f64,
    /// ||grad E_N||_w of the minimizer.
    pub gradient_norm: f64,
    /// The stopping rule's bound.
    pub target: f64,
    /// L-BFGS iterations over every stage.
    pub total_iterations: u64,
    /// Kernel bandwidth of each species.
    pub bandwidths: Vec<f64>,
    /// How it stopped (None: read from a complete directory).
    pub stop: Option<Stop>,
    /// The stage a resume started from.
    pub resumed_from: Option<u64>,
    /// `--resume` found the equilibrium already complete.
    pub already_complete: bool,
}

/// Compute the least-energy state of a scenario's particles and write it to
/// `dir` (dispatching on the dimension).
pub fn equilibrium_to_dir(
    scenario: &Scenario,
    dir: &Path,
    opts: RunOptions,
    obs: &mut dyn Observer,
) -> Result<EquilibriumSummary> {
    let mut record = RunRecord::begin(Command::Equilibrium, scenario, dir);
    let inputs = input_entries(scenario)?;
    let mut out = OutputDir::open(dir, &all_run_file_names())?;
    let result = match scenario.dimension {
        1 => equilibrium_dim::<1>(scenario, &mut out, inputs, opts, obs, &mut record),
        2 => equilibrium_dim::<2>(scenario, &mut out, inputs, opts, obs, &mut record),
        3 => equilibrium_dim::<3>(scenario, &mut out, inputs, opts, obs, &mut record),
        d => unreachable!("dimension {d} was validated"),
    };
    record.finish(result)
}

fn equilibrium_dim<const D: usize>(
    s: &Scenario,
    out: &mut OutputDir,
    inputs: Vec<FileEntry>,
    opts: RunOptions,
    obs: &mut dyn Observer,
    record: &mut RunRecord,
) -> Result<EquilibriumSummary> {
    let dir = &out.path().to_path_buf();
    let start = inspect(out, s, opts, &inputs, RunKind::Equilibrium)?;
    if let Start::Complete(cp) = &start {
        return finish_complete(dir, cp);
    }
    check_resources(s, dir)?;
    let mut sim = Simulation::<D>::new(s)?;
    record.methods(&sim.methods());
    let masses: Vec<f64> = (0..sim.cloud.blocks.len())
        .map(|k| sim.cloud.species_mass(k))
        .collect();
    check_existence(s, &masses).map_err(|(key, why)| Error::input(&s.path, key, why))?;
    check_list_memory(s, &sim)?;
    let settings = s.equilibrium;
    // The initial clouds: the start of the continuation, and the origin of
    // step 1's w2_step (a resume draws them again, identically).
    let x0 = sim.cloud.positions.clone();
    let first = sim.initial_report()?;
    let (_, g0) = sim.stationarity();
    let target = settings.tolerance * g0;
    let (mut books, resumed_from) = match start {
        Start::Resume(cp) => {
            files::restore(&mut sim, &cp, &s.path)?;
            let vtk = super::run::vtk_series(s, dir, &[(0, 0.0)])?;
            let books = Books::resumed(dir, &cp, vtk, record)?;
            books.record.own(Some(cp.meta.step))?;
            (books, Some(cp.meta.step))
        }
        Start::Fresh { replace } => {
            // The text parsed, not the file again: it may be gone or edited since.
            let text = s.text.as_bytes();
            out.replace(&replace, &input_paths(s))?;
            output::write_atomic(&dir.join(output::SCENARIO_COPY), text)?;
            let writer = RunWriter::create(dir, D)?.with_vtk(super::run::vtk_series(s, dir, &[])?);
            let books = Books::fresh(
                dir,
                writer,
                inputs,
                &mut sim,
                &first,
                Vec::new(),
                RunKind::Equilibrium,
                record,
                obs,
            )?;
            out.establish()?;
            books.record.own(None)?;
            (books, None)
        }
        Start::Complete(_) => unreachable!("returned above"),
    };
    obs.started(s, &sim.bandwidths, sim.step + 1);
    // A stage no sub-step of which lowers J is, near the end, the rounding
    // of E: two halvings tell it, six would only repeat it.
    let stage_solver = crate::stepper::Solver {
        tolerance: settings.stage_tolerance,
        max_halvings: s.solver.max_halvings.min(STAGE_HALVINGS),
        ..s.solver
    };
    sim.set_solver(stage_solver, true);

    let h_max = max_stage_step(s.time_step);
    let (mut parts, mut g) = sim.stationarity();
    let mut failure: Option<String> = None;
    let stop = loop {
        if g <= target {
            break Some(Stop::Tolerance);
        }
        if sim.step >= settings.max_stages as u64 {
            break None;
        }
        if interrupt::requested() {
            books.checkpoint(&sim, Status::Running)?;
            return Err(Error::Interrupted { step: sim.step });
        }
        let j = sim.step + 1;
        let h = stage_step(&settings, s.time_step, j);
        books.enter(Phase::Steps);
        let advance = sim.try_advance_by(h);
        books.enter(Phase::Output);
        let advance = match advance {
            Ok(a) => a,
            Err(AdvanceError::Interrupted(_)) => {
                books.checkpoint(&sim, Status::Running)?;
                return Err(Error::Interrupted { step: sim.step });
            }
            Err(AdvanceError::Failed(rs)) => {
                books.rejections(j, 0.0, &rs, obs)?;
                if g <= ROUNDING_MARGIN * target {
                    // Near the minimizer no sub-step lowers J any more:
                    // the rounding of E, not a failure (module docs).
                    break Some(Stop::Rounding);
                }
                let last = rs.last().map_or(String::new(), |r| r.reason.to_string());
                failure = Some(format!(
                    "stage {j} (step size {h:e}) failed at every sub-step size (last: {last})"
                ));
                break None;
            }
        };
        books.rejections(j, 0.0, &advance.rejections, obs)?;
        books.meta.total_iterations += advance.report.iterations;
        books.meta.total_evaluations += advance.report.evaluations as u64;
        (parts, g) = sim.stationarity();
        obs.stage(&Stage {
            stage: j,
            step_size: h,
            energy: parts.total(),
            gradient_norm: g,
            target,
            iterations: advance.report.iterations,
        });
        fault::kill_point(fault::KillPoint::Step);
        if h >= h_max && advance.report.w2_step == 0.0 {
            // The minimization of E_N itself cannot lower it: rounding.
            break Some(Stop::Rounding);
        }
        if g > target {
            books.checkpoint(&sim, Status::Running)?;
        }
    };

    // Step 1: the minimizer (or the last iterate).
    let w = &sim.cloud.weights;
    let x = &sim.cloud.positions;
    let w2 = sum_indexed(w.len(), |i| {
        w[i] * (0..D).map(|a| (x[i][a] - x0[i][a]).powi(2)).sum::<f64>()
    })
    .sqrt();
    let report = StepReport {
        parts,
        w2_step: w2,
        iterations: books.meta.total_iterations,
        evaluations: 0,
        gradient_norm: g,
        initial_gradient_norm: g0,
        converged: stop.is_some(),
        termination: String::new(),
    };
    books.writer.energy(1, 0.0, &report)?;
    let rho = sim.densities();
    books.writer.frame(1, 0.0, &sim.cloud, &rho)?;
    books.meta.last_frame = 1;
    let stages = sim.step;
    if stop.is_none() {
        let why = failure.unwrap_or_else(|| {
            format!(
                "after {stages} stages (equilibrium.max_stages), ||grad E||_w = {g:e} is above the \
                 target {target:e} (tolerance {:e} of the initial {g0:e})",
                settings.tolerance
            )
        });
        books.event(
            Event {
                step: 1,
                time: 0.0,
                kind: EventKind::EquilibriumNotReached,
                species: None,
                value: g,
                message: why.clone(),
            },
            obs,
        )?;
        books.checkpoint(&sim, Status::Ended)?;
        books.writer.finish()?;
        output::sync_dir(dir)?;
        return Err(Error::NotConverged(format!(
            "{why}. The files in {} hold the last iterate as step 1. Try a larger \
             equilibrium.max_stages or equilibrium.tolerance, a smaller time_step (the first stage), \
             or check that the scenario has an equilibrium (confinement, attraction below the critical mass)",
            dir.display()
        )));
    }
    books.checkpoint(&sim, Status::Complete)?;
    books.writer.finish()?;
    output::sync_dir(dir)?;
    Ok(EquilibriumSummary {
        stages,
        initial_energy: books.initial_energy,
        final_energy: parts.total(),
        initial_gradient_norm: g0,
        gradient_norm: g,
        target,
        total_iterations: books.meta.total_iterations,
        bandwidths: sim.bandwidths.clone(),
        stop,
        resumed_from,
        already_complete: false,
    })
}

/// `--resume` of a complete equilibrium: finish its renames if a kill came
/// before them.
fn finish_complete(dir: &Path, cp: &Checkpoint) -> Result<EquilibriumSummary> {
    super::run::finish_renames(dir, cp)?;
    Ok(EquilibriumSummary {
        stages: cp.meta.step,
        initial_energy: cp.initial_energy,
        final_energy: f64::NAN,
        total_iterations: cp.meta.total_iterations,
        bandwidths: cp.bandwidths.clone(),
        resumed_from: Some(cp.meta.step),
        already_complete: true,
        ..Default::default()
    })
}
