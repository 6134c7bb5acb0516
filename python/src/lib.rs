//! `jko._jko`, the extension module of the Python package `jko`.
//!
//! Thin wrappers over the library, one file each:
//!
//! - [`scenario`]: `Scenario`, read from a file or from TOML text by the
//!   library's parser;
//! - [`simulation`]: `Simulation`, a particle simulation stepped from Python
//!   (positions, weights, densities and energy as numpy arrays and dicts);
//! - [`commands`]: `run`, `eulerian`, `equilibrium`, `compare`, the CLI's
//!   commands as functions writing the same directories;
//! - [`worker`]: how a long call releases the GIL and still stops cleanly on
//!   Ctrl-C;
//! - [`errors`]: library errors as the Python exceptions of `jko._errors`,
//!   with the CLI's messages.
//!
//! The pure-Python part of the package (`python/jko/`) re-exports these and
//! adds `read_run`.

use pyo3::prelude::*;

mod commands;
mod errors;
mod scenario;
mod simulation;
mod worker;

#[pymodule]
fn _jko(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("PROGRAM", jko::io::checkpoint::program_version())?;
    m.add_class::<scenario::PyScenario>()?;
    m.add_class::<simulation::PySimulation>()?;
    m.add_function(wrap_pyfunction!(commands::run, m)?)?;
    m.add_function(wrap_pyfunction!(commands::eulerian, m)?)?;
    m.add_function(wrap_pyfunction!(commands::equilibrium, m)?)?;
    m.add_function(wrap_pyfunction!(commands::compare, m)?)?;
    Ok(())
}
