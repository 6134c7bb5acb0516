//! The sections of a scenario, each mapped from its raw serde struct onto the
//! settings type its module owns: `[coupling]` -> [`Coupling`], `[density]`
//! -> [`Density`], `[solver]` -> [`Solver`], `[grid]` -> [`Grid`], and each
//! `[[species]]` -> [`Species`] (its `potential` and `initial` tables parsed
//! by their kind's file). Every value is checked, with the key in the error.

use crate::coupling::{Coupling, CouplingMethod};
use crate::density::{Bandwidth, Density, DensityMethod};
use crate::error::{MAX_ECHO, Result, clip};
use crate::model::domain::Domain;
use crate::model::potential::{self, PotentialSpec};
use crate::model::steric::Steric;
use crate::particles::{InitialSpec, Sampling, Species, initial};
use crate::stepper::{EquilibriumSettings, Solver};
use crate::util::checks::Checker;

use super::Grid;
use super::checks::{
    MAX_EXPONENT, MAX_HALVINGS, MAX_PARTICLES, MAX_SOLVER_ITERATIONS, MAX_SOLVER_MEMORY,
    is_safe_name,
};
use super::raw::{
    NumberOrWord, RawCoupling, RawDensity, RawEquilibrium, RawGrid, RawSolver, RawSpecies,
    RawSteric,
};

/// `[coupling]` (absent: no coupling).
pub(super) fn coupling(c: &Checker, raw: Option<RawCoupling>) -> Result<Coupling> {
    let Some(raw) = raw else {
        return Ok(Coupling {
            strength: 0.0,
            method: CouplingMethod::Auto,
            softening: 0.0,
            accuracy: 1e-6,
        });
    };
    let strength = c.scale("coupling.strength", raw.strength.unwrap_or(0.0))?;
    let method = match raw.method.as_deref().unwrap_or("auto") {
        "direct" => CouplingMethod::Direct,
        "tree" => CouplingMethod::Tree,
        "auto" => CouplingMethod::Auto,
        other => {
            return Err(c.err(
                "coupling.method",
                format!(
                    "unknown method \"{}\"; expected \"direct\", \"tree\" or \"auto\"",
                    clip(other, MAX_ECHO)
                ),
            ));
        }
    };
    let softening = c.non_negative("coupling.softening", raw.softening.unwrap_or(0.0))?;
    if strength != 0.0 && softening == 0.0 && c.dimension > 1 {
        return Err(c.err(
            "coupling.softening",
            format!(
                "must be > 0 in dimension {} (the point-charge kernel is singular); \
                 a value near the particle spacing is a good start",
                c.dimension
            ),
        ));
    }
    let accuracy = c.positive("coupling.accuracy", raw.accuracy.unwrap_or(1e-6))?;
    if accuracy >= 1.0 {
        return Err(c.err(
            "coupling.accuracy",
            format!("must be < 1 (a relative error), got {accuracy}"),
        ));
    }
    Ok(Coupling {
        strength,
        method,
        softening,
        accuracy,
    })
}

/// `[density]` (absent: the automatic bandwidth and method).
pub(super) fn density(c: &Checker, raw: Option<RawDensity>) -> Result<Density> {
    let (bandwidth, method) = raw.map_or((None, None), |r| (r.bandwidth, r.method));
    let method = match method.as_deref().unwrap_or("auto") {
        "neighbours" => DensityMethod::Neighbours,
        "mesh" => DensityMethod::Mesh,
        "auto" => DensityMethod::Auto,
        other => {
            return Err(c.err(
                "density.method",
                format!(
                    "unknown method \"{}\"; expected \"neighbours\", \"mesh\" or \"auto\"",
                    clip(other, MAX_ECHO)
                ),
            ));
        }
    };
    let bandwidth = match bandwidth {
        None => Bandwidth::Auto,
        Some(NumberOrWord::Word(w)) if w == "auto" => Bandwidth::Auto,
        Some(NumberOrWord::Word(w)) => {
            return Err(c.err(
                "density.bandwidth",
                format!(
                    "must be a number or \"auto\", got \"{}\"",
                    clip(&w, MAX_ECHO)
                ),
            ));
        }
        Some(NumberOrWord::Number(v)) => Bandwidth::Fixed(c.positive("density.bandwidth", v)?),
    };
    Ok(Density { bandwidth, method })
}

/// `[solver]` (absent: the defaults of [`Solver`]).
pub(super) fn solver(c: &Checker, raw: Option<RawSolver>) -> Result<Solver> {
    let d = Solver::default();
    let Some(raw) = raw else { return Ok(d) };
    let tolerance = c.positive("solver.tolerance", raw.tolerance.unwrap_or(d.tolerance))?;
    if tolerance >= 1.0 {
        return Err(c.err(
            "solver.tolerance",
            format!("must be < 1 (a relative reduction), got {tolerance}"),
        ));
    }
    let max_iterations = c.count(
        "solver.max_iterations",
        raw.max_iterations.unwrap_or(d.max_iterations as i64),
        1,
        MAX_SOLVER_ITERATIONS,
    )?;
    let memory = c.count(
        "solver.memory",
        raw.memory.unwrap_or(d.memory as i64),
        1,
        MAX_SOLVER_MEMORY,
    )?;
    let max_halvings = raw.max_halvings.unwrap_or(d.max_halvings as i64);
    if max_halvings > MAX_HALVINGS as i64 {
        return Err(c.err(
            "solver.max_halvings",
            format!(
                "must be at most {MAX_HALVINGS} (2^{MAX_HALVINGS} sub-steps per step), got {max_halvings}"
            ),
        ));
    }
    let max_halvings = c.count("solver.max_halvings", max_halvings, 0, MAX_HALVINGS)?;
    Ok(Solver {
        tolerance,
        max_iterations,
        memory,
        max_halvings: max_halvings as u32,
    })
}

/// `[steric]` (SPEC §10; absent: ions of no size). The temperature
/// defaults to the species' common diffusion coefficient; it must be given
/// when the coefficients differ.
pub(super) fn steric(
    c: &Checker,
    raw: Option<RawSteric>,
    species: &[Species],
) -> Result<Option<Steric>> {
    let Some(raw) = raw else { return Ok(None) };
    let volume = c.positive("steric.volume", raw.volume)?;
    let temperature = match raw.temperature {
        Some(t) => c.positive("steric.temperature", t)?,
        None => {
            let d0 = species[0].diffusion;
            if let Some((k, s)) = species.iter().enumerate().find(|(_, s)| s.diffusion != d0) {
                return Err(c.err(
                    "steric.temperature",
                    format!(
                        "missing, and the species' diffusion coefficients differ (species[0] has {d0}, \
                         species[{k}] (\"{}\") has {}), so none of them is the temperature; give it",
                        clip(&s.name, MAX_ECHO),
                        s.diffusion
                    ),
                ));
            }
            if d0 == 0.0 {
                return Err(c.err(
                    "steric.temperature",
                    "missing, and the species do not diffuse (D = 0), so the default (their \
                     common diffusion coefficient) is 0; give a positive temperature",
                ));
            }
            d0
        }
    };
    Ok(Some(Steric {
        volume,
        temperature,
    }))
}

/// `[equilibrium]` (extension: the continuation of `jko equilibrium`;
/// absent: the defaults of [`EquilibriumSettings`]).
pub(super) fn equilibrium(c: &Checker, raw: Option<RawEquilibrium>) -> Result<EquilibriumSettings> {
    let d = EquilibriumSettings::default();
    let Some(raw) = raw else { return Ok(d) };
    let tolerance = c.positive(
        "equilibrium.tolerance",
        raw.tolerance.unwrap_or(d.tolerance),
    )?;
    if tolerance >= 1.0 {
        return Err(c.err(
            "equilibrium.tolerance",
            format!("must be < 1 (a relative reduction of the gradient), got {tolerance}"),
        ));
    }
    let growth = c.positive("equilibrium.growth", raw.growth.unwrap_or(d.growth))?;
    if !(growth > 1.0 && growth <= 1e3) {
        return Err(c.err(
            "equilibrium.growth",
            format!(
                "must be in (1, 1000] (the factor between successive step sizes), got {growth}"
            ),
        ));
    }
    let max_stages = c.count(
        "equilibrium.max_stages",
        raw.max_stages.unwrap_or(d.max_stages as i64),
        1,
        100_000,
    )?;
    let stage_tolerance = c.positive(
        "equilibrium.stage_tolerance",
        raw.stage_tolerance.unwrap_or(d.stage_tolerance),
    )?;
    if stage_tolerance >= 1.0 {
        return Err(c.err(
            "equilibrium.stage_tolerance",
            format!(
                "must be < 1 (a relative reduction of a stage's gradient), got {stage_tolerance}"
            ),
        ));
    }
    Ok(EquilibriumSettings {
        tolerance,
        growth,
        max_stages,
        stage_tolerance,
    })
}

/// `[grid]`, the Eulerian grid.
///
/// In a box (SPEC §7) the grid is the box: its corners may be left out, and
/// if given must equal the box's.
pub(super) fn grid(c: &Checker, raw: RawGrid, domain: &Domain) -> Result<Grid> {
    let corner = |key: &str, v: &Option<Vec<f64>>, of_box: Option<&Vec<f64>>| match (v, of_box) {
        (Some(v), None) => c.vector(key, v),
        (None, Some(b)) => Ok(b.clone()),
        (None, None) => Err(c.err(key, "missing: a grid in free space needs its corners")),
        (Some(v), Some(b)) => {
            let v = c.vector(key, v)?;
            if v != *b {
                return Err(c.err(
                    key,
                    format!(
                        "is {v:?}, but the domain's box has {b:?}: in a box the grid is the box \
                         (leave grid.lower and grid.upper out)"
                    ),
                ));
            }
            Ok(v)
        }
    };
    let bx = domain.as_box();
    let lower = corner("grid.lower", &raw.lower, bx.map(|b| &b.lower))?;
    let upper = corner("grid.upper", &raw.upper, bx.map(|b| &b.upper))?;
    for a in 0..c.dimension {
        if upper[a] <= lower[a] {
            return Err(c.err(
                "grid.upper",
                format!(
                    "must exceed grid.lower on every axis (axis {a}: {} <= {})",
                    upper[a], lower[a]
                ),
            ));
        }
    }
    let cells = c.per_axis("grid.cells", &raw.cells)?;
    let mut out = Vec::with_capacity(cells.len());
    for (a, &n) in cells.iter().enumerate() {
        if n.fract() != 0.0 || !(2.0..=1e8).contains(&n) {
            return Err(c.err(
                &format!("grid.cells[{a}]"),
                format!("must be an integer between 2 and 1e8, got {n}"),
            ));
        }
        out.push(n as usize);
    }
    Ok(Grid::new(lower, upper, out))
}

/// The `k`-th `[[species]]` table.
pub(super) fn species(c: &Checker, k: usize, rs: RawSpecies) -> Result<Species> {
    let key = |f: &str| format!("species[{k}].{f}");
    if !is_safe_name(&rs.name) {
        return Err(c.err(
            &key("name"),
            format!(
                "\"{}\" is not a valid species name (1 to 64 characters among letters, digits, '_', '-', '.')",
                clip(&rs.name, MAX_ECHO)
            ),
        ));
    }
    let charge = c.scale(&key("charge"), rs.charge.unwrap_or(1.0))?;
    let diffusion = c.non_negative(&key("diffusion"), rs.diffusion.unwrap_or(1.0))?;
    let exponent = c.finite(&key("exponent"), rs.exponent.unwrap_or(1.0))?;
    if exponent < 1.0 {
        return Err(c.err(
            &key("exponent"),
            format!("must be >= 1 (m = 1 linear, m > 1 porous medium), got {exponent}"),
        ));
    }
    if exponent > MAX_EXPONENT {
        return Err(c.err(
            &key("exponent"),
            format!("must be at most {MAX_EXPONENT} (rho^m must stay finite), got {exponent:e}"),
        ));
    }
    let mass = rs.mass.map(|m| c.positive(&key("mass"), m)).transpose()?;
    let particles = match rs.particles {
        None => None,
        Some(n) if n < 1 => {
            return Err(c.err(
                &key("particles"),
                format!("must be a positive integer, got {n}"),
            ));
        }
        Some(n) if n as u64 > MAX_PARTICLES as u64 => {
            return Err(c.err(
                &key("particles"),
                format!("{n} particles is more than this build supports ({MAX_PARTICLES})"),
            ));
        }
        Some(n) => Some(n as usize),
    };

    let potential = match &rs.potential {
        None => PotentialSpec::None,
        Some(v) => potential::parse(c, &key("potential"), v)?,
    };
    let initial = match &rs.initial {
        None => {
            return Err(c.err(
                &key("initial"),
                "missing: every species needs an initial law",
            ));
        }
        Some(v) => initial::parse(c, &key("initial"), v)?,
    };
    let sampling = match &rs.initial {
        Some(v) => initial::sampling(c, &key("initial"), v)?,
        None => Sampling::Random,
    };
    match &initial {
        InitialSpec::Csv { .. } => {}
        _ if particles.is_none() => {
            return Err(c.err(
                &key("particles"),
                "missing: needed to sample the initial law",
            ));
        }
        InitialSpec::Barenblatt { .. } if exponent <= 1.0 => {
            return Err(c.err(&key("initial"), "a Barenblatt profile needs exponent m > 1"));
        }
        _ => {}
    }
    Ok(Species {
        name: rs.name,
        charge,
        diffusion,
        exponent,
        mass,
        particles,
        potential,
        initial,
        sampling,
    })
}
