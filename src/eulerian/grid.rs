//! The Cartesian box `[lower, upper]` cut into `cells[a]` equal cells along axis `a`.
//!
//! Storage order of every cell array is row-major with x fastest: the cell with
//! integer coordinates `(c_0, .., c_{d-1})` has index `c_0 + n_0 (c_1 + n_1 (c_2 ..))`.
//! The center of that cell is `x_a = lower_a + (c_a + 1/2) h_a` with `h_a = (upper_a - lower_a)/n_a`.

use super::EulerianError;

/// Box corners and cell counts, each of length d (d = 1, 2 or 3).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Lower corner, one coordinate per axis.
    pub lower: Vec<f64>,
    /// Upper corner, one coordinate per axis (> `lower`).
    pub upper: Vec<f64>,
    /// Cells per axis (>= 2).
    pub cells: Vec<usize>,
}

impl Grid {
    /// Checks lengths (equal, 1..=3), finiteness, `lower < upper`, `cells >= 2` per axis.
    pub fn validate(&self) -> Result<(), EulerianError> {
        let d = self.lower.len();
        let bad = |field, reason: String| Err(EulerianError::InvalidGrid { field, reason });
        if !(1..=3).contains(&d) {
            return bad(
                "lower",
                format!("has length {d}; the dimension must be 1, 2 or 3"),
            );
        }
        if self.upper.len() != d {
            return bad(
                "upper",
                format!("has length {}, `lower` has length {d}", self.upper.len()),
            );
        }
        if self.cells.len() != d {
            return bad(
                "cells",
                format!("has length {}, `lower` has length {d}", self.cells.len()),
            );
        }
        for a in 0..d {
            if !self.lower[a].is_finite() {
                return bad(
                    "lower",
                    format!("component {a} is {}, not a finite number", self.lower[a]),
                );
            }
            if !self.upper[a].is_finite() {
                return bad(
                    "upper",
                    format!("component {a} is {}, not a finite number", self.upper[a]),
                );
            }
            if self.upper[a] <= self.lower[a] {
                return bad(
                    "upper",
                    format!(
                        "component {a} ({}) must exceed lower ({})",
                        self.upper[a], self.lower[a]
                    ),
                );
            }
            if self.cells[a] < 2 {
                return bad(
                    "cells",
                    format!(
                        "component {a} is {}; at least 2 cells per axis",
                        self.cells[a]
                    ),
                );
            }
        }
        let total = self
            .cells
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
                    self.cells
                ),
            ),
        }
    }

    /// Dimension d.
    pub fn dim(&self) -> usize {
        self.cells.len()
    }

    /// Total number of cells, prod(cells).
    pub fn len(&self) -> usize {
        self.cells.iter().product()
    }

    /// Never true for a validated grid.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell width along `axis`, h_a = (upper_a - lower_a) / n_a.
    pub fn spacing(&self, axis: usize) -> f64 {
        (self.upper[axis] - self.lower[axis]) / self.cells[axis] as f64
    }

    /// Cell volume prod_a h_a (length, area or volume).
    pub fn cell_volume(&self) -> f64 {
        (0..self.dim()).map(|a| self.spacing(a)).product()
    }

    /// Index stride of `axis`: prod_{b < a} n_b.
    pub fn stride(&self, axis: usize) -> usize {
        self.cells[..axis].iter().product()
    }

    /// Integer coordinate c_a of cell `index` along `axis`.
    pub fn coord(&self, index: usize, axis: usize) -> usize {
        (index / self.stride(axis)) % self.cells[axis]
    }

    /// Center of cell `index` (length d).
    pub fn center(&self, index: usize) -> Vec<f64> {
        (0..self.dim())
            .map(|a| self.lower[a] + (self.coord(index, a) as f64 + 0.5) * self.spacing(a))
            .collect()
    }

    /// Whether cell `index` is in the outermost layer (touches a wall).
    pub fn is_boundary(&self, index: usize) -> bool {
        (0..self.dim()).any(|a| {
            let c = self.coord(index, a);
            c == 0 || c + 1 == self.cells[a]
        })
    }
}
