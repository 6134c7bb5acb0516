//! One run's densities on any regular grid, for callers that show them
//! (`jko plot`): the same reading, bandwidth and estimate as the distances
//! of this module, so a figure and `jko compare` always agree on what a
//! run's density is. A particle side is the blob estimate
//! rho(x) = sum_j w_j K_eps(x - X_j) with the run's eps (reflected at the
//! walls of a box run); a grid side is interpolated multilinearly between
//! its cell centers, zero outside its box.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::RunKind;
use super::bandwidth::particle_bandwidth;
use super::measures::Measure;
use super::pair::{measure, walls_of};
use super::read::{Run, RunFiles, dimension_of, load, locate};
use crate::error::{Error, Result};
use crate::util::grid::Grid;

struct Loaded<const D: usize> {
    run: Run<D>,
    bandwidths: BTreeMap<String, f64>,
    walls: Option<([f64; D], [f64; D])>,
}

enum AnyDim {
    One(Loaded<1>),
    Two(Loaded<2>),
    Three(Loaded<3>),
}

/// A run directory read for display (see the module documentation).
pub struct RunDensities {
    files: RunFiles,
    dimension: usize,
    loaded: AnyDim,
    /// Things the user should know (a bandwidth guessed without scenario).
    pub notes: Vec<String>,
}

fn open_dim<const D: usize>(files: &RunFiles, notes: &mut Vec<String>) -> Result<Loaded<D>> {
    let (run, scenario) = load::<D>(files)?;
    let mut bandwidths = BTreeMap::new();
    if let Run::Particles(p) = &run {
        for sp in run.species() {
            let (eps, note) = particle_bandwidth(files, p, scenario.as_ref(), &sp)?;
            bandwidths.insert(sp, eps);
            notes.extend(note);
        }
    }
    Ok(Loaded {
        walls: walls_of::<D>(&scenario),
        run,
        bandwidths,
    })
}

impl<const D: usize> Loaded<D> {
    fn measure(&self, step: u64, species: &str) -> Option<Measure<'_, D>> {
        measure(&self.run, &self.bandwidths, self.walls, step, species)
    }
}

/// `$body` with `$l` the run's [`Loaded`] of its dimension.
macro_rules! with_dim {
    ($self:expr, $l:ident => $body:expr) => {
        match &$self.loaded {
            AnyDim::One($l) => $body,
            AnyDim::Two($l) => $body,
            AnyDim::Three($l) => $body,
        }
    };
}

impl RunDensities {
    /// Read the run in `dir` (`particles.csv` or `density.csv`, with the
    /// checks of [`super::compare_runs`]) and the bandwidth of each species
    /// of a particle run.
    pub fn open(dir: &Path) -> Result<Self> {
        let files = locate(dir)?;
        let dimension = dimension_of(&files.data)?;
        let mut notes = Vec::new();
        let loaded = match dimension {
            1 => AnyDim::One(open_dim::<1>(&files, &mut notes)?),
            2 => AnyDim::Two(open_dim::<2>(&files, &mut notes)?),
            _ => AnyDim::Three(open_dim::<3>(&files, &mut notes)?),
        };
        Ok(RunDensities {
            files,
            dimension,
            loaded,
            notes,
        })
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }
    /// Particle or grid run.
    pub fn kind(&self) -> RunKind {
        self.files.kind
    }
    /// The data file (`particles.csv` or `density.csv`).
    pub fn data_file(&self) -> &Path {
        &self.files.data
    }
    /// The run's `energy.csv` (present: [`RunDensities::open`] checks it).
    pub fn energy_file(&self) -> PathBuf {
        self.files.energy.clone()
    }
    /// d = 1, 2 or 3.
    pub fn dimension(&self) -> usize {
        self.dimension
    }
    /// The written steps and their times, ascending.
    pub fn steps(&self) -> Vec<(u64, f64)> {
        with_dim!(self, l => l.run.times().iter().map(|(&s, &t)| (s, t)).collect())
    }
    /// The species, in name order.
    pub fn species(&self) -> Vec<String> {
        with_dim!(self, l => l.run.species().into_iter().collect())
    }
    /// The kernel eps of `species` (particle runs only).
    pub fn bandwidth(&self, species: &str) -> Option<f64> {
        with_dim!(self, l => l.bandwidths.get(species).copied())
    }

    /// The box (lower, upper) where the density of `species` at `step` can
    /// be non-zero, or `None` if the run lacks that frame.
    pub fn bounds(&self, step: u64, species: &str) -> Option<(Vec<f64>, Vec<f64>)> {
        with_dim!(self, l => l.measure(step, species).map(|m| {
            let (lo, hi) = m.bounds();
            (lo.to_vec(), hi.to_vec())
        }))
    }

    /// The density of `species` at `step` at every cell center of `grid`
    /// (x fastest). A frame the run lacks, or a grid of another dimension,
    /// is an [`Error::Input`] naming the data file.
    pub fn evaluate(&self, step: u64, species: &str, grid: &Grid) -> Result<Vec<f64>> {
        let d = self.dimension;
        if grid.lower().len() != d || grid.spacings().len() != d || grid.dim() != d {
            return Err(Error::input(
                &self.files.data,
                "grid",
                format!(
                    "a grid of dimension {} for a run of dimension {d}",
                    grid.lower().len()
                ),
            ));
        }
        let missing = || {
            Error::input(
                &self.files.data,
                format!("step {step}"),
                format!("no frame of species \"{species}\" at step {step}"),
            )
        };
        Ok(match &self.loaded {
            AnyDim::One(l) => l.measure(step, species).ok_or_else(missing)?.evaluate(grid),
            AnyDim::Two(l) => l.measure(step, species).ok_or_else(missing)?.evaluate(grid),
            AnyDim::Three(l) => l.measure(step, species).ok_or_else(missing)?.evaluate(grid),
        })
    }
}
