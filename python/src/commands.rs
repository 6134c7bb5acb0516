//! The `jko` commands as functions: `run`, `eulerian`, `equilibrium`,
//! `compare`. Each calls the library function `src/main.rs` calls, with no
//! progress display (a silent observer), the GIL released and Ctrl-C
//! honoured ([`crate::worker`]), and returns the summary the CLI prints as a
//! dict. Warnings the CLI prints go to Python's `warnings` module.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use jko::RunOptions;

use crate::errors::IntoPy;
use crate::scenario::scenario_arg;
use crate::worker::interruptible;

/// `work` with the GIL released; a signal raised meanwhile wins over its
/// result (the library stopped at a clean point and said Interrupted, or
/// finished just then), as it would end the CLI.
fn call<T: Send>(py: Python<'_>, work: impl FnOnce() -> jko::Result<T> + Send) -> PyResult<T> {
    let (result, signal) = interruptible(py, work);
    match (result, signal) {
        // The library's message says where it stopped and that --resume
        // continues; raised as KeyboardInterrupt all the same.
        (Err(e @ (jko::Error::Interrupted { .. } | jko::Error::Cancelled(_))), _) => {
            Err(crate::errors::to_py(e))
        }
        (_, Some(signal)) => Err(signal),
        (result, None) => result.py_err(),
    }
}

fn warn(py: Python<'_>, warnings: &[String]) -> PyResult<()> {
    if warnings.is_empty() {
        return Ok(());
    }
    let module = py.import("warnings")?;
    let category = py.get_type::<pyo3::exceptions::PyRuntimeWarning>();
    for w in warnings {
        module.call_method1("warn", (w.as_str(), &category, 2))?;
    }
    Ok(())
}

/// Run the particle JKO scheme on a scenario and write its output to the
/// directory ``out`` (``jko run``): particles.csv, energy.csv, events.csv,
/// scenario.toml. ``force`` replaces a run already there; ``resume``
/// continues it from its last checkpoint (byte-identical to a run never
/// stopped). Returns the run's summary as a dict.
#[pyfunction]
#[pyo3(signature = (scenario, out, force = false, resume = false))]
pub fn run<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, PyAny>,
    out: PathBuf,
    force: bool,
    resume: bool,
) -> PyResult<Bound<'py, PyDict>> {
    check_options(force, resume)?;
    let s = scenario_arg(scenario)?;
    let summary = call(py, || {
        jko::run_to_dir(&s, &out, RunOptions { force, resume }, &mut ())
    })?;
    let d = PyDict::new(py);
    d.set_item("out", &out)?;
    d.set_item("steps", summary.steps)?;
    d.set_item("initial_energy", summary.initial_energy)?;
    d.set_item("final_energy", summary.final_energy)?;
    d.set_item("total_iterations", summary.total_iterations)?;
    d.set_item("unconverged_steps", summary.unconverged_steps)?;
    d.set_item("rejected_attempts", summary.rejected_attempts)?;
    d.set_item("events", summary.events)?;
    d.set_item("bandwidths", bandwidths(&s, &summary.bandwidths))?;
    d.set_item("resumed_from", summary.resumed_from)?;
    d.set_item("already_complete", summary.already_complete)?;
    Ok(d)
}

fn check_options(force: bool, resume: bool) -> PyResult<()> {
    if force && resume {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "force and resume exclude each other: force starts the run again, resume continues it",
        ));
    }
    Ok(())
}

fn bandwidths(s: &jko::Scenario, eps: &[f64]) -> Vec<(String, f64)> {
    s.species
        .iter()
        .zip(eps)
        .map(|(sp, e)| (sp.name.clone(), *e))
        .collect()
}

/// Solve the scenario on the grid of its ``[grid]`` section (finite volumes,
/// ``jko eulerian``) and write density.csv, energy.csv and scenario.toml to
/// ``out``. ``force`` overwrites an earlier run there. Returns the summary.
#[pyfunction]
#[pyo3(signature = (scenario, out, force = false))]
pub fn eulerian<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, PyAny>,
    out: PathBuf,
    force: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let s = scenario_arg(scenario)?;
    let summary = call(py, || {
        jko::eulerian::run::run_to_dir(
            &s,
            &out,
            RunOptions {
                force,
                ..Default::default()
            },
        )
    })?;
    warn(py, &summary.warnings)?;
    let d = PyDict::new(py);
    d.set_item("out", &out)?;
    d.set_item("steps", summary.steps)?;
    d.set_item("substeps", summary.substeps)?;
    d.set_item("initial_energy", summary.initial_energy)?;
    d.set_item("final_energy", summary.final_energy)?;
    d.set_item("warnings", &summary.warnings)?;
    Ok(d)
}

/// The least-energy stationary state of the scenario (SPEC §9,
/// ``jko equilibrium``), written to ``out`` as steps 0 (initial) and 1
/// (equilibrium). With particles: a continuation of growing JKO steps
/// (``resume`` continues it from its checkpoint); with ``grid=True``:
/// Newton's method on the scenario's ``[grid]``. Raises NotConvergedError if
/// no equilibrium was reached within the limits (the files hold the last
/// iterate). Returns the summary.
#[pyfunction]
#[pyo3(signature = (scenario, out, grid = false, force = false, resume = false))]
pub fn equilibrium<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, PyAny>,
    out: PathBuf,
    grid: bool,
    force: bool,
    resume: bool,
) -> PyResult<Bound<'py, PyDict>> {
    check_options(force, resume)?;
    if grid && resume {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "resume continues a particle equilibrium; a grid equilibrium (grid=True) has none",
        ));
    }
    let s = scenario_arg(scenario)?;
    let d = PyDict::new(py);
    d.set_item("out", &out)?;
    if grid {
        let summary = call(py, || grid_equilibrium(&s, &out, force))?;
        warn(py, &summary.warnings)?;
        d.set_item("iterations", summary.iterations)?;
        d.set_item("krylov_iterations", summary.krylov_iterations)?;
        d.set_item("residual", summary.residual)?;
        d.set_item("initial_energy", summary.initial_energy)?;
        d.set_item("final_energy", summary.final_energy)?;
        d.set_item("max_packing", summary.max_packing)?;
        d.set_item("w2_step", summary.w2_step)?;
        d.set_item("warnings", &summary.warnings)?;
        return Ok(d);
    }
    let summary = call(py, || {
        jko::driver::equilibrium_to_dir(&s, &out, RunOptions { force, resume }, &mut ())
    })?;
    d.set_item("stages", summary.stages)?;
    d.set_item("initial_energy", summary.initial_energy)?;
    d.set_item("final_energy", summary.final_energy)?;
    d.set_item("initial_gradient_norm", summary.initial_gradient_norm)?;
    d.set_item("gradient_norm", summary.gradient_norm)?;
    d.set_item("target", summary.target)?;
    d.set_item("total_iterations", summary.total_iterations)?;
    d.set_item("bandwidths", bandwidths(&s, &summary.bandwidths))?;
    let stop = match summary.stop {
        Some(jko::driver::equilibrium::Stop::Rounding) => Some("rounding"),
        Some(_) => Some("tolerance"),
        None => None,
    };
    d.set_item("stop", stop)?;
    d.set_item("resumed_from", summary.resumed_from)?;
    d.set_item("already_complete", summary.already_complete)?;
    Ok(d)
}

/// As `jko equilibrium --grid`: the existence checks first (a species with
/// no equilibrium is bad input), then Newton on the grid.
fn grid_equilibrium(
    s: &jko::Scenario,
    out: &Path,
    force: bool,
) -> jko::Result<jko::eulerian::equilibrium::EquilibriumSummary> {
    let masses: Vec<f64> = s.species.iter().map(|sp| sp.mass_or_default()).collect();
    jko::stepper::equilibrium::check_existence(s, &masses)
        .map_err(|(key, why)| jko::Error::input(&s.path, key, why))?;
    jko::eulerian::equilibrium_to_dir(s, out, force)
}

/// Distances between two run directories (``jko compare``), step by step
/// and species by species: masses, means, covariances, the L1 distance of
/// the densities, W1 and W2 (d = 1) and the energy difference. ``last``
/// compares only each run's last written step. Returns a dict: ``rows``
/// (one dict per step and species), ``energy`` (both energy curves),
/// ``notes``, ``dimension``, ``a`` and ``b`` (what was read), and ``table``
/// (the text ``jko compare`` prints).
#[pyfunction]
#[pyo3(signature = (a, b, last = false))]
pub fn compare<'py>(
    py: Python<'py>,
    a: PathBuf,
    b: PathBuf,
    last: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let pairing = if last {
        jko::compare::Pairing::Last
    } else {
        jko::compare::Pairing::SameStep
    };
    let c = call(py, || jko::compare::compare_runs_paired(&a, &b, pairing))?;
    let rows = PyList::empty(py);
    for r in &c.rows {
        let d = PyDict::new(py);
        d.set_item("step", r.step)?;
        d.set_item("time", r.time)?;
        d.set_item("species", r.species.as_str())?;
        d.set_item("mass_a", r.mass_a)?;
        d.set_item("mass_b", r.mass_b)?;
        d.set_item("mean_a", &r.mean_a)?;
        d.set_item("mean_b", &r.mean_b)?;
        d.set_item("cov_a", &r.cov_a)?;
        d.set_item("cov_b", &r.cov_b)?;
        d.set_item("mean_distance", r.mean_distance)?;
        d.set_item("cov_distance", r.cov_distance)?;
        d.set_item("l1", r.l1)?;
        d.set_item("l1_cells", &r.l1_cells)?;
        d.set_item("l1_spacing", &r.l1_spacing)?;
        d.set_item("w1", r.w1)?;
        d.set_item("w2", r.w2)?;
        d.set_item("normalized", r.normalized)?;
        d.set_item("energy_a", r.energy_a)?;
        d.set_item("energy_b", r.energy_b)?;
        d.set_item("energy_diff", r.energy_diff())?;
        rows.append(d)?;
    }
    let energy = PyList::empty(py);
    for p in &c.energy {
        let d = PyDict::new(py);
        d.set_item("step", p.step)?;
        d.set_item("time", p.time)?;
        d.set_item("energy_a", p.energy_a)?;
        d.set_item("energy_b", p.energy_b)?;
        d.set_item("diff", p.diff())?;
        energy.append(d)?;
    }
    let side = |info: &jko::compare::RunInfo| -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("dir", &info.dir)?;
        d.set_item("kind", info.kind.to_string())?;
        d.set_item("data_file", &info.data_file)?;
        d.set_item("bandwidths", info.bandwidths.clone())?;
        Ok(d)
    };
    let d = PyDict::new(py);
    d.set_item("dimension", c.dimension)?;
    d.set_item("a", side(&c.a)?)?;
    d.set_item("b", side(&c.b)?)?;
    d.set_item("rows", rows)?;
    d.set_item("energy", energy)?;
    d.set_item("notes", &c.notes)?;
    d.set_item("table", c.to_string())?;
    Ok(d)
}
