//! The scenario file (SPEC §3): parsed from TOML, checked, and turned into
//! plain validated types the rest of the library trusts.
//!
//! Parsing happens in two layers. Serde structs with `deny_unknown_fields`
//! read the fixed tables (`raw.rs`), which gives line/column errors for
//! typos. The `potential = {...}` and `initial = {...}` tables are
//! dispatched on their `kind` by hand, one strict struct per kind in the
//! kind's own file (`model::potential`, `particles::initial`), because
//! serde's internally tagged enums silently accept unknown keys. Every
//! number is then checked finite and in range, with an error naming the file
//! and the key, as each section is mapped onto the settings type its module
//! owns (`sections.rs`).
//!
//! Ranges (README, "Extensions"), chosen so that no size computation or
//! product of a few parameters can overflow before the numerics start:
//! every real number is at most [`MAX_MAGNITUDE`] = 1e100 in magnitude, so
//! squares and products of three stay finite; a length, weight or rate
//! (time step, bandwidth, softening, std, radius, stiffness, mass, charge...)
//! is 0 where 0 is allowed or at least [`MIN_MAGNITUDE`] = 1e-100, so its
//! square and cube are normal numbers ([`crate::util::checks`]); counts have
//! the upper bounds of the `MAX_*` constants (`checks.rs`). User text echoed
//! in a message is clipped ([`crate::error::clip`]).

use std::path::Path;

use crate::error::{Error, MAX_ECHO, Result, clip};
use crate::util::checks::Checker;
pub use crate::util::grid::Grid;

mod checks;
mod domain;
mod raw;
mod sections;
pub mod templates;

pub use checks::{
    MAX_EXPONENT, MAX_HALVINGS, MAX_MAGNITUDE, MAX_PARTICLES, MAX_PATH_BYTES, MAX_SCENARIO_BYTES,
    MAX_SOLVER_ITERATIONS, MAX_SOLVER_MEMORY, MAX_STEPS, MIN_MAGNITUDE,
};
use raw::{RawScenario, toml_message};

// The settings the scenario maps onto are owned by the numerics.
pub use crate::coupling::{Coupling, CouplingMethod};
pub use crate::density::{Bandwidth, Density, DensityMethod};
pub use crate::model::potential::PotentialSpec;
pub use crate::particles::{InitialSpec, Species};
pub use crate::stepper::{Problem, Solver};

/// A validated scenario: the [`Problem`] the numerics solve, plus what a run
/// to a directory needs (its length, its output, the Eulerian grid, what to
/// do on a collapse). It dereferences to its problem, so `s.species`,
/// `s.time_step` and `Simulation::new(&s)` read through.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// What the numerics solve: dimension, time step, seed, sections, species.
    pub problem: Problem,
    /// The number of JKO steps of a run.
    pub steps: usize,
    /// Particles are written every `output_every` steps (and at the last).
    pub output_every: usize,
    /// The `[grid]` section, needed by Eulerian runs only.
    pub grid: Option<Grid>,
    /// What a run does when a self-attracting species collapses.
    pub on_collapse: OnCollapse,
    /// The continuation of `jko equilibrium` (extension `[equilibrium]`).
    pub equilibrium: crate::stepper::EquilibriumSettings,
    /// What a run writes besides its CSV files (extension `[output]`).
    pub output: Output,
    /// The TOML text the scenario was parsed from. A run copies these bytes
    /// to OUT/scenario.toml and checksums them for `--resume`, so a scenario
    /// parsed from text (no file behind `path`, as from Python) runs too, and
    /// a file edited after parsing cannot slip a different copy in.
    pub text: String,
}

/// `[output]` (extension, README "Look at the results").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Output {
    /// `vtk = true`: also a ParaView series in `DIR/vtk/` (one `.vtp` or
    /// `.vti` per written step and a `.pvd`), see [`crate::io::vtk`].
    pub vtk: bool,
}

impl std::ops::Deref for Scenario {
    type Target = Problem;
    fn deref(&self) -> &Problem {
        &self.problem
    }
}

impl std::ops::DerefMut for Scenario {
    fn deref_mut(&mut self) -> &mut Problem {
        &mut self.problem
    }
}

/// `on_collapse = "stop" | "continue"` (extension, README "Events").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCollapse {
    /// End the run with complete files and exit status 5 (the default: past a
    /// collapse the particles no longer resolve the density).
    #[default]
    Stop,
    /// Record the event and go on.
    Continue,
}

impl Scenario {
    /// Read and validate a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::input(path, "file", format!("cannot open the scenario: {e}")))?;
        if !meta.is_file() {
            return Err(Error::input(path, "file", "not a regular file"));
        }
        if meta.len() > MAX_SCENARIO_BYTES {
            return Err(Error::input(
                path,
                "file",
                format!(
                    "is {} bytes long; a scenario is at most {MAX_SCENARIO_BYTES} bytes",
                    meta.len()
                ),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(path, "file", format!("cannot read the scenario: {e}")))?;
        Scenario::from_toml(&text, path)
    }

    /// Parse and validate scenario text; `path` names it in errors and anchors
    /// relative paths (particle files) at its folder. It need not exist: a
    /// run uses [`Scenario::text`], not the file.
    pub fn from_toml(text: &str, path: &Path) -> Result<Scenario> {
        if text.len() as u64 > MAX_SCENARIO_BYTES {
            return Err(Error::input(
                path,
                "file",
                format!(
                    "is {} bytes long; a scenario is at most {MAX_SCENARIO_BYTES} bytes",
                    text.len()
                ),
            ));
        }
        let raw: RawScenario =
            toml::from_str(text).map_err(|e| Error::input(path, "TOML", toml_message(text, &e)))?;
        let file = path;

        let dimension = match raw.dimension {
            1..=3 => raw.dimension as usize,
            d => {
                return Err(Error::input(
                    file,
                    "dimension",
                    format!("must be 1, 2 or 3, got {d}"),
                ));
            }
        };
        let c = Checker { file, dimension };

        let time_step = c.positive("time_step", raw.time_step)?;
        let steps = c.count("steps", raw.steps, 0, MAX_STEPS)?;
        let output_every = c.count("output_every", raw.output_every.unwrap_or(1), 1, MAX_STEPS)?;
        let seed = match raw.seed {
            Some(s) if s < 0 => return Err(c.err("seed", format!("must be >= 0, got {s}"))),
            Some(s) => s as u64,
            None => 0,
        };

        let coupling = sections::coupling(&c, raw.coupling)?;
        let density = sections::density(&c, raw.density)?;
        let solver = sections::solver(&c, raw.solver)?;
        let domain = domain::domain(&c, raw.domain)?;
        let backgrounds = domain::backgrounds(&c, raw.background)?;
        let grid = raw
            .grid
            .map(|g| sections::grid(&c, g, &domain))
            .transpose()?;
        let on_collapse = match raw.on_collapse.as_deref() {
            None | Some("stop") => OnCollapse::Stop,
            Some("continue") => OnCollapse::Continue,
            Some(other) => {
                return Err(c.err(
                    "on_collapse",
                    format!(
                        "must be \"stop\" or \"continue\", got \"{}\"",
                        clip(other, MAX_ECHO)
                    ),
                ));
            }
        };

        let raw_species = raw.species.unwrap_or_default();
        if raw_species.is_empty() {
            return Err(c.err("species", "at least one [[species]] table is required"));
        }
        let mut species = Vec::with_capacity(raw_species.len());
        for (k, rs) in raw_species.into_iter().enumerate() {
            let s = sections::species(&c, k, rs)?;
            if species.iter().any(|o: &Species| o.name == s.name) {
                return Err(c.err(
                    &format!("species[{k}].name"),
                    format!("duplicate species name \"{}\"", s.name),
                ));
            }
            species.push(s);
        }
        checks::total_particles(&c, &species)?;
        let steric = sections::steric(&c, raw.steric, &species)?;
        let equilibrium = sections::equilibrium(&c, raw.equilibrium)?;
        let output = Output {
            vtk: raw.output.and_then(|o| o.vtk).unwrap_or(false),
        };

        let problem = Problem {
            path: path.to_path_buf(),
            dimension,
            time_step,
            seed,
            coupling,
            density,
            solver,
            species,
            domain,
            backgrounds,
            steric,
        };
        problem
            .check_domain()
            .map_err(|(key, why)| c.err(&key, why))?;
        // Neutrality now when every mass is known (a csv law's is known
        // once its file is read, at the run's start).
        if problem
            .species
            .iter()
            .all(|s| !matches!(s.initial, InitialSpec::Csv { .. }))
        {
            let masses: Vec<f64> = problem
                .species
                .iter()
                .map(|s| s.mass_or_default())
                .collect();
            problem
                .check_neutral(&masses)
                .map_err(|(key, why)| c.err(&key, why))?;
        }

        Ok(Scenario {
            problem,
            steps,
            output_every,
            grid,
            on_collapse,
            equilibrium,
            output,
            text: text.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
dimension = 2
time_step = 0.01
steps = 5
output_every = 2
seed = 7
[coupling]
strength = 1.0
method = "direct"
softening = 0.02
[density]
bandwidth = 0.05
[[species]]
name = "u"
charge = 1.0
diffusion = 1.0
exponent = 1.0
particles = 100
potential = { kind = "quadratic", center = [0.0, 0.0], stiffness = 1.0 }
initial = { kind = "gaussian", mean = [0.5, 0.0], std = 0.3 }
[[species]]
name = "v"
charge = -1
particles = 100
potential = { kind = "double_well", radius = 1.0, depth = 2.0 }
initial = { kind = "uniform", lower = [-1, -1], upper = [1, 1] }
"#;

    #[test]
    fn parses_the_spec_example() {
        let s = Scenario::from_toml(GOOD, Path::new("good.toml")).unwrap();
        assert_eq!(s.dimension, 2);
        assert_eq!(s.species.len(), 2);
        assert_eq!(s.species[1].charge, -1.0);
        assert_eq!(
            s.species[0].potential,
            PotentialSpec::Quadratic {
                center: vec![0.0, 0.0],
                stiffness: vec![1.0, 1.0]
            }
        );
        assert_eq!(s.density.bandwidth, Bandwidth::Fixed(0.05));
    }

    fn err_of(text: &str) -> String {
        Scenario::from_toml(text, Path::new("bad.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_key_inside_a_kind_table_is_refused() {
        let e = err_of(&GOOD.replace("stiffness = 1.0 }", "stiffness = 1.0, stifness = 2 }"));
        assert!(
            e.contains("species[0].potential") && e.contains("stifness"),
            "{e}"
        );
    }

    #[test]
    fn dimension_mismatch_names_the_key() {
        let e = err_of(&GOOD.replace("mean = [0.5, 0.0]", "mean = [0.5]"));
        assert!(
            e.contains("species[0].initial.mean") && e.contains("2 component"),
            "{e}"
        );
    }

    #[test]
    fn nan_is_refused() {
        let e = err_of(&GOOD.replace("time_step = 0.01", "time_step = nan"));
        assert!(e.contains("time_step") && e.contains("finite"), "{e}");
    }
}
