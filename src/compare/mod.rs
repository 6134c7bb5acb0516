//! `jko compare DIR_A DIR_B`: distances between two runs, step by step.
//!
//! A run directory holds either `particles.csv` (a particle run) or
//! `density.csv` (a grid run, SPEC §5), plus `energy.csv` and usually
//! `scenario.toml`. The dimension is read from the coordinate columns; both
//! runs must have the same one. For every written step present in both runs
//! (matched by `step`; their `time` values must agree to 1e-12 relative) and
//! every species present in both, [`compare_runs`] computes:
//!
//! * **mass, mean, covariance** of each side. Particles: M = sum_i w_i,
//!   mean = sum_i w_i X_i / M, cov = sum_i w_i (X_i - mean)(X_i - mean)^T / M.
//!   Grid: the same sums over cell centres with weights rho_c V (V the cell
//!   volume), i.e. the midpoint rule (no within-cell variance h^2/12 added).
//!   The covariance is that of the normalized law.
//! * **L1 = int |rho_A - rho_B|**, by the midpoint rule on a common grid:
//!   - if one side or both are grids: per axis the finer of the grids'
//!     spacings, over the union of both sides' boxes (a grid's box is its cell
//!     edges; a particle cloud's box is its bounding box padded by the kernel's
//!     support radius R, where its estimate vanishes);
//!   - if both are particle runs: 256 cells per axis in 1D, 128 in 2D, 48 in 3D
//!     over the union of the clouds' bounding boxes padded by 4 R
//!     (R = the larger support radius of the two sides).
//!
//!   A grid side is interpolated multilinearly between its cell centres
//!   (constant between its outermost centres and its box edges, zero outside
//!   its box). A particle side is the solver's own estimate
//!   rho(x) = sum_j w_j K_eps(x - X_j) with the Wendland C2 kernel
//!   ([`WendlandC2`]); eps is the run's bandwidth: `[density] bandwidth` of the
//!   run's `scenario.toml` if a number, else ("auto", or no scenario.toml,
//!   which is noted) the solver's rule [`choose_estimator`] on the
//!   species' step-0 particles, with the species' diffusion, the time step
//!   and the `[density]` settings of the scenario (without a scenario, its
//!   neighbour-count part [`auto_bandwidth`]). A run whose densities were
//!   summed on the mesh is compared through the Wendland kernel of the same
//!   eps (the mesh's kernel has its mass and variance, not its exact
//!   shape). The estimate is evaluated at the cell centres with a kd-tree,
//!   in parallel, each cell summing its neighbours in index order (the same
//!   bits on any thread count).
//! * **W1, W2** (d = 1 only), exactly: both sides are normalized to
//!   probability measures; particles are weighted Diracs (step quantile
//!   function), grid cells are uniform on their cell (piecewise-linear
//!   quantile function). W_p^p = int_0^1 |Q_A(t) - Q_B(t)|^p dt is integrated
//!   in closed form on each piece between the merged breakpoints in t of both
//!   quantile functions, where Q_A - Q_B is linear, D(s) = d0 + (d1 - d0) s:
//!   int |D| = L (|d0| + |d1|)/2 if d0 d1 >= 0, else L (d0^2 + d1^2) / (2 (|d0| + |d1|));
//!   int D^2 = L (d0^2 + d0 d1 + d1^2) / 3 (L the piece's length in t).
//! * **dE = energy_A - energy_B** from the two `energy.csv` files, at every step
//!   present in both (the `energy` curve of [`Comparison`]); the rows carry the
//!   value at their step when both files have it.
//!
//! Inputs that cannot be compared are refused with the file, line and column
//! ([`Error::Input`]): coordinates beyond [`crate::particles::file::MAX_COORDINATE`],
//! negative densities, frames that do not hold every species with the same
//! particles (or grid) as the other frames (a file cut short), a zero mass, an
//! automatic bandwidth a kernel cannot use ([`MIN_BANDWIDTH`],
//! [`MIN_RELATIVE_BANDWIDTH`]). Every number of a row is checked: one that is
//! not finite is an [`Error::Numerical`] naming the step, species and measure.
//!
//! The CSV table goes through [`crate::io::output::replace_file`]: never over a
//! link, a device, a FIFO or a directory, never over a file of the compared
//! runs ([`protected_paths`]), over an existing regular file only if asked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rayon::prelude::*;

use crate::density::{auto_bandwidth, choose_estimator};
use crate::error::{Error, Result};
use crate::io::output::{DENSITY, ENERGY, EVENTS, PARTIAL_SUFFIX, PARTICLES, SCENARIO_COPY};
use crate::io::scenario::{Bandwidth, Scenario};
use crate::model::kernel::{RadialKernel, WendlandC2};
use crate::particles::file::{
    ParticleTable, parse_coordinate, parse_f64 as cell_f64, parse_u64 as cell_u64,
};
use crate::util::parallel::{CHUNK, sum_indexed};

const AXES: [&str; 3] = ["x", "y", "z"];

/// Relative tolerance for the `time` of a common step.
pub const TIME_TOLERANCE: f64 = 1e-12;
/// Masses are called different (and W1/W2 say `normalized`) beyond this relative gap.
pub const MASS_TOLERANCE: f64 = 1e-9;
/// Largest common grid the L1 distance may use.
pub const MAX_COMMON_CELLS: usize = 1 << 24;
/// Cells per axis of the common grid when both runs are particle runs (d = 1, 2, 3).
pub const PARTICLE_GRID_CELLS: [usize; 3] = [256, 128, 48];
/// Padding of the common grid of two particle runs, in kernel support radii.
pub const PARTICLE_GRID_PADDING: f64 = 4.0;

/// What a run directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `particles.csv`.
    Particles,
    /// `density.csv` (an Eulerian run).
    Grid,
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunKind::Particles => "particles",
            RunKind::Grid => "grid",
        })
    }
}

/// One side of a comparison.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub dir: PathBuf,
    pub kind: RunKind,
    /// The data file read (`particles.csv` or `density.csv`).
    pub data_file: PathBuf,
    /// Kernel bandwidth eps per species (particle runs, common species only).
    pub bandwidths: BTreeMap<String, f64>,
}

/// The comparison of one species at one written step.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub step: u64,
    pub time: f64,
    pub species: String,
    pub mass_a: f64,
    pub mass_b: f64,
    /// Means (length d).
    pub mean_a: Vec<f64>,
    pub mean_b: Vec<f64>,
    /// Covariances of the normalized laws, d x d row-major.
    pub cov_a: Vec<f64>,
    pub cov_b: Vec<f64>,
    /// |mean_a - mean_b| (Euclidean).
    pub mean_distance: f64,
    /// ||cov_a - cov_b|| (Frobenius).
    pub cov_distance: f64,
    /// int |rho_A - rho_B| on the common grid.
    pub l1: f64,
    /// Cells per axis and spacing of the common grid used for `l1`.
    pub l1_cells: Vec<usize>,
    pub l1_spacing: Vec<f64>,
    /// d = 1 only: Wasserstein distances of the normalized laws.
    pub w1: Option<f64>,
    pub w2: Option<f64>,
    /// The masses differ (relative gap > [`MASS_TOLERANCE`]): W1/W2 compare
    /// the laws normalized to mass 1.
    pub normalized: bool,
    /// energy_A, energy_B at this step, when both energy files have it.
    pub energy_a: Option<f64>,
    pub energy_b: Option<f64>,
}

impl Row {
    /// energy_A - energy_B.
    pub fn energy_diff(&self) -> Option<f64> {
        Some(self.energy_a? - self.energy_b?)
    }
}

/// One point of the energy curves (a step present in both energy files).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyPoint {
    pub step: u64,
    pub time: f64,
    pub energy_a: f64,
    pub energy_b: f64,
}

impl EnergyPoint {
    pub fn diff(&self) -> f64 {
        self.energy_a - self.energy_b
    }
}

/// The result of [`compare_runs`]. `Display` renders the terminal table.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub dimension: usize,
    pub a: RunInfo,
    pub b: RunInfo,
    /// One row per common written step and common species, by step then species.
    pub rows: Vec<Row>,
    /// energy_A and energy_B at every step present in both energy files.
    pub energy: Vec<EnergyPoint>,
    /// Things the user should know (fallbacks, clamped values, ...).
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------
// Locating the files
// ---------------------------------------------------------------------------

struct RunFiles {
    dir: PathBuf,
    kind: RunKind,
    data: PathBuf,
    energy: PathBuf,
    scenario: Option<PathBuf>,
}

fn locate(dir: &Path) -> Result<RunFiles> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::input(dir, "run directory", format!("cannot open it: {e}")))?;
    if !meta.is_dir() {
        return Err(Error::input(
            dir,
            "run directory",
            "not a directory (give the --out directory of a run)",
        ));
    }
    let p = dir.join(PARTICLES);
    let g = dir.join(DENSITY);
    let (kind, data) = match (p.is_file(), g.is_file()) {
        (true, false) => (RunKind::Particles, p),
        (false, true) => (RunKind::Grid, g),
        (true, true) => {
            return Err(Error::input(
                dir,
                "run directory",
                format!(
                    "holds both {PARTICLES} and {DENSITY}: cannot tell a particle run from a grid run"
                ),
            ));
        }
        (false, false) => {
            return Err(Error::input(
                dir,
                "run directory",
                format!("holds neither {PARTICLES} (particle run) nor {DENSITY} (grid run)"),
            ));
        }
    };
    let energy = dir.join(ENERGY);
    if !energy.is_file() {
        return Err(Error::input(
            &energy,
            "file",
            "missing: every run writes energy.csv",
        ));
    }
    let s = dir.join(SCENARIO_COPY);
    Ok(RunFiles {
        dir: dir.to_path_buf(),
        kind,
        data,
        energy,
        scenario: s.is_file().then_some(s),
    })
}

/// The dimension of a data file, from its coordinate columns.
fn dimension_of(file: &Path) -> Result<usize> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(file)
        .map_err(|e| Error::input(file, "file", format!("cannot open: {e}")))?;
    let headers = rdr
        .headers()
        .map_err(|e| Error::input(file, "header", format!("cannot read the header row: {e}")))?;
    let has: Vec<bool> = AXES
        .iter()
        .map(|a| headers.iter().any(|h| h.trim() == *a))
        .collect();
    match has.as_slice() {
        [true, false, false] => Ok(1),
        [true, true, false] => Ok(2),
        [true, true, true] => Ok(3),
        [false, false, false] => Err(Error::input(
            file,
            "header",
            "no coordinate column (expected x, x,y or x,y,z)",
        )),
        _ => Err(Error::input(
            file,
            "header",
            "the coordinate columns must be x, x,y or x,y,z",
        )),
    }
}

// ---------------------------------------------------------------------------
// Grid runs
// ---------------------------------------------------------------------------

/// One species at one step of a grid run: a full regular box grid.
#[derive(Debug, Clone)]
struct GridFrame<const D: usize> {
    /// Distinct cell-centre coordinates per axis, ascending.
    coords: [Vec<f64>; D],
    h: [f64; D],
    /// Densities, axis 0 fastest.
    rho: Vec<f64>,
}

impl<const D: usize> GridFrame<D> {
    fn n(&self, a: usize) -> usize {
        self.coords[a].len()
    }
    fn cell_volume(&self) -> f64 {
        self.h.iter().product()
    }
    fn lower(&self, a: usize) -> f64 {
        self.coords[a][0] - 0.5 * self.h[a]
    }
    fn upper(&self, a: usize) -> f64 {
        self.coords[a][self.n(a) - 1] + 0.5 * self.h[a]
    }
    fn centre(&self, mut lin: usize) -> [f64; D] {
        std::array::from_fn(|a| {
            let n = self.n(a);
            let i = lin % n;
            lin /= n;
            self.coords[a][i]
        })
    }

    /// Multilinear interpolation at `p`; constant between the outermost
    /// centres and the box edges, zero outside the box.
    fn interpolate(&self, p: &[f64; D]) -> f64 {
        let mut base = [0usize; D];
        let mut frac = [0.0f64; D];
        for a in 0..D {
            let n = self.n(a);
            let tol = 1e-9 * self.h[a];
            if p[a] < self.lower(a) - tol || p[a] > self.upper(a) + tol {
                return 0.0;
            }
            let mut u = (p[a] - self.coords[a][0]) / self.h[a];
            let r = u.round();
            if (u - r).abs() < 1e-9 {
                u = r;
            }
            let u = u.clamp(0.0, (n - 1) as f64);
            let i0 = (u.floor() as usize).min(n - 2);
            base[a] = i0;
            frac[a] = u - i0 as f64;
        }
        let mut s = 0.0;
        for corner in 0..(1usize << D) {
            let mut wgt = 1.0;
            let mut lin = 0;
            let mut stride = 1;
            for a in 0..D {
                let up = (corner >> a) & 1 == 1;
                let f = if up { frac[a] } else { 1.0 - frac[a] };
                if f == 0.0 {
                    wgt = 0.0;
                    break;
                }
                wgt *= f;
                lin += (base[a] + usize::from(up)) * stride;
                stride *= self.n(a);
            }
            if wgt != 0.0 {
                s += wgt * self.rho[lin];
            }
        }
        s
    }
}

struct GridRun<const D: usize> {
    file: PathBuf,
    times: BTreeMap<u64, f64>,
    frames: BTreeMap<(u64, String), GridFrame<D>>,
}

fn header_index(file: &Path, headers: &csv::StringRecord, name: &str) -> Result<usize> {
    headers
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| Error::input(file, "header", format!("missing required column `{name}`")))
}

fn open_csv(file: &Path) -> Result<(csv::Reader<std::fs::File>, csv::StringRecord)> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(file)
        .map_err(|e| Error::input(file, "file", format!("cannot open: {e}")))?;
    let headers = rdr
        .headers()
        .map_err(|e| Error::input(file, "header", format!("cannot read the header row: {e}")))?
        .clone();
    Ok((rdr, headers))
}

fn next_record(
    file: &Path,
    rdr: &mut csv::Reader<std::fs::File>,
    rec: &mut csv::StringRecord,
) -> Result<Option<u64>> {
    let more = rdr.read_record(rec).map_err(|e| {
        let loc = e
            .position()
            .map(|p| format!("line {}", p.line()))
            .unwrap_or_else(|| "row".into());
        Error::input(file, loc, format!("malformed row: {e}"))
    })?;
    Ok(more.then(|| rec.position().map(|p| p.line()).unwrap_or(0)))
}

/// Read density.csv (SPEC §5) and check each (step, species) is a full regular grid.
fn read_grid_run<const D: usize>(file: &Path) -> Result<GridRun<D>> {
    let (mut rdr, headers) = open_csv(file)?;
    let c_step = header_index(file, &headers, "step")?;
    let c_time = header_index(file, &headers, "time")?;
    let c_species = header_index(file, &headers, "species")?;
    let c_rho = header_index(file, &headers, "density")?;
    let mut c_axes = [0usize; D];
    for (a, c) in c_axes.iter_mut().enumerate() {
        *c = header_index(file, &headers, AXES[a])?;
    }
    type Rows<const D: usize> = Vec<(u64, [f64; D], f64)>;
    let mut groups: BTreeMap<(u64, String), Rows<D>> = BTreeMap::new();
    let mut times: BTreeMap<u64, (f64, u64)> = BTreeMap::new();
    let mut rec = csv::StringRecord::new();
    while let Some(line) = next_record(file, &mut rdr, &mut rec)? {
        let cell = |c: usize| rec.get(c).unwrap_or("");
        let step = cell_u64(file, line, "step", cell(c_step))?;
        let time = cell_f64(file, line, "time", cell(c_time))?;
        let species = cell(c_species).trim();
        if species.is_empty() {
            return Err(Error::input(
                file,
                format!("line {line}, column `species`"),
                "empty species name",
            ));
        }
        let mut x = [0.0; D];
        for a in 0..D {
            x[a] = parse_coordinate(file, line, AXES[a], cell(c_axes[a]))?;
        }
        let rho = cell_f64(file, line, "density", cell(c_rho))?;
        if rho < 0.0 {
            return Err(Error::input(
                file,
                format!("line {line}, column `density`"),
                format!("{rho}: a density cannot be negative"),
            ));
        }
        let (t0, l0) = *times.entry(step).or_insert((time, line));
        if t0 != time {
            return Err(Error::input(
                file,
                format!("line {line}, column `time`"),
                format!("step {step} has time {time} here but {t0} on line {l0}"),
            ));
        }
        groups
            .entry((step, species.to_string()))
            .or_default()
            .push((line, x, rho));
    }
    if groups.is_empty() {
        return Err(Error::input(
            file,
            "rows",
            "no density rows (the file is empty or has only a header)",
        ));
    }
    let mut frames = BTreeMap::new();
    for ((step, species), rows) in groups {
        let frame = build_grid_frame::<D>(file, step, &species, &rows)?;
        frames.insert((step, species), frame);
    }
    check_grid_frames(file, &frames)?;
    Ok(GridRun {
        file: file.to_path_buf(),
        times: times.into_iter().map(|(s, (t, _))| (s, t)).collect(),
        frames,
    })
}

/// Every species at every step of the file, on the same grid: a file cut
/// short in its last frame can still hold a full (smaller) box there.
fn check_grid_frames<const D: usize>(
    file: &Path,
    frames: &BTreeMap<(u64, String), GridFrame<D>>,
) -> Result<()> {
    let steps: BTreeSet<u64> = frames.keys().map(|(s, _)| *s).collect();
    let species: BTreeSet<&str> = frames.keys().map(|(_, sp)| sp.as_str()).collect();
    let dims = |g: &GridFrame<D>| -> String {
        let n: Vec<String> = g.coords.iter().map(|c| c.len().to_string()).collect();
        format!("{} cells ({})", g.rho.len(), n.join(" x "))
    };
    for sp in species {
        let mut first: Option<(u64, &GridFrame<D>)> = None;
        for &step in &steps {
            let Some(g) = frames.get(&(step, sp.to_string())) else {
                return Err(Error::input(
                    file,
                    format!("step {step}"),
                    format!(
                        "no rows for species \"{sp}\" at step {step}, though the file has it at other steps: the frame is incomplete (was the file cut short?)"
                    ),
                ));
            };
            match first {
                None => first = Some((step, g)),
                Some((s0, g0)) => {
                    if !same_grid(g, g0) {
                        return Err(Error::input(
                            file,
                            format!("step {step}"),
                            format!(
                                "species \"{sp}\" has {} at step {step} but {} at step {s0}: every frame of a grid run covers the same grid (was the file cut short?)",
                                dims(g),
                                dims(g0)
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The same cell centres, up to the tolerance of [`build_grid_frame`]'s regularity check.
fn same_grid<const D: usize>(g: &GridFrame<D>, g0: &GridFrame<D>) -> bool {
    (0..D).all(|a| {
        g.coords[a].len() == g0.coords[a].len()
            && g.coords[a]
                .iter()
                .zip(&g0.coords[a])
                .all(|(x, y)| (x - y).abs() <= 1e-6 * g0.h[a])
    })
}

fn build_grid_frame<const D: usize>(
    file: &Path,
    step: u64,
    species: &str,
    rows: &[(u64, [f64; D], f64)],
) -> Result<GridFrame<D>> {
    let what = format!("step {step}, species \"{species}\"");
    let mut coords: [Vec<f64>; D] = std::array::from_fn(|_| Vec::new());
    let mut h = [0.0; D];
    for a in 0..D {
        let mut c: Vec<f64> = rows.iter().map(|r| r.1[a]).collect();
        c.sort_by(f64::total_cmp);
        c.dedup();
        let n = c.len();
        if n < 2 {
            return Err(Error::input(
                file,
                format!("column `{}`", AXES[a]),
                format!(
                    "{what}: a single cell centre along {} ({}): cannot infer the grid spacing",
                    AXES[a], c[0]
                ),
            ));
        }
        let step_h = (c[n - 1] - c[0]) / (n - 1) as f64;
        for k in 1..n {
            let gap = c[k] - c[k - 1];
            if (gap - step_h).abs() > 1e-6 * step_h {
                return Err(Error::input(
                    file,
                    format!("column `{}`", AXES[a]),
                    format!(
                        "{what}: the cell centres are not a regular grid: the gap between {} = {} and {} is {gap}, but the mean spacing is {step_h}",
                        AXES[a],
                        c[k - 1],
                        c[k]
                    ),
                ));
            }
        }
        h[a] = step_h;
        coords[a] = c;
    }
    let total: usize = coords.iter().map(Vec::len).product();
    let mut rho = vec![f64::NAN; total];
    let mut seen_line = vec![0u64; total];
    for (line, x, v) in rows {
        let mut lin = 0;
        let mut stride = 1;
        for a in 0..D {
            let i = coords[a]
                .binary_search_by(|c| c.total_cmp(&x[a]))
                .expect("every coordinate is in the list");
            lin += i * stride;
            stride *= coords[a].len();
        }
        if seen_line[lin] != 0 {
            return Err(Error::input(
                file,
                format!("line {line}"),
                format!(
                    "{what}: cell centre {:?} appears twice (also on line {})",
                    x, seen_line[lin]
                ),
            ));
        }
        seen_line[lin] = *line;
        rho[lin] = *v;
    }
    if rows.len() != total {
        let dims: Vec<String> = coords.iter().map(|c| c.len().to_string()).collect();
        return Err(Error::input(
            file,
            "rows",
            format!(
                "{what}: {} rows, but the cell centres span a {} box grid of {total} cells: the grid is not a full box",
                rows.len(),
                dims.join(" x ")
            ),
        ));
    }
    Ok(GridFrame { coords, h, rho })
}

// ---------------------------------------------------------------------------
// Particle runs
// ---------------------------------------------------------------------------

struct ParticleRun<const D: usize> {
    file: PathBuf,
    table: ParticleTable<D>,
    times: BTreeMap<u64, f64>,
    /// Rows of each (step, species), in file order.
    rows: BTreeMap<(u64, String), Vec<usize>>,
}

fn read_particle_run<const D: usize>(file: &Path) -> Result<ParticleRun<D>> {
    let table = ParticleTable::<D>::read(file)?;
    let mut times: BTreeMap<u64, (f64, u64)> = BTreeMap::new();
    let mut rows: BTreeMap<(u64, String), Vec<usize>> = BTreeMap::new();
    for r in 0..table.steps.len() {
        let (step, time, line) = (table.steps[r], table.times[r], table.lines[r]);
        match rows.get_mut(&(step, table.species[r].clone())) {
            Some(v) => v.push(r),
            None => {
                rows.insert((step, table.species[r].clone()), vec![r]);
            }
        }
        let (t0, l0) = *times.entry(step).or_insert((time, line));
        if t0 != time {
            return Err(Error::input(
                file,
                format!("line {line}, column `time`"),
                format!("step {step} has time {time} here but {t0} on line {l0}"),
            ));
        }
    }
    Ok(ParticleRun {
        file: file.to_path_buf(),
        table,
        times: times.into_iter().map(|(s, (t, _))| (s, t)).collect(),
        rows,
    })
}

/// The bandwidth the solver used for `species`, and a note if it had to be guessed.
fn particle_bandwidth<const D: usize>(
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

// ---------------------------------------------------------------------------
// Sides: the two runs behind one interface
// ---------------------------------------------------------------------------

enum Run<const D: usize> {
    Particles(ParticleRun<D>),
    Grid(GridRun<D>),
}

impl<const D: usize> Run<D> {
    fn file(&self) -> &Path {
        match self {
            Run::Particles(r) => &r.file,
            Run::Grid(r) => &r.file,
        }
    }
    fn times(&self) -> &BTreeMap<u64, f64> {
        match self {
            Run::Particles(r) => &r.times,
            Run::Grid(r) => &r.times,
        }
    }
    fn species(&self) -> BTreeSet<String> {
        match self {
            Run::Particles(r) => r.table.species.iter().cloned().collect(),
            Run::Grid(r) => r.frames.keys().map(|(_, s)| s.clone()).collect(),
        }
    }
}

/// One species at one step, ready for the metrics.
enum Measure<'a, const D: usize> {
    Particles {
        x: Vec<[f64; D]>,
        w: Vec<f64>,
        kernel: WendlandC2,
    },
    Grid(&'a GridFrame<D>),
}

struct Moments {
    mass: f64,
    mean: Vec<f64>,
    cov: Vec<f64>,
}

fn weighted_moments<const D: usize>(
    n: usize,
    point: impl Fn(usize) -> [f64; D],
    weight: impl Fn(usize) -> f64,
) -> Moments {
    let mut mass = 0.0;
    let mut first = [0.0; D];
    for i in 0..n {
        let (x, w) = (point(i), weight(i));
        mass += w;
        for a in 0..D {
            first[a] += w * x[a];
        }
    }
    let mean: Vec<f64> = first.iter().map(|s| s / mass).collect();
    let mut cov = vec![0.0; D * D];
    for i in 0..n {
        let (x, w) = (point(i), weight(i));
        for a in 0..D {
            for b in 0..D {
                cov[a * D + b] += w * (x[a] - mean[a]) * (x[b] - mean[b]);
            }
        }
    }
    for c in &mut cov {
        *c /= mass;
    }
    Moments { mass, mean, cov }
}

impl<const D: usize> Measure<'_, D> {
    fn moments(&self) -> Moments {
        match self {
            Measure::Particles { x, w, .. } => weighted_moments::<D>(x.len(), |i| x[i], |i| w[i]),
            Measure::Grid(g) => {
                let v = g.cell_volume();
                weighted_moments::<D>(g.rho.len(), |i| g.centre(i), |i| g.rho[i] * v)
            }
        }
    }

    /// The box where the measure's density can be non-zero.
    fn bounds(&self) -> ([f64; D], [f64; D]) {
        match self {
            Measure::Particles { x, kernel, .. } => {
                let (lo, hi) = crate::util::parallel::bounding_box(x);
                let r = kernel.support();
                (lo.map(|v| v - r), hi.map(|v| v + r))
            }
            Measure::Grid(g) => (
                std::array::from_fn(|a| g.lower(a)),
                std::array::from_fn(|a| g.upper(a)),
            ),
        }
    }

    /// The density at every cell centre of `grid`.
    fn evaluate(&self, grid: &CommonGrid<D>) -> Vec<f64> {
        let mut out = vec![0.0; grid.len()];
        match self {
            Measure::Grid(g) => {
                out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
                    for (k, v) in o.iter_mut().enumerate() {
                        *v = g.interpolate(&grid.centre(c * CHUNK + k));
                    }
                });
            }
            Measure::Particles { x, w, kernel } => {
                let tree: ImmutableKdTree<f64, D> =
                    ImmutableKdTree::new_from_slice(x).expect("finite positions");
                let r = kernel.support();
                let r2 = r * r;
                out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
                    let mut nb: Vec<usize> = Vec::new();
                    for (k, v) in o.iter_mut().enumerate() {
                        let p = grid.centre(c * CHUNK + k);
                        nb.clear();
                        tree.query(&p)
                            .within::<SquaredEuclidean<f64>>(r2)
                            .unsorted()
                            .visit(|it| nb.push(it.item as usize));
                        // Index order: the same sum whatever the tree's visit order.
                        nb.sort_unstable();
                        let mut s = 0.0;
                        for &j in &nb {
                            s += w[j] * kernel.value(dist2(&p, &x[j]));
                        }
                        *v = s;
                    }
                });
            }
        }
        out
    }

    /// The quantile function of the normalized law (d = 1).
    fn quantile(&self) -> Vec<Piece> {
        match self {
            Measure::Particles { x, w, .. } => {
                let mut order: Vec<usize> = (0..x.len()).collect();
                order.sort_by(|&i, &j| x[i][0].total_cmp(&x[j][0]).then(i.cmp(&j)));
                let m: f64 = order.iter().map(|&i| w[i]).sum();
                let mut pieces = Vec::with_capacity(x.len());
                let (mut acc, mut t0) = (0.0, 0.0);
                for (k, &i) in order.iter().enumerate() {
                    acc += w[i];
                    let t1 = if k + 1 == order.len() { 1.0 } else { acc / m };
                    if t1 > t0 {
                        pieces.push(Piece {
                            t0,
                            t1,
                            q0: x[i][0],
                            q1: x[i][0],
                        });
                        t0 = t1;
                    }
                }
                pieces
            }
            Measure::Grid(g) => {
                let c = &g.coords[0];
                let n = c.len();
                // The reader refused negative densities.
                let m: f64 = g.rho.iter().sum();
                let edge = |i: usize| {
                    if i == 0 {
                        c[0] - 0.5 * g.h[0]
                    } else if i == n {
                        c[n - 1] + 0.5 * g.h[0]
                    } else {
                        0.5 * (c[i - 1] + c[i])
                    }
                };
                let last = g.rho.iter().rposition(|&r| r > 0.0).unwrap_or(0);
                let mut pieces = Vec::with_capacity(n);
                let (mut acc, mut t0) = (0.0, 0.0);
                for i in 0..=last {
                    let r = g.rho[i];
                    if r == 0.0 {
                        continue;
                    }
                    acc += r;
                    let t1 = if i == last { 1.0 } else { acc / m };
                    if t1 > t0 {
                        pieces.push(Piece {
                            t0,
                            t1,
                            q0: edge(i),
                            q1: edge(i + 1),
                        });
                        t0 = t1;
                    }
                }
                pieces
            }
        }
    }
}

#[inline]
fn dist2<const D: usize>(a: &[f64; D], b: &[f64; D]) -> f64 {
    let mut s = 0.0;
    for k in 0..D {
        let d = a[k] - b[k];
        s += d * d;
    }
    s
}

// ---------------------------------------------------------------------------
// The common grid of the L1 distance
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct CommonGrid<const D: usize> {
    lower: [f64; D],
    h: [f64; D],
    n: [usize; D],
}

impl<const D: usize> CommonGrid<D> {
    fn len(&self) -> usize {
        self.n.iter().product()
    }
    fn cell_volume(&self) -> f64 {
        self.h.iter().product()
    }
    fn centre(&self, mut lin: usize) -> [f64; D] {
        std::array::from_fn(|a| {
            let i = lin % self.n[a];
            lin /= self.n[a];
            self.lower[a] + (i as f64 + 0.5) * self.h[a]
        })
    }

    fn for_pair(a: &Measure<D>, b: &Measure<D>, file: &Path, what: &str) -> Result<Self> {
        let grids: Vec<&GridFrame<D>> = [a, b]
            .into_iter()
            .filter_map(|m| match m {
                Measure::Grid(g) => Some(*g),
                _ => None,
            })
            .collect();
        let grid = if grids.is_empty() {
            let (
                Measure::Particles {
                    x: xa, kernel: ka, ..
                },
                Measure::Particles {
                    x: xb, kernel: kb, ..
                },
            ) = (a, b)
            else {
                unreachable!()
            };
            let (la, ha) = crate::util::parallel::bounding_box(xa);
            let (lb, hb) = crate::util::parallel::bounding_box(xb);
            let pad = PARTICLE_GRID_PADDING * ka.support().max(kb.support());
            let cells = PARTICLE_GRID_CELLS[D - 1];
            let lower: [f64; D] = std::array::from_fn(|k| la[k].min(lb[k]) - pad);
            let upper: [f64; D] = std::array::from_fn(|k| ha[k].max(hb[k]) + pad);
            CommonGrid {
                lower,
                h: std::array::from_fn(|k| (upper[k] - lower[k]) / cells as f64),
                n: [cells; D],
            }
        } else {
            let (la, ua) = a.bounds();
            let (lb, ub) = b.bounds();
            let h: [f64; D] =
                std::array::from_fn(|k| grids.iter().map(|g| g.h[k]).fold(f64::INFINITY, f64::min));
            let lower: [f64; D] = std::array::from_fn(|k| la[k].min(lb[k]));
            let n: [usize; D] = std::array::from_fn(|k| {
                let cells = (ua[k].max(ub[k]) - lower[k]) / h[k];
                // A box that is a whole number of cells up to rounding keeps that number.
                let r = cells.round();
                let c = if (cells - r).abs() < 1e-6 {
                    r
                } else {
                    cells.ceil()
                };
                (c as usize).max(1)
            });
            CommonGrid { lower, h, n }
        };
        let total = grid.n.iter().try_fold(1usize, |acc, &k| acc.checked_mul(k));
        match total {
            Some(t) if t <= MAX_COMMON_CELLS => Ok(grid),
            _ => Err(Error::input(
                file,
                "grid",
                format!(
                    "{what}: the common grid of the L1 distance would have {:?} cells (more than {MAX_COMMON_CELLS}): the runs' boxes are too far apart for their spacing",
                    grid.n
                ),
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Exact W1/W2 in 1D
// ---------------------------------------------------------------------------

/// A piece of a quantile function: linear from (t0, q0) to (t1, q1).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Piece {
    t0: f64,
    t1: f64,
    q0: f64,
    q1: f64,
}

impl Piece {
    fn at(&self, t: f64) -> f64 {
        if self.q0 == self.q1 {
            return self.q0;
        }
        let s = ((t - self.t0) / (self.t1 - self.t0)).clamp(0.0, 1.0);
        self.q0 + (self.q1 - self.q0) * s
    }
}

/// int_0^L |d0 + (d1 - d0) t/L| dt and int_0^L (d0 + (d1 - d0) t/L)^2 dt.
fn linear_piece_integrals(len: f64, d0: f64, d1: f64) -> (f64, f64) {
    let abs = if d0 * d1 >= 0.0 {
        0.5 * len * (d0.abs() + d1.abs())
    } else {
        0.5 * len * (d0 * d0 + d1 * d1) / (d0.abs() + d1.abs())
    };
    let sq = len * (d0 * d0 + d0 * d1 + d1 * d1) / 3.0;
    (abs, sq)
}

/// (W1, W2) between two laws on the line given by their quantile functions.
fn wasserstein_1d(a: &[Piece], b: &[Piece]) -> (f64, f64) {
    let (mut i, mut j) = (0, 0);
    let mut t = 0.0;
    let (mut w1, mut w2sq) = (0.0, 0.0);
    while i < a.len() && j < b.len() {
        let t1 = a[i].t1.min(b[j].t1);
        if t1 > t {
            let d0 = a[i].at(t) - b[j].at(t);
            let d1 = a[i].at(t1) - b[j].at(t1);
            let (p1, p2) = linear_piece_integrals(t1 - t, d0, d1);
            w1 += p1;
            w2sq += p2;
            t = t1;
        }
        if a[i].t1 <= t {
            i += 1;
        }
        if j < b.len() && b[j].t1 <= t {
            j += 1;
        }
    }
    (w1, w2sq.sqrt())
}

// ---------------------------------------------------------------------------
// Energy files
// ---------------------------------------------------------------------------

fn read_energy(file: &Path) -> Result<BTreeMap<u64, (f64, f64)>> {
    let (mut rdr, headers) = open_csv(file)?;
    let c_step = header_index(file, &headers, "step")?;
    let c_time = header_index(file, &headers, "time")?;
    let c_energy = header_index(file, &headers, "energy")?;
    let mut out: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let mut lines: BTreeMap<u64, u64> = BTreeMap::new();
    let mut rec = csv::StringRecord::new();
    while let Some(line) = next_record(file, &mut rdr, &mut rec)? {
        let cell = |c: usize| rec.get(c).unwrap_or("");
        let step = cell_u64(file, line, "step", cell(c_step))?;
        let time = cell_f64(file, line, "time", cell(c_time))?;
        let e = cell_f64(file, line, "energy", cell(c_energy))?;
        if let Some(l0) = lines.insert(step, line) {
            return Err(Error::input(
                file,
                format!("line {line}, column `step`"),
                format!("step {step} appears twice (also on line {l0})"),
            ));
        }
        out.insert(step, (time, e));
    }
    if out.is_empty() {
        return Err(Error::input(
            file,
            "rows",
            "no energy rows (the file is empty or has only a header)",
        ));
    }
    Ok(out)
}

fn times_agree(ta: f64, tb: f64) -> bool {
    (ta - tb).abs() <= TIME_TOLERANCE * ta.abs().max(tb.abs())
}

fn list_steps<'a>(steps: impl Iterator<Item = &'a u64>) -> String {
    let v: Vec<String> = steps.map(|s| s.to_string()).collect();
    if v.len() <= 8 {
        v.join(", ")
    } else {
        format!(
            "{}, ..., {} ({} steps)",
            v[..4].join(", "),
            v[v.len() - 1],
            v.len()
        )
    }
}

// ---------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------

/// Compare the runs in directories `a` and `b` (see the module documentation).
pub fn compare_runs(a: &Path, b: &Path) -> Result<Comparison> {
    let fa = locate(a)?;
    let fb = locate(b)?;
    let da = dimension_of(&fa.data)?;
    let db = dimension_of(&fb.data)?;
    if da != db {
        return Err(Error::input(
            &fb.data,
            "header",
            format!(
                "dimension {db}, but {} has dimension {da}: runs of different dimensions cannot be compared",
                fa.data.display()
            ),
        ));
    }
    match da {
        1 => compare_dim::<1>(&fa, &fb),
        2 => compare_dim::<2>(&fa, &fb),
        _ => compare_dim::<3>(&fa, &fb),
    }
}

fn load<const D: usize>(f: &RunFiles) -> Result<(Run<D>, Option<Scenario>)> {
    let run = match f.kind {
        RunKind::Particles => Run::Particles(read_particle_run::<D>(&f.data)?),
        RunKind::Grid => Run::Grid(read_grid_run::<D>(&f.data)?),
    };
    let scenario = match (&f.scenario, f.kind) {
        (Some(p), RunKind::Particles) => {
            let s = Scenario::from_file(p)?;
            if s.dimension != D {
                return Err(Error::input(
                    p,
                    "dimension",
                    format!(
                        "the scenario says dimension {}, but {} has dimension {D}",
                        s.dimension,
                        f.data.display()
                    ),
                ));
            }
            Some(s)
        }
        _ => None,
    };
    Ok((run, scenario))
}

/// `sp` at `step` in `run`, or `None` if that run lacks it.
fn measure<'r, const D: usize>(
    run: &'r Run<D>,
    bw: &BTreeMap<String, f64>,
    step: u64,
    sp: &str,
) -> Option<Measure<'r, D>> {
    match run {
        Run::Particles(p) => {
            let rows = p.rows.get(&(step, sp.to_string()))?;
            Some(Measure::Particles {
                x: rows.iter().map(|&r| p.table.positions[r]).collect(),
                w: rows.iter().map(|&r| p.table.weights[r]).collect(),
                kernel: WendlandC2::new(D, bw[sp]),
            })
        }
        Run::Grid(g) => g.frames.get(&(step, sp.to_string())).map(Measure::Grid),
    }
}

fn compare_dim<const D: usize>(fa: &RunFiles, fb: &RunFiles) -> Result<Comparison> {
    let (ra, sa) = load::<D>(fa)?;
    let (rb, sb) = load::<D>(fb)?;
    let ea = read_energy(&fa.energy)?;
    let eb = read_energy(&fb.energy)?;
    let mut notes = Vec::new();

    let species: Vec<String> = ra.species().intersection(&rb.species()).cloned().collect();
    if species.is_empty() {
        return Err(Error::input(
            rb.file(),
            "column `species`",
            format!(
                "no species in common with {} (A has {:?}, B has {:?})",
                ra.file().display(),
                ra.species(),
                rb.species()
            ),
        ));
    }
    let steps: Vec<(u64, f64)> = ra
        .times()
        .iter()
        .filter(|(s, _)| rb.times().contains_key(s))
        .map(|(&s, &t)| (s, t))
        .collect();
    if steps.is_empty() {
        return Err(Error::input(
            rb.file(),
            "column `step`",
            format!(
                "no written step in common with {} (A has steps {}; B has steps {})",
                ra.file().display(),
                list_steps(ra.times().keys()),
                list_steps(rb.times().keys())
            ),
        ));
    }
    for &(s, ta) in &steps {
        let tb = rb.times()[&s];
        if !times_agree(ta, tb) {
            return Err(Error::input(
                rb.file(),
                format!("step {s}, column `time`"),
                format!(
                    "time {tb}, but {} has time {ta} at step {s}: the runs do not use the same time step",
                    ra.file().display()
                ),
            ));
        }
    }
    let mut energy = Vec::new();
    for (&s, &(ta, ea_s)) in &ea {
        if let Some(&(tb, eb_s)) = eb.get(&s) {
            if !times_agree(ta, tb) {
                return Err(Error::input(
                    &fb.energy,
                    format!("step {s}, column `time`"),
                    format!("time {tb}, but {} has time {ta}", fa.energy.display()),
                ));
            }
            if !(ea_s - eb_s).is_finite() {
                return Err(Error::Numerical(format!(
                    "step {s}: energy_A - energy_B = {ea_s:e} - {eb_s:e} is not a finite number ({} / {})",
                    fa.energy.display(),
                    fb.energy.display()
                )));
            }
            energy.push(EnergyPoint {
                step: s,
                time: ta,
                energy_a: ea_s,
                energy_b: eb_s,
            });
        }
    }
    if energy.is_empty() {
        notes.push(format!(
            "the energy files have no step in common: dE is blank ({} / {})",
            fa.energy.display(),
            fb.energy.display()
        ));
    }

    // Bandwidths of the particle sides.
    let mut bw_a = BTreeMap::new();
    let mut bw_b = BTreeMap::new();
    for (files, run, scen, bw) in [(fa, &ra, &sa, &mut bw_a), (fb, &rb, &sb, &mut bw_b)] {
        if let Run::Particles(p) = run {
            for sp in &species {
                let (eps, note) = particle_bandwidth(files, p, scen.as_ref(), sp)?;
                bw.insert(sp.clone(), eps);
                notes.extend(note);
            }
        }
    }

    let energy_at: HashMap<u64, EnergyPoint> = energy.iter().map(|e| (e.step, *e)).collect();
    let mut rows = Vec::new();
    for &(step, time) in &steps {
        for sp in &species {
            let (Some(ma), Some(mb)) =
                (measure(&ra, &bw_a, step, sp), measure(&rb, &bw_b, step, sp))
            else {
                notes.push(format!(
                    "step {step}: species \"{sp}\" is missing from one run; skipped"
                ));
                continue;
            };
            let what = format!("step {step}, species \"{sp}\"");
            let mo_a = ma.moments();
            let mo_b = mb.moments();
            for (mo, run) in [(&mo_a, &ra), (&mo_b, &rb)] {
                if mo.mass.is_nan() || mo.mass <= 0.0 {
                    return Err(Error::input(
                        run.file(),
                        format!("step {step}"),
                        format!("{what}: the total mass is {} (must be positive)", mo.mass),
                    ));
                }
            }
            let mean_distance = mo_a
                .mean
                .iter()
                .zip(&mo_b.mean)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>()
                .sqrt();
            let cov_distance = mo_a
                .cov
                .iter()
                .zip(&mo_b.cov)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>()
                .sqrt();

            let grid = CommonGrid::for_pair(&ma, &mb, ra.file(), &what)?;
            let va = ma.evaluate(&grid);
            let vb = mb.evaluate(&grid);
            let l1 = sum_indexed(va.len(), |i| (va[i] - vb[i]).abs()) * grid.cell_volume();

            let normalized =
                (mo_a.mass - mo_b.mass).abs() > MASS_TOLERANCE * mo_a.mass.max(mo_b.mass);
            let (w1, w2) = if D == 1 {
                let (w1, w2) = wasserstein_1d(&ma.quantile(), &mb.quantile());
                (Some(w1), Some(w2))
            } else {
                (None, None)
            };
            let e = energy_at.get(&step);
            let row = Row {
                step,
                time,
                species: sp.clone(),
                mass_a: mo_a.mass,
                mass_b: mo_b.mass,
                mean_a: mo_a.mean,
                mean_b: mo_b.mean,
                cov_a: mo_a.cov,
                cov_b: mo_b.cov,
                mean_distance,
                cov_distance,
                l1,
                l1_cells: grid.n.to_vec(),
                l1_spacing: grid.h.to_vec(),
                w1,
                w2,
                normalized,
                energy_a: e.map(|e| e.energy_a),
                energy_b: e.map(|e| e.energy_b),
            };
            check_finite(&row, ra.file(), rb.file())?;
            rows.push(row);
        }
    }
    if rows.iter().any(|r| r.normalized) && D == 1 {
        notes.push(
            "masses differ on rows marked *: W1/W2 compare the laws normalized to mass 1".into(),
        );
    }
    Ok(Comparison {
        dimension: D,
        a: RunInfo {
            dir: fa.dir.clone(),
            kind: fa.kind,
            data_file: fa.data.clone(),
            bandwidths: bw_a,
        },
        b: RunInfo {
            dir: fb.dir.clone(),
            kind: fb.kind,
            data_file: fb.data.clone(),
            bandwidths: bw_b,
        },
        rows,
        energy,
        notes,
    })
}

/// Every number of `row` is finite: an overflow (huge coordinates or
/// weights, a kernel too narrow for f64) is an error naming the step, the
/// species and the measure, never a result.
fn check_finite(row: &Row, fa: &Path, fb: &Path) -> Result<()> {
    let mut values: Vec<(&str, f64)> = vec![("mass A", row.mass_a), ("mass B", row.mass_b)];
    values.extend(row.mean_a.iter().map(|&v| ("mean A", v)));
    values.extend(row.mean_b.iter().map(|&v| ("mean B", v)));
    values.extend(row.cov_a.iter().map(|&v| ("covariance A", v)));
    values.extend(row.cov_b.iter().map(|&v| ("covariance B", v)));
    values.extend([
        ("|mean_A - mean_B|", row.mean_distance),
        ("|cov_A - cov_B|_F", row.cov_distance),
        ("L1", row.l1),
    ]);
    values.extend(row.w1.map(|v| ("W1", v)));
    values.extend(row.w2.map(|v| ("W2", v)));
    values.extend(row.energy_diff().map(|v| ("energy_A - energy_B", v)));
    match values.iter().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((what, v)) => Err(Error::Numerical(format!(
            "comparing {} and {}: step {}, species \"{}\": {what} = {v} is not a finite number (values too large for f64: check the coordinates, weights and energies)",
            fa.display(),
            fb.display(),
            row.step,
            row.species
        ))),
    }
}

/// Every path a comparison of the run directories `a` and `b` reads or that
/// belongs to those runs: their run files (`particles.csv`, `density.csv`,
/// `energy.csv`, `events.csv`, `scenario.toml`, checkpoints, lock and
/// `.partial` files), whether they exist or not, and every file in `a` or
/// `b` whose name starts with one of those names. `--out` may be none of them.
pub fn protected_paths(a: &Path, b: &Path) -> Vec<PathBuf> {
    const NAMES: [&str; 7] = [
        PARTICLES,
        DENSITY,
        ENERGY,
        EVENTS,
        SCENARIO_COPY,
        "checkpoint.jko",
        "checkpoint.prev.jko",
    ];
    let mut out = Vec::new();
    for dir in [a, b] {
        for name in NAMES {
            out.push(dir.join(name));
            out.push(dir.join(format!("{name}{PARTIAL_SUFFIX}")));
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let run_file = NAMES.iter().any(|n| name.starts_with(n))
                || [PARTIAL_SUFFIX, ".jko", ".lock"]
                    .iter()
                    .any(|s| name.ends_with(s));
            if run_file {
                out.push(e.path());
            }
        }
    }
    out
}

/// Check before comparing that `--out PATH` may be written
/// ([`crate::io::output::check_writable_target`] with the runs' files as inputs).
pub fn check_out_path(a: &Path, b: &Path, out: &Path, force: bool) -> Result<()> {
    crate::io::output::check_writable_target(out, &protected_paths(a, b), force)
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

impl Comparison {
    /// Header of [`Comparison::to_csv`] in dimension `d`.
    ///
    /// Columns, one row per common written step and common species
    /// (`A`, `B` the first and second run; empty cells mean "not defined"):
    ///
    /// | column | meaning |
    /// |---|---|
    /// | `step`, `time`, `species` | the written step, its time, the species' name |
    /// | `mass_a`, `mass_b`, `mass_diff` | total masses and mass_a - mass_b |
    /// | `mean_a_x`.., `mean_b_x`.., `mean_diff_x`.. | means per axis (x, y, z as the dimension has) and mean_a - mean_b |
    /// | `mean_distance` | \|mean_a - mean_b\| |
    /// | `cov_a_xx`, `cov_a_xy`, .. | covariance of A's normalized law, upper triangle (xx, xy, xz, yy, yz, zz as present); same for `cov_b_*` |
    /// | `cov_distance` | Frobenius norm of cov_a - cov_b (full matrix) |
    /// | `l1` | int \|rho_A - rho_B\| dx on the common grid |
    /// | `l1_cells_x`.., `l1_spacing_x`.. | that grid's cells and spacing per axis |
    /// | `w1`, `w2` | Wasserstein distances of the normalized laws (d = 1 only, else empty) |
    /// | `normalized` | `true` when the masses differ (relative > 1e-9), so W1/W2 compared normalized laws |
    /// | `bandwidth_a`, `bandwidth_b` | kernel eps of a particle side (empty for a grid side) |
    /// | `energy_a`, `energy_b`, `energy_diff` | total energies at the step from energy.csv and their difference (empty if a file lacks the step) |
    pub fn csv_header(d: usize) -> Vec<String> {
        let ax = &AXES[..d];
        let mut h: Vec<String> = ["step", "time", "species", "mass_a", "mass_b", "mass_diff"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for pre in ["mean_a", "mean_b", "mean_diff"] {
            h.extend(ax.iter().map(|a| format!("{pre}_{a}")));
        }
        h.push("mean_distance".into());
        for pre in ["cov_a", "cov_b"] {
            for i in 0..d {
                for j in i..d {
                    h.push(format!("{pre}_{}{}", ax[i], ax[j]));
                }
            }
        }
        h.push("cov_distance".into());
        h.push("l1".into());
        h.extend(ax.iter().map(|a| format!("l1_cells_{a}")));
        h.extend(ax.iter().map(|a| format!("l1_spacing_{a}")));
        for s in [
            "w1",
            "w2",
            "normalized",
            "bandwidth_a",
            "bandwidth_b",
            "energy_a",
            "energy_b",
            "energy_diff",
        ] {
            h.push(s.into());
        }
        h
    }

    /// The CSV text (columns: see [`Comparison::csv_header`]); floats in
    /// shortest round-trip form.
    pub fn to_csv(&self) -> String {
        let d = self.dimension;
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        let mut buf = ryu::Buffer::new();
        let mut f = |v: f64| -> String { buf.format(v).to_string() };
        let opt = |v: Option<f64>, f: &mut dyn FnMut(f64) -> String| v.map(f).unwrap_or_default();
        w.write_record(Self::csv_header(d)).expect("in memory");
        for r in &self.rows {
            let mut rec: Vec<String> = vec![
                r.step.to_string(),
                f(r.time),
                r.species.clone(),
                f(r.mass_a),
                f(r.mass_b),
                f(r.mass_a - r.mass_b),
            ];
            rec.extend(r.mean_a.iter().map(|&v| f(v)));
            rec.extend(r.mean_b.iter().map(|&v| f(v)));
            rec.extend(r.mean_a.iter().zip(&r.mean_b).map(|(&x, &y)| f(x - y)));
            rec.push(f(r.mean_distance));
            for c in [&r.cov_a, &r.cov_b] {
                for i in 0..d {
                    for j in i..d {
                        rec.push(f(c[i * d + j]));
                    }
                }
            }
            rec.push(f(r.cov_distance));
            rec.push(f(r.l1));
            rec.extend(r.l1_cells.iter().map(|n| n.to_string()));
            rec.extend(r.l1_spacing.iter().map(|&v| f(v)));
            rec.push(opt(r.w1, &mut f));
            rec.push(opt(r.w2, &mut f));
            rec.push(r.normalized.to_string());
            rec.push(opt(self.a.bandwidths.get(&r.species).copied(), &mut f));
            rec.push(opt(self.b.bandwidths.get(&r.species).copied(), &mut f));
            rec.push(opt(r.energy_a, &mut f));
            rec.push(opt(r.energy_b, &mut f));
            rec.push(opt(r.energy_diff(), &mut f));
            w.write_record(&rec).expect("in memory");
        }
        String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8")
    }

    /// Write [`Comparison::to_csv`] to `path` atomically (temporary file,
    /// sync, rename), replacing an existing regular file; never over a link,
    /// a device, a FIFO or a file of the compared runs
    /// ([`crate::io::output::replace_file`]).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        self.write_csv_with(path, true)
    }

    /// [`Comparison::write_csv`], replacing an existing file only if `force`
    /// (what `jko compare --out PATH [--force]` does).
    pub fn write_csv_with(&self, path: &Path, force: bool) -> Result<()> {
        let inputs = protected_paths(&self.a.dir, &self.b.dir);
        crate::io::output::replace_file(path, self.to_csv().as_bytes(), &inputs, force)
    }

    /// Largest |energy_A - energy_B| over the common steps of the energy files.
    pub fn max_energy_diff(&self) -> Option<f64> {
        self.energy
            .iter()
            .map(|e| e.diff().abs())
            .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
    }
}

fn describe(f: &mut fmt::Formatter<'_>, label: &str, r: &RunInfo) -> fmt::Result {
    write!(f, "{label}: {} ({} run", r.dir.display(), r.kind)?;
    if !r.bandwidths.is_empty() {
        let bw: Vec<String> = r
            .bandwidths
            .iter()
            .map(|(s, e)| format!("{s}: {e:.4e}"))
            .collect();
        write!(f, ", kernel eps {}", bw.join(", "))?;
    }
    writeln!(f, ")")
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, "A", &self.a)?;
        describe(f, "B", &self.b)?;
        let blank = |v: Option<f64>| v.map(|v| format!("{v:.4e}")).unwrap_or_default();
        let header = [
            "step", "time", "species", "mass A", "mass B", "|dmean|", "|dcov|_F", "L1", "W1", "W2",
            "dE",
        ];
        let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
        for r in &self.rows {
            let star = if r.normalized && r.w1.is_some() {
                "*"
            } else {
                ""
            };
            table.push(vec![
                r.step.to_string(),
                format!("{:.6}", r.time),
                r.species.clone(),
                format!("{:.6}", r.mass_a),
                format!("{:.6}", r.mass_b),
                format!("{:.4e}", r.mean_distance),
                format!("{:.4e}", r.cov_distance),
                format!("{:.4e}", r.l1),
                r.w1.map(|v| format!("{v:.4e}{star}")).unwrap_or_default(),
                r.w2.map(|v| format!("{v:.4e}{star}")).unwrap_or_default(),
                blank(r.energy_diff()),
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                table
                    .iter()
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &table {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (s, w))| {
                    if c == 2 {
                        format!("{s:<w$}")
                    } else {
                        format!("{s:>w$}")
                    }
                })
                .collect();
            writeln!(f, "{}", cells.join("  ").trim_end())?;
        }
        if let Some(m) = self.max_energy_diff() {
            writeln!(
                f,
                "energy: {} common steps, max |E_A - E_B| = {m:.4e}",
                self.energy.len()
            )?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_integrals_match_quadrature() {
        for &(len, d0, d1) in &[
            (0.3, 1.0, 2.0),
            (0.5, -1.0, 3.0),
            (1.0, 2.0, -0.5),
            (0.2, 0.0, -1.0),
        ] {
            let n = 200_000;
            let (mut a, mut s) = (0.0, 0.0);
            for k in 0..n {
                let t = (k as f64 + 0.5) / n as f64;
                let v: f64 = d0 + (d1 - d0) * t;
                a += v.abs() * len / n as f64;
                s += v * v * len / n as f64;
            }
            let (pa, ps) = linear_piece_integrals(len, d0, d1);
            assert!((pa - a).abs() < 1e-9, "{len} {d0} {d1}: {pa} vs {a}");
            assert!((ps - s).abs() < 1e-9, "{len} {d0} {d1}: {ps} vs {s}");
        }
    }

    #[test]
    fn wasserstein_of_uniform_and_dirac() {
        // U[0,1] against a Dirac at 0: W1 = 1/2, W2 = 1/sqrt(3).
        let u = [Piece {
            t0: 0.0,
            t1: 1.0,
            q0: 0.0,
            q1: 1.0,
        }];
        let d = [Piece {
            t0: 0.0,
            t1: 1.0,
            q0: 0.0,
            q1: 0.0,
        }];
        let (w1, w2) = wasserstein_1d(&u, &d);
        assert!((w1 - 0.5).abs() < 1e-15);
        assert!((w2 - (1.0f64 / 3.0).sqrt()).abs() < 1e-15);
        // Two Diracs of mass 1/2 at 0 and 1 against U[0,1]: W1 = 1/4.
        let two = [
            Piece {
                t0: 0.0,
                t1: 0.5,
                q0: 0.0,
                q1: 0.0,
            },
            Piece {
                t0: 0.5,
                t1: 1.0,
                q0: 1.0,
                q1: 1.0,
            },
        ];
        let (w1, w2) = wasserstein_1d(&u, &two);
        assert!((w1 - 0.25).abs() < 1e-15, "{w1}");
        // W2^2 = 2 int_0^{1/2} t^2 dt = 1/12.
        assert!((w2 * w2 - 1.0 / 12.0).abs() < 1e-15, "{w2}");
    }

    #[test]
    fn interpolation_reproduces_centres_and_is_zero_outside() {
        let g = GridFrame::<2> {
            coords: [vec![0.5, 1.5, 2.5], vec![0.5, 1.5]],
            h: [1.0, 1.0],
            rho: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(g.interpolate(&[1.5, 1.5]), 5.0);
        assert_eq!(g.interpolate(&[2.0, 0.5]), 2.5);
        assert_eq!(g.interpolate(&[0.1, 0.2]), 1.0);
        assert_eq!(g.interpolate(&[3.1, 0.5]), 0.0);
        assert_eq!(g.interpolate(&[1.0, 1.0]), 3.0);
    }
}
