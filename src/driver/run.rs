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

use std::path::{Path, PathBuf};

use crate::density;
use crate::driver::dir::OutputDir;
use crate::driver::events::{Event, EventKind, PhysicalWatch};
use crate::driver::files::{self, RunWriter};
use crate::error::{Error, Result, clip};
use crate::io::checkpoint::{self, Checkpoint, FileEntry, Meta, Status};
use crate::io::output::{self, RUN_FILES};
use crate::io::scenario::{InitialSpec, OnCollapse, Scenario};
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
    fn step(&mut self, _step: u64, _report: &StepReport) {}
    fn event(&mut self, _event: &Event) {}
}

impl Observer for () {}

/// Summary of a run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Last step done.
    pub steps: u64,
    pub initial_energy: f64,
    pub final_energy: f64,
    pub total_iterations: u64,
    /// Steps where the optimizer stopped before meeting the tolerance.
    pub unconverged_steps: u64,
    /// Step attempts thrown away and retried with smaller sub-steps.
    pub rejected_attempts: u64,
    /// Rows of events.csv.
    pub events: u64,
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
    match scenario.dimension {
        1 => run_dim::<1>(scenario, dir, opts, obs),
        2 => run_dim::<2>(scenario, dir, opts, obs),
        3 => run_dim::<3>(scenario, dir, opts, obs),
        d => unreachable!("dimension {d} was validated"),
    }
}

/// Every file name a run of either kind (particles or grid) writes, final
/// and `.partial`: a forced run replaces all of them, so that no file of
/// another run stays beside the new one's.
pub fn all_run_file_names() -> Vec<String> {
    let finals = RUN_FILES.iter().chain(&[
        output::DENSITY,
        output::SCENARIO_COPY,
        checkpoint::CHECKPOINT,
        checkpoint::PREVIOUS,
    ]);
    finals
        .flat_map(|n| [n.to_string(), format!("{n}{}", output::PARTIAL_SUFFIX)])
        .collect()
}

/// The paths of the scenario file and of every particle file it reads.
pub fn input_paths(s: &Scenario) -> Vec<PathBuf> {
    let mut out = vec![s.path.clone()];
    for sp in &s.species {
        if let InitialSpec::Csv { path, .. } = &sp.initial {
            out.push(path.clone());
        }
    }
    out
}

/// The scenario file and every particle file it reads, with checksums.
pub fn input_entries(s: &Scenario) -> Result<Vec<FileEntry>> {
    let entry = |path: &Path, what: &str| {
        let regular = std::fs::metadata(path).map(|m| m.is_file());
        match regular {
            Ok(true) => FileEntry::of_file(path),
            Ok(false) => Err(Error::input(path, "file", "not a regular file")),
            Err(e) => Err(Error::input(
                path,
                "file",
                format!("cannot open the {what}: {e}"),
            )),
        }
    };
    input_paths(s)
        .iter()
        .enumerate()
        .map(|(k, p)| entry(p, if k == 0 { "scenario" } else { "particle file" }))
        .collect()
}

/// Whether step `n` is written to particles.csv: step 0, every
/// `output_every`-th step, and the last.
pub fn is_output_step(s: &Scenario, n: u64) -> bool {
    n == 0 || n.is_multiple_of(s.output_every as u64) || n == s.steps as u64
}

/// How the run begins.
enum Start {
    /// A new run; the files of the run already in the directory (`--force`,
    /// or a run killed before its first checkpoint) are replaced once every
    /// check has passed.
    Fresh {
        replace: Vec<String>,
    },
    Resume(Checkpoint),
    Complete(Checkpoint),
}

fn refuse(dir: &Path, why: String) -> Error {
    Error::io(
        dir,
        std::io::Error::new(std::io::ErrorKind::AlreadyExists, why),
    )
}

/// Decide from the directory's contents and the options how to start.
/// Nothing is changed on disk here.
fn inspect(out: &OutputDir, s: &Scenario, opts: RunOptions, inputs: &[FileEntry]) -> Result<Start> {
    let dir = out.path();
    let contents = out.contents(&all_run_file_names())?;
    let present = contents.present;
    if opts.force {
        return Ok(Start::Fresh { replace: present });
    }
    if present.is_empty() {
        if contents.foreign.is_empty() {
            return Ok(Start::Fresh { replace: present });
        }
        let names: Vec<String> = contents
            .foreign
            .iter()
            .take(8)
            .map(|n| clip(n, 80))
            .collect();
        let more = contents.foreign.len().saturating_sub(8);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Err(refuse(
            dir,
            format!(
                "not empty and holds no jko run (it has {}{more}): choose a new or empty --out directory, or pass --force to write beside these files",
                names.join(", ")
            ),
        ));
    }
    let cp = checkpoint::read(dir)?;
    let Some((cp_path, cp)) = cp else {
        // The scenario copy is written first, under its final name.
        let unfinished = present
            .iter()
            .all(|n| n.ends_with(output::PARTIAL_SUFFIX) || n == output::SCENARIO_COPY);
        if unfinished && opts.resume {
            // Killed before its first checkpoint: nothing to resume.
            return Ok(Start::Fresh { replace: present });
        }
        return Err(refuse(
            dir,
            "already exists: it holds the output of another run: choose another --out directory or pass --force to overwrite".into(),
        ));
    };
    if !opts.resume {
        let what = match cp.meta.status {
            Status::Running => "an unfinished run: pass --resume to continue it",
            Status::Complete | Status::Ended => "a finished run: choose another --out directory",
        };
        return Err(refuse(
            dir,
            format!("already exists: it holds {what}, or --force to overwrite it"),
        ));
    }
    let input_mismatch = |why: String| {
        Error::input(
            &cp_path,
            "checkpoint",
            format!(
                "{why}; the run in this directory is not this scenario's: start again with --force, or choose another --out"
            ),
        )
    };
    if cp.meta.program != checkpoint::program_version() {
        return Err(input_mismatch(format!(
            "written by {}, this is {} (a resume must use the same program to give the same numbers)",
            clip(&cp.meta.program, 80),
            checkpoint::program_version()
        )));
    }
    let same = |a: &FileEntry, b: &FileEntry| a.len == b.len && a.crc == b.crc;
    if cp.meta.inputs.len() != inputs.len()
        || !cp.meta.inputs.iter().zip(inputs).all(|(a, b)| same(a, b))
    {
        let changed: Vec<&str> = inputs
            .iter()
            .enumerate()
            .filter(|(k, b)| cp.meta.inputs.get(*k).is_none_or(|a| !same(a, b)))
            .map(|(_, b)| b.path.as_str())
            .collect();
        return Err(input_mismatch(format!(
            "{} differ(s) from the input(s) the run started with",
            changed.join(", ")
        )));
    }
    if cp.meta.dimension != s.dimension {
        return Err(input_mismatch("dimension differs".into()));
    }
    let particles: usize = s.species.iter().filter_map(|sp| sp.particles).sum();
    let expect = checkpoint::Expected {
        steps: s.steps as u64,
        max_halvings: s.solver.max_halvings,
        species: s.species.len(),
        particles: (particles > 0).then_some(particles),
        time_step: s.time_step,
    };
    cp.validate(&expect).map_err(|why| {
        input_mismatch(format!(
            "it is not a checkpoint this scenario can have written: {why}"
        ))
    })?;
    match cp.meta.status {
        Status::Running => {
            check_partials(dir, &cp)?;
            Ok(Start::Resume(cp))
        }
        Status::Complete => Ok(Start::Complete(cp)),
        Status::Ended => Err(Error::input(
            &cp_path,
            "checkpoint",
            format!(
                "the run ended early at step {} (see events.csv); nothing to resume: change the scenario and start again with --force",
                cp.meta.step
            ),
        )),
    }
}

/// A run to resume needs the `.partial` files its checkpoint records, at
/// least as long as recorded (they are cut back to that length).
fn check_partials(dir: &Path, cp: &Checkpoint) -> Result<()> {
    for (name, f) in RUN_FILES.iter().zip(&cp.meta.outputs) {
        let p = output::partial_path(&dir.join(name));
        let advice = "the run cannot be resumed without it: start it again with --force \
                      (the files in the directory are kept until the new run has written its first checkpoint), \
                      or choose another --out";
        match std::fs::metadata(&p) {
            Ok(m) if m.len() >= f.len => {}
            Ok(m) => {
                return Err(Error::input(
                    &p,
                    "checkpoint",
                    format!(
                        "holds {} bytes, the checkpoint records {}: it was cut or replaced; {advice}",
                        m.len(),
                        f.len
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::input(
                    &p,
                    "checkpoint",
                    format!(
                        "missing (the checkpoint records {} bytes of it; was it deleted or moved?): {advice}",
                        f.len
                    ),
                ));
            }
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    Ok(())
}

/// Memory a run of `n` particles in dimension `d` needs, in bytes: the
/// optimizer's vectors (2 memory + ~16 arrays of n d numbers) plus the
/// neighbour lists and trees, calibrated on the peaks measured with the
/// neighbour-rule bandwidth (BENCHMARKS.md, "Memory": 2.3 kB per particle in
/// 2D, 5.1 kB in 3D). A wider bandwidth holds more neighbours than this.
/// Saturating: an estimate that does not fit in a u64 is u64::MAX, which
/// [`check_memory`] refuses whatever the machine.
pub fn memory_estimate(s: &Scenario, n: usize) -> u64 {
    let d = s.dimension as u64;
    let lists_and_trees = [600, 1700, 4300][s.dimension - 1];
    let vectors = (s.solver.memory as u64)
        .saturating_mul(2)
        .saturating_add(16);
    let per_particle = vectors
        .saturating_mul(8 * d)
        .saturating_add(lists_and_trees);
    (n as u64).saturating_mul(per_particle)
}

/// Memory the density estimators of `sim` need beyond what
/// [`memory_estimate`] counts (lists of the neighbour rule): each estimator
/// says ([`crate::density::DensityEstimator::extra_memory`]), per species
/// one for the density column and one more for the diffusion term if D > 0.
/// Known once the cloud is drawn and the bandwidths chosen, before any list
/// or mesh is built. Saturating.
pub fn list_memory_excess<const D: usize>(sim: &Simulation<D>) -> u64 {
    sim.cloud
        .blocks
        .iter()
        .zip(&sim.plans)
        .map(|(b, plan)| {
            let x = &sim.cloud.positions[b.range.clone()];
            let w = &sim.cloud.weights[b.range.clone()];
            let estimators: u64 = if b.diffusion > 0.0 { 2 } else { 1 };
            plan.build::<D>()
                .extra_memory(x, w)
                .saturating_mul(estimators)
        })
        .fold(0u64, u64::saturating_add)
}

/// Bytes the output files will take, roughly: ~21 bytes per number in
/// shortest round-trip form. Saturating at u64::MAX (an absurd `steps`).
pub fn output_estimate(s: &Scenario, n: usize) -> u64 {
    let n = n as u64;
    let d = s.dimension as u64;
    let frames = (s.steps / s.output_every.max(1)) as u64 + 2;
    let row = 21 * (d + 3) + 16;
    let frames_bytes = frames.saturating_mul(n).saturating_mul(row);
    let energy_rows = (s.steps as u64).saturating_add(1).saturating_mul(200);
    let checkpoint = n.saturating_mul(2 * 2 * 8 * d);
    frames_bytes
        .saturating_add(energy_rows)
        .saturating_add(checkpoint)
}

/// Largest memory or disk estimate accepted even where the free amount
/// cannot be read: 2^60 bytes (an exbibyte) is no machine's; a saturated
/// estimate is above it.
pub const MAX_ESTIMATE: u64 = 1 << 60;

fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(b: u64) -> String {
    if b >= MAX_ESTIMATE {
        return "more than 2^60 bytes (more than any machine has)".to_string();
    }
    format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30))
}

/// Refuse a run of `n` particles that needs `need` bytes where less is
/// available (or more than [`MAX_ESTIMATE`] anywhere); `why` says what
/// raised the estimate, `keys` the scenario keys that set it.
pub fn check_memory(s: &Scenario, n: usize, need: u64, keys: &str, why: &str) -> Result<()> {
    let have = available_memory();
    let refused = match have {
        Some(have) => need > have,
        None => need > MAX_ESTIMATE,
    };
    if refused || need > MAX_ESTIMATE {
        let have = have.map_or("no way to tell what is available".to_string(), |h| {
            format!("this machine has {} available", gib(h))
        });
        return Err(Error::input(
            &s.path,
            keys,
            format!(
                "{n} particles need about {} of memory{why} (with [solver] memory = {}), {have}",
                gib(need),
                s.solver.memory
            ),
        ));
    }
    Ok(())
}

/// Once the cloud is drawn and the bandwidths known, but before any
/// neighbour list is built: the estimate with the lists those bandwidths
/// hold ([`list_memory_excess`]).
pub fn check_list_memory<const D: usize>(s: &Scenario, sim: &Simulation<D>) -> Result<()> {
    check_mesh_sizes(s, sim)?;
    let n = sim.cloud.len();
    let excess = list_memory_excess(sim);
    if excess == 0 {
        return Ok(());
    }
    let why = format!(
        " with the density estimates of bandwidths {:?} ({} more than the neighbour rule's lists; \
         neighbour lists need less with a smaller [density] bandwidth, or with \"auto\" a smaller time step, \
         a mesh needs less with a larger bandwidth)",
        sim.bandwidths,
        gib(excess)
    );
    let need = memory_estimate(s, n).saturating_add(excess);
    check_memory(s, n, need, "species.particles, density.bandwidth", &why)
}

/// A mesh no machine can hold ([`crate::density::mesh::MAX_MESH_CELLS`]): its node
/// indices count from the origin in cells of eps/2, so a cloud wide against
/// its bandwidth, or far from the origin, has none. Refused naming the keys,
/// rather than as a memory estimate of exbibytes.
fn check_mesh_sizes<const D: usize>(s: &Scenario, sim: &Simulation<D>) -> Result<()> {
    for (k, (b, plan)) in sim.cloud.blocks.iter().zip(&sim.plans).enumerate() {
        if !matches!(plan.estimator, density::Estimator::Mesh { .. }) {
            continue;
        }
        let x = &sim.cloud.positions[b.range.clone()];
        let cells = crate::density::mesh::cells_needed(x, plan.eps);
        if cells > crate::density::mesh::MAX_MESH_CELLS {
            let (lo, hi) = crate::util::parallel::bounding_box(x);
            return Err(Error::input(
                &s.path,
                format!("density.bandwidth, species[{k}].initial"),
                format!(
                    "the density mesh of species \"{}\" at bandwidth {:e} would need more than {} cells: \
                     its cloud spans {lo:?} to {hi:?}, and the mesh counts cells of eps/2 from the origin. \
                     Use a larger bandwidth, method = \"neighbours\", or an initial law (mean, center, \
                     lower/upper) nearer the origin",
                    b.name,
                    plan.eps,
                    crate::density::mesh::MAX_MESH_CELLS
                ),
            ));
        }
    }
    Ok(())
}

/// Refuse, before allocating anything, a run that cannot fit in memory or on
/// the disk (`dir` must exist; its file system is the one asked). Every
/// estimate saturates, so an absurd count is refused, never wrapped.
pub fn check_resources(s: &Scenario, dir: &Path) -> Result<()> {
    let n = s
        .species
        .iter()
        .filter_map(|sp| sp.particles)
        .fold(0usize, usize::saturating_add);
    check_memory(s, n, memory_estimate(s, n), "species.particles", "")?;
    let need = output_estimate(s, n);
    let have = fs4::available_space(dir).ok();
    if have.is_some_and(|have| need > have) || need > MAX_ESTIMATE {
        let have = have.map_or("an unknown amount".to_string(), gib);
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!(
                    "the run will write about {} (steps = {}, output_every = {}, {n} particles) and only {have} is free: free space, write fewer frames (output_every), fewer steps, or choose another --out",
                    gib(need),
                    s.steps,
                    s.output_every
                ),
            ),
        ));
    }
    Ok(())
}

/// The run's files and its bookkeeping between checkpoints.
struct Books<'a> {
    dir: &'a Path,
    writer: RunWriter,
    meta: Meta,
    initial_energy: f64,
}

impl Books<'_> {
    fn event(&mut self, e: Event, obs: &mut dyn Observer) -> Result<()> {
        self.writer.event(&e)?;
        self.meta.events += 1;
        obs.event(&e);
        Ok(())
    }

    fn rejections(
        &mut self,
        step: u64,
        time: f64,
        rs: &[Rejection],
        obs: &mut dyn Observer,
    ) -> Result<()> {
        for r in rs {
            let e = Event {
                step,
                time,
                kind: EventKind::StepRejected,
                species: None,
                value: r.substep,
                message: format!(
                    "attempt {} with sub-steps of {:e} rejected: {}",
                    r.attempt, r.substep, r.reason
                ),
            };
            self.event(e, obs)?;
        }
        Ok(())
    }

    fn frame<const D: usize>(&mut self, sim: &mut Simulation<D>) -> Result<()> {
        let rho = sim.densities();
        self.writer.frame(sim.step, sim.time, &sim.cloud, &rho)?;
        self.meta.last_frame = sim.step;
        Ok(())
    }

    fn checkpoint<const D: usize>(&mut self, sim: &Simulation<D>, status: Status) -> Result<()> {
        let files = self.writer.sync()?;
        self.meta.status = status;
        self.meta.outputs = RUN_FILES
            .iter()
            .zip(files)
            .map(|(name, f)| FileEntry {
                path: name.to_string(),
                len: f.len,
                crc: f.crc,
            })
            .collect();
        let mut cp = Checkpoint {
            meta: self.meta.clone(),
            initial_energy: self.initial_energy,
            bandwidths: Vec::new(),
            positions: Vec::new(),
            last_move: None,
        };
        files::save_state(sim, &mut cp);
        self.meta = cp.meta.clone();
        checkpoint::write(self.dir, &cp)
    }

    fn summary<const D: usize>(&self, sim: &Simulation<D>, final_energy: f64) -> RunSummary {
        RunSummary {
            steps: sim.step,
            initial_energy: self.initial_energy,
            final_energy,
            total_iterations: self.meta.total_iterations,
            unconverged_steps: self.meta.unconverged_steps,
            rejected_attempts: sim.rejected_attempts,
            events: self.meta.events,
            bandwidths: sim.bandwidths.clone(),
            resumed_from: None,
            already_complete: false,
        }
    }

    /// End the run early at the current state: last good frame, checkpoint,
    /// final names.
    fn end_early<const D: usize>(mut self, sim: &mut Simulation<D>) -> Result<()> {
        if self.meta.last_frame != sim.step {
            self.frame(sim)?;
        }
        self.checkpoint(sim, Status::Ended)?;
        self.writer.finish()?;
        output::sync_dir(self.dir)
    }
}

fn run_dim<const D: usize>(
    s: &Scenario,
    dir: &Path,
    opts: RunOptions,
    obs: &mut dyn Observer,
) -> Result<RunSummary> {
    let inputs = input_entries(s)?;
    // Held until the run ends: no other process writes here meanwhile.
    let mut out = OutputDir::open(dir, &all_run_file_names())?;
    let start = inspect(&out, s, opts, &inputs)?;
    if let Start::Complete(cp) = &start {
        // Complete, but perhaps killed before the renames: finish them.
        for (name, f) in RUN_FILES.iter().zip(&cp.meta.outputs) {
            if output::partial_path(&dir.join(name)).exists() {
                output::CsvStream::resume(dir.join(name), f.state())?.finish()?;
            }
        }
        output::sync_dir(dir)?;
        return Ok(RunSummary {
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
        });
    }
    // Checks that can refuse the run come before the first file is written
    // or moved; `out` removes a directory made for a refused run.
    check_resources(s, dir)?;
    let mut sim = Simulation::<D>::new(s)?;
    check_list_memory(s, &sim)?;
    let first = match start {
        Start::Resume(_) => None,
        _ => Some(sim.initial_report()?),
    };
    let watch = PhysicalWatch::new(s, &sim.cloud, &sim.bandwidths);
    let h = s.time_step;
    let (mut books, resumed_from) = match start {
        Start::Resume(cp) => {
            files::restore(&mut sim, &cp, &s.path)?;
            let states: [output::FileState; 3] =
                std::array::from_fn(|k| cp.meta.outputs[k].state());
            let books = Books {
                dir,
                writer: RunWriter::resume(dir, &states)?,
                meta: cp.meta.clone(),
                initial_energy: cp.initial_energy,
            };
            (books, Some(cp.meta.step))
        }
        Start::Fresh { replace } => {
            let text = std::fs::read(&s.path).map_err(|e| Error::io(&s.path, e))?;
            out.replace(&replace, &input_paths(s))?;
            output::write_atomic(&dir.join(output::SCENARIO_COPY), &text)?;
            let first = first.expect("computed for a fresh start");
            let mut books = Books {
                dir,
                writer: RunWriter::create(dir, D)?,
                meta: Meta {
                    program: checkpoint::program_version(),
                    status: Status::Running,
                    inputs,
                    dimension: D,
                    species: sim.cloud.blocks.len(),
                    particles: sim.cloud.len(),
                    step: 0,
                    level: 0,
                    calm_steps: 0,
                    total_iterations: 0,
                    unconverged_steps: 0,
                    rejected_attempts: 0,
                    events: 0,
                    reported: Vec::new(),
                    last_frame: 0,
                    outputs: Vec::new(),
                },
                initial_energy: first.parts.total(),
            };
            books.writer.energy(0, 0.0, &first)?;
            for e in watch.initial_events(s, &sim.cloud) {
                books.event(e, obs)?;
            }
            books.frame(&mut sim)?;
            books.checkpoint(&sim, Status::Running)?;
            out.establish()?;
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
        let advance = match sim.try_advance() {
            Ok(a) => a,
            Err(AdvanceError::Interrupted(_)) => {
                // The abandoned attempt's events are logged again when the step is redone.
                books.checkpoint(&sim, Status::Running)?;
                return Err(Error::Interrupted { step: sim.step });
            }
            Err(AdvanceError::Failed(rs)) => {
                let t = n as f64 * h;
                books.rejections(n, t, &rs, obs)?;
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
                books.end_early(&mut sim)?;
                return Err(Error::Numerical(format!(
                    "step {n}: every attempt failed, down to sub-steps of {smallest:e} (last: {last}). \
                     The output in {} is complete up to step {} (see events.csv). Try a smaller time_step, \
                     a larger bandwidth or softening, a looser [solver] tolerance, or a larger [solver] max_halvings",
                    dir.display(),
                    n - 1
                )));
            }
        };
        let t = sim.time;
        books.rejections(n, t, &advance.rejections, obs)?;
        let r = &advance.report;
        books.writer.energy(n, t, r)?;
        books.meta.total_iterations += r.iterations;
        books.meta.unconverged_steps += u64::from(!r.converged);
        final_energy = r.parts.total();
        if !r.converged {
            let e = Event {
                step: n,
                time: t,
                kind: EventKind::IterationCap,
                species: None,
                value: r.gradient_norm,
                message: format!(
                    "accepted before the tolerance ({}); the energy decreased",
                    r.termination
                ),
            };
            books.event(e, obs)?;
        }
        let mut reported = std::mem::take(&mut books.meta.reported);
        let physical = watch.check(n, t, &sim.cloud, &mut reported);
        books.meta.reported = reported;
        let collapsed = physical.iter().any(|e| e.kind == EventKind::Collapse);
        for e in physical {
            books.event(e, obs)?;
        }
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
