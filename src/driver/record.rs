//! `DIR/run.json`: how a run was made, in the manner of LAMMPS's log and
//! GROMACS's run metadata, for every command that writes a run directory
//! (`jko run`, `jko eulerian`, `jko equilibrium [--grid]`).
//!
//! ```json
//! {
//!   "format": 1,
//!   "jko_version": "0.1.0",
//!   "command": "run",                      // run | eulerian | equilibrium | equilibrium_grid
//!   "command_line": ["jko", "run", "s.toml", "--out", "runs/s"],
//!   "scenario": { "path": "s.toml", "sha256": "…", "bytes": 1234 },
//!   "seed": 42, "dimension": 2, "species": 2, "particles": 4000,
//!   "threads": 2, "host": "node17", "pid": 4242,
//!   "ranks": 1,                            // MPI ranks (1: a single process)
//!   "exchange_s": null | 3.2,              // under MPI: rank 0's seconds in exchanges
//!   "recuts": null | 4,                    // under MPI: the step's vectors re-cut by cost
//!   "started": "2026-12-05T16:40:00Z", "updated": "…", "ended": "…" | null,
//!   "wall_time_s": { "total": 12.5, "setup": 0.3, "steps": 11.9, "output": 0.3 },
//!   "steps_done": 50,                      // stages for a particle equilibrium
//!   "iterations": 650, "evaluations": 701, // L-BFGS (grid: sub-steps / Newton steps)
//!   "resumed_from": null | 20,
//!   "status": "running" | "complete" | "interrupted" | "stopped" | "not_converged" | "failed",
//!   "exit_code": null | 0 | 2 | …,         // the CLI's exit status
//!   "error": null | "the message",
//!   "previous": [ … ]                      // earlier invocations of a resumed run
//! }
//! ```
//!
//! The file is written whole (temporary file, sync, rename), once the run
//! owns the directory, again at every checkpoint (a killed run's says
//! `"running"` with the time of its last checkpoint), and at the end. The
//! wall time is split by phase: `setup` until the first step starts,
//! `steps` inside the solver, `output` writing files and checkpoints. Under
//! MPI (`ranks` > 1) `exchange_s` is the part of rank 0's time spent in the
//! exchanges of the divided evaluations, waiting for the other ranks
//! included (`crate::util::team`), and `recuts` the times this invocation
//! re-cut the JKO steps' vectors among the ranks because the most loaded
//! one carried more than 1.10 times the mean work
//! (`crate::stepper::layout`; `jko run` only).
//! `iterations` and `evaluations` count the steps that make the output (steps
//! redone after a resume are counted once), so `iterations` is the sum of
//! energy.csv's column: L-BFGS iterations and energy-gradient evaluations
//! for particles, sub-steps (both fields) for `jko eulerian`, Newton steps
//! and GMRES iterations for `jko equilibrium --grid`. The record is bookkeeping, not data: it is not part
//! of the byte-identical output of a resumed run, and a failure to write it
//! at the end of a failed run does not hide the run's own error.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::io::output;
use crate::io::scenario::Scenario;

/// The file name.
pub const RUN_RECORD: &str = "run.json";

/// Version of the record's layout.
const FORMAT: u32 = 1;

/// The command a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `jko run`.
    Run,
    /// `jko eulerian`.
    Eulerian,
    /// `jko equilibrium` (particles).
    Equilibrium,
    /// `jko equilibrium --grid`.
    EquilibriumGrid,
}

/// Where the wall time goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the scenario, drawing the clouds, the checks, step 0.
    Setup,
    /// Inside the solver.
    Steps,
    /// Writing rows, frames and checkpoints.
    Output,
}

#[derive(Debug, Clone, Serialize)]
struct ScenarioRef {
    path: String,
    sha256: String,
    bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
struct WallTime {
    total: f64,
    setup: f64,
    steps: f64,
    output: f64,
}

#[derive(Debug, Clone, Serialize)]
struct Record {
    format: u32,
    jko_version: &'static str,
    command: Command,
    command_line: Vec<String>,
    scenario: ScenarioRef,
    seed: u64,
    dimension: usize,
    species: usize,
    particles: Option<usize>,
    threads: usize,
    host: String,
    pid: u32,
    ranks: usize,
    exchange_s: Option<f64>,
    recuts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    methods: Option<Value>,
    started: String,
    updated: String,
    ended: Option<String>,
    wall_time_s: WallTime,
    steps_done: u64,
    iterations: u64,
    evaluations: u64,
    resumed_from: Option<u64>,
    status: &'static str,
    exit_code: Option<i32>,
    error: Option<String>,
    previous: Vec<Value>,
}

/// The record of one invocation, kept in memory and written to `DIR/run.json`.
#[derive(Debug)]
pub struct RunRecord {
    path: PathBuf,
    record: Record,
    clock: Instant,
    phase: Phase,
    phase_start: Instant,
    /// Seconds in Setup, Steps, Output.
    spent: [f64; 3],
    /// Whether the directory is the run's (the file may be written).
    owned: bool,
}

fn now_text() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl RunRecord {
    /// Start the clock of a run of `s` into `dir`. Nothing is written until
    /// [`RunRecord::own`].
    pub fn begin(command: Command, s: &Scenario, dir: &Path) -> Self {
        let clock = Instant::now();
        // The text the scenario was parsed from (what the run copies).
        let text = s.text.as_bytes();
        let started = now_text();
        let particles: Option<usize> = s.species.iter().map(|sp| sp.particles).sum();
        RunRecord {
            path: dir.join(RUN_RECORD),
            record: Record {
                format: FORMAT,
                jko_version: env!("CARGO_PKG_VERSION"),
                command,
                command_line: std::env::args_os()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                scenario: ScenarioRef {
                    path: s.path.display().to_string(),
                    sha256: sha256_hex(text),
                    bytes: text.len() as u64,
                },
                seed: s.seed,
                dimension: s.dimension,
                species: s.species.len(),
                particles,
                threads: rayon::current_num_threads(),
                host: gethostname::gethostname().to_string_lossy().into_owned(),
                pid: std::process::id(),
                ranks: crate::util::team::current().size(),
                exchange_s: None,
                recuts: None,
                methods: None,
                updated: started.clone(),
                started,
                ended: None,
                wall_time_s: WallTime::default(),
                steps_done: 0,
                iterations: 0,
                evaluations: 0,
                resumed_from: None,
                status: "running",
                exit_code: None,
                error: None,
                previous: Vec::new(),
            },
            clock,
            phase: Phase::Setup,
            phase_start: clock,
            spent: [0.0; 3],
            owned: false,
        }
    }

    /// The run owns its directory now (its first checkpoint or its output is
    /// on disk): from here on the record is written. A resumed run keeps the
    /// invocations of the record it finds as `previous`.
    pub fn own(&mut self, resumed_from: Option<u64>) -> Result<()> {
        self.owned = true;
        self.record.resumed_from = resumed_from;
        if resumed_from.is_some() {
            self.record.previous = previous_invocations(&self.path);
        }
        self.write()
    }

    /// Charge the time since the last switch to the current phase and enter `p`.
    pub fn enter(&mut self, p: Phase) {
        let now = Instant::now();
        self.spent[self.phase as usize] += now.duration_since(self.phase_start).as_secs_f64();
        self.phase = p;
        self.phase_start = now;
    }

    /// How the run computes its energy (particle runs:
    /// [`crate::stepper::Methods`]), written from the next write on.
    pub fn methods(&mut self, methods: &impl Serialize) {
        self.record.methods = serde_json::to_value(methods).ok();
    }

    /// Under MPI, the times the steps' vectors were re-cut by cost so far.
    pub fn recuts(&mut self, recuts: u64) {
        self.record.recuts = (crate::util::team::current().size() > 1).then_some(recuts);
    }

    /// The counters so far: steps (or stages) done, solver iterations and
    /// evaluations.
    pub fn progress(&mut self, steps_done: u64, iterations: u64, evaluations: u64) {
        self.record.steps_done = steps_done;
        self.record.iterations = iterations;
        self.record.evaluations = evaluations;
    }

    /// Write the record as it stands (a no-op before [`RunRecord::own`]).
    pub fn write(&mut self) -> Result<()> {
        if !self.owned {
            return Ok(());
        }
        let now = Instant::now();
        let mut spent = self.spent;
        spent[self.phase as usize] += now.duration_since(self.phase_start).as_secs_f64();
        self.record.wall_time_s = WallTime {
            total: now.duration_since(self.clock).as_secs_f64(),
            setup: spent[Phase::Setup as usize],
            steps: spent[Phase::Steps as usize],
            output: spent[Phase::Output as usize],
        };
        let team = crate::util::team::current();
        self.record.exchange_s = (team.size() > 1).then(|| team.exchange_seconds());
        self.record.updated = now_text();
        let mut text = serde_json::to_vec_pretty(&self.record)
            .map_err(|e| Error::io(&self.path, std::io::Error::other(e)))?;
        text.push(b'\n');
        output::write_atomic(&self.path, &text)
    }

    /// The end of the invocation, with its outcome. A record that cannot be
    /// written turns a success into an I/O error; after a failure the run's
    /// own error is the one reported.
    pub fn finish<T>(&mut self, result: Result<T>) -> Result<T> {
        if !self.owned {
            return result;
        }
        self.record.ended = Some(now_text());
        match &result {
            Ok(_) => {
                self.record.status = "complete";
                self.record.exit_code = Some(0);
            }
            Err(e) => {
                self.record.status = match e {
                    Error::Interrupted { .. } | Error::Cancelled(_) => "interrupted",
                    Error::Stopped(_) => "stopped",
                    Error::NotConverged(_) => "not_converged",
                    _ => "failed",
                };
                self.record.exit_code = Some(e.exit_code());
                self.record.error = Some(e.to_string());
            }
        }
        let written = self.write();
        match (result, written) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(e),
            (Err(e), _) => Err(e),
        }
    }
}

/// The earlier invocations of the run in the record at `path`: its own
/// `previous` list, then itself without it. A missing or unreadable record
/// gives none (the record is bookkeeping; the checkpoint is the run's state).
fn previous_invocations(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read(path) else {
        return Vec::new();
    };
    let Ok(Value::Object(mut old)) = serde_json::from_slice::<Value>(&text) else {
        return Vec::new();
    };
    let mut out = match old.remove("previous") {
        Some(Value::Array(v)) => v,
        _ => Vec::new(),
    };
    out.push(Value::Object(old));
    out
}
