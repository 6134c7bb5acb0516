//! `jko.Scenario`: a validated scenario, read from a file or from TOML text
//! by the library's own parser ([`jko::Scenario`]), so every check and every
//! error message (naming the file and the key) is the CLI's.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::errors::IntoPy;

/// A validated scenario (docs/SPEC.md §3; README, "Scenario files").
///
/// Build one with ``Scenario.from_file(path)`` or
/// ``Scenario.from_toml(text, name="<string>")``. Invalid input raises
/// ``jko.ScenarioError`` (a ``ValueError``) whose message names the file and
/// the key at fault, as the ``jko`` command prints it.
#[pyclass(module = "jko._jko", name = "Scenario", frozen)]
pub struct PyScenario {
    pub inner: jko::Scenario,
}

/// A scenario argument: a `Scenario`, or a path to read one from.
pub fn scenario_arg(obj: &Bound<'_, PyAny>) -> PyResult<jko::Scenario> {
    if let Ok(s) = obj.cast::<PyScenario>() {
        return Ok(s.get().inner.clone());
    }
    match obj.extract::<PathBuf>() {
        Ok(path) => jko::Scenario::from_file(&path).py_err(),
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected a jko.Scenario or a path to a scenario file, got {}",
            obj.get_type().name()?
        ))),
    }
}

#[pymethods]
impl PyScenario {
    /// Read and validate a scenario file (TOML).
    #[staticmethod]
    fn from_file(path: PathBuf) -> PyResult<Self> {
        let inner = jko::Scenario::from_file(&path).py_err()?;
        Ok(PyScenario { inner })
    }

    /// Parse and validate scenario text. ``name`` stands for the file in
    /// error messages, and relative paths in the scenario (particle files)
    /// are taken from its folder (the current directory by default).
    #[staticmethod]
    #[pyo3(signature = (text, name = "<string>"))]
    fn from_toml(text: &str, name: &str) -> PyResult<Self> {
        let inner = jko::Scenario::from_toml(text, name.as_ref()).py_err()?;
        Ok(PyScenario { inner })
    }

    /// The file the scenario was read from (or the name given to from_toml).
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path.clone()
    }

    /// The TOML text the scenario was parsed from.
    #[getter]
    fn text(&self) -> &str {
        &self.inner.text
    }

    /// The dimension d (1, 2 or 3).
    #[getter]
    fn dimension(&self) -> usize {
        self.inner.dimension
    }

    /// The time step h.
    #[getter]
    fn time_step(&self) -> f64 {
        self.inner.time_step
    }

    /// The number of steps of a run.
    #[getter]
    fn steps(&self) -> usize {
        self.inner.steps
    }

    /// Particles are written every ``output_every`` steps (and at the last).
    #[getter]
    fn output_every(&self) -> usize {
        self.inner.output_every
    }

    /// The random seed of the initial clouds.
    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// The species' names, in order.
    #[getter]
    fn species(&self) -> Vec<String> {
        self.inner.species.iter().map(|s| s.name.clone()).collect()
    }

    /// Whether the scenario confines the particles to a box (``[domain]``).
    #[getter]
    fn is_box(&self) -> bool {
        self.inner.domain.as_box().is_some()
    }

    fn __repr__(&self) -> String {
        format!(
            "Scenario(path={:?}, dimension={}, species={:?}, time_step={}, steps={})",
            self.inner.path.display().to_string(),
            self.inner.dimension,
            self.species(),
            self.inner.time_step,
            self.inner.steps
        )
    }
}
