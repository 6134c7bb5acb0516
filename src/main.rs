//! The `jko` command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use jko::Scenario;
use jko::driver::events::Event;
use jko::driver::{Observer, RunOptions};
use jko::stepper::StepReport;

#[derive(Parser)]
#[command(
    name = "jko",
    version,
    about = "Mesh-free particle JKO schemes for multi-species Wasserstein gradient flows",
    long_about = "Simulates Poisson–Nernst–Planck, Keller–Segel and porous-medium systems as \
Wasserstein gradient flows: each species is a cloud of weighted particles, and each time step \
minimizes transport cost plus free energy (the JKO scheme) with L-BFGS.",
    after_help = "Example:\n  jko run data/scenarios/pnp_2d.toml --out runs/pnp\n\n\
The scenario format and the output columns are described in the README."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the particle JKO scheme on a scenario and write CSV output.
    #[command(
        after_help = "Example:\n  jko run data/scenarios/ou_2d.toml --out runs/ou\n  \
jko run data/scenarios/ou_2d.toml --out runs/ou --resume   # after a crash or Ctrl-C\n\n\
Writes OUT/particles.csv (every output_every steps, step 0 and the last), OUT/energy.csv \
(every step), OUT/events.csv (rejected steps, collapse, escapes, ...) and OUT/scenario.toml \
(a copy of the input). Files appear under their final names only when complete; until then \
they are NAME.partial, with a checkpoint (OUT/checkpoint.jko) at every written step. \
Ctrl-C or SIGTERM writes a checkpoint and stops; --resume continues exactly where it stopped.\n\n\
Exit status: 0 done, 2 bad input, 3 numerical failure (no step size worked), 4 I/O error \
(or OUT holds another run), 5 stopped by a collapse (on_collapse = \"stop\"), 130 interrupted."
    )]
    Run {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Output directory (created if missing).
        #[arg(long, short)]
        out: PathBuf,
        /// Delete the run already in OUT and start again.
        #[arg(long, conflicts_with = "resume")]
        force: bool,
        /// Continue the run in OUT from its last checkpoint (byte-identical to a run never stopped).
        #[arg(long)]
        resume: bool,
        /// No progress bar or summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Solve the same scenario on the grid of its [grid] section (finite volumes).
    #[command(
        after_help = "Example:\n  jko eulerian data/scenarios/pnp_2d.toml --out runs/pnp_grid\n\n\
Needs a [grid] section (lower, upper, cells). Writes OUT/density.csv (cell centers, every \
output_every steps, step 0 and the last), OUT/energy.csv (every step; iterations = sub-steps) \
and OUT/scenario.toml. Ctrl-C or SIGTERM stops after the step in progress: the files are \
then complete up to that step (there is no checkpoint; exit status 130)."
    )]
    Eulerian {
        /// Scenario file (TOML) with a [grid] section.
        scenario: PathBuf,
        /// Output directory (created if missing).
        #[arg(long, short)]
        out: PathBuf,
        /// Overwrite the output of an earlier run in OUT.
        #[arg(long)]
        force: bool,
        /// No summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// The least-energy stationary state (SPEC §9), with particles or on the grid.
    #[command(
        after_help = "Example:\n  jko equilibrium data/scenarios/double_layer_1d.toml --out runs/dl\n  \
jko equilibrium data/scenarios/double_layer_1d.toml --out runs/dl_grid --grid\n  \
jko compare runs/dl runs/dl_grid\n\n\
Particles: E is minimized over the positions from the initial clouds by a continuation of JKO \
steps whose size grows geometrically from time_step ([equilibrium] growth, max_stages, tolerance), \
ending with the unregularized minimization; a checkpoint after every stage, --resume continues. \
--grid: Newton's method on the stationary equations (Poisson–Boltzmann for m = 1) on the [grid], \
with exact masses.\n\n\
Writes OUT/particles.csv (or OUT/density.csv) and OUT/energy.csv with steps 0 (the initial state) \
and 1 (the equilibrium), time 0, and OUT/scenario.toml.\n\n\
Exit status: 0 done, 2 bad input (also: a scenario with no equilibrium, such as an unconfined \
species in free space or an attraction above the critical mass), 3 numerical failure, 4 I/O \
error, 6 no equilibrium reached within the limits (the files hold the last iterate), 130 interrupted."
    )]
    Equilibrium {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Output directory (created if missing).
        #[arg(long, short)]
        out: PathBuf,
        /// Solve on the scenario's [grid] (Newton on the stationary equations) instead of with particles.
        #[arg(long)]
        grid: bool,
        /// Delete the output already in OUT and start again.
        #[arg(long, conflicts_with = "resume")]
        force: bool,
        /// Continue the particle continuation in OUT from its last checkpoint.
        #[arg(long, conflicts_with = "grid")]
        resume: bool,
        /// No progress display or summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Distances between two runs (particles or grid), step by step and species by species.
    #[command(
        after_help = "Example:\n  jko compare runs/pnp runs/pnp_grid --out runs/pnp_vs_grid.csv\n\n\
Each RUN is an output directory of `jko run` or `jko equilibrium` (particles.csv) or of `jko \
eulerian` or `jko equilibrium --grid` (density.csv, or one exported by another code in the same \
format), with its energy.csv. For every step written by both runs (with --last: each run's last \
written step, e.g. an equilibrium against the end of a long run) and every species: mass, mean and covariance of both sides, the L1 distance of the \
densities on a common grid, W1 and W2 (d = 1, exact) and the energy difference.\n\n\
--out writes a new regular file (temporary file, sync, rename), checked before anything is \
computed. It refuses, with exit status 4: a PATH that exists (unless --force), a PATH that is \
not a regular file (a symbolic link, even dangling, a directory, a FIFO, a device, a socket; \
never written through nor replaced, even with --force), and a PATH that is a file of either \
run (its data, energy, scenario, checkpoint or .partial files, by name or hard link).\n\n\
Exit status: 0 done, 2 bad input (a file of a run is malformed, non-finite, negative or cut \
short), 3 a distance or moment is not a finite number, 4 I/O error or --out refused."
    )]
    Compare {
        /// First run directory.
        a: PathBuf,
        /// Second run directory.
        b: PathBuf,
        /// Also write the table as CSV to this new file.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Replace the regular file at --out if it exists.
        #[arg(long, requires = "out")]
        force: bool,
        /// Compare only each run's last written step, whatever its number and time
        /// (an equilibrium against the end of a long run).
        #[arg(long)]
        last: bool,
    },
    /// Write files for other tools from a finished run (ParaView: --vtk).
    #[command(
        after_help = "Example:\n  jko export runs/pnp --vtk\n  paraview runs/pnp/vtk/particles.pvd\n\n\
--vtk writes DIR/vtk/: for a particle run (particles.csv) one particles_NNNNNN.vtp per written step \
(every particle a point, with point data species, id, weight and density) and particles.pvd, the \
time series; for a grid run (density.csv) one density_NNNNNN.vti per written step (one cell \
array per species) and density.pvd. The same files a run writes itself with `[output] vtk = true`. \
The series is built in DIR/vtk.partial/ and renamed into place when complete.\n\n\
Exit status: 0 done, 2 bad input (a malformed or unfinished run), 4 I/O error (DIR/vtk exists: \
pass --force; or a run is writing in DIR)."
    )]
    Export {
        /// The run directory.
        dir: PathBuf,
        /// Write the ParaView (VTK XML) series to DIR/vtk/.
        #[arg(long, required = true)]
        vtk: bool,
        /// Replace DIR/vtk/ if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Write a commented scenario to start from.
    #[command(
        after_help = "Example:\n  jko init --list\n  jko init pnp-2d my_pnp.toml\n  jko run my_pnp.toml --out runs/my_pnp\n\n\
Each kind is one of the scenarios of data/scenarios/, with a comment on every key and the \
optional sections it leaves out, commented out with their defaults. Without FILE the scenario \
goes to standard output. An existing FILE is replaced only with --force.\n\n\
Exit status: 0 done, 2 unknown KIND, 4 I/O error (FILE exists)."
    )]
    Init {
        /// The kind of scenario (`jko init --list` shows them).
        #[arg(required_unless_present = "list")]
        kind: Option<String>,
        /// Where to write it (standard output if absent).
        file: Option<PathBuf>,
        /// List the kinds.
        #[arg(long, conflicts_with_all = ["kind", "file"])]
        list: bool,
        /// Replace FILE if it exists.
        #[arg(long, requires = "file")]
        force: bool,
    },
    /// Draw a run (or two side by side) to a PNG or SVG figure: densities and energy.
    #[command(after_help = "Example:\n  jko plot runs/pnp --out pnp.png\n  \
jko plot runs/pnp runs/pnp_grid --out pnp_vs_grid.svg --steps 0,10,last --log\n\n\
RUN is an output directory of `jko run`, `jko eulerian` or `jko equilibrium [--grid]`; \
OTHER_RUN (optional) is drawn with it: on the same axes in 1D (dashed), side by side in 2D/3D, \
with the `jko compare` distances (L1; W2 in 1D) of the steps shown in the titles.\n\n\
Drawn: the density of each species at the chosen steps (1D: curves; 2D: heat maps with a \
colour bar; 3D: the mid-plane slice z = const), particle runs through the same kernel \
estimate as `jko compare` (the run's bandwidth); and a row with the free energy and its parts, \
the transport distance w2_step and the iterations of each step against time.\n\n\
--out must end in .png or .svg; it is written as a new file (temporary file, sync, rename), \
checked before anything is drawn: an existing file is replaced only with --force, and never a \
link, a directory, a device or a file of the runs.\n\n\
Exit status: 0 done, 2 bad input (a missing, unfinished or malformed run; a bad --size, --steps \
or --species), 3 a density that is not a finite number, 4 I/O error or --out refused.")]
    Plot {
        /// Run directory.
        run: PathBuf,
        /// A second run directory drawn with the first (e.g. its grid twin).
        other_run: Option<PathBuf>,
        /// The figure to write: FILE.png or FILE.svg.
        #[arg(long, short)]
        out: PathBuf,
        /// Written steps to show, e.g. 0,10,last (also `first`); default: a few evenly spaced, first and last included.
        #[arg(long, value_parser = |s: &str| jko::plot::parse_steps(s).map(StepList))]
        steps: Option<StepList>,
        /// Species to show, e.g. u,v; default: all (of a pair: those both runs hold).
        #[arg(long, value_parser = |s: &str| jko::plot::parse_species(s).map(NameList))]
        species: Option<NameList>,
        /// Figure size in pixels, WIDTHxHEIGHT; default: 1200x800 for 1D, from the number of maps otherwise.
        #[arg(long, value_parser = jko::plot::parse_size, value_name = "WxH")]
        size: Option<(u32, u32)>,
        /// Log scales: densities (four decades), energy above its minimum, w2_step.
        #[arg(long)]
        log: bool,
        /// Replace the file at --out if it exists (a regular file only).
        #[arg(long)]
        force: bool,
    },
}

/// `--steps` of `jko plot`: one value holding a list (clap would read a
/// bare `Vec` as repeated options).
#[derive(Clone)]
struct StepList(Vec<jko::plot::StepChoice>);

/// `--species` of `jko plot`, see [`StepList`].
#[derive(Clone)]
struct NameList(Vec<String>);

struct Progress {
    bar: Option<ProgressBar>,
    /// Counting the stages of `jko equilibrium` rather than steps.
    stages: bool,
}

impl Observer for Progress {
    fn started(&mut self, s: &Scenario, bandwidths: &[f64], first_step: u64) {
        if let Some(bar) = &self.bar {
            let (unit, count) = if self.stages {
                ("stage", s.equilibrium.max_stages as u64)
            } else {
                ("step", s.steps as u64)
            };
            bar.set_length(count);
            bar.set_position(first_step - 1);
            if first_step > 1 {
                bar.println(format!("jko: resuming after {unit} {}", first_step - 1));
            }
            let eps: Vec<String> = bandwidths.iter().map(|e| format!("{e:.3e}")).collect();
            let what = if self.stages {
                format!(
                    "equilibrium: at most {count} stages of steps h = {} x {}^j",
                    s.time_step, s.equilibrium.growth
                )
            } else {
                format!("h = {}, {count} steps", s.time_step)
            };
            bar.println(format!(
                "jko: {} species, d = {}, {what}, bandwidth {}",
                s.species.len(),
                s.dimension,
                eps.join(", ")
            ));
        }
    }

    fn step(&mut self, _step: u64, r: &StepReport) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("E = {:.6e}, {} it", r.parts.total(), r.iterations));
            bar.inc(1);
        }
    }

    fn stage(&mut self, st: &jko::driver::Stage) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "h = {:.2e}, E = {:.6e}, |grad E|_w = {:.3e} (target {:.3e}), {} it",
                st.step_size, st.energy, st.gradient_norm, st.target, st.iterations
            ));
            bar.inc(1);
        }
    }

    fn event(&mut self, e: &Event) {
        let who = e
            .species
            .as_deref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        let line = format!(
            "jko: step {}: {}{who}: {}",
            e.step,
            e.kind.name(),
            e.message
        );
        // Printed even when the bar is hidden (stderr not a terminal).
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

/// Exit status of a bug caught at the top (EX_SOFTWARE): a panic never ends
/// a run with Rust's raw report, and the run's guards still clean up on the
/// way out (a directory made for the run is removed, a replaced run is moved
/// back), because the panic unwinds to here.
const EXIT_INTERNAL: u8 = 70;

fn main() -> ExitCode {
    jko::util::alloc::single_arena();
    let cli = Cli::parse();
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!(
            "jko: internal error (a bug in jko; please report it with the scenario): {}{place}",
            jko::error::clip(&what, 300)
        );
    }));
    match std::panic::catch_unwind(move || dispatch(cli)) {
        Ok(code) => code,
        Err(_) => {
            eprintln!(
                "jko: stopped by the internal error above; files already complete are intact, and a run with a checkpoint continues with --resume"
            );
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

/// The size and rank of the job, when a parallel launcher started this
/// process, and whether the size is known: Open MPI's `mpirun`, MPICH's
/// Hydra and Slurm's PMI-2 (`srun --mpi=pmi2`) say both; a PMIx launcher
/// (`srun --mpi=pmix`, and Open MPI 5's) says the rank only, and Slurm adds
/// the size as SLURM_STEP_NUM_TASKS. Without it a rank above 0 still knows
/// there are several processes (rank 0 cannot: it takes the job as its own).
fn mpirun_job() -> Option<(usize, usize, bool)> {
    let var = |k: &str| std::env::var(k).ok()?.trim().parse::<usize>().ok();
    [
        ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
        ("PMI_SIZE", "PMI_RANK"),
    ]
    .iter()
    .find_map(|(size, rank)| Some((var(size)?, var(rank).unwrap_or(0), true)))
    .or_else(|| {
        let rank = var("PMIX_RANK")?;
        Some(match var("SLURM_STEP_NUM_TASKS") {
            Some(size) => (size.max(rank + 1), rank, true),
            None => (rank + 1, rank, false),
        })
    })
}

/// Refuses several processes started by `mpirun` for what cannot share a
/// run (they would all write DIR): a build without the `mpi` feature, or a
/// command other than `jko run`. Said once, by rank 0 (by rank 1 when the
/// launcher does not tell rank 0 the size); status 2.
fn refuse_mpirun(cli: &Cli) -> Option<ExitCode> {
    let (size, rank, known) = mpirun_job().filter(|&(size, ..)| size > 1)?;
    let run = matches!(cli.command, Command::Run { .. });
    let why = if !cfg!(feature = "mpi") {
        "this jko was built without the `mpi` feature: build it with `cargo build --release --features mpi` (README, \"On a cluster (MPI)\")"
    } else if !run {
        "only `jko run` runs under MPI: run this command as one process"
    } else {
        return None;
    };
    if rank == 0 {
        eprintln!("jko: error: started by mpirun as {size} processes, but {why}");
    } else if !known && rank == 1 {
        // Rank 0 of a PMIx launch without the size runs alone; say why
        // the others stop.
        eprintln!("jko: error: started by a PMIx launcher as several processes, but {why}");
    }
    Some(ExitCode::from(2))
}

fn dispatch(cli: Cli) -> ExitCode {
    if let Some(code) = refuse_mpirun(&cli) {
        return code;
    }
    #[cfg(feature = "mpi")]
    if let Command::Run {
        scenario,
        out,
        force,
        resume,
        quiet,
    } = &cli.command
        && jko::distributed::launched_by_mpirun()
    {
        let opts = RunOptions {
            force: *force,
            resume: *resume,
        };
        return run_mpi(scenario, out, opts, *quiet);
    }
    // Off the main thread: MPI aside, every command's numerics run on a
    // rayon thread, where their parallel calls are cheap (`on_pool`).
    let result = jko::util::parallel::on_pool(|| commands(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jko: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Every command but `jko run` under `mpirun`.
fn commands(command: Command) -> jko::Result<()> {
    match command {
        Command::Run {
            scenario,
            out,
            force,
            resume,
            quiet,
        } => run(&scenario, &out, RunOptions { force, resume }, quiet),
        Command::Eulerian {
            scenario,
            out,
            force,
            quiet,
        } => eulerian(&scenario, &out, force, quiet),
        Command::Equilibrium {
            scenario,
            out,
            grid,
            force,
            resume,
            quiet,
        } => equilibrium(&scenario, &out, grid, RunOptions { force, resume }, quiet),
        Command::Compare {
            a,
            b,
            out,
            force,
            last,
        } => compare(&a, &b, out.as_deref(), force, last),
        Command::Export { dir, vtk: _, force } => export(&dir, force),
        Command::Init {
            kind,
            file,
            list,
            force,
        } => init(kind.as_deref(), file.as_deref(), list, force),
        Command::Plot {
            run,
            other_run,
            out,
            steps,
            species,
            size,
            log,
            force,
        } => plot(
            &run,
            other_run.as_deref(),
            &out,
            &jko::plot::PlotOptions {
                steps: steps.map(|s| s.0),
                species: species.map(|s| s.0),
                size,
                log,
            },
            force,
        ),
    }
}

fn run(scenario: &Path, out: &Path, opts: RunOptions, quiet: bool) -> jko::Result<()> {
    let s = Scenario::from_file(scenario)?;
    if let Err(e) = jko::util::interrupt::install() {
        eprintln!(
            "jko: warning: cannot catch SIGINT/SIGTERM ({e}); an interrupt will lose the steps since the last checkpoint"
        );
    }
    run_with(&s, out, quiet, |progress| {
        jko::run_to_dir(&s, out, opts, progress)
    })
}

/// Runs `go` with a progress bar (unless `quiet`) and prints the summary.
fn run_with(
    s: &Scenario,
    out: &Path,
    quiet: bool,
    go: impl FnOnce(&mut Progress) -> jko::Result<jko::RunSummary>,
) -> jko::Result<()> {
    let bar = (!quiet).then(|| {
        let b = ProgressBar::new(s.steps as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} steps [{elapsed} < {eta}] {msg}")
                .expect("valid template"),
        );
        b
    });
    let mut progress = Progress { bar, stages: false };
    let result = go(&mut progress);
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    let summary = result?;
    if summary.already_complete {
        if !quiet {
            eprintln!(
                "jko: the run in {} is already complete ({} steps); nothing to do",
                out.display(),
                summary.steps
            );
        }
        return Ok(());
    }
    if !quiet {
        let rejected = if summary.rejected_attempts > 0 {
            format!(
                ", {} step attempts rejected and retried smaller (events.csv)",
                summary.rejected_attempts
            )
        } else {
            String::new()
        };
        let unconverged = if summary.unconverged_steps > 0 {
            format!(
                " ({} steps stopped before the tolerance; see gradient_norm in energy.csv)",
                summary.unconverged_steps
            )
        } else {
            String::new()
        };
        eprintln!(
            "jko: {} steps done, energy {:.6e} -> {:.6e}, {} L-BFGS iterations{unconverged}{rejected}; output in {}",
            summary.steps,
            summary.initial_energy,
            summary.final_energy,
            summary.total_iterations,
            out.display()
        );
    }
    Ok(())
}

/// `jko run` under `mpirun` (the `mpi` feature; `jko::distributed`): every
/// rank runs; rank 0 writes OUT and speaks. An error that only some ranks
/// may meet (I/O, a directory refused) ends every rank through `MPI_Abort`
/// with the error's exit status, so that no rank is left waiting in a
/// collective; the outcomes of the replicated computation (a numerical
/// failure, a collapse, an agreed interrupt) end every rank normally.
#[cfg(feature = "mpi")]
fn run_mpi(scenario: &Path, out: &Path, opts: RunOptions, quiet: bool) -> ExitCode {
    use jko::distributed as dist;
    let mpi = match dist::Mpi::init() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("jko: error: cannot start MPI: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    // A panic on one rank must not leave the others in a collective.
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report_panic(info);
        dist::abort_world(EXIT_INTERNAL as i32);
    }));
    if let Err(e) = dist::install_signals() {
        eprintln!(
            "jko: warning: cannot catch SIGINT/SIGTERM ({e}); an interrupt will lose the steps since the last checkpoint"
        );
    }
    let s = match dist::setup(&mpi, scenario) {
        Ok(s) => s,
        Err(f) => {
            if let Some(m) = f.message {
                eprintln!("jko: error: {m}");
            }
            return ExitCode::from(f.code.clamp(1, 255) as u8);
        }
    };
    let rank = mpi.rank();
    match run_with(&s, out, quiet || rank != 0, |progress| {
        dist::run(&mpi, &s, out, opts, progress)
    }) {
        Ok(()) => ExitCode::SUCCESS,
        // Outcomes of the replicated computation (or of a signal the ranks
        // agreed on): every rank stops here together, with the same error.
        Err(
            e @ (jko::Error::Interrupted { .. }
            | jko::Error::Numerical(_)
            | jko::Error::Stopped(_)
            | jko::Error::NotConverged(_)),
        ) => {
            if rank == 0 {
                eprintln!("jko: error: {e}");
            }
            mpi.barrier();
            ExitCode::from(e.exit_code() as u8)
        }
        Err(e) => {
            if rank != 0 {
                // Every rank meets a numerical failure at the same point:
                // let rank 0 speak and end the job; a failure of this rank
                // alone is reported after that pause.
                std::thread::sleep(std::time::Duration::from_secs(2));
                eprintln!("jko: error on MPI rank {rank}: {e}");
            } else {
                eprintln!("jko: error: {e}");
            }
            mpi.abort(e.exit_code())
        }
    }
}

fn equilibrium(
    scenario: &Path,
    out: &Path,
    grid: bool,
    opts: RunOptions,
    quiet: bool,
) -> jko::Result<()> {
    let s = Scenario::from_file(scenario)?;
    if grid {
        return grid_equilibrium(&s, out, opts.force, quiet);
    }
    if let Err(e) = jko::util::interrupt::install() {
        eprintln!(
            "jko: warning: cannot catch SIGINT/SIGTERM ({e}); an interrupt will lose the stages since the last checkpoint"
        );
    }
    let bar = (!quiet).then(|| {
        let b = ProgressBar::new(s.equilibrium.max_stages as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:40} stage {pos}/{len} [{elapsed}] {msg}")
                .expect("valid template"),
        );
        b
    });
    let mut progress = Progress { bar, stages: true };
    let result = jko::driver::equilibrium_to_dir(&s, out, opts, &mut progress);
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    let summary = result?;
    if quiet {
        return Ok(());
    }
    if summary.already_complete {
        eprintln!(
            "jko: the equilibrium in {} is already complete ({} stages); nothing to do",
            out.display(),
            summary.stages
        );
        return Ok(());
    }
    let how = match summary.stop {
        Some(jko::driver::equilibrium::Stop::Rounding) => "stationary to rounding",
        _ => "tolerance met",
    };
    eprintln!(
        "jko: equilibrium after {} stages ({how}): energy {:.6e} -> {:.6e}, |grad E|_w {:.3e} -> {:.3e} \
         (target {:.3e}), {} L-BFGS iterations; output in {}",
        summary.stages,
        summary.initial_energy,
        summary.final_energy,
        summary.initial_gradient_norm,
        summary.gradient_norm,
        summary.target,
        summary.total_iterations,
        out.display()
    );
    Ok(())
}

fn grid_equilibrium(s: &Scenario, out: &Path, force: bool, quiet: bool) -> jko::Result<()> {
    let masses: Vec<f64> = s.species.iter().map(|sp| sp.mass_or_default()).collect();
    jko::stepper::equilibrium::check_existence(s, &masses)
        .map_err(|(key, why)| jko::Error::input(&s.path, key, why))?;
    if let Err(e) = jko::util::interrupt::install() {
        eprintln!(
            "jko: warning: cannot catch SIGINT/SIGTERM ({e}); an interrupt ends the solve at once"
        );
    }
    let summary = jko::eulerian::equilibrium_to_dir(s, out, force)?;
    for w in &summary.warnings {
        eprintln!("jko: warning: {w}");
    }
    if !quiet {
        eprintln!(
            "jko: grid equilibrium after {} Newton steps ({} GMRES iterations), residual {:.3e}: \
             energy {:.6e} -> {:.6e}; output in {}",
            summary.iterations,
            summary.krylov_iterations,
            summary.residual,
            summary.initial_energy,
            summary.final_energy,
            out.display()
        );
    }
    Ok(())
}

fn eulerian(scenario: &Path, out: &Path, force: bool, quiet: bool) -> jko::Result<()> {
    let s = Scenario::from_file(scenario)?;
    if let Err(e) = jko::util::interrupt::install() {
        eprintln!(
            "jko: warning: cannot catch SIGINT/SIGTERM ({e}); an interrupt will lose the run's files"
        );
    }
    jko::eulerian::run::show_progress(!quiet);
    let summary = jko::eulerian::run::run_to_dir(
        &s,
        out,
        RunOptions {
            force,
            ..Default::default()
        },
    )?;
    for w in &summary.warnings {
        eprintln!("jko: warning: {w}");
    }
    if !quiet {
        eprintln!(
            "jko: {} steps done ({} sub-steps), energy {:.6e} -> {:.6e}; output in {}",
            summary.steps,
            summary.substeps,
            summary.initial_energy,
            summary.final_energy,
            out.display()
        );
    }
    Ok(())
}

fn compare(a: &Path, b: &Path, out: Option<&Path>, force: bool, last: bool) -> jko::Result<()> {
    // Fail before the work, not after it.
    if let Some(path) = out {
        jko::compare::check_out_path(a, b, path, force)?;
    }
    let pairing = if last {
        jko::compare::Pairing::Last
    } else {
        jko::compare::Pairing::SameStep
    };
    let c = jko::compare::compare_runs_paired(a, b, pairing)?;
    print!("{c}");
    if let Some(path) = out {
        c.write_csv_with(path, force)?;
    }
    Ok(())
}

fn export(dir: &Path, force: bool) -> jko::Result<()> {
    let summary = jko::export::export_vtk(dir, force)?;
    eprintln!(
        "jko: {} steps exported: {} files in {}",
        summary.frames,
        summary.files,
        summary.folder.display()
    );
    Ok(())
}

fn init(kind: Option<&str>, file: Option<&Path>, list: bool, force: bool) -> jko::Result<()> {
    use jko::io::scenario::templates::{TEMPLATES, find};
    if list {
        for t in &TEMPLATES {
            println!("{:<24} {}", t.kind, t.about);
        }
        return Ok(());
    }
    let kind = kind.unwrap_or_default();
    let Some(t) = find(kind) else {
        let kinds: Vec<&str> = TEMPLATES.iter().map(|t| t.kind).collect();
        return Err(jko::Error::input(
            std::path::Path::new("jko init"),
            "KIND",
            format!(
                "unknown kind \"{}\"; one of: {}",
                jko::error::clip(kind, 80),
                kinds.join(", ")
            ),
        ));
    };
    match file {
        None => {
            print!("{}", t.text());
            Ok(())
        }
        Some(path) => {
            jko::io::output::replace_file(path, t.text().as_bytes(), &[], force)?;
            eprintln!(
                "jko: wrote {} (from {}); run it with: jko run {} --out runs/{}",
                path.display(),
                t.source,
                path.display(),
                t.kind
            );
            Ok(())
        }
    }
}
fn plot(
    a: &Path,
    b: Option<&Path>,
    out: &Path,
    opts: &jko::plot::PlotOptions,
    force: bool,
) -> jko::Result<()> {
    let report = jko::plot::plot_to_file(a, b, out, opts, force)?;
    for n in &report.notes {
        eprintln!("jko: note: {n}");
    }
    eprintln!(
        "jko: wrote {} ({} x {} pixels, {} panels)",
        out.display(),
        report.width,
        report.height,
        report.panels.len()
    );
    Ok(())
}
