//! `jko.Simulation`: a particle simulation stepped from Python.
//!
//! Wraps [`jko::Simulation<D>`] (generic over the dimension) in an enum over
//! D = 1, 2, 3, set up exactly as `jko run` sets up its own (same cloud, same
//! checks, the step-0 energy evaluated), so the same scenario gives the same
//! positions to the bit. Steps run with the GIL released; Ctrl-C stops a
//! step cleanly and leaves the state of the last completed step
//! ([`crate::worker`]).
//!
//! The simulation sits behind a mutex rather than pyo3's borrow flag: a
//! method called from another Python thread while a step runs gets a clear
//! "busy" error at once, instead of waiting for the step with the GIL held
//! (which would stop the stepping thread from ever checking for signals).

use std::sync::{Mutex, MutexGuard, TryLockError};

use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use jko::stepper::{AdvanceError, Simulation, StepReport};

use crate::errors::IntoPy;
use crate::scenario::scenario_arg;
use crate::worker::interruptible;

/// A simulation in its dimension.
enum Sim {
    D1(Simulation<1>),
    D2(Simulation<2>),
    D3(Simulation<3>),
}

/// `$body` with `$s` bound to the simulation of whichever dimension.
macro_rules! with_sim {
    ($sim:expr, $s:ident => $body:expr) => {
        match $sim {
            Sim::D1($s) => $body,
            Sim::D2($s) => $body,
            Sim::D3($s) => $body,
        }
    };
}

/// What the mutex guards: the simulation and the report of its last step.
struct State {
    sim: Sim,
    last: StepReport,
}

/// How a run of steps ended short.
enum Stop {
    /// The interrupt flag was raised (a signal).
    Interrupted,
    /// A library error (no sub-step size worked).
    Error(jko::Error),
}

/// Set up as `jko run` does before its first step: the memory checks, the
/// cloud, the bandwidth and estimator checks, and the step-0 report (which
/// refuses a non-finite initial energy).
fn set_up<const D: usize>(s: &jko::Scenario) -> jko::Result<(Simulation<D>, StepReport)> {
    let n = s
        .species
        .iter()
        .filter_map(|sp| sp.particles)
        .fold(0usize, usize::saturating_add);
    jko::driver::check_memory(
        s,
        n,
        jko::driver::memory_estimate(s, n),
        "species.particles",
        "",
    )?;
    let mut sim = Simulation::<D>::new(s)?;
    jko::driver::check_list_memory(s, &sim)?;
    let first = sim.initial_report()?;
    Ok((sim, first))
}

/// Up to `n` steps; on an interrupt or a failure the simulation is put back
/// exactly as it was after the last completed step (the library restores
/// the positions; the split level and counters are restored here too).
fn advance<const D: usize>(sim: &mut Simulation<D>, last: &mut StepReport, n: u64) -> Option<Stop> {
    for _ in 0..n {
        if jko::util::interrupt::requested() {
            return Some(Stop::Interrupted);
        }
        let before = sim.state();
        match sim.try_advance() {
            Ok(a) => *last = a.report,
            Err(AdvanceError::Interrupted(_)) => {
                sim.set_state(before);
                return Some(Stop::Interrupted);
            }
            Err(AdvanceError::Failed(rs)) => {
                sim.set_state(before);
                let why = rs.last().map_or(String::new(), |r| r.reason.to_string());
                return Some(Stop::Error(jko::Error::Numerical(format!(
                    "step {}: every attempt failed, down to sub-steps of {:e} (last: {why}); \
                     the simulation is still at step {}. Try a smaller time_step, a larger \
                     bandwidth or softening, a looser [solver] tolerance, or a larger [solver] max_halvings",
                    sim.step + 1,
                    rs.last().map_or(sim.problem.time_step, |r| r.substep),
                    sim.step
                ))));
            }
            // AdvanceError is non-exhaustive.
            Err(_) => {
                sim.set_state(before);
                return Some(Stop::Error(jko::Error::Numerical(format!(
                    "step {}: the step could not be taken",
                    sim.step + 1
                ))));
            }
        }
    }
    None
}

/// A particle simulation of a scenario, stepped from Python.
///
/// ``Simulation(scenario)`` draws the initial clouds as ``jko run`` does
/// (same seed, same particles) and evaluates the step-0 energy. ``step(n)``
/// takes JKO steps with the GIL released; Ctrl-C (KeyboardInterrupt) stops
/// a step cleanly and leaves the state after the last completed step.
/// Accessors take a species name: ``positions``, ``weights``, ``densities``,
/// ``set_positions``.
#[pyclass(module = "jko._jko", name = "Simulation", frozen)]
pub struct PySimulation {
    state: Mutex<State>,
    scenario: jko::Scenario,
}

impl PySimulation {
    fn lock(&self) -> PyResult<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(
                "the simulation is busy: a step is running in another thread",
            )),
            Err(TryLockError::Poisoned(_)) => Err(PyRuntimeError::new_err(
                "the simulation is unusable: an internal error (a bug in jko) stopped it mid-step",
            )),
        }
    }

    /// The index range of species `name` in the cloud.
    fn range(&self, state: &State, name: &str) -> PyResult<std::ops::Range<usize>> {
        let blocks = with_sim!(&state.sim, s => &s.cloud.blocks);
        blocks
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.range.clone())
            .ok_or_else(|| {
                let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
                PyValueError::new_err(format!(
                    "no species named {:?}; the species are {names:?}",
                    jko::error::clip(name, 80)
                ))
            })
    }
}

fn report_dict<'py>(
    py: Python<'py>,
    r: &StepReport,
    step: u64,
    time: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("step", step)?;
    d.set_item("time", time)?;
    d.set_item("energy", r.parts.total())?;
    d.set_item("diffusion", r.parts.diffusion)?;
    d.set_item("potential", r.parts.potential)?;
    d.set_item("interaction", r.parts.interaction)?;
    d.set_item("w2_step", r.w2_step)?;
    d.set_item("iterations", r.iterations)?;
    d.set_item("evaluations", r.evaluations)?;
    d.set_item("gradient_norm", r.gradient_norm)?;
    d.set_item("converged", r.converged)?;
    d.set_item("termination", r.termination.as_str())?;
    Ok(d)
}

/// Rows `range` of an N x D array of positions, as a numpy (n, D) array.
fn rows<'py, const D: usize>(
    py: Python<'py>,
    x: &[[f64; D]],
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let flat: Vec<f64> = x.iter().flatten().copied().collect();
    PyArray1::from_vec(py, flat).reshape([x.len(), D])
}

/// Checks `new` (n rows of D finite coordinates, in the box if any) and
/// writes it over the positions of `range`; the next step starts afresh
/// (no first guess from the last move, which belonged to other positions).
fn set_rows<const D: usize>(
    sim: &mut Simulation<D>,
    range: std::ops::Range<usize>,
    name: &str,
    new: &[f64],
) -> PyResult<()> {
    let name = jko::error::clip(name, 80);
    let bx = sim.problem.domain.as_box().cloned();
    for (i, row) in new.chunks_exact(D).enumerate() {
        if row.iter().any(|v| !v.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "positions of species {name:?}: row {i} is not finite ({row:?})"
            )));
        }
        if let Some(b) = &bx
            && !b.contains(row)
        {
            return Err(PyValueError::new_err(format!(
                "positions of species {name:?}: row {i}, at {row:?}, lies outside the domain's box \
                 (lower {:?}, upper {:?})",
                b.lower, b.upper
            )));
        }
    }
    let mut state = sim.state();
    for (p, row) in state.positions[range].iter_mut().zip(new.chunks_exact(D)) {
        p.copy_from_slice(row);
    }
    state.last_move = None;
    state.start = None;
    sim.set_state(state);
    Ok(())
}

/// A shape as Python writes it: `(3,)`, `(150, 2)`, `()`.
fn python_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

#[pymethods]
impl PySimulation {
    /// Set up the simulation of ``scenario`` (a Scenario or a path to a
    /// scenario file).
    #[new]
    fn new(py: Python<'_>, scenario: &Bound<'_, PyAny>) -> PyResult<Self> {
        let s = scenario_arg(scenario)?;
        let (made, signal) = interruptible(py, || -> jko::Result<State> {
            Ok(match s.dimension {
                1 => set_up::<1>(&s).map(|(sim, last)| State {
                    sim: Sim::D1(sim),
                    last,
                })?,
                2 => set_up::<2>(&s).map(|(sim, last)| State {
                    sim: Sim::D2(sim),
                    last,
                })?,
                3 => set_up::<3>(&s).map(|(sim, last)| State {
                    sim: Sim::D3(sim),
                    last,
                })?,
                d => unreachable!("dimension {d} was validated"),
            })
        });
        if let Some(e) = signal {
            return Err(e);
        }
        Ok(PySimulation {
            state: Mutex::new(made.py_err()?),
            scenario: s,
        })
    }

    /// Take ``n`` JKO steps (each of the scenario's time step, split into
    /// sub-steps where the optimizer needs them, as in ``jko run``). Returns
    /// the last step's report (energy parts, w2_step, iterations, ...).
    ///
    /// The GIL is released meanwhile. Ctrl-C raises KeyboardInterrupt and
    /// leaves the simulation as it was after the last completed step. A step
    /// no sub-step size could take raises NumericalError, also leaving the
    /// last completed step.
    #[pyo3(signature = (n = 1))]
    fn step<'py>(&self, py: Python<'py>, n: i64) -> PyResult<Bound<'py, PyDict>> {
        let n = u64::try_from(n)
            .map_err(|_| PyValueError::new_err(format!("n must be >= 0, got {n}")))?;
        let mut guard = self.lock()?;
        let state = &mut *guard;
        let (stop, signal) = interruptible(py, || {
            let State { sim, last } = state;
            with_sim!(sim, s => advance(s, last, n))
        });
        let step = with_sim!(&state.sim, s => s.step);
        if let Some(e) = signal {
            return Err(e);
        }
        match stop {
            None => {}
            // Raised without a signal of ours: another thread's Ctrl-C, or
            // a library user's interrupt::request().
            Some(Stop::Interrupted) => {
                return Err(PyKeyboardInterrupt::new_err(format!(
                    "interrupted; the simulation is at step {step}"
                )));
            }
            Some(Stop::Error(e)) => return Err(crate::errors::to_py(e)),
        }
        let time = with_sim!(&state.sim, s => s.time);
        report_dict(py, &state.last, step, time)
    }

    /// The report of the last step taken (of step 0 before any), as
    /// returned by ``step``.
    #[getter]
    fn last_report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let state = self.lock()?;
        let (step, time) = with_sim!(&state.sim, s => (s.step, s.time));
        report_dict(py, &state.last, step, time)
    }

    /// The last completed step (0 before any).
    #[getter]
    fn step_index(&self) -> PyResult<u64> {
        Ok(with_sim!(&self.lock()?.sim, s => s.step))
    }

    /// Simulated time, step_index * time_step.
    #[getter]
    fn time(&self) -> PyResult<f64> {
        Ok(with_sim!(&self.lock()?.sim, s => s.time))
    }

    /// The dimension d.
    #[getter]
    fn dimension(&self) -> usize {
        self.scenario.dimension
    }

    /// The scenario simulated.
    #[getter]
    fn scenario(&self) -> crate::scenario::PyScenario {
        crate::scenario::PyScenario {
            inner: self.scenario.clone(),
        }
    }

    /// The species' names, in order.
    #[getter]
    fn species(&self) -> Vec<String> {
        self.scenario
            .species
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// Kernel bandwidth eps of each species, by name.
    #[getter]
    fn bandwidths(&self) -> PyResult<Vec<(String, f64)>> {
        let state = self.lock()?;
        Ok(with_sim!(&state.sim, s => s
            .cloud
            .blocks
            .iter()
            .zip(&s.bandwidths)
            .map(|(b, e)| (b.name.clone(), *e))
            .collect()))
    }

    /// Step attempts thrown away and retried as smaller sub-steps so far.
    #[getter]
    fn rejected_attempts(&self) -> PyResult<u64> {
        Ok(with_sim!(&self.lock()?.sim, s => s.rejected_attempts))
    }

    /// Positions of species ``name``: a new float64 array of shape (N, d).
    fn positions<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let state = self.lock()?;
        let r = self.range(&state, name)?;
        with_sim!(&state.sim, s => rows(py, &s.cloud.positions[r]))
    }

    /// Weights (masses) of the particles of species ``name``: shape (N,).
    fn weights<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let state = self.lock()?;
        let r = self.range(&state, name)?;
        Ok(with_sim!(&state.sim, s => PyArray1::from_slice(py, &s.cloud.weights[r])))
    }

    /// The blob density of species ``name`` at each of its particles (the
    /// density column of particles.csv): shape (N,).
    fn densities<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let mut guard = self.lock()?;
        let r = self.range(&guard, name)?;
        let state = &mut *guard;
        // All species at once: the estimator works per species anyway, and
        // a large cloud is worth the GIL released.
        let rho = py.detach(|| with_sim!(&mut state.sim, s => s.densities()));
        Ok(PyArray1::from_slice(py, &rho[r]))
    }

    /// The free energy at the current positions: a dict of its parts
    /// (``diffusion``, ``potential``, ``interaction``, as in energy.csv) and
    /// their sum, ``total``.
    fn energy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut guard = self.lock()?;
        let state = &mut *guard;
        let parts = py.detach(|| with_sim!(&mut state.sim, s => s.stationarity().0));
        let d = PyDict::new(py);
        d.set_item("diffusion", parts.diffusion)?;
        d.set_item("potential", parts.potential)?;
        d.set_item("interaction", parts.interaction)?;
        d.set_item("total", parts.total())?;
        Ok(d)
    }

    /// Replace the positions of species ``name`` by ``positions`` (array-like
    /// of shape (N, d), finite, inside the box of a box scenario). The next
    /// step starts from them without the previous move as its first guess.
    /// Raises ValueError otherwise, changing nothing.
    fn set_positions(
        &self,
        py: Python<'_>,
        name: &str,
        positions: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let mut guard = self.lock()?;
        let r = self.range(&guard, name)?;
        let d = self.scenario.dimension;
        let np = py.import("numpy")?;
        let arr = np
            .call_method1("asarray", (positions, np.getattr("float64")?))
            .map_err(|e| {
                PyValueError::new_err(format!(
                    "positions of species {:?} must be an array of numbers: {e}",
                    jko::error::clip(name, 80)
                ))
            })?;
        let arr = arr.cast_into::<PyArrayDyn<f64>>()?;
        let shape = arr.shape().to_vec();
        if shape != [r.len(), d] {
            return Err(PyValueError::new_err(format!(
                "positions of species {:?} must have shape ({}, {d}), got {}",
                jko::error::clip(name, 80),
                r.len(),
                python_shape(&shape)
            )));
        }
        let flat: Vec<f64> = arr.readonly().as_array().iter().copied().collect();
        with_sim!(&mut guard.sim, s => set_rows(s, r, name, &flat))
    }

    fn __repr__(&self) -> String {
        let (step, time) = match self.state.try_lock() {
            Ok(s) => with_sim!(&s.sim, s => (s.step.to_string(), s.time.to_string())),
            Err(_) => ("?".into(), "?".into()),
        };
        format!(
            "Simulation(scenario={:?}, dimension={}, species={:?}, step_index={step}, time={time})",
            self.scenario.path.display().to_string(),
            self.scenario.dimension,
            self.species()
        )
    }
}
