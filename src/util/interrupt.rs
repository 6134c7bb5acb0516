//! SIGINT and SIGTERM end a run at a clean point instead of killing it.
//!
//! [`install`] (called by the CLI) turns the first signal into a request that
//! the run loop and the optimizer poll: the step in progress is abandoned,
//! the state after the last completed step is checkpointed, the files are
//! synced, and the run returns [`crate::Error::Interrupted`] (the Eulerian
//! run, which keeps no checkpoint, ends after its step in progress with its
//! files complete, and the grid equilibrium at its next Newton step with
//! none: [`crate::Error::Cancelled`]). A second signal
//! ends the process at once (exit status 130), for a run stuck in a long
//! evaluation; its last checkpoint is still valid.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Exit status of an interrupted run (128 + SIGINT, the shell's convention).
pub const EXIT_STATUS: i32 = 130;

/// Route SIGINT and SIGTERM to the interrupt request.
pub fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // The shutdown must be registered first: it fires only once the flag is set.
        signal_hook::flag::register_conditional_shutdown(sig, EXIT_STATUS, &REQUESTED)?;
        signal_hook::flag::register(sig, &REQUESTED)?;
    }
    Ok(())
}

/// Whether an interrupt was requested.
#[inline]
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Ask the running simulation to stop at the next clean point (what a signal
/// does; for library users and tests).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Withdraw a request (before starting another run in the same process).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}
