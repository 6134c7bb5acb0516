//! The problem the numerics solve, as plain settings (no file format): the
//! species, the coupling, the density estimate, the optimizer and the time
//! step. `io::scenario` maps a TOML scenario onto it; a test or a program
//! builds one in code ([`Problem::builder`]).

use std::path::PathBuf;

use crate::coupling::{Coupling, CouplingMethod};
use crate::density::{Bandwidth, Density, DensityMethod};
use crate::model::background::{Background, BackgroundShape};
use crate::model::domain::Domain;
use crate::model::potential::PotentialSpec;
use crate::model::steric::Steric;
use crate::particles::{InitialSpec, Sampling, Species};
use crate::stepper::Solver;

/// A multi-species gradient-flow problem in dimension `dimension`.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The file the problem came from (named in every later error message);
    /// for a problem built in code, a label.
    pub path: PathBuf,
    /// d (1, 2 or 3).
    pub dimension: usize,
    /// JKO step h > 0.
    pub time_step: f64,
    /// Every random draw (the initial clouds) comes from this seed.
    pub seed: u64,
    /// The Newtonian coupling (strength 0: none).
    pub coupling: Coupling,
    /// How densities are estimated.
    pub density: Density,
    /// Optimizer settings of each JKO step.
    pub solver: Solver,
    /// The species, in output order.
    pub species: Vec<Species>,
    /// Free space or a box with walls (SPEC §7).
    pub domain: Domain,
    /// Fixed background charges (SPEC §8).
    pub backgrounds: Vec<Background>,
    /// The Bikerman solvent entropy of finite ion size (SPEC §10), if any.
    pub steric: Option<Steric>,
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
                domain: Domain::Free,
                backgrounds: Vec::new(),
                steric: None,
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
    /// The seed of every random draw.
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

    /// The coupling backend, and the tree's target relative error.
    pub fn coupling_method(mut self, method: CouplingMethod, accuracy: f64) -> Self {
        self.problem.coupling.method = method;
        self.problem.coupling.accuracy = accuracy;
        self
    }

    /// Bandwidth and estimator of the density estimates.
    pub fn density(mut self, density: Density) -> Self {
        self.problem.density = density;
        self
    }

    /// Free space (the default) or a box with walls.
    pub fn domain(mut self, domain: Domain) -> Self {
        self.problem.domain = domain;
        self
    }

    /// Adds a fixed background charge.
    pub fn background(mut self, background: Background) -> Self {
        self.problem.backgrounds.push(background);
        self
    }

    /// The steric (Bikerman) term of finite ion size.
    pub fn steric(mut self, steric: Steric) -> Self {
        self.problem.steric = Some(steric);
        self
    }

    /// Optimizer settings.
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
            sampling: Sampling::Random,
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
        p.check_domain()
            .map_err(|(key, why)| format!("{key}: {why}"))?;
        Ok(p)
    }
}

/// A problem's key and what is wrong with it.
pub type KeyError = (String, String);

impl Problem {
    /// The rules of SPEC §7-8 that need more than one section: the box's
    /// corners and walls, initial laws and backgrounds inside the box,
    /// backgrounds of the right dimension. Neutrality needs the species'
    /// masses, which a csv law only knows once read: [`Problem::check_neutral`].
    pub fn check_domain(&self) -> Result<(), KeyError> {
        let d = self.dimension;
        let err = |key: String, why: String| Err((key, why));
        for (k, b) in self.backgrounds.iter().enumerate() {
            let key = |f: &str| format!("background[{k}].{f}");
            let vectors: Vec<(&str, &Vec<f64>)> = match &b.shape {
                BackgroundShape::Uniform { lower, upper } => {
                    vec![("shape.lower", lower), ("shape.upper", upper)]
                }
                BackgroundShape::Gaussian { mean, std } => {
                    vec![("shape.mean", mean), ("shape.std", std)]
                }
                BackgroundShape::Points { positions, .. } => {
                    positions.iter().map(|p| ("shape.path", p)).collect()
                }
            };
            for (f, v) in vectors {
                if v.len() != d || !v.iter().all(|x| x.is_finite()) {
                    return err(key(f), format!("must have {d} finite components"));
                }
            }
            if let BackgroundShape::Uniform { lower, upper } = &b.shape
                && let Some(a) = (0..d).find(|&a| upper[a] <= lower[a])
            {
                return err(
                    key("shape.upper"),
                    format!(
                        "must exceed shape.lower on every axis (axis {a}: {} <= {})",
                        upper[a], lower[a]
                    ),
                );
            }
        }
        let Some(bx) = self.domain.as_box() else {
            return Ok(());
        };
        if self.coupling.strength != 0.0 && self.coupling.softening == 0.0 {
            // In d = 1 the kernel -|x|/2 has a kink wherever two particles
            // cross; the projected search of a box's step cannot cross kinks
            // reliably (README, "Domains, walls and background charges").
            return err(
                "coupling.softening".into(),
                "must be > 0 in a box (a small value such as a tenth of the Debye length or the \
                 bandwidth smooths the kink of the pair kernel where particles cross)"
                    .into(),
            );
        }
        if bx.lower.len() != d || bx.upper.len() != d || bx.walls.len() != d {
            return err(
                "domain.lower".into(),
                format!("the box's corners must have {d} components"),
            );
        }
        if !bx.lower.iter().chain(&bx.upper).all(|v| v.is_finite()) {
            return err(
                "domain.lower".into(),
                "the box's corners must be finite".into(),
            );
        }
        if let Some(a) = (0..d).find(|&a| bx.upper[a] <= bx.lower[a]) {
            return err(
                "domain.upper".into(),
                format!(
                    "must exceed domain.lower on every axis (axis {a}: {} <= {})",
                    bx.upper[a], bx.lower[a]
                ),
            );
        }
        let inside = |v: &[f64]| bx.contains(v);
        for (k, s) in self.species.iter().enumerate() {
            let key = format!("species[{k}].initial");
            match &s.initial {
                InitialSpec::Uniform { lower, upper } if !(inside(lower) && inside(upper)) => {
                    return err(
                        key,
                        format!(
                            "the uniform law's box [{lower:?}, {upper:?}] is not inside the domain [{:?}, {:?}]",
                            bx.lower, bx.upper
                        ),
                    );
                }
                InitialSpec::Barenblatt { center, radius }
                    if !(0..d).all(|a| {
                        bx.lower[a] <= center[a] - radius && center[a] + radius <= bx.upper[a]
                    }) =>
                {
                    return err(
                        key,
                        "the Barenblatt profile's support is not inside the domain".into(),
                    );
                }
                InitialSpec::Gaussian { mean, .. } if !inside(mean) => {
                    return err(
                        format!("{key}.mean"),
                        format!(
                            "{mean:?} is outside the domain [{:?}, {:?}] (a gaussian law is restricted to the box; its mean must be in it)",
                            bx.lower, bx.upper
                        ),
                    );
                }
                _ => {}
            }
        }
        for (k, b) in self.backgrounds.iter().enumerate() {
            let key = format!("background[{k}].shape");
            let outside = match &b.shape {
                BackgroundShape::Uniform { lower, upper } => !(inside(lower) && inside(upper)),
                BackgroundShape::Gaussian { mean, .. } => !inside(mean),
                BackgroundShape::Points { positions, .. } => positions.iter().any(|p| !inside(p)),
            };
            if outside {
                return err(
                    key,
                    format!(
                        "lies (partly) outside the domain [{:?}, {:?}]",
                        bx.lower, bx.upper
                    ),
                );
            }
        }
        Ok(())
    }

    /// The net charge of a box with no electrode must vanish (SPEC §7) when
    /// the species are coupled (without coupling there is no psi, and an
    /// uncharged problem in a box is not refused: extension, README):
    /// sum_k z_k M_k + sum of the backgrounds' charges + sum over the walls of
    /// surface_charge x area, to a relative 1e-9 of the sum of the terms'
    /// magnitudes. `masses[k]` is species k's mass.
    pub fn check_neutral(&self, masses: &[f64]) -> Result<(), KeyError> {
        let Some(bx) = self.domain.as_box() else {
            return Ok(());
        };
        if bx.has_electrode() || self.coupling.strength == 0.0 {
            return Ok(());
        }
        let terms: Vec<f64> = self
            .species
            .iter()
            .zip(masses)
            .map(|(s, m)| s.charge * m)
            .chain(self.backgrounds.iter().map(|b| b.charge))
            .chain(std::iter::once(bx.wall_charge()))
            .collect();
        let net: f64 = terms.iter().sum();
        let scale: f64 = terms.iter().map(|t| t.abs()).sum();
        if net.abs() > 1e-9 * scale {
            let mobile: f64 = terms[..masses.len()].iter().sum();
            let fixed: f64 = terms[masses.len()..terms.len() - 1].iter().sum();
            return Err((
                "domain".into(),
                format!(
                    "a box with no electrode must be electroneutral, but its net charge is {net:e} \
                     (species {mobile:e}, backgrounds {fixed:e}, walls {:e}); \
                     change a species' mass or charge, a background's charge or a wall's \
                     surface_charge, or make a wall an electrode",
                    bx.wall_charge()
                ),
            ));
        }
        Ok(())
    }
}
