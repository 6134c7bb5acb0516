//! `jko compare DIR_A DIR_B`: distances between two runs, step by step.
//!
//! A run directory holds either `particles.csv` (a particle run) or
//! `density.csv` (a grid run, SPEC §5), plus `energy.csv` and usually
//! `scenario.toml`. The dimension is read from the coordinate columns; both
//! runs must have the same one. For every written step present in both runs
//! (matched by `step`; their `time` values must agree to 1e-12 relative; or,
//! with [`Pairing::Last`], each run's last written step, which is how an
//! equilibrium directory of SPEC §9 meets the end of a long run) and
//! every species present in both, [`compare_runs`] computes:
//!
//! * **mass, mean, covariance** of each side. Particles: M = sum_i w_i,
//!   mean = sum_i w_i X_i / M, cov = sum_i w_i (X_i - mean)(X_i - mean)^T / M.
//!   Grid: the same sums over cell centers with weights rho_c V (V the cell
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
//!   A grid side is interpolated multilinearly between its cell centers
//!   (constant between its outermost centers and its box edges, zero outside
//!   its box). A particle side is the solver's own estimate
//!   rho(x) = sum_j w_j K_eps(x - X_j) with the Wendland C2 kernel
//!   ([`WendlandC2`](crate::model::kernel::WendlandC2), the one statement of
//!   the kernel); eps is the run's bandwidth: `[density] bandwidth` of the
//!   run's `scenario.toml` if a number, else ("auto", or no scenario.toml,
//!   which is noted) the solver's rule
//!   [`choose_estimator`](crate::density::choose_estimator) on the
//!   species' step-0 particles, with the species' diffusion, the time step
//!   and the `[density]` settings of the scenario (without a scenario, its
//!   neighbour-count part [`auto_bandwidth`](crate::density::auto_bandwidth)).
//!   A run whose densities were summed on the mesh is compared through the
//!   Wendland kernel of the same eps (the mesh's kernel has its mass and
//!   variance, not its exact shape). The estimate is evaluated at the cell
//!   centers with a kd-tree, in parallel, each cell summing its neighbours in
//!   index order (the same bits on any thread count).
//!
//!   Why not the solver's estimator
//!   ([`BlobDensity`](crate::density::BlobDensity)): it computes rho_eps at
//!   the particles themselves, over a Verlet list in Morton order, while L1
//!   needs rho_eps at the cell centers of a grid that the particles do not
//!   sit on. The sum is the same one (the same kernel, the same weights; at
//!   the particles the two agree to rounding, which a test of
//!   `measures.rs` checks); only the query points differ.
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
//! The files of this module, in the order of a comparison: `read.rs` finds
//! and reads the runs (`particles.csv`, `energy.csv`, the scenario) and
//! `grid_run.rs` a grid run's `density.csv`, with their checks;
//! `bandwidth.rs` recovers a particle run's eps; `measures.rs` holds one
//! species at one step (mass, mean, covariance, the density at any point);
//! `common_grid.rs` chooses the grid of the L1 distance (a [`crate::util::grid::Grid`]); `wasserstein.rs` has the
//! exact 1D distances; `pair.rs` puts the two runs side by side, row by row;
//! `report.rs` renders the table and the CSV and guards `--out`.
//!
//! The CSV table goes through [`crate::io::output::replace_file`]: never over a
//! link, a device, a FIFO or a directory, never over a file of the compared
//! runs ([`protected_paths`]), over an existing regular file only if asked.

#![warn(missing_docs)]

mod bandwidth;
mod common_grid;
mod densities;
mod grid_run;
mod measures;
mod pair;
mod read;
mod report;
mod wasserstein;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub use bandwidth::{MIN_BANDWIDTH, MIN_RELATIVE_BANDWIDTH};
pub use densities::RunDensities;
pub(crate) use grid_run::{GridFrame, GridRun, read_grid_run};
pub(crate) use read::{data_file, dimension_of, header_index, next_record, open_csv};
pub use report::{check_out_path, protected_paths};

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
    /// The run directory.
    pub dir: PathBuf,
    /// Particle or grid run.
    pub kind: RunKind,
    /// The data file read (`particles.csv` or `density.csv`).
    pub data_file: PathBuf,
    /// Kernel bandwidth eps per species (particle runs, common species only).
    pub bandwidths: BTreeMap<String, f64>,
}

/// The comparison of one species at one written step.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The written step.
    pub step: u64,
    /// Its time (A's; B's agrees to [`TIME_TOLERANCE`]).
    pub time: f64,
    /// The species' name.
    pub species: String,
    /// Total mass of A.
    pub mass_a: f64,
    /// Total mass of B.
    pub mass_b: f64,
    /// Mean of A (length d).
    pub mean_a: Vec<f64>,
    /// Mean of B (length d).
    pub mean_b: Vec<f64>,
    /// Covariance of A's normalized law, d x d row-major.
    pub cov_a: Vec<f64>,
    /// Covariance of B's normalized law, d x d row-major.
    pub cov_b: Vec<f64>,
    /// |mean_a - mean_b| (Euclidean).
    pub mean_distance: f64,
    /// ||cov_a - cov_b|| (Frobenius).
    pub cov_distance: f64,
    /// int |rho_A - rho_B| on the common grid.
    pub l1: f64,
    /// Cells per axis of the common grid used for `l1`.
    pub l1_cells: Vec<usize>,
    /// Spacing per axis of that grid.
    pub l1_spacing: Vec<f64>,
    /// W1 of the normalized laws (d = 1 only).
    pub w1: Option<f64>,
    /// W2 of the normalized laws (d = 1 only).
    pub w2: Option<f64>,
    /// The masses differ (relative gap > [`MASS_TOLERANCE`]): W1/W2 compare
    /// the laws normalized to mass 1.
    pub normalized: bool,
    /// energy_A at this step, when both energy files have it.
    pub energy_a: Option<f64>,
    /// energy_B at this step, when both energy files have it.
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
    /// The step.
    pub step: u64,
    /// Its time.
    pub time: f64,
    /// Total energy of A.
    pub energy_a: f64,
    /// Total energy of B.
    pub energy_b: f64,
}

impl EnergyPoint {
    /// energy_A - energy_B.
    pub fn diff(&self) -> f64 {
        self.energy_a - self.energy_b
    }
}

/// The result of [`compare_runs`]. `Display` renders the terminal table.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The runs' dimension d.
    pub dimension: usize,
    /// The first run.
    pub a: RunInfo,
    /// The second run.
    pub b: RunInfo,
    /// One row per common written step and common species, by step then species.
    pub rows: Vec<Row>,
    /// energy_A and energy_B at every step present in both energy files.
    pub energy: Vec<EnergyPoint>,
    /// Things the user should know (fallbacks, clamped values, ...).
    pub notes: Vec<String>,
}

/// Compare the runs in directories `a` and `b` (see the module documentation).
pub fn compare_runs(a: &Path, b: &Path) -> Result<Comparison> {
    compare_runs_paired(a, b, Pairing::SameStep)
}

/// Which written steps of the two runs are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pairing {
    /// Every step both runs wrote, matched by number (their times must agree).
    #[default]
    SameStep,
    /// Each run's last written step, whatever its number and time (`--last`:
    /// an equilibrium against the end of a long run, or two runs of
    /// different time steps at their ends).
    Last,
}

/// [`compare_runs`] with a choice of the steps compared.
pub fn compare_runs_paired(a: &Path, b: &Path, pairing: Pairing) -> Result<Comparison> {
    let fa = read::locate(a)?;
    let fb = read::locate(b)?;
    let da = read::dimension_of(&fa.data)?;
    let db = read::dimension_of(&fb.data)?;
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
        1 => pair::compare_dim::<1>(&fa, &fb, pairing),
        2 => pair::compare_dim::<2>(&fa, &fb, pairing),
        _ => pair::compare_dim::<3>(&fa, &fb, pairing),
    }
}
