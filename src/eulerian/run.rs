//! `jko eulerian`: the scenario's PDE on the grid of its `[grid]` section
//! (SPEC §6), with output in the formats of SPEC §5 (density.csv, energy.csv).
//! In a `[domain]` box the grid is the box and psi has the walls' conditions
//! (SPEC §7); `[[background]]` charges enter psi and the energy (SPEC §8).
//!
//! Initial densities are the exact cell averages of the species' initial
//! laws ("gaussian", restricted to the box and renormalized in a box;
//! "uniform"), a midpoint-rule average of the Barenblatt profile, or a "csv"
//! cloud binned onto the grid. In energy.csv, `w2_step`
//! and `gradient_norm` are 0 (no optimizer) and `iterations` counts the
//! solver's sub-steps. A `[steric]` term (SPEC §10) enters the fluxes and the
//! `diffusion` column; initial densities with v s >= 1 in some cell are refused
//! (key `steric.volume`).
//!
//! [`build_solver`] and the output helpers are shared with `jko equilibrium
//! --grid` ([`super::equilibrium::equilibrium_to_dir`]), which follows the same
//! directory rules.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{
    Electrostatics, EulerianProblem, EulerianSolver, EulerianSpecies, Grid, PotentialFn,
    SubstepProgress,
};
use crate::driver::RunOptions;
use crate::driver::dir::OutputDir;
use crate::driver::record::{Command, Phase, RunRecord};
use crate::error::{Error, Result};
use crate::io::output::{self, CsvStream, EnergyLog, density_header};
use crate::io::scenario::{InitialSpec, Scenario, Species};
use crate::io::vtk::{ImageFrame, VtkSeries};
use crate::model::potential::{self, Potential};
use crate::particles::file::ParticleTable;

/// What a finished Eulerian run reports.
#[derive(Debug, Clone)]
pub struct EulerianSummary {
    /// Steps done.
    pub steps: u64,
    /// Total discrete free energy at step 0.
    pub initial_energy: f64,
    /// Total discrete free energy at the last step.
    pub final_energy: f64,
    /// Explicit sub-steps summed over all steps.
    pub substeps: u64,
    /// Messages for the user (mass outside the box, mass at the walls).
    pub warnings: Vec<String>,
}

fn potential_fn<const D: usize>(sp: &Species) -> PotentialFn {
    let u: Box<dyn Potential<D>> = potential::from_spec::<D>(&sp.potential);
    Box::new(move |x: &[f64]| u.value(&std::array::from_fn(|a| x[a])))
}

/// Cell averages of rho ∝ (1 - |x - c|^2/R^2)_+^(1/(m-1)), total mass M, by
/// the midpoint rule on 4^d points per cell, renormalised to mass M.
fn barenblatt_cells(grid: &Grid, center: &[f64], radius: f64, m: f64, mass: f64) -> Vec<f64> {
    let d = grid.dim();
    let sub = 4usize;
    let p = 1.0 / (m - 1.0);
    let mut out = vec![0.0; grid.len()];
    for (i, o) in out.iter_mut().enumerate() {
        let c = grid.center(i);
        let mut acc = 0.0;
        for s in 0..sub.pow(d as u32) {
            let mut r2 = 0.0;
            for a in 0..d {
                let k = (s / sub.pow(a as u32)) % sub;
                let x = c[a] + ((k as f64 + 0.5) / sub as f64 - 0.5) * grid.spacing(a);
                r2 += (x - center[a]).powi(2);
            }
            acc += (1.0 - r2 / (radius * radius)).max(0.0).powf(p);
        }
        *o = acc;
    }
    let total: f64 = out.iter().sum::<f64>() * grid.cell_volume();
    for o in &mut out {
        *o *= mass / total;
    }
    out
}

fn initial_cells<const D: usize>(s: &Scenario, k: usize, grid: &Grid) -> Result<Vec<f64>> {
    let sp = &s.species[k];
    let key = format!("species[{k}].initial");
    let bad = |e: super::EulerianError| Error::input(&s.path, &key, e.to_string());
    let mass = sp.mass_or_default();
    match &sp.initial {
        InitialSpec::Gaussian { mean, std } if s.domain.as_box().is_some() => {
            super::restricted_gaussian_cell_averages(grid, mean, std, mass).map_err(bad)
        }
        InitialSpec::Gaussian { mean, std } => {
            super::gaussian_cell_averages(grid, mean, std, mass).map_err(bad)
        }
        InitialSpec::Uniform { lower, upper } => {
            super::uniform_cell_averages(grid, lower, upper, mass).map_err(bad)
        }
        InitialSpec::Barenblatt { center, radius } => {
            Ok(barenblatt_cells(grid, center, *radius, sp.exponent, mass))
        }
        InitialSpec::Csv { path, step } => {
            // The same rows a particle run would start from, checked the same way.
            let frame = ParticleTable::<D>::read(path)?.frame(path, &sp.name, *step)?;
            let flat: Vec<f64> = frame.positions.iter().flatten().copied().collect();
            super::bin_particles(grid, &flat, &frame.weights).map_err(bad)
        }
    }
}

/// The Eulerian problem of a scenario (dimension `D`).
pub fn problem<const D: usize>(s: &Scenario) -> Result<EulerianProblem> {
    let g = s.grid.as_ref().ok_or_else(|| {
        Error::input(
            &s.path,
            "grid",
            "missing: `jko eulerian` needs a [grid] section with lower, upper and cells",
        )
    })?;
    let grid = g.clone();
    super::grid::validate(&grid).map_err(|e| Error::input(&s.path, "grid", e.to_string()))?;
    let mut species = Vec::with_capacity(s.species.len());
    for (k, sp) in s.species.iter().enumerate() {
        species.push(EulerianSpecies {
            name: sp.name.clone(),
            charge: sp.charge,
            diffusion: sp.diffusion,
            exponent: sp.exponent,
            potential: potential_fn::<D>(sp),
            initial: initial_cells::<D>(s, k, &grid)?,
        });
    }
    Ok(EulerianProblem {
        grid,
        species,
        coupling_strength: s.coupling.strength,
    })
}

/// What psi sees besides the species: the box's walls (the grid is then the
/// box, as the scenario parser ensures) and the backgrounds' cell averages.
pub fn electrostatics(s: &Scenario, grid: &Grid) -> Result<Electrostatics> {
    let bx = s.domain.as_box();
    if let Some(b) = bx
        && (b.lower != grid.lower() || b.upper != grid.upper())
    {
        return Err(Error::input(
            &s.path,
            "grid.lower",
            format!(
                "the grid [{:?}, {:?}] is not the domain's box [{:?}, {:?}]",
                grid.lower(),
                grid.upper(),
                b.lower,
                b.upper
            ),
        ));
    }
    let background = if s.backgrounds.is_empty() {
        None
    } else {
        Some(
            super::background_cells(grid, &s.backgrounds, bx.is_some())
                .map_err(|e| Error::input(&s.path, "background", e.to_string()))?,
        )
    };
    Ok(Electrostatics {
        walls: bx.map(|b| b.walls.clone()),
        background,
    })
}

/// Warnings for backgrounds the grid does not hold whole (free space: the
/// grid is only where the charges are computed).
fn background_warnings(s: &Scenario, grid: &Grid) -> Vec<String> {
    let mut out = Vec::new();
    for b in &s.backgrounds {
        let held = super::background::one_background(grid, b, s.domain.as_box().is_some())
            .map(|c| c.iter().sum::<f64>() * grid.cell_volume())
            .unwrap_or(0.0);
        if (held - b.charge).abs() > 1e-6 * b.charge.abs() {
            out.push(format!(
                "background \"{}\": the grid holds {held:.6e} of its charge {:.6e}; enlarge [grid]",
                b.name, b.charge
            ));
        }
    }
    out
}

/// Whether [`run_to_dir`] prints progress lines during long steps (off
/// unless the CLI turns it on; `--quiet` keeps it off).
static SHOW_PROGRESS: AtomicBool = AtomicBool::new(false);

/// Turn the progress lines of long steps on or off (the `jko eulerian` CLI
/// turns them on unless `--quiet`).
pub fn show_progress(on: bool) {
    SHOW_PROGRESS.store(on, Ordering::Relaxed);
}

/// A step is long when it has taken this long; then a line goes to stderr
/// every this long.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// The progress callback of step `n` of `steps`: a line to stderr every
/// [`PROGRESS_INTERVAL`] of the step, if progress is shown.
fn progress_report(n: u64, steps: u64) -> impl FnMut(SubstepProgress) {
    let (show, mut next) = (
        SHOW_PROGRESS.load(Ordering::Relaxed),
        Instant::now() + PROGRESS_INTERVAL,
    );
    move |p: SubstepProgress| {
        if show && Instant::now() >= next {
            next = Instant::now() + PROGRESS_INTERVAL;
            eprintln!(
                "jko: step {n}/{steps}: {:.1}% of the step after {} sub-steps (dt = {:.3e}, limit {} per step)",
                100.0 * p.fraction,
                p.substeps,
                p.dt,
                super::MAX_SUBSTEPS
            );
        }
    }
}

/// The solver of a scenario on its grid (problem, walls, backgrounds, steric term), its
/// input checked, and the warnings for the user (mass or background charge the grid does
/// not hold).
pub fn build_solver(s: &Scenario) -> Result<(EulerianSolver, Vec<String>)> {
    let problem = match s.dimension {
        1 => problem::<1>(s)?,
        2 => problem::<2>(s)?,
        _ => problem::<3>(s)?,
    };
    let masses: Vec<f64> = s.species.iter().map(|sp| sp.mass_or_default()).collect();
    let env = electrostatics(s, &problem.grid)?;
    let mut warnings = background_warnings(s, &problem.grid);
    let solver = EulerianSolver::new_in(problem, env)
        .map_err(|e| Error::input(&s.path, "grid", e.to_string()))?;
    if s.species
        .iter()
        .any(|sp| matches!(sp.initial, InitialSpec::Csv { .. }))
    {
        // A csv law's mass is known only now (the scenario checked the rest).
        let held: Vec<f64> = (0..solver.num_species()).map(|k| solver.mass(k)).collect();
        s.problem
            .check_neutral(&held)
            .map_err(|(key, why)| Error::input(&s.path, &key, why))?;
    }
    for (k, &m) in masses.iter().enumerate() {
        let inside = solver.mass(k);
        if inside < m * (1.0 - 1e-6) {
            warnings.push(format!(
                "species \"{}\": the grid holds {inside:.6e} of its mass {m:.6e} at t = 0; enlarge [grid]",
                s.species[k].name
            ));
        }
    }
    // The steric term needs v s < 1 in every cell of the initial densities.
    let solver = solver.with_steric(s.steric).map_err(|e| match e {
        super::EulerianError::InvalidProblem { field, reason } => {
            Error::input(&s.path, field, reason)
        }
        e => Error::input(&s.path, "steric", e.to_string()),
    })?;
    Ok((solver, warnings))
}

/// The output directory of a grid run, locked, an earlier run in it set aside (refused
/// unless `force`), the scenario copied, and density.csv and energy.csv started under
/// their temporary names (removed, not kept, if dropped unfinished: grid runs cannot be
/// resumed). Call it only once every input is read and checked.
pub(super) fn open_output(
    s: &Scenario,
    dir: &Path,
    force: bool,
) -> Result<(OutputDir, CsvStream, EnergyLog)> {
    // The text parsed, not the file again: it may be gone or edited since.
    let text = s.text.as_bytes();
    let names = crate::driver::all_run_file_names();
    let mut out = OutputDir::open(dir, &names)?;
    let present = out.contents(&names)?.present;
    if !present.is_empty() && !force {
        return Err(Error::io(
            &dir.join(&present[0]),
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists: choose another --out directory or pass --force to overwrite",
            ),
        ));
    }
    out.replace(&present, &crate::driver::input_paths(s))?;
    output::write_atomic(&dir.join(output::SCENARIO_COPY), text)?;
    let density = CsvStream::create(dir.join(output::DENSITY), &density_header(s.dimension))?
        .discard_on_drop();
    let energy = EnergyLog(EnergyLog::create(dir)?.0.discard_on_drop());
    Ok((out, density, energy))
}

/// The files of [`open_output`] finished and synced under their final names
/// (replacing the run set aside), and the record written: a grid run's or
/// equilibrium's output, complete or complete up to a step.
pub(super) fn conclude(
    out: &mut OutputDir,
    density: CsvStream,
    energy: EnergyLog,
    record: &mut RunRecord,
) -> Result<()> {
    energy.finish()?;
    density.finish()?;
    output::sync_dir(out.path())?;
    out.establish()?;
    record.own(None)
}

/// The ParaView series of a grid run in `dir`, if the scenario asks for one.
pub(super) fn vtk_series(s: &Scenario, dir: &Path) -> Result<Option<VtkSeries>> {
    s.output
        .vtk
        .then(|| VtkSeries::open(dir, true, &[]))
        .transpose()
}

/// One written step of the ParaView series (if any): every species' cell
/// densities `rho[k]` on `grid`.
pub(super) fn write_vtk_frame(
    vtk: &mut Option<VtkSeries>,
    grid: &Grid,
    names: &[&str],
    rho: &[&[f64]],
    step: u64,
    time: f64,
) -> Result<()> {
    let Some(vtk) = vtk else { return Ok(()) };
    let arrays: Vec<(&str, &[f64])> = names.iter().copied().zip(rho.iter().copied()).collect();
    vtk.grid(
        step,
        &ImageFrame {
            time,
            grid,
            arrays: &arrays,
        },
    )
}

/// One written step of density.csv: every species' cell densities `rho[k]` at the
/// cell `centers`, species in order, cells in storage order.
pub(super) fn write_density_frame(
    density: &mut CsvStream,
    centers: &[Vec<f64>],
    names: &[&str],
    rho: &[&[f64]],
    step: u64,
    time: f64,
) -> Result<()> {
    for (name, r) in names.iter().zip(rho) {
        for (c, &rho) in centers.iter().zip(r.iter()) {
            density.int(step)?;
            density.float(time)?;
            density.text(name)?;
            for &x in c {
                density.float(x)?;
            }
            density.float(rho)?;
            density.end_row()?;
        }
    }
    Ok(())
}

/// Run a scenario on its grid and write density.csv and energy.csv to `dir`.
pub fn run_to_dir(s: &Scenario, dir: &Path, opts: RunOptions) -> Result<EulerianSummary> {
    let mut record = RunRecord::begin(Command::Eulerian, s, dir);
    let result = run_recorded(s, dir, opts, &mut record);
    record.finish(result)
}

fn run_recorded(
    s: &Scenario,
    dir: &Path,
    opts: RunOptions,
    record: &mut RunRecord,
) -> Result<EulerianSummary> {
    let (mut solver, warnings) = build_solver(s)?;

    // Every input is read and every check passed above: only now is the
    // directory locked and an earlier run in it set aside (rundir module).
    let (mut out, mut density, mut energy) = open_output(s, dir, opts.force)?;
    // A run replaced by this one comes back (its run.json too) if this one
    // fails before it is complete: the record is written only once nothing
    // would be restored over it.
    if !out.replaces_a_run() {
        record.own(None)?;
    }

    let centers = solver.cell_centers();
    let mut vtk = vtk_series(s, dir)?;
    let mut write_frame =
        |density: &mut CsvStream, solver: &EulerianSolver, step: u64, time: f64| -> Result<()> {
            let names: Vec<&str> = (0..solver.num_species())
                .map(|k| solver.species_name(k))
                .collect();
            let rho: Vec<&[f64]> = (0..solver.num_species())
                .map(|k| solver.density(k))
                .collect();
            write_density_frame(density, &centers, &names, &rho, step, time)?;
            write_vtk_frame(&mut vtk, solver.grid(), &names, &rho, step, time)
        };

    let e0 = solver.energy();
    energy.row(0, 0.0, &e0, 0.0, 0, 0.0)?;
    write_frame(&mut density, &solver, 0, 0.0)?;
    let mut summary = EulerianSummary {
        steps: 0,
        initial_energy: e0.total(),
        final_energy: e0.total(),
        substeps: 0,
        warnings,
    };
    let mut warned_walls = false;
    let mut last_frame = 0;
    for n in 1..=s.steps as u64 {
        let mut report = progress_report(n, s.steps as u64);
        record.enter(Phase::Steps);
        let step = solver.advance_observed(s.time_step, &mut report);
        record.enter(Phase::Output);
        // A non-finite energy (an overflowing product of U and rho) is no result either.
        let e = solver.energy();
        let failure = match &step {
            Err(err) => Some(err.to_string()),
            Ok(_) if !e.total().is_finite() => Some(crate::stepper::describe_non_finite(&e)),
            Ok(_) => None,
        };
        if let Some(why) = failure {
            // Status 3, like a particle run: the files keep every full step;
            // complete up to a step, they replace the old run.
            conclude(&mut out, density, energy, record)?;
            return Err(Error::Numerical(format!(
                "Eulerian step {n}: {why}. density.csv (up to step {last_frame}) and energy.csv \
                 (up to step {}) in {} are complete up to the last full step",
                n - 1,
                dir.display()
            )));
        }
        let stats = step.expect("failures returned above");
        let t = n as f64 * s.time_step;
        energy.row(n, t, &e, 0.0, stats.substeps as u64, 0.0)?;
        summary.substeps += stats.substeps as u64;
        record.progress(n, summary.substeps, summary.substeps);
        if n % s.output_every as u64 == 0 || n == s.steps as u64 {
            write_frame(&mut density, &solver, n, t)?;
            last_frame = n;
            record.write()?;
        }
        if !warned_walls && solver.touches_walls() {
            warned_walls = true;
            summary.warnings.push(format!(
                "mass reaches the box walls at step {n} (t = {t}); enlarge [grid]"
            ));
        }
        summary.steps = n;
        summary.final_energy = e.total();
        if crate::util::interrupt::requested() && n < s.steps as u64 {
            // No checkpoint to continue from: the files, complete up to this
            // step (its density frame added), become the run's output.
            if last_frame != n {
                write_frame(&mut density, &solver, n, t)?;
            }
            conclude(&mut out, density, energy, record)?;
            return Err(Error::Cancelled(format!(
                "the Eulerian run stopped after step {n} (t = {t}); density.csv and energy.csv \
                 in {} are complete up to it (there is no checkpoint: run it again to go further)",
                dir.display()
            )));
        }
    }
    // Complete: the run it replaced can go.
    conclude(&mut out, density, energy, record)?;
    Ok(summary)
}
