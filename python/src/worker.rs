//! Long library calls with the GIL released and Ctrl-C honoured.
//!
//! [`interruptible`] runs the work on a scoped thread (which hands it to a
//! thread of rayon's pool) while the calling thread, with the GIL released,
//! waits for it and every [`POLL`] takes the GIL back to run Python's signal
//! handlers (`check_signals`). Why a second
//! thread: CPython runs signal handlers only on the main thread, between
//! bytecodes, so the thread that called us (usually the main one) must stay
//! free to notice a Ctrl-C while the numerics run. A handler that raises
//! (KeyboardInterrupt from SIGINT) sets the library's interrupt flag, which
//! the optimizer and the run loops poll: the work stops at a clean point and
//! returns, the flag is cleared, and the exception is raised to the caller.
//!
//! The flag is process-wide: a Ctrl-C stops every library call in progress
//! in any thread, as it would stop the whole `jko` process.

use std::sync::mpsc;
use std::time::Duration;

use pyo3::prelude::*;

/// How often the waiting thread checks for signals: short enough that
/// Ctrl-C feels immediate, long enough to cost nothing.
const POLL: Duration = Duration::from_millis(25);

/// `work()` on another thread with the GIL released. Returns its result and
/// the exception a signal handler raised meanwhile, if any (the work was
/// then asked to stop, and has stopped).
pub fn interruptible<T, F>(py: Python<'_>, work: F) -> (T, Option<PyErr>)
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let (result, signal) = py.detach(|| {
        std::thread::scope(|scope| {
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let handle = scope.spawn(move || {
                // On rayon's pool, where the numerics' parallel calls are
                // cheap (`jko::util::parallel::on_pool`).
                let out = jko::util::parallel::on_pool(work);
                // The receiver may be gone only if this thread outlived the
                // wait, which the scope rules out; the send cannot fail.
                let _ = done_tx.send(());
                out
            });
            let mut signal: Option<PyErr> = None;
            loop {
                match done_rx.recv_timeout(POLL) {
                    // Done, or the worker panicked (the sender dropped).
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
                if signal.is_none()
                    && let Err(e) = Python::attach(|py| py.check_signals())
                {
                    signal = Some(e);
                    jko::util::interrupt::request();
                }
            }
            (handle.join(), signal)
        })
    });
    if signal.is_some() {
        // Withdrawn only once the work has stopped, so that it saw it.
        jko::util::interrupt::clear();
    }
    match result {
        Ok(value) => (value, signal),
        // A bug in the library: re-raised here, where pyo3 turns it into a
        // PanicException instead of ending the interpreter.
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
