//! The common grid of the L1 distance, int |rho_A - rho_B| by the midpoint
//! rule: per axis the finer of the grid sides' spacings over the union of
//! both sides' boxes, or, for two particle runs,
//! [`PARTICLE_GRID_CELLS`] cells per axis over the union of the clouds'
//! bounding boxes padded by [`PARTICLE_GRID_PADDING`] support radii. A grid
//! of more than [`MAX_COMMON_CELLS`] cells is refused.

use std::path::Path;

use super::grid_run::GridFrame;
use super::measures::Measure;
use super::{MAX_COMMON_CELLS, PARTICLE_GRID_CELLS, PARTICLE_GRID_PADDING};
use crate::error::{Error, Result};
use crate::model::kernel::RadialKernel;
use crate::util::grid::Grid;

/// The grid for the measures `a` and `b` (`file` and `what` name them in an
/// error), described by its lower corner and spacing: its cells are those
/// of a grid side where the spacings agree, whatever the boxes' rounding.
pub(super) fn for_pair<const D: usize>(
    a: &Measure<D>,
    b: &Measure<D>,
    file: &Path,
    what: &str,
) -> Result<Grid> {
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
        Grid::from_spacing(
            lower.to_vec(),
            (0..D)
                .map(|k| (upper[k] - lower[k]) / cells as f64)
                .collect(),
            vec![cells; D],
        )
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
        Grid::from_spacing(lower.to_vec(), h.to_vec(), n.to_vec())
    };
    let total = grid
        .cells()
        .iter()
        .try_fold(1usize, |acc, &k| acc.checked_mul(k));
    match total {
        Some(t) if t <= MAX_COMMON_CELLS => Ok(grid),
        _ => Err(Error::input(
            file,
            "grid",
            format!(
                "{what}: the common grid of the L1 distance would have {:?} cells (more than {MAX_COMMON_CELLS}): the runs' boxes are too far apart for their spacing",
                grid.cells()
            ),
        )),
    }
}
