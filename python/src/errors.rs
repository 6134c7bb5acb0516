//! Library errors as Python exceptions.
//!
//! The classes are defined in pure Python (`jko/_errors.py`): the scenario
//! error derives from both `JkoError` and `ValueError`, and a class with two
//! bases is plain to write there. Each exception carries the message the
//! CLI prints after `jko: error:` (the library error's `Display`), its
//! `exit_code` (the CLI's exit status for it) and, for bad input, the `file`
//! and `location` (the key or row at fault), for I/O errors the `path`.

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError};
use pyo3::prelude::*;

/// The Python exception of a library error.
pub fn to_py(err: jko::Error) -> PyErr {
    let message = err.to_string();
    if let jko::Error::Interrupted { .. } | jko::Error::Cancelled(_) = err {
        return PyKeyboardInterrupt::new_err(message);
    }
    let class = match &err {
        jko::Error::Input { .. } => "ScenarioError",
        jko::Error::Io { .. } => "FileError",
        jko::Error::Numerical(_) => "NumericalError",
        jko::Error::Stopped(_) => "StoppedError",
        jko::Error::NotConverged(_) => "NotConvergedError",
        // The enum is non-exhaustive: a new variant is still a JkoError.
        _ => "JkoError",
    };
    Python::attach(|py| match build(py, class, &message, &err) {
        Ok(e) => e,
        // Only if jko._errors cannot be imported (a broken install): the
        // message still arrives.
        Err(_) => PyRuntimeError::new_err(message),
    })
}

fn build(py: Python<'_>, class: &str, message: &str, err: &jko::Error) -> PyResult<PyErr> {
    let errors = py.import("jko._errors")?;
    let exc = errors.getattr(class)?.call1((message,))?;
    exc.setattr("exit_code", err.exit_code())?;
    if let jko::Error::Input { file, location, .. } = err {
        exc.setattr("file", file.display().to_string())?;
        exc.setattr("location", location.as_str())?;
    }
    if let jko::Error::Io { path, .. } = err {
        // Not `filename`: on an OSError that would change str(exc).
        exc.setattr("path", path.display().to_string())?;
    }
    Ok(PyErr::from_value(exc))
}

/// `Result<T, jko::Error>` into a `PyResult<T>`.
pub trait IntoPy<T> {
    /// The value, or the error as its Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for jko::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
