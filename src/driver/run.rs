//! A particle run to a directory: output files, checkpoints, `--resume`,
//! events, interrupts, and the checks made before step 1.
//!
//! Directory rules (README, "Runs that survive"): a new or empty directory
//! starts a run; a directory holding a run is refused unless `--resume`
//! (continue it from its checkpoint, if it is this scenario's) or `--force`
//! (delete the run's files and start again; other files are left alone); a
//! non-empty directory holding no run is refused unless `--force`.
//!
//! Order of writes, so that any kill leaves a resumable state: rows are
//! appended to the `.partial` files; at every written step the files are
//! synced and then a checkpoint recording their lengths and checksums is
//! written and renamed into place; at the end, a checkpoint marked complete,
//! then the renames to the final names. A resume cuts the files back to the
//! checkpoint's lengths and replays the steps after it, which are
//! deterministic, so the bytes are those of a run never stopped.

use std::path::Path;

use super::books::Books;
use super::dir::OutputDir;
use super::events::{Event, EventKind, PhysicalWatch};
use super::files::{self, RunWriter};
use super::record::{Command, Phase, RunRecord};
use super::resources::{check_list_memory, check_resources};
use super::start::{Start, all_run_file_names, input_entries, input_paths, inspect};
use crate::error::{Error, Result};
use crate::io::checkpoint::{Checkpoint, FileEntry, RunKind, Status};
use crate::io::output::{self, RUN_FILES};
use crate::io::scenario::{OnCollapse, Scenario};
use crate::io::vtk::VtkSeries;
use crate::stepper::{AdvanceError, Rejection, Simulation, StepReport};
use crate::util::fault;
use crate::util::interrupt;

/// Options of a run to a directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Delete the run already in the directory and start again.
    pub force: bool,
    /// Continue the run in the directory from its checkpoint (start one if
    /// the directory holds none).
    pub resume: bool,
}

/// Receives progress of a run (the CLI draws a progress bar from it).
pub trait Observer {
    /// `first_step` is 1, or the step after the checkpoint a resume starts from.
    fn started(&mut self, _scenario: &Scenario, _bandwidths: &[f64], _first_step: u64) {}
    /// Step `_step` was accepted with report `_report`.
    fn step(&mut self, _step: u64, _report: &StepReport) {}
    /// An event was written to events.csv.
    fn event(&mut self, _event: &Event) {}
    /// A stage of `jko equilibrium`'s continuation ended.
    fn stage(&mut self, _stage: &super::equilibrium::Stage) {}
}

impl Observer for () {}

/// Summary of a run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Last step done.
    pub steps: u64,
    /// Total free energy at step 0.
    pub initial_energy: f64,
    /// Total free energy at the last step done.
    pub final_energy: f64,
    /// L-BFGS iterations summed over all steps and attempts.
    pub total_iterations: u64,
    /// Steps where the optimizer stopped before meeting the tolerance.
    pub unconverged_steps: u64,
    /// Step attempts thrown away and retried with smaller sub-steps.
    pub rejected_attempts: u64,
    /// Rows of events.csv.
    pub events: u64,
    /// Kernel standard deviation eps of each species.
    pub bandwidths: Vec<f64>,
    /// The checkpointed step a resume started from.
    pub resumed_from: Option<u64>,
    /// `--resume` found the run already complete.
    pub already_complete: bool,
}

/// Run a scenario and write its outputs to `dir` (dispatching on the dimension).
pub fn run_to_dir(
    scenario: &Scenario,
    dir: &Path,
    opts: RunOptions,
    obs: &mut dyn Observer,
) -> Result<RunSummary> {
    let mut record = RunRecord::begin(Command::Run, scenario, dir);
    let inputs = input_entries(scenario)?;
    // Held until the record is final: no other process writes here meanwhile.
    let mut out = OutputDir::open(dir, &all_run_file_names())?;
    let result = match scenario.dimension {
        1 => run_dim::<1>(scenario, &mut out, inputs, opts, obs, &mut record),
        2 => run_dim::<2>(scenario, &mut out, inputs, opts, obs, &mut record),
        3 => run_dim::<3>(scenario, &mut out, inputs, opts, obs, &mut record),
        d => unreachable!("dimension {d} was validated"),
    };
    record.finish(result)
}

/// Whether step `n` is written to particles.csv: step 0, every
/// `output_every`-th step, and the last.
pub fn is_output_step(s: &Scenario, n: u64) -> bool {
    n == 0 || n.is_multiple_of(s.output_every as u64) || n == s.steps as u64
}

fn run_dim<const D: usize>(
    s: &Scenario,
    out: &mut OutputDir,
    inputs: Vec<FileEntry>,
    opts: RunOptions,
    obs: &mut dyn Observer,
    record: &mut RunRecord,
) -> Result<RunSummary> {
    let dir = &out.path().to_path_buf();
    let start = inspect(out, s, opts, &inputs, RunKind::Run)?;
    if let Start::Complete(cp) = &start {
        return finish_complete(dir, cp);
    }
    // Checks that can refuse the run come before the first file is written
    // or moved; `out` removes a directory made for a refused run.
    check_resources(s, dir)?;
    let mut sim = Simulation::<D>::new(s)?;
    record.methods(&sim.methods());
    check_list_memory(s, &sim)?;
    let first = match start {
        Start::Resume(_) => None,
        _ => Some(sim.initial_report()?),
    };
    let watch = PhysicalWatch::new(s, &sim.cloud, &sim.bandwidths);
    let (mut books, resumed_from) = match start {
        Start::Resume(cp) => {
            files::restore(&mut sim, &cp, &s.path)?;
            let earlier: Vec<(u64, f64)> = (0..=cp.meta.last_frame)
                .filter(|&n| is_output_step(s, n))
                .map(|n| (n, n as f64 * s.time_step))
                .collect();
            let vtk = vtk_series(s, dir, &earlier)?;
            let books = Books::resumed(dir, &cp, vtk, record)?;
            books.record.own(Some(cp.meta.step))?;
            (books, Some(cp.meta.step))
        }
        Start::Fresh { replace } => {
            // The text parsed, not the file again: it may be gone or edited since.
            let text = s.text.as_bytes();
            out.replace(&replace, &input_paths(s))?;
            output::write_atomic(&dir.join(output::SCENARIO_COPY), text)?;
            let first = first.expect("computed for a fresh start");
            let events = watch.initial_events(s, &sim.cloud);
            let writer = RunWriter::create(dir, D)?.with_vtk(vtk_series(s, dir, &[])?);
            let books = Books::fresh(
                dir,
                writer,
                inputs,
                &mut sim,
                &first,
                events,
                RunKind::Run,
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
    let mut final_energy = books.initial_energy;
    while sim.step < s.steps as u64 {
        if interrupt::requested() {
            books.checkpoint(&sim, Status::Running)?;
            return Err(Error::Interrupted { step: sim.step });
        }
        let n = sim.step + 1;
        books.enter(Phase::Steps);
        let advance = sim.try_advance();
        books.enter(Phase::Output);
        let advance = match advance {
            Ok(a) => a,
            Err(AdvanceError::Interrupted(_)) => {
                // The abandoned attempt's events are logged again when the step is redone.
                books.checkpoint(&sim, Status::Running)?;
                return Err(Error::Interrupted { step: sim.step });
            }
            Err(AdvanceError::Failed(rs)) => {
                return Err(fail_step(books, &mut sim, s.time_step, &rs, obs)?);
            }
        };
        let r = &advance.report;
        final_energy = r.parts.total();
        let collapsed = books.record_step(n, sim.time, &advance, &watch, &sim, obs)?;
        obs.step(n, r);
        fault::kill_point(fault::KillPoint::Step);
        if collapsed && s.on_collapse == OnCollapse::Stop {
            books.end_early(&mut sim)?;
            return Err(Error::Stopped(format!(
                "a species collapsed at step {n} (see events.csv); the output in {} is complete up to this step. \
                 Set on_collapse = \"continue\" to go on regardless",
                dir.display()
            )));
        }
        if is_output_step(s, n) {
            books.frame(&mut sim)?;
            let status = if n == s.steps as u64 {
                Status::Complete
            } else {
                Status::Running
            };
            books.checkpoint(&sim, status)?;
        }
    }
    if s.steps == 0 {
        books.checkpoint(&sim, Status::Complete)?;
    }
    let mut summary = books.summary(&sim, final_energy);
    summary.resumed_from = resumed_from;
    books.writer.finish()?;
    output::sync_dir(dir)?;
    Ok(summary)
}

/// The ParaView series of the run in `dir` if the scenario asks for one,
/// already holding the frames `earlier` (step, time) of a resumed run.
pub(super) fn vtk_series(
    s: &Scenario,
    dir: &Path,
    earlier: &[(u64, f64)],
) -> Result<Option<VtkSeries>> {
    s.output
        .vtk
        .then(|| VtkSeries::open(dir, false, earlier))
        .transpose()
}

/// `--resume` of a complete run: perhaps killed before its renames, so
/// finish them; report what it did.
fn finish_complete(dir: &Path, cp: &Checkpoint) -> Result<RunSummary> {
    finish_renames(dir, cp)?;
    Ok(RunSummary {
        steps: cp.meta.step,
        initial_energy: cp.initial_energy,
        final_energy: f64::NAN,
        total_iterations: cp.meta.total_iterations,
        unconverged_steps: cp.meta.unconverged_steps,
        rejected_attempts: cp.meta.rejected_attempts,
        events: cp.meta.events,
        bandwidths: cp.bandwidths.clone(),
        resumed_from: Some(cp.meta.step),
        already_complete: true,
    })
}

/// The renames of a complete run (or equilibrium) killed before them: each
/// file still `.partial` is cut to its recorded state and renamed.
pub(super) fn finish_renames(dir: &Path, cp: &Checkpoint) -> Result<()> {
    for (name, f) in RUN_FILES.iter().zip(&cp.meta.outputs) {
        if output::partial_path(&dir.join(name)).exists() {
            output::CsvStream::resume(dir.join(name), f.state())?.finish()?;
        }
    }
    output::sync_dir(dir)
}

/// No sub-step size made step n: the rejections and a `step_failed` event
/// are recorded, the files end at the last good step, and the error says
/// what to try.
fn fail_step<const D: usize>(
    mut books: Books<'_>,
    sim: &mut Simulation<D>,
    h: f64,
    rs: &[Rejection],
    obs: &mut dyn Observer,
) -> Result<Error> {
    let n = sim.step + 1;
    let t = n as f64 * h;
    books.rejections(n, t, rs, obs)?;
    let smallest = rs.last().map_or(h, |r| r.substep);
    let last = rs.last().map_or(String::new(), |r| r.reason.to_string());
    books.event(
        Event {
            step: n,
            time: t,
            kind: EventKind::StepFailed,
            species: None,
            value: smallest,
            message: format!("no sub-step down to {smallest:e} was accepted"),
        },
        obs,
    )?;
    let dir = books.dir.display().to_string();
    books.end_early(sim)?;
    Ok(Error::Numerical(format!(
        "step {n}: every attempt failed, down to sub-steps of {smallest:e} (last: {last}). \
         The output in {dir} is complete up to step {} (see events.csv). Try a smaller time_step, \
         a larger bandwidth or softening, a looser [solver] tolerance, or a larger [solver] max_halvings",
        n - 1
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scenario parsed from text, with no file behind its path (as from
    /// Python), runs: the copy in the directory is the text, and a resume
    /// checks the checkpoint against the same text.
    #[test]
    fn a_scenario_from_text_runs_and_resumes() {
        let text = "dimension = 1\ntime_step = 0.05\nsteps = 2\nseed = 2\n\n[density]\nbandwidth = 0.2\n\n\
                    [[species]]\nname = \"u\"\nparticles = 40\n\
                    potential = { kind = \"quadratic\", center = [0.0], stiffness = 1.0 }\n\
                    initial = { kind = \"gaussian\", mean = [0.0], std = 0.5 }\n";
        let s = Scenario::from_toml(text, Path::new("no/such/dir/s.toml")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let summary = run_to_dir(&s, &dir, RunOptions::default(), &mut ()).unwrap();
        assert_eq!(summary.steps, 2);
        assert_eq!(
            std::fs::read(dir.join(output::SCENARIO_COPY)).unwrap(),
            text.as_bytes()
        );
        let again = RunOptions {
            resume: true,
            ..Default::default()
        };
        assert!(
            run_to_dir(&s, &dir, again, &mut ())
                .unwrap()
                .already_complete
        );
        // Other text under the same name is another scenario.
        let other = Scenario::from_toml(&text.replace("seed = 2", "seed = 3"), &s.path).unwrap();
        let e = run_to_dir(&other, &dir, again, &mut ()).unwrap_err();
        assert!(e.to_string().contains("differ"), "{e}");
    }

    /// The run files in `dir` (none if there is no `dir`).
    fn run_files(dir: &Path) -> Vec<String> {
        let names = all_run_file_names();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut found: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| names.contains(n))
            .collect();
        found.sort();
        found
    }

    /// A follower (an MPI rank other than 0, `output::follow`) takes the
    /// same steps as the run that writes, and writes no run file; resuming
    /// from the writer's checkpoint it changes nothing.
    #[test]
    fn a_follower_takes_the_same_steps_and_writes_no_run_file() {
        let text = "dimension = 2\ntime_step = 0.02\nsteps = 4\noutput_every = 2\nseed = 5\n\n\
                    [output]\nvtk = true\n\n\
                    [[species]]\nname = \"u\"\nparticles = 60\n\
                    potential = { kind = \"quadratic\", center = [0.0, 0.0], stiffness = 1.0 }\n\
                    initial = { kind = \"gaussian\", mean = [0.3, 0.0], std = 0.5 }\n";
        let s = Scenario::from_toml(text, Path::new("no/such/dir/s.toml")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let (writer, follower) = (tmp.path().join("writer"), tmp.path().join("follower"));
        let written = run_to_dir(&s, &writer, RunOptions::default(), &mut ()).unwrap();
        let followed = {
            let _following = output::follow(&writer);
            run_to_dir(&s, &follower, RunOptions::default(), &mut ()).unwrap()
        };
        assert_eq!(
            written.final_energy.to_bits(),
            followed.final_energy.to_bits()
        );
        assert_eq!(written.total_iterations, followed.total_iterations);
        assert!(run_files(&writer).len() >= 6, "{:?}", run_files(&writer));
        assert_eq!(run_files(&follower), Vec::<String>::new());
        // What `distributed::run` copies for a follower's resume.
        std::fs::create_dir_all(&follower).unwrap();
        for name in [
            crate::io::checkpoint::CHECKPOINT,
            output::SCENARIO_COPY,
            super::super::RUN_RECORD,
        ] {
            std::fs::copy(writer.join(name), follower.join(name)).unwrap();
        }
        let before = run_files(&follower);
        let resume = RunOptions {
            resume: true,
            ..Default::default()
        };
        let again = {
            let _following = output::follow(&writer);
            run_to_dir(&s, &follower, resume, &mut ()).unwrap()
        };
        assert!(again.already_complete);
        assert_eq!(run_files(&follower), before);
        assert!(!output::following(), "the guard ends the following");
    }
}
