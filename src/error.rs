//! One error type for the library, grouped by what the user has to do about it.
//!
//! Every variant carries the file (or directory) it concerns, so the message a
//! user sees always says *where* the problem is, and the CLI maps the group to
//! a documented exit status (see [`Error::exit_code`]).

use std::path::{Path, PathBuf};

/// Errors the library reports to its callers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario or particle file is missing, malformed or inconsistent.
    /// `location` names the key (`species[1].potential.stiffness`) or the row.
    #[error("{}: {location}: {message}", file.display())]
    Input {
        file: PathBuf,
        location: String,
        message: String,
    },
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The numerics could not continue (non-finite energy, no acceptable step).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// SIGINT/SIGTERM (or [`crate::util::interrupt::request`]): the run stopped at a
    /// clean point after writing a checkpoint; `--resume` continues it.
    #[error("interrupted after step {step}; checkpoint written, continue with --resume")]
    Interrupted { step: u64 },
    /// A physical event the scenario says to stop at (`on_collapse = "stop"`);
    /// the output files are complete up to that step.
    #[error("stopped: {0}")]
    Stopped(String),
}

impl Error {
    pub fn input(file: &Path, location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Input {
            file: file.to_path_buf(),
            location: location.into(),
            message: message.into(),
        }
    }

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
            Error::Interrupted { .. } => crate::util::interrupt::EXIT_STATUS,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
