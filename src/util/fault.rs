//! Fault injection for the robustness tests (cargo feature `fault-injection`;
//! without it every hook below is an empty inline function).
//!
//! A test sets the environment variable `JKO_FAULT` to a comma-separated list:
//!
//! * `nan@N`, `error@N`, `flip@N`: the first attempt of JKO step N sees an
//!   energy that is NaN, an evaluation that fails, or a gradient of the wrong
//!   sign; with a trailing `+` (`nan@N+`) every attempt of every step from N
//!   on does (a permanent fault);
//! * `kill@frame:K`, `kill@checkpoint:K`, `kill@rename:K`, `kill@step:K`: the
//!   process sends itself SIGKILL halfway through writing its K-th frame of
//!   particles.csv, after writing its K-th checkpoint to the temporary file but
//!   before renaming it, between the two renames of its K-th checkpoint, or
//!   right after the energy row of step K (counts start at 1 in each process);
//! * `hang@frame:K`, ..., `hang@step:K`: at the same points the process
//!   stops answering instead (it sleeps for ever), as a rank stuck in a
//!   system call or a dead node would (the MPI watchdog's test);
//! * `disk=B`: every write fails with "no space left on device" once the
//!   process has written B bytes of output and checkpoints.

/// Whether the hooks are compiled in.
pub const ENABLED: bool = cfg!(feature = "fault-injection");

/// A corruption of one energy evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalFault {
    /// The energy is NaN (`nan@N`).
    Nan,
    /// The evaluation fails (`error@N`).
    Error,
    /// The gradient has the wrong sign (`flip@N`).
    FlipGradient,
}

/// Places where a kill test stops the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillPoint {
    /// Halfway through writing a frame of particles.csv (`kill@frame:K`).
    Frame,
    /// After writing a checkpoint's temporary file, before renaming it (`kill@checkpoint:K`).
    Checkpoint,
    /// Between the two renames of a checkpoint (`kill@rename:K`).
    Rename,
    /// Right after the energy row of a step (`kill@step:K`).
    Step,
}

#[cfg(feature = "fault-injection")]
mod active {
    use super::{EvalFault, KillPoint};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Plan {
        eval: Option<(EvalFault, u64, bool)>,
        /// The point, its count, and whether to hang instead of dying.
        kill: Option<(KillPoint, u64, bool)>,
        disk: Option<u64>,
    }

    static COUNTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
    static WRITTEN: AtomicU64 = AtomicU64::new(0);

    fn bad<T>(item: &str) -> T {
        panic!("JKO_FAULT: cannot parse {item:?}")
    }

    fn plan() -> &'static Plan {
        static PLAN: OnceLock<Plan> = OnceLock::new();
        PLAN.get_or_init(|| {
            let text = std::env::var("JKO_FAULT").unwrap_or_default();
            let mut p = Plan::default();
            for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if let Some(b) = item.strip_prefix("disk=") {
                    p.disk = Some(b.parse().unwrap_or_else(|_| bad(item)));
                } else if let Some((k, hang)) = item
                    .strip_prefix("kill@")
                    .map(|k| (k, false))
                    .or_else(|| item.strip_prefix("hang@").map(|k| (k, true)))
                {
                    let (at, n) = k.split_once(':').unwrap_or_else(|| bad(item));
                    let point = match at {
                        "frame" => KillPoint::Frame,
                        "checkpoint" => KillPoint::Checkpoint,
                        "rename" => KillPoint::Rename,
                        "step" => KillPoint::Step,
                        _ => bad(item),
                    };
                    p.kill = Some((point, n.parse().unwrap_or_else(|_| bad(item)), hang));
                } else {
                    let (kind, at) = item.split_once('@').unwrap_or_else(|| bad(item));
                    let fault = match kind {
                        "nan" => EvalFault::Nan,
                        "error" => EvalFault::Error,
                        "flip" => EvalFault::FlipGradient,
                        _ => bad(item),
                    };
                    let (at, permanent) = match at.strip_suffix('+') {
                        Some(a) => (a, true),
                        None => (at, false),
                    };
                    p.eval = Some((fault, at.parse().unwrap_or_else(|_| bad(item)), permanent));
                }
            }
            p
        })
    }

    pub fn evaluation(step: u64, attempt: u32) -> Option<EvalFault> {
        let (fault, at, permanent) = plan().eval?;
        let hit = if permanent {
            step >= at
        } else {
            step == at && attempt == 0
        };
        hit.then_some(fault)
    }

    pub fn kill_point(point: KillPoint) {
        let Some((p, nth, hang)) = plan().kill else {
            return;
        };
        if p != point {
            return;
        }
        let count = COUNTS[point as usize].fetch_add(1, Ordering::SeqCst) + 1;
        if count == nth {
            if hang {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
            let _ = signal_hook::low_level::raise(signal_hook::consts::SIGKILL);
        }
    }

    pub fn disk_budget(bytes: usize) -> std::io::Result<()> {
        let Some(limit) = plan().disk else {
            return Ok(());
        };
        let before = WRITTEN.fetch_add(bytes as u64, Ordering::SeqCst);
        if before + bytes as u64 > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device (injected fault)",
            ));
        }
        Ok(())
    }
}

/// The fault, if any, of an evaluation during attempt `attempt` (0 first) of step `step`.
#[inline]
pub fn evaluation(step: u64, attempt: u32) -> Option<EvalFault> {
    #[cfg(feature = "fault-injection")]
    {
        active::evaluation(step, attempt)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = (step, attempt);
        None
    }
}

/// Stop the process here if the test asked for it.
#[inline]
pub fn kill_point(point: KillPoint) {
    #[cfg(feature = "fault-injection")]
    active::kill_point(point);
    #[cfg(not(feature = "fault-injection"))]
    let _ = point;
}

/// Fails once the test's disk budget is spent.
#[inline]
pub fn disk_budget(bytes: usize) -> std::io::Result<()> {
    #[cfg(feature = "fault-injection")]
    {
        active::disk_budget(bytes)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = bytes;
        Ok(())
    }
}
