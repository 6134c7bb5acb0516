//! `jko run` under MPI (`mpirun -n P jko run SCENARIO --out DIR`), built
//! with the `mpi` feature (docs/mpi.md has the whole plan). This slice:
//! **replicated state, work divided by space**.
//!
//! # Decomposition
//!
//! Every rank holds all positions, the neighbour lists' order and the tree.
//! Every rank runs the same driver, the
//! same JKO steps and the same optimizer on the same numbers, so every
//! decision (line search, stopping rule, rejected steps and sub-steps) is
//! taken identically on every rank without any message: the state stays
//! replicated because each rank computes the same bits. What is divided is
//! the work of the evaluations, through the numerics' seam
//! [`crate::util::team`]: [`setup`] installs the world communicator as the
//! process's [`Team`], and the backends built afterwards divide their work
//! among its members:
//!
//! - the direct pair sum (d = 2, 3) by block rows of 256 particles
//!   (`coupling::direct`, `BlockLayout`);
//! - the multipole tree (d = 2, 3) by frontier subtrees (far field) and
//!   near-field tasks, ranges of the tree's Morton order owned by measured
//!   cost (`coupling/tree/engine/divided.rs`);
//! - the neighbour-list densities and their gradients by chunks of the
//!   lists' Morton order, owned by cost (`density::blob`);
//! - the mesh densities' and the box mesh's interpolations by chunks of
//!   particles (`density::mesh`, `coupling::box_mesh`);
//! - L-BFGS's vectors (iterates, gradients, directions, history) by ranges
//!   of the vector, with reductions over fixed chunks (`util::shard`).
//!
//! Each keeps the single process's order of every floating-point addition,
//! so the run has the single process's bits on any number of ranks. The
//! rest (the meshes' deposits and FFTs, 1D, the trees' and lists' builds)
//! is computed on every rank.
//!
//! # Exchanges
//!
//! Per evaluation, the backends' `all_gather`s and point-to-point messages
//! (their module docs; about N (1 + d) numbers per divided term) and a
//! one-byte `allreduce` per divided term: a signal pending on any rank
//! (below). Per step: the same one-byte `allreduce` (the step's decisions
//! are replicated). Per run: one `allgather` at the start checks that every
//! rank read the same scenario (SHA-256 of the file) and that there are no
//! more ranks than particles.
//!
//! # Output
//!
//! Rank 0 writes DIR exactly as a single process would (the same driver on
//! the same numbers: the same bytes). The other ranks run the same driver
//! as followers (`io::output::follow`): they format no frame and write no
//! output file, run record or checkpoint, so that P ranks do not each write
//! a copy of every frame and checkpoint (at 1e8 particles in 3D a frame is
//! ~8 GB). Their driver still needs a directory to hold its lock: a scratch
//! directory of their own under the system's temporary directory, empty
//! but for the lock and removed when the run ends.
//!
//! # Failure
//!
//! An error found in the setup (bad scenario, different scenarios, more
//! ranks than particles) is agreed by a collective and every rank exits
//! with its status. An error during the run (every rank meets a numerical
//! failure at the same step; rank 0 alone meets an I/O error) ends the job
//! with `MPI_Abort` and the error's exit status, so no rank waits forever in
//! a collective; a rank that dies is seen by `mpirun`, which ends the others.
//! A rank that stops answering without dying (stuck in a system call, a
//! node that froze) is met by the **watchdog**: MPI has no timeout on its
//! collectives, so every exchange marks the time it started, and a thread
//! of each rank ends the job (`MPI_Abort`, status [`EXIT_TIMEOUT`], with a
//! message naming the rank and the limit) when one has waited longer than
//! `JKO_MPI_TIMEOUT` seconds ([`DEFAULT_TIMEOUT_S`] unless set; the longest
//! legitimate wait is a slower rank's evaluation or rank 0 writing a
//! checkpoint).
//!
//! # Checkpoints and resume
//!
//! The state is replicated, so rank 0's checkpoint (written at every
//! written step, as by a single process) is the whole state. `--resume`:
//! the other ranks copy DIR's checkpoints, run record and scenario copy
//! (not the output files, which they do not read) into their scratch
//! directories, a barrier, and every rank resumes from the same checkpoint;
//! the run continues with the same bytes as one never stopped, with any
//! number of ranks (one process included).
//!
//! SIGINT/SIGTERM (which `mpirun` forwards to every rank) only mark a signal
//! *pending*; the ranks agree on it by a one-byte `allreduce` at every
//! divided evaluation and after every step
//! (`agree_on_signal`), then all stop at the same point, write the same
//! checkpoint (rank 0's in DIR) and exit with status 130, as one process
//! does (`mpirun`, when it is the process signalled, exits with 1).
//! Open MPI's `mpirun`, when signalled, forwards the signal
//! `odls_base_sigkill_timeout` seconds late (default 1) and SIGKILLs the
//! ranks as long after: a longer evaluation and checkpoint are cut short, and
//! the checkpoint of the last written step stays valid (docs/mpi.md). The
//! ranks meet at a barrier before an agreed non-zero exit, so none leaves
//! (and has `mpirun` end the others) while rank 0 still writes.
//!
//! Not yet: distributed positions (ghosts, locally essential trees, memory
//! divided among the ranks), division of the meshes' deposits and FFTs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mpi::Count;
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use sha2::{Digest, Sha256};

use crate::driver::events::Event;
use crate::driver::{Observer, RunOptions, RunSummary, run_to_dir};
use crate::error::{Error, Result};
use crate::io::scenario::Scenario;
use crate::particles::Cloud;
use crate::stepper::StepReport;
use crate::util::interrupt;
use crate::util::team::Team;

/// Whether this process was started by `mpirun`/`mpiexec` (Open MPI, MPICH
/// or a PMIx launcher): only then does `jko run` initialize MPI, so a plain
/// `jko run` of an `mpi` build is the single-process program.
pub fn launched_by_mpirun() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// A signal this rank received and the others may not know of yet.
static PENDING: AtomicBool = AtomicBool::new(false);

/// Seconds a rank may wait in one exchange before the watchdog ends the job,
/// unless `JKO_MPI_TIMEOUT` says otherwise (module docs, "Failure").
pub const DEFAULT_TIMEOUT_S: f64 = 600.0;

/// Exit status of a job the watchdog ended (sysexits' EX_TEMPFAIL).
pub const EXIT_TIMEOUT: i32 = 75;

/// When the exchange this rank is in started (milliseconds on [`clock_ms`],
/// plus one), or 0 outside exchanges.
static WAITING_SINCE_MS: AtomicU64 = AtomicU64::new(0);

fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Runs `f`, a blocking exchange with the other ranks, under the watch of
/// the watchdog.
fn exchange<T>(f: impl FnOnce() -> T) -> T {
    WAITING_SINCE_MS.store(clock_ms(), Ordering::SeqCst);
    let out = f();
    WAITING_SINCE_MS.store(0, Ordering::SeqCst);
    out
}

/// The watchdog's limit: `JKO_MPI_TIMEOUT` (seconds > 0), else the default.
fn timeout_s() -> std::result::Result<f64, String> {
    match std::env::var("JKO_MPI_TIMEOUT") {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_TIMEOUT_S),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(t) if t > 0.0 && t.is_finite() => Ok(t),
            _ => Err(format!(
                "{v:?}: expected a number of seconds > 0 (the longest wait for the other \
                 ranks in one exchange; default {DEFAULT_TIMEOUT_S})"
            )),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Starts the thread that ends the job when this rank has waited in one
/// exchange for more than `timeout` seconds.
fn start_watchdog(rank: usize, timeout: f64, multiple: bool) {
    let limit_ms = (timeout * 1e3).ceil() as u64;
    let period = Duration::from_millis((limit_ms / 10).clamp(10, 1000));
    let spawned = std::thread::Builder::new()
        .name("jko-mpi-watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(period);
                let since = WAITING_SINCE_MS.load(Ordering::SeqCst);
                if since != 0 && clock_ms().saturating_sub(since) > limit_ms {
                    eprintln!(
                        "jko: error on MPI rank {rank}: no exchange with the other ranks completed \
                         for {timeout} s (JKO_MPI_TIMEOUT): a rank is stuck or dead; ending the job"
                    );
                    if multiple {
                        world().abort(EXIT_TIMEOUT);
                    }
                    // MPI may not be called from this thread: end this rank,
                    // and `mpirun` the others.
                    std::process::abort();
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!(
            "jko: warning: MPI rank {rank}: no watchdog ({e}): a stuck rank will hang the job"
        );
    }
}

/// Routes SIGINT and SIGTERM to a *pending* request that the ranks agree on
/// (`agree_on_signal`) before any of them acts on it: a rank that stopped
/// at the signal by itself would leave the others in a collective. A second
/// signal ends this rank at once (status 130), and `mpirun` the job.
pub fn install_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // The shutdown first: it fires only once the flag is set.
        signal_hook::flag::register_conditional_shutdown(sig, interrupt::EXIT_STATUS, &PENDING)?;
        signal_hook::flag::register(sig, &PENDING)?;
    }
    Ok(())
}

/// A collective: if any rank has a pending signal, every rank requests the
/// interrupt here, at the same point of the same computation, so every rank
/// stops at the same next check (the optimizer's next evaluation, or the
/// run loop's next step) and writes the same checkpoint.
fn agree_on_signal(w: &SimpleCommunicator) {
    let mine = PENDING.load(Ordering::Relaxed) as u8;
    let mut any = 0u8;
    exchange(|| w.all_reduce_into(&mine, &mut any, SystemOperation::max()));
    if any != 0 {
        interrupt::request();
    }
}

/// The run's observer, plus the agreement on signals after every step (a
/// point every rank passes, whatever the scenario's backends).
struct Agreeing<'a> {
    inner: &'a mut dyn Observer,
}

impl Observer for Agreeing<'_> {
    fn started(&mut self, s: &Scenario, bandwidths: &[f64], first_step: u64) {
        self.inner.started(s, bandwidths, first_step);
    }

    fn step(&mut self, step: u64, report: &StepReport) {
        self.inner.step(step, report);
        agree_on_signal(&world());
    }

    fn event(&mut self, event: &Event) {
        self.inner.event(event);
    }
}

/// Ends every rank of the job with exit status `code` (`MPI_Abort` on the
/// world), from anywhere (a panic hook).
pub fn abort_world(code: i32) -> ! {
    world().abort(code)
}

/// MPI, initialized for the life of the run (finalized when dropped).
pub struct Mpi {
    _universe: Universe,
    rank: usize,
    size: usize,
    /// Whether any thread may call MPI (the watchdog's `MPI_Abort`).
    multiple: bool,
}

/// The world communicator (a handle: cheap, and not kept in the backends,
/// which must be `Send`).
fn world() -> SimpleCommunicator {
    SimpleCommunicator::world()
}

impl Mpi {
    /// Initializes MPI; only the main thread exchanges (rayon's threads
    /// compute, the watchdog may abort).
    pub fn init() -> std::result::Result<Self, String> {
        // Multiple, if the library has it, for the watchdog's MPI_Abort;
        // the computation itself calls MPI from the main thread only.
        let (universe, level) = mpi::initialize_with_threading(mpi::Threading::Multiple)
            .ok_or_else(|| "MPI was already initialized".to_string())?;
        let w = universe.world();
        Ok(Mpi {
            rank: w.rank() as usize,
            size: w.size() as usize,
            multiple: level == mpi::Threading::Multiple,
            _universe: universe,
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The world communicator as a [`Team`], for numerics built by hand
    /// (benchmarks, `examples/ghost_exchange.rs`); [`setup`] installs one
    /// as the process's team.
    pub fn team(&self) -> Arc<dyn Team> {
        Arc::new(WorldTeam {
            rank: self.rank,
            size: self.size,
            seconds: std::sync::Mutex::new(0.0),
        })
    }

    /// Ends every rank of the job with exit status `code` (`MPI_Abort`).
    pub fn abort(&self, code: i32) -> ! {
        world().abort(code)
    }

    /// Collective: returns once every rank has called it (watched by the
    /// watchdog like every exchange). Before a non-zero exit, so that no rank
    /// leaves while rank 0 still writes: `mpirun` ends the job's other ranks
    /// when one exits with an error status.
    pub fn barrier(&self) {
        exchange(|| world().barrier());
    }
}

/// Why the setup failed, as agreed by all ranks: the exit status and the
/// message this rank prints (if any: the first failing rank speaks).
pub struct SetupFailure {
    /// The exit status (2: bad input).
    pub code: i32,
    /// What to print on this rank, or nothing.
    pub message: Option<String>,
}

/// Reads the scenario on every rank and agrees on it: the same file bytes
/// on every rank, and no more ranks than particles.
/// On success every rank returns the scenario, and the world is installed
/// as the process's [`Team`], so the backends built from now on divide
/// their work among the ranks.
pub fn setup(mpi: &Mpi, path: &Path) -> std::result::Result<Scenario, SetupFailure> {
    let timeout = timeout_s();
    if let Ok(t) = timeout {
        start_watchdog(mpi.rank, t, mpi.multiple);
    }
    let local = timeout
        .map_err(|m| Error::input(Path::new("environment"), "JKO_MPI_TIMEOUT", m))
        .and_then(|_| read_scenario(mpi, path));
    // [status, digest...]: status 0 ok, else the exit code.
    let mut mine = [0u8; 33];
    match &local {
        Ok((_, digest)) => mine[1..].copy_from_slice(digest),
        Err(e) => mine[0] = e.exit_code().clamp(1, 255) as u8,
    }
    let mut all = vec![0u8; 33 * mpi.size];
    exchange(|| world().all_gather_into(&mine[..], &mut all[..]));
    let first_bad = all.chunks(33).position(|c| c[0] != 0);
    if let Some(r) = first_bad {
        let code = all[33 * r] as i32;
        let message = match &local {
            Err(e) if r == mpi.rank => Some(format!("{e}")),
            _ => None,
        };
        return Err(SetupFailure { code, message });
    }
    if let Some(r) = all.chunks(33).position(|c| c[1..] != all[1..33]) {
        return Err(SetupFailure {
            code: 2,
            message: (mpi.rank == 0).then(|| {
                format!(
                    "{}: rank {r} read a scenario different from rank 0's (SHA-256 of the file \
                     differs): every rank must read the same file",
                    path.display()
                )
            }),
        });
    }
    let (scenario, _) = local.unwrap_or_else(|_| unreachable!("every rank succeeded"));
    crate::util::team::install(Arc::new(WorldTeam {
        rank: mpi.rank,
        size: mpi.size,
        seconds: std::sync::Mutex::new(0.0),
    }));
    Ok(scenario)
}

/// The scenario, the SHA-256 of its file, and the checks of a distributed run.
fn read_scenario(mpi: &Mpi, path: &Path) -> Result<(Scenario, [u8; 32])> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let s = Scenario::from_file(path)?;
    let cloud = particle_count(&s)?;
    if mpi.size > cloud {
        return Err(Error::input(
            path,
            "species[k].particles",
            format!(
                "{} MPI ranks for {cloud} particles: run with at most as many ranks as particles",
                mpi.size
            ),
        ));
    }
    Ok((s, digest))
}

/// The scenario's particle count (a csv initial law knows it once read).
fn particle_count(s: &Scenario) -> Result<usize> {
    if let Some(n) = s.species.iter().map(|k| k.particles).sum::<Option<usize>>() {
        return Ok(n);
    }
    Ok(match s.dimension {
        1 => Cloud::<1>::sample(&s.species, s.seed, &s.path)?.len(),
        2 => Cloud::<2>::sample(&s.species, s.seed, &s.path)?.len(),
        _ => Cloud::<3>::sample(&s.species, s.seed, &s.path)?.len(),
    })
}

/// Runs the scenario to `out` on every rank: rank 0 writes `out`, the others
/// follow (they write nothing but their scratch directory's lock).
pub fn run(
    mpi: &Mpi,
    scenario: &Scenario,
    out: &Path,
    opts: RunOptions,
    obs: &mut dyn Observer,
) -> Result<RunSummary> {
    let scratch = scratch_dir(mpi.rank);
    if mpi.rank != 0 {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    if opts.resume {
        // Every rank resumes from the state in `out`: the others copy it
        // before rank 0, past the barrier, starts changing it.
        let copied = if mpi.rank != 0 && out.is_dir() {
            copy_run_dir(out, &scratch)
        } else {
            Ok(())
        };
        mpi.barrier();
        copied.map_err(|e| Error::io(out, e))?;
    }
    if mpi.rank == 0 {
        return run_to_dir(scenario, out, opts, &mut Agreeing { inner: obs });
    }
    let _following = crate::io::output::follow(out);
    let result = run_to_dir(scenario, &scratch, opts, &mut Agreeing { inner: &mut () });
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Copies what a follower's resume reads of a run directory into `to`: the
/// checkpoints, the run record and the scenario copy (not the output
/// files: a follower neither checks nor extends them).
fn copy_run_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    use crate::io::{checkpoint, output};
    std::fs::create_dir_all(to)?;
    let names = [
        checkpoint::CHECKPOINT,
        checkpoint::PREVIOUS,
        crate::driver::RUN_RECORD,
        output::SCENARIO_COPY,
    ];
    for name in names {
        match std::fs::copy(from.join(name), to.join(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => {
                r?;
            }
        }
    }
    Ok(())
}

fn scratch_dir(rank: usize) -> PathBuf {
    std::env::temp_dir().join(format!("jko-mpi-{}-rank{rank}", std::process::id()))
}

/// The world communicator as the numerics' [`Team`]: every rank runs the
/// same divided evaluations ([`crate::util::team`] module docs).
struct WorldTeam {
    rank: usize,
    size: usize,
    /// Seconds spent in the calls below (run.json's `exchange_s`).
    seconds: std::sync::Mutex<f64>,
}

impl WorldTeam {
    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let clock = Instant::now();
        let out = exchange(f);
        *self.seconds.lock().unwrap_or_else(|e| e.into_inner()) += clock.elapsed().as_secs_f64();
        out
    }
}

impl Team for WorldTeam {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&self, mine: &[f64], counts: &[usize], all: &mut [f64]) {
        let counts: Vec<Count> = counts.iter().map(|&c| c as Count).collect();
        let displs: Vec<Count> = counts
            .iter()
            .scan(0, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(d)
            })
            .collect();
        let mut partition = PartitionMut::new(all, &counts[..], &displs[..]);
        self.timed(|| world().all_gather_varcount_into(mine, &mut partition));
    }

    fn send(&self, to: usize, data: &[f64]) {
        self.timed(|| world().process_at_rank(to as i32).send(data));
    }

    fn receive(&self, from: usize) -> Vec<f64> {
        self.timed(|| world().process_at_rank(from as i32).receive_vec::<f64>().0)
    }

    fn agree_on_interrupt(&self) {
        self.timed(|| agree_on_signal(&world()));
    }

    fn exchange_seconds(&self) -> f64 {
        *self.seconds.lock().unwrap_or_else(|e| e.into_inner())
    }
}
