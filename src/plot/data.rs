//! What a figure shows, as numbers: the runs (through
//! [`RunDensities`], the reading and estimate of `jko compare`), the steps
//! and species chosen, the densities sampled on the figure's grids, the
//! energy table and the distances of a pair.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{PlotOptions, StepChoice};
use crate::compare::{Pairing, RunDensities, RunKind, compare_runs_paired};
use crate::error::{Error, Result};
use crate::io::output::{DENSITY, ENERGY, PARTIAL_SUFFIX, PARTICLES};
use crate::particles::file::{parse_f64, parse_u64};
use crate::util::grid::Grid;

/// Points of a 1D curve.
pub(super) const CURVE_POINTS: usize = 600;
/// Cells along the longer axis of a map.
pub(super) const MAP_CELLS: usize = 200;
/// Written steps shown by default: 1D curves overlay well, maps take room.
const DEFAULT_STEPS_1D: usize = 5;
const DEFAULT_STEPS_MAP: usize = 3;
const DEFAULT_STEPS_MAP_PAIR: usize = 2;

/// One run read for the figure.
pub(super) struct PlotRun {
    pub(super) densities: RunDensities,
    /// The name shown in legends (the directory's name).
    pub(super) name: String,
    pub(super) energy: EnergyTable,
    /// An equilibrium directory (SPEC §9): steps 0 and 1, both at time 0.
    pub(super) equilibrium: bool,
}

impl PlotRun {
    /// How a step of this run is labelled.
    pub(super) fn step_label(&self, step: u64, time: f64) -> String {
        if self.equilibrium {
            return if step == 0 { "initial" } else { "equilibrium" }.into();
        }
        format!("t = {} (step {step})", super::style::fmt_num(time))
    }
    pub(super) fn kind_name(&self) -> &'static str {
        match self.densities.kind() {
            RunKind::Particles => "particles",
            RunKind::Grid => "grid",
        }
    }
}

/// energy.csv: one row per step; columns the file lacks are `None`.
#[derive(Debug, Clone, Default)]
pub(super) struct EnergyTable {
    pub(super) step: Vec<u64>,
    pub(super) time: Vec<f64>,
    /// `energy`, `diffusion`, `potential`, `interaction`, `w2_step`, `iterations`.
    pub(super) columns: BTreeMap<&'static str, Vec<f64>>,
}

/// The columns drawn from energy.csv besides step and time.
pub(super) const ENERGY_COLUMNS: [&str; 6] = [
    "energy",
    "diffusion",
    "potential",
    "interaction",
    "w2_step",
    "iterations",
];

/// A half-written run directory (files still `NAME.partial`) is refused
/// with what to do, before `jko compare`'s reader says a file is missing.
fn check_finished(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(()); // the reader's message says what it is
    }
    for name in [PARTICLES, DENSITY, ENERGY] {
        let partial = dir.join(format!("{name}{PARTIAL_SUFFIX}"));
        if partial.exists() && !dir.join(name).exists() {
            return Err(Error::input(
                &partial,
                "run directory",
                format!(
                    "the run is not finished ({name} is still being written, or the run was stopped): plot it when it is done, or finish it with `jko run ... --resume`"
                ),
            ));
        }
    }
    Ok(())
}

/// Read energy.csv (`step`, `time` and `energy` required; a step twice, or
/// no row, refused).
pub(super) fn read_energy_table(file: &Path) -> Result<EnergyTable> {
    let (mut rdr, headers) = crate::compare::open_csv(file)?;
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let required = |name: &str| {
        col(name).ok_or_else(|| {
            Error::input(file, "header", format!("missing required column `{name}`"))
        })
    };
    let (c_step, c_time) = (required("step")?, required("time")?);
    required("energy")?;
    let cols: Vec<(&'static str, usize)> = ENERGY_COLUMNS
        .iter()
        .filter_map(|&n| col(n).map(|c| (n, c)))
        .collect();
    let mut t = EnergyTable::default();
    for &(n, _) in &cols {
        t.columns.insert(n, Vec::new());
    }
    let mut seen = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let loc = e
                .position()
                .map(|p| format!("line {}", p.line()))
                .unwrap_or_else(|| "row".into());
            Error::input(file, loc, format!("malformed row: {e}"))
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let cell = |c: usize| rec.get(c).unwrap_or("");
        let step = parse_u64(file, line, "step", cell(c_step))?;
        if let Some(l0) = seen.insert(step, line) {
            return Err(Error::input(
                file,
                format!("line {line}, column `step`"),
                format!("step {step} appears twice (also on line {l0})"),
            ));
        }
        t.step.push(step);
        t.time.push(parse_f64(file, line, "time", cell(c_time))?);
        for &(n, c) in &cols {
            // An empty optional cell is a gap in the curve, not an error.
            let v = match cell(c).trim() {
                "" if n != "energy" => f64::NAN,
                s => parse_f64(file, line, n, s)?,
            };
            t.columns.get_mut(n).expect("inserted above").push(v);
        }
    }
    if t.step.is_empty() {
        return Err(Error::input(
            file,
            "rows",
            "no energy rows (the file is empty or has only a header)",
        ));
    }
    Ok(t)
}

/// The name of a run in legends: its directory's name (two components when
/// the two runs' last components agree).
fn run_names(a: &Path, b: Option<&Path>) -> (String, Option<String>) {
    let last = |p: &Path, k: usize| -> String {
        let comps: Vec<String> = p
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .filter(|c| c != "." && c != "/")
            .collect();
        let n = comps.len();
        if n == 0 {
            return p.display().to_string();
        }
        comps[n.saturating_sub(k)..].join("/")
    };
    let na = last(a, 1);
    match b {
        None => (crate::error::clip(&na, 60), None),
        Some(b) => {
            let nb = last(b, 1);
            let (na, nb) = if na == nb {
                (last(a, 2), last(b, 2))
            } else {
                (na, nb)
            };
            (
                crate::error::clip(&na, 60),
                Some(crate::error::clip(&nb, 60)),
            )
        }
    }
}

fn open_run(dir: &Path, name: String) -> Result<PlotRun> {
    check_finished(dir)?;
    let densities = RunDensities::open(dir)?;
    let energy = read_energy_table(&densities.energy_file())?;
    let steps = densities.steps();
    let equilibrium =
        steps.len() == 2 && steps[0].0 == 0 && steps[1].0 == 1 && steps.iter().all(|s| s.1 == 0.0);
    Ok(PlotRun {
        densities,
        name,
        energy,
        equilibrium,
    })
}

/// Both runs of a figure, the steps and species shown, the distances.
pub(super) struct PlotData {
    pub(super) a: PlotRun,
    pub(super) b: Option<PlotRun>,
    pub(super) dimension: usize,
    /// A's steps shown, with their times, ascending.
    pub(super) steps: Vec<(u64, f64)>,
    pub(super) species: Vec<String>,
    /// `jko compare` rows of a pair, by (A's step, species).
    pub(super) distances: BTreeMap<(u64, String), Distance>,
    /// Which of B's steps meets A's step (same number, or both runs' last).
    pub(super) b_step: BTreeMap<u64, (u64, f64)>,
    pub(super) notes: Vec<String>,
}

/// The `jko compare` distances of one species at one step.
#[derive(Debug, Clone, Copy)]
pub(super) struct Distance {
    pub(super) l1: f64,
    pub(super) w2: Option<f64>,
}

/// Read the runs and settle what is shown (errors name the file or the option).
pub(super) fn load(a: &Path, b: Option<&Path>, opts: &PlotOptions) -> Result<PlotData> {
    let (na, nb) = run_names(a, b);
    let ra = open_run(a, na)?;
    let rb = match (b, nb) {
        (Some(b), Some(nb)) => Some(open_run(b, nb)?),
        _ => None,
    };
    let dimension = ra.densities.dimension();
    if let Some(rb) = &rb
        && rb.densities.dimension() != dimension
    {
        return Err(Error::input(
            rb.densities.data_file(),
            "header",
            format!(
                "dimension {}, but {} has dimension {dimension}: runs of different dimensions cannot be drawn together",
                rb.densities.dimension(),
                ra.densities.data_file().display()
            ),
        ));
    }
    let mut notes: Vec<String> = ra.densities.notes.clone();
    if let Some(rb) = &rb {
        notes.extend(rb.densities.notes.iter().cloned());
    }
    let species = choose_species(&ra, rb.as_ref(), opts)?;
    let pair_maps = rb.is_some() && dimension > 1;
    let default_count = match (dimension, pair_maps) {
        (1, _) => DEFAULT_STEPS_1D,
        (_, false) => DEFAULT_STEPS_MAP,
        (_, true) => DEFAULT_STEPS_MAP_PAIR,
    };
    let steps = choose_steps(&ra, opts, default_count)?;

    // B's frame for each of A's steps: the same step at the same time, else
    // (an equilibrium against a run, runs of different time steps) the last
    // against the last.
    let mut b_step = BTreeMap::new();
    let mut distances = BTreeMap::new();
    if let Some(rb) = &rb {
        let b_steps: BTreeMap<u64, f64> = rb.densities.steps().into_iter().collect();
        let same = steps.iter().all(|(s, t)| {
            b_steps.get(s).is_some_and(|tb| {
                (tb - t).abs() <= crate::compare::TIME_TOLERANCE * t.abs().max(tb.abs())
            })
        });
        let last_a = *ra.densities.steps().last().expect("a run has a frame");
        let last_b = *rb.densities.steps().last().expect("a run has a frame");
        let pairing = if same {
            for &(s, t) in &steps {
                b_step.insert(s, (s, t));
            }
            Pairing::SameStep
        } else {
            b_step.insert(last_a.0, last_b);
            let missing: Vec<String> = steps
                .iter()
                .filter(|(s, _)| *s != last_a.0)
                .map(|(s, _)| s.to_string())
                .collect();
            if !missing.is_empty() {
                notes.push(format!(
                    "{} has no frame at the time of step(s) {} of {}: only the last steps are paired",
                    rb.name,
                    missing.join(", "),
                    ra.name
                ));
            }
            Pairing::Last
        };
        match compare_runs_paired(a, b.expect("b is given"), pairing) {
            Ok(c) => {
                for r in c.rows {
                    distances.insert((r.step, r.species.clone()), Distance { l1: r.l1, w2: r.w2 });
                }
                notes.extend(c.notes);
            }
            // The figure is still worth drawing; the reason is shown.
            Err(e) => notes.push(format!("no distances: {e}")),
        }
    }
    Ok(PlotData {
        a: ra,
        b: rb,
        dimension,
        steps,
        species,
        distances,
        b_step,
        notes,
    })
}

fn choose_species(a: &PlotRun, b: Option<&PlotRun>, opts: &PlotOptions) -> Result<Vec<String>> {
    let have = a.densities.species();
    match &opts.species {
        None => {
            // A pair shows the species both runs hold.
            let common: Vec<String> = match b {
                None => have,
                Some(b) => {
                    let hb = b.densities.species();
                    have.into_iter().filter(|s| hb.contains(s)).collect()
                }
            };
            if common.is_empty() {
                let b = b.expect("one run always has a species");
                return Err(Error::input(
                    b.densities.data_file(),
                    "column `species`",
                    format!(
                        "no species in common with {} (A has {:?}, B has {:?})",
                        a.densities.data_file().display(),
                        a.densities.species(),
                        b.densities.species()
                    ),
                ));
            }
            Ok(common)
        }
        Some(want) => {
            for run in std::iter::once(a).chain(b) {
                let have = run.densities.species();
                if let Some(s) = want.iter().find(|s| !have.contains(s)) {
                    return Err(Error::input(
                        run.densities.data_file(),
                        "--species",
                        format!(
                            "no species \"{}\" in this run (it has {})",
                            crate::error::clip(s, crate::error::MAX_ECHO),
                            have.join(", ")
                        ),
                    ));
                }
            }
            Ok(want.clone())
        }
    }
}

/// `count` written steps evenly spaced by index, first and last included.
fn evenly_spaced(written: &[(u64, f64)], count: usize) -> Vec<(u64, f64)> {
    let n = written.len();
    if n <= count {
        return written.to_vec();
    }
    let mut idx: Vec<usize> = (0..count)
        .map(|k| ((k as f64) * (n - 1) as f64 / (count - 1) as f64).round() as usize)
        .collect();
    idx.dedup();
    idx.into_iter().map(|i| written[i]).collect()
}

fn choose_steps(a: &PlotRun, opts: &PlotOptions, default_count: usize) -> Result<Vec<(u64, f64)>> {
    let written = a.densities.steps();
    let Some(choices) = &opts.steps else {
        return Ok(evenly_spaced(&written, default_count));
    };
    let times: BTreeMap<u64, f64> = written.iter().copied().collect();
    let mut out = BTreeMap::new();
    for c in choices {
        let s = match *c {
            StepChoice::First => written[0].0,
            StepChoice::Last => written[written.len() - 1].0,
            StepChoice::Step(s) => s,
        };
        let Some(&t) = times.get(&s) else {
            let list: Vec<String> = written.iter().map(|(s, _)| s.to_string()).collect();
            let shown = if list.len() > 12 {
                format!(
                    "{}, ..., {} ({} steps)",
                    list[..6].join(", "),
                    list[list.len() - 1],
                    list.len()
                )
            } else {
                list.join(", ")
            };
            return Err(Error::input(
                a.densities.data_file(),
                "--steps",
                format!("step {s} is not a written step of this run (written: {shown})"),
            ));
        };
        out.insert(s, t);
    }
    Ok(out.into_iter().collect())
}

/// The box (lower, upper) of `species` over the shown steps of both runs.
pub(super) fn species_box(data: &PlotData, species: &str) -> Option<(Vec<f64>, Vec<f64>)> {
    let d = data.dimension;
    let mut lo = vec![f64::INFINITY; d];
    let mut hi = vec![f64::NEG_INFINITY; d];
    let mut any = false;
    let mut take = |b: Option<(Vec<f64>, Vec<f64>)>| {
        if let Some((l, h)) = b {
            any = true;
            for k in 0..d {
                lo[k] = lo[k].min(l[k]);
                hi[k] = hi[k].max(h[k]);
            }
        }
    };
    for &(s, _) in &data.steps {
        take(data.a.densities.bounds(s, species));
        if let (Some(b), Some(&(sb, _))) = (&data.b, data.b_step.get(&s)) {
            take(b.densities.bounds(sb, species));
        }
    }
    let ok = any && (0..d).all(|k| lo[k].is_finite() && hi[k].is_finite() && hi[k] > lo[k]);
    ok.then_some((lo, hi))
}

/// The grid of a 1D curve, or of a 2D map (the mid-plane z slice in 3D),
/// over `(lo, hi)`: [`CURVE_POINTS`], or [`MAP_CELLS`] along the longer
/// axis and square cells.
pub(super) fn sample_grid(lo: &[f64], hi: &[f64]) -> Grid {
    let d = lo.len();
    if d == 1 {
        let n = CURVE_POINTS;
        return Grid::from_spacing(vec![lo[0]], vec![(hi[0] - lo[0]) / n as f64], vec![n]);
    }
    let (wx, wy) = (hi[0] - lo[0], hi[1] - lo[1]);
    let h = wx.max(wy) / MAP_CELLS as f64;
    let nx = ((wx / h).round() as usize).clamp(8, MAP_CELLS);
    let ny = ((wy / h).round() as usize).clamp(8, MAP_CELLS);
    let (mut lower, mut spacing, mut cells) = (
        vec![lo[0], lo[1]],
        vec![wx / nx as f64, wy / ny as f64],
        vec![nx, ny],
    );
    if d == 3 {
        // One cell along z whose center is the mid-plane.
        let hz = (hi[2] - lo[2]) / MAP_CELLS as f64;
        let mid = 0.5 * (lo[2] + hi[2]);
        lower.push(mid - 0.5 * hz);
        spacing.push(hz);
        cells.push(1);
    }
    Grid::from_spacing(lower, spacing, cells)
}

/// One shown frame: the density on its grid, or why there is none.
pub(super) struct Frame {
    pub(super) label: String,
    pub(super) values: Option<Vec<f64>>,
}

/// The density of `species` at A's step `step` in run A (`b = false`) or B.
pub(super) fn frame(
    data: &PlotData,
    b: bool,
    step: u64,
    time: f64,
    species: &str,
    grid: &Grid,
) -> Result<Frame> {
    let (run, s, t) = if b {
        let run = data.b.as_ref().expect("a pair");
        match data.b_step.get(&step) {
            Some(&(sb, tb)) => (run, sb, tb),
            None => {
                return Ok(Frame {
                    label: format!("no frame at {}", data.a.step_label(step, time)),
                    values: None,
                });
            }
        }
    } else {
        (&data.a, step, time)
    };
    let values = run.densities.evaluate(s, species, grid)?;
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::Numerical(format!(
            "{}: the density of species \"{species}\" at step {s} is {bad} somewhere (values too large for f64)",
            run.densities.data_file().display()
        )));
    }
    Ok(Frame {
        label: run.step_label(s, t),
        values: Some(values),
    })
}

/// The directories a figure reads (for the `--out` check).
pub(super) fn inputs(a: &Path, b: Option<&Path>) -> Vec<PathBuf> {
    crate::compare::protected_paths(a, b.unwrap_or(a))
}
