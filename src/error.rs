//! One error type for the library, grouped by what the user has to do about it.
//!
//! Every variant carries the file (or directory) it concerns, so the message a
//! user sees always says *where* the problem is, and the CLI maps the group to
//! a documented exit status (see [`Error::exit_code`]).
//!
//! Text a user wrote (a scenario line, a species name, a method) is echoed
//! through [`clip`], so a message stays a few hundred characters whatever the
//! input; as a last resort the messages of every variant are clipped again
//! at [`MAX_MESSAGE`] characters when displayed.

use std::path::{Path, PathBuf};

/// Errors the library reports to its callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A scenario or particle file is missing, malformed or inconsistent.
    /// `location` names the key (`species[1].potential.stiffness`) or the row.
    #[error("{}: {}: {}", clip(&file.display().to_string(), MAX_PATH_ECHO), clip(location, MAX_ECHO), clip(message, MAX_MESSAGE))]
    Input {
        /// The file at fault.
        file: PathBuf,
        /// The key or row in the file.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {}", clip(&path.display().to_string(), MAX_PATH_ECHO), clip(&source.to_string(), MAX_MESSAGE))]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The numerics could not continue (non-finite energy, no acceptable step).
    #[error("numerical failure: {}", clip(.0, MAX_MESSAGE))]
    Numerical(String),
    /// SIGINT/SIGTERM (or [`crate::util::interrupt::request`]): the run stopped at a
    /// clean point after writing a checkpoint; `--resume` continues it.
    #[error("interrupted after step {step}; checkpoint written, continue with --resume")]
    Interrupted {
        /// The last step done (and checkpointed).
        step: u64,
    },
    /// SIGINT/SIGTERM (or [`crate::util::interrupt::request`]) stopped a
    /// command that keeps no checkpoint (`jko eulerian` after a full step,
    /// its files complete up to it; `jko equilibrium --grid`, nothing
    /// written): the message says what is on disk and what to do.
    #[error("interrupted: {}", clip(.0, MAX_MESSAGE))]
    Cancelled(String),
    /// A physical event the scenario says to stop at (`on_collapse = "stop"`);
    /// the output files are complete up to that step.
    #[error("stopped: {}", clip(.0, MAX_MESSAGE))]
    Stopped(String),
    /// `jko equilibrium` found no stationary state within its limits; the
    /// output holds the last iterate.
    #[error("no equilibrium reached: {}", clip(.0, MAX_MESSAGE))]
    NotConverged(String),
}

impl Error {
    /// An [`Error::Input`] about `location` in `file`.
    pub fn input(file: &Path, location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Input {
            file: file.to_path_buf(),
            location: location.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Io`] on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Exit status of the `jko` binary for this error (documented in the README).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } => 2,
            Error::Numerical(_) => 3,
            Error::Io { .. } => 4,
            Error::Stopped(_) => 5,
            Error::NotConverged(_) => 6,
            Error::Interrupted { .. } | Error::Cancelled(_) => crate::util::interrupt::EXIT_STATUS,
        }
    }
}

/// Longest piece of user text (a line, a name, a path) a message echoes.
pub const MAX_ECHO: usize = 200;

/// Longest path a message shows whole (a path from the input can be a
/// runaway string; real ones rarely pass a few hundred characters).
pub const MAX_PATH_ECHO: usize = 1000;

/// Longest message an [`Error`] displays (messages that list several files
/// or keys stay below it; only runaway echoes reach it).
pub const MAX_MESSAGE: usize = 2000;

/// `text` if it has at most `max` characters; otherwise its start and end
/// around an ellipsis, with the full length, so a 50 MB line or a 10 MB name
/// is echoed as a recognisable excerpt rather than in full.
pub fn clip(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let head = max * 3 / 4;
    let tail = max - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(total - tail).collect();
    format!("{start} [... {total} characters in all ...] {end}")
}

/// The library's result type, [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text() {
        assert_eq!(clip("species", 10), "species");
        let long = "a".repeat(1000) + "END";
        let c = clip(&long, 40);
        assert!(
            c.len() < 100 && c.ends_with("END") && c.contains("1003 characters"),
            "{c}"
        );
        // Never cuts inside a character.
        let wide = "é".repeat(500);
        assert!(clip(&wide, 10).starts_with("éééééé"));
    }

    #[test]
    fn display_clips_every_variant() {
        let huge = "x".repeat(1_000_000);
        let e = Error::input(Path::new(&huge), huge.clone(), huge.clone());
        assert!(
            e.to_string().len() < 3 * MAX_MESSAGE,
            "{}",
            e.to_string().len()
        );
        let e = Error::Numerical(huge.clone());
        assert!(e.to_string().len() < 2 * MAX_MESSAGE);
        let e = Error::io(Path::new("f"), std::io::Error::other(huge));
        assert!(e.to_string().len() < 2 * MAX_MESSAGE);
    }
}
