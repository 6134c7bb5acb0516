//! The problem the numerics solve, as plain settings (no file format): the
//! species, the coupling, the density estimate, the optimizer and the time
//! step. `io::scenario` maps a TOML scenario onto it; a test or a program
//! builds one in code ([`Problem::builder`]).

use std::path::PathBuf;

use crate::coupling::{Coupling, CouplingMethod};
use crate::density::{Bandwidth, Density, DensityMethod};
use crate::model::potential::PotentialSpec;
use crate::particles::{InitialSpec, Species};
use crate::stepper::Solver;

/// A multi-species gradient-flow problem in dimension `dimension`.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The file the problem came from (named in every later error message);
    /// for a problem built in code, a label.
    pub path: PathBuf,
    pub dimension: usize,
    /// JKO step h > 0.
    pub time_step: f64,
    /// Every random draw (the initial clouds) comes from this seed.
    pub seed: u64,
    pub coupling: Coupling,
    pub density: Density,
    pub solver: Solver,
    pub species: Vec<Species>,
}

impl Problem {
    /// A problem in dimension `dimension` with time step `time_step`, no
    /// species yet, no coupling, automatic density estimates and the default
    /// optimizer settings.
    pub fn builder(dimension: usize, time_step: f64) -> ProblemBuilder {
        ProblemBuilder {
            problem: Problem {
                path: PathBuf::from("<built in code>"),
                dimension,
                time_step,
                seed: 0,
                coupling: Coupling {
                    strength: 0.0,
                    method: CouplingMethod::Auto,
                    softening: 0.0,
                    accuracy: 1e-6,
                },
                density: Density {
                    bandwidth: Bandwidth::Auto,
                    method: DensityMethod::Auto,
                },
                solver: Solver::default(),
                species: Vec::new(),
            },
        }
    }
}

/// Builds a [`Problem`] in code; [`build`](ProblemBuilder::build) checks it.
#[derive(Debug, Clone)]
pub struct ProblemBuilder {
    problem: Problem,
}

impl ProblemBuilder {
    pub fn seed(mut self, seed: u64) -> Self {
        self.problem.seed = seed;
        self
    }

    /// Newtonian coupling of strength lambda (> 0: like charges repel),
    /// Plummer softening delta.
    pub fn coupling(mut self, strength: f64, softening: f64) -> Self {
        self.problem.coupling.strength = strength;
        self.problem.coupling.softening = softening;
        self
    }

    pub fn coupling_method(mut self, method: CouplingMethod, accuracy: f64) -> Self {
        self.problem.coupling.method = method;
        self.problem.coupling.accuracy = accuracy;
        self
    }

    pub fn density(mut self, density: Density) -> Self {
        self.problem.density = density;
        self
    }

    pub fn solver(mut self, solver: Solver) -> Self {
        self.problem.solver = solver;
        self
    }

    /// A species of `particles` particles of mass 1, charge 1, linear
    /// diffusion D = `diffusion`, potential and initial law as given.
    pub fn species(
        mut self,
        name: &str,
        particles: usize,
        diffusion: f64,
        potential: PotentialSpec,
        initial: InitialSpec,
    ) -> Self {
        self.problem.species.push(Species {
            name: name.to_string(),
            charge: 1.0,
            diffusion,
            exponent: 1.0,
            mass: None,
            particles: Some(particles),
            potential,
            initial,
        });
        self
    }

    /// Change the last species added (charge, exponent, mass...).
    pub fn with_last(mut self, f: impl FnOnce(&mut Species)) -> Self {
        if let Some(s) = self.problem.species.last_mut() {
            f(s);
        }
        self
    }

    /// The problem, checked: dimension 1-3, h > 0, at least one species,
    /// vectors of length d, finite numbers. The message names what is wrong.
    pub fn build(self) -> Result<Problem, String> {
        let p = self.problem;
        let d = p.dimension;
        if !(1..=3).contains(&d) {
            return Err(format!("dimension must be 1, 2 or 3, got {d}"));
        }
        if !(p.time_step.is_finite() && p.time_step > 0.0) {
            return Err(format!(
                "time_step must be a positive number, got {}",
                p.time_step
            ));
        }
        if p.species.is_empty() {
            return Err("at least one species is needed".into());
        }
        if d == 1 || p.coupling.strength == 0.0 {
        } else if !(p.coupling.softening > 0.0) {
            return Err("coupling softening must be > 0 in d = 2, 3".into());
        }
        for (k, s) in p.species.iter().enumerate() {
            let vectors: Vec<&Vec<f64>> = match (&s.potential, &s.initial) {
                (PotentialSpec::Quadratic { center, stiffness }, _) => vec![center, stiffness],
                (PotentialSpec::DoubleWell { center, .. }, _) => vec![center],
                _ => vec![],
            }
            .into_iter()
            .chain(match &s.initial {
                InitialSpec::Gaussian { mean, std } => vec![mean, std],
                InitialSpec::Uniform { lower, upper } => vec![lower, upper],
                InitialSpec::Barenblatt { center, .. } => vec![center],
                InitialSpec::Csv { .. } => vec![],
            })
            .collect();
            if vectors
                .iter()
                .any(|v| v.len() != d || !v.iter().all(|x| x.is_finite()))
            {
                return Err(format!(
                    "species[{k}] (\"{}\"): every vector must have {d} finite components",
                    s.name
                ));
            }
            if s.particles == Some(0) {
                return Err(format!("species[{k}] (\"{}\"): no particles", s.name));
            }
        }
        Ok(p)
    }
}
