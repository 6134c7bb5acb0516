//! The kernel bandwidth eps a particle run used, per species: the fixed
//! `[density] bandwidth` of its scenario, else the solver's automatic rule on
//! the species' step-0 particles ([`choose_estimator`] with the scenario;
//! [`auto_bandwidth`], its neighbour-count part, without one, which is
//! noted). An eps the kernel cannot use at the run's coordinates is refused.

use std::path::Path;

use super::read::{ParticleRun, RunFiles};
use crate::density::{auto_bandwidth, choose_estimator};
use crate::error::{Error, Result};
use crate::io::output::SCENARIO_COPY;
use crate::io::scenario::{Bandwidth, Scenario};

/// The bandwidth the solver used for `species`, and a note if it had to be guessed.
pub(super) fn particle_bandwidth<const D: usize>(
    files: &RunFiles,
    run: &ParticleRun<D>,
    scenario: Option<&Scenario>,
    species: &str,
) -> Result<(f64, Option<String>)> {
    if let Some(s) = scenario
        && let Bandwidth::Fixed(eps) = s.density.bandwidth
    {
        check_bandwidth(files, &run.table.positions, species, eps, None)?;
        return Ok((eps, None));
    }
    if !run.times.contains_key(&0) {
        return Err(Error::input(
            &run.file,
            "column `step`",
            format!(
                "the run's bandwidth is \"auto\", which is computed from the step-0 particles, but the file has no step 0 (species \"{species}\")"
            ),
        ));
    }
    let f0 = run.table.frame(&run.file, species, Some(0))?;
    // The solver's rule needs the species' diffusion and the time step; without
    // the scenario only its neighbour-count part is known.
    let eps = match scenario.and_then(|s| Some((s, s.species.iter().find(|k| k.name == species)?)))
    {
        Some((s, k)) => {
            choose_estimator(
                &f0.positions,
                &f0.weights,
                k.diffusion,
                k.exponent,
                s.time_step,
                &s.density,
            )
            .eps
        }
        None => auto_bandwidth(&f0.positions, &f0.weights),
    };
    check_bandwidth(files, &f0.positions, species, eps, Some(f0.positions.len()))?;
    let note = scenario.is_none().then(|| {
        format!(
            "{}: no {SCENARIO_COPY}; species \"{species}\" uses the automatic bandwidth of its step-0 particles, eps = {eps}",
            files.dir.display()
        )
    });
    Ok((eps, note))
}

/// Smallest kernel width accepted: its peak ~ eps^-d stays far from overflow in 3D.
pub const MIN_BANDWIDTH: f64 = 1e-100;
/// Smallest kernel width accepted relative to the largest coordinate: f64
/// resolves ~1e-16 of a coordinate, a kernel must span many such steps.
pub const MIN_RELATIVE_BANDWIDTH: f64 = 1e-10;

/// A bandwidth a kernel estimate can use: finite and resolvable at the
/// coordinates `x`. One particle, or particles all at one point, have no
/// spread, and the automatic rule's eps (from `auto` = Some(step-0 count))
/// collapses toward zero; such a run needs a fixed bandwidth.
fn check_bandwidth<const D: usize>(
    files: &RunFiles,
    x: &[[f64; D]],
    species: &str,
    eps: f64,
    auto: Option<usize>,
) -> Result<()> {
    let scale = x
        .iter()
        .flat_map(|p| p.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    if eps.is_finite() && eps >= MIN_BANDWIDTH && eps >= MIN_RELATIVE_BANDWIDTH * scale {
        return Ok(());
    }
    let file = files.scenario.as_deref().unwrap_or(&files.data);
    let limit = MIN_BANDWIDTH.max(MIN_RELATIVE_BANDWIDTH * scale);
    let message = match auto {
        Some(n) => format!(
            "the automatic bandwidth of species \"{species}\" from its {n} step-0 particle(s) is {eps:e}: they have (almost) no spread, so the kernel would be narrower than f64 resolves (at least {limit:e} here); set a fixed `[density] bandwidth = ...` in {}",
            files
                .scenario
                .as_deref()
                .map_or_else(|| files.dir.join(SCENARIO_COPY), Path::to_path_buf)
                .display()
        ),
        None => format!(
            "{eps:e} is narrower than f64 resolves at the coordinates of species \"{species}\" (up to {scale:e}); the comparison needs at least {limit:e}"
        ),
    };
    Err(Error::input(file, "density.bandwidth", message))
}
