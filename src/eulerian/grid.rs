//! What the Eulerian solver asks of its grid ([`crate::util::grid::Grid`],
//! the box `[lower, upper]` in `cells[a]` cells per axis, cell centers
//! `lower_a + (c_a + 1/2) h_a`, x fastest): a dimension of 1, 2 or 3, a
//! finite box, two cells per axis, and a size its Poisson solve can hold.

use super::EulerianError;
use crate::util::grid::Grid;

/// Checks lengths (equal, 1..=3), finiteness, `lower < upper`, `cells >= 2` per axis,
/// and that the free-space Poisson solve's arrays fit in memory.
pub fn validate(grid: &Grid) -> Result<(), EulerianError> {
    let d = grid.lower().len();
    let bad = |field, reason: String| Err(EulerianError::InvalidGrid { field, reason });
    if !(1..=3).contains(&d) {
        return bad(
            "lower",
            format!("has length {d}; the dimension must be 1, 2 or 3"),
        );
    }
    if grid.upper().len() != d {
        return bad(
            "upper",
            format!("has length {}, `lower` has length {d}", grid.upper().len()),
        );
    }
    if grid.cells().len() != d {
        return bad(
            "cells",
            format!("has length {}, `lower` has length {d}", grid.cells().len()),
        );
    }
    for a in 0..d {
        if !grid.lower()[a].is_finite() {
            return bad(
                "lower",
                format!("component {a} is {}, not a finite number", grid.lower()[a]),
            );
        }
        if !grid.upper()[a].is_finite() {
            return bad(
                "upper",
                format!("component {a} is {}, not a finite number", grid.upper()[a]),
            );
        }
        if grid.upper()[a] <= grid.lower()[a] {
            return bad(
                "upper",
                format!(
                    "component {a} ({}) must exceed lower ({})",
                    grid.upper()[a],
                    grid.lower()[a]
                ),
            );
        }
        if grid.cells()[a] < 2 {
            return bad(
                "cells",
                format!(
                    "component {a} is {}; at least 2 cells per axis",
                    grid.cells()[a]
                ),
            );
        }
    }
    let total = grid
        .cells()
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n));
    // The free-space Poisson solve stores a zero-padded complex array of 2^d * N entries
    // (16 bytes each) plus its kernel transform: refuse grids above 2^27 padded entries (2 GiB each).
    match total.and_then(|n| n.checked_mul(1 << d)) {
        Some(p) if p <= (1usize << 27) => Ok(()),
        _ => bad(
            "cells",
            format!(
                "{:?} is too large for memory (at most 2^27 / 2^d cells)",
                grid.cells()
            ),
        ),
    }
}
