//! The regular grid: the box `[lower, upper]` of dimension d = 1, 2 or 3
//! cut into `cells[a]` equal cells along axis `a`. It is the one grid of
//! the crate: the Eulerian solver's cells, the density mesh's window of
//! lattice nodes and the common grid of `compare` (and the sample grid of
//! `jko plot`) are all this type.
//!
//! With the spacing `h_a = (upper_a - lower_a) / n_a`, the cell of integer
//! coordinates `c = (c_0, .., c_{d-1})`, `0 <= c_a < n_a`, is
//! `[lower_a + c_a h_a, lower_a + (c_a + 1) h_a]` on each axis and has
//! center `x_a = lower_a + (c_a + 1/2) h_a`. Every cell array is stored
//! row-major with x fastest: cell `c` has linear index
//! `c_0 + n_0 (c_1 + n_1 c_2)`, so axis `a` has stride `prod_{b < a} n_b`.
//!
//! A grid is built from its corners ([`Grid::new`], the `[grid]` section's
//! `lower`, `upper` and `cells`) or from its lower corner and spacing
//! ([`Grid::from_spacing`], where the spacing is what is given, as for
//! the common grid of two runs). Both keep what they were given exactly
//! and derive the rest once: the corners' grid has the spacing
//! `(upper - lower) / n` and the spacing's grid the upper corner
//! `lower + n h`, so every center is `lower + (c + 1/2) h` with the same
//! bits whichever way the grid was described. Nothing is checked here:
//! what makes a grid usable depends on its user (the Eulerian solver asks
//! for two cells per axis and a finite box, `eulerian::grid::validate`).

/// A regular axis-aligned grid in d = 1, 2 or 3 (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    lower: Vec<f64>,
    upper: Vec<f64>,
    spacing: Vec<f64>,
    cells: Vec<usize>,
    /// prod_{b < a} n_b per axis, kept because the solvers' per-cell loops
    /// ask for it at every cell.
    strides: Vec<usize>,
}

/// prod_{b < a} n_b for each axis a.
fn strides_of(cells: &[usize]) -> Vec<usize> {
    (0..cells.len())
        .map(|a| cells[..a].iter().product())
        .collect()
}

impl Grid {
    /// The box `[lower, upper]` in `cells[a]` cells per axis; spacing
    /// `(upper_a - lower_a) / cells[a]`. Lengths are not checked (a
    /// caller's validation reports them); the spacing has the length of
    /// the shortest of the three.
    pub fn new(lower: Vec<f64>, upper: Vec<f64>, cells: Vec<usize>) -> Self {
        let spacing = lower
            .iter()
            .zip(&upper)
            .zip(&cells)
            .map(|((l, u), &n)| (u - l) / n as f64)
            .collect();
        Grid {
            lower,
            upper,
            spacing,
            strides: strides_of(&cells),
            cells,
        }
    }

    /// `cells[a]` cells of width `spacing[a]` from `lower[a]` per axis; the
    /// upper corner is `lower_a + cells[a] spacing_a`.
    pub fn from_spacing(lower: Vec<f64>, spacing: Vec<f64>, cells: Vec<usize>) -> Self {
        let upper = lower
            .iter()
            .zip(&spacing)
            .zip(&cells)
            .map(|((l, h), &n)| l + n as f64 * h)
            .collect();
        Grid {
            lower,
            upper,
            spacing,
            strides: strides_of(&cells),
            cells,
        }
    }

    /// Dimension d (the number of axes with a cell count).
    pub fn dim(&self) -> usize {
        self.cells.len()
    }

    /// Lower corner, one coordinate per axis.
    pub fn lower(&self) -> &[f64] {
        &self.lower
    }

    /// Upper corner, one coordinate per axis.
    pub fn upper(&self) -> &[f64] {
        &self.upper
    }

    /// Cells per axis.
    #[inline]
    pub fn cells(&self) -> &[usize] {
        &self.cells
    }

    /// Cell widths, one per axis.
    pub fn spacings(&self) -> &[f64] {
        &self.spacing
    }

    /// Cell width along `axis`, h_a.
    #[inline]
    pub fn spacing(&self, axis: usize) -> f64 {
        self.spacing[axis]
    }

    /// Total number of cells, prod(cells).
    pub fn len(&self) -> usize {
        self.cells.iter().product()
    }

    /// Whether some axis has no cell.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell volume prod_a h_a (length, area or volume).
    pub fn cell_volume(&self) -> f64 {
        self.spacing.iter().product()
    }

    /// Index stride of `axis`: prod_{b < a} n_b.
    #[inline]
    pub fn stride(&self, axis: usize) -> usize {
        self.strides[axis]
    }

    /// Index strides of all axes.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Integer coordinate c_a of cell `index` along `axis`.
    #[inline]
    pub fn coord(&self, index: usize, axis: usize) -> usize {
        (index / self.strides[axis]) % self.cells[axis]
    }

    /// Linear index of the cell of integer coordinates `coords` (one per axis).
    pub fn index(&self, coords: &[usize]) -> usize {
        coords
            .iter()
            .zip(&self.cells)
            .rev()
            .fold(0, |acc, (&c, &n)| acc * n + c)
    }

    /// Center of cell `c` along `axis`: lower_a + (c + 1/2) h_a.
    pub fn center_along(&self, axis: usize, c: usize) -> f64 {
        self.lower[axis] + (c as f64 + 0.5) * self.spacing[axis]
    }

    /// Center of cell `index` (length d).
    pub fn center(&self, index: usize) -> Vec<f64> {
        (0..self.dim())
            .map(|a| self.center_along(a, self.coord(index, a)))
            .collect()
    }

    /// [`center`](Self::center) as an array, for callers of a fixed
    /// dimension `D` (which must be the grid's).
    pub fn center_array<const D: usize>(&self, mut index: usize) -> [f64; D] {
        debug_assert_eq!(D, self.dim());
        std::array::from_fn(|a| {
            let c = index % self.cells[a];
            index /= self.cells[a];
            self.center_along(a, c)
        })
    }

    /// Coordinate along `axis` of the cell holding `x`: floor((x - lower_a) / h_a),
    /// with the upper wall (and rounding just below it) in the last cell.
    /// `x` must lie in `[lower_a, upper_a]`.
    pub fn cell_along(&self, axis: usize, x: f64) -> usize {
        (((x - self.lower[axis]) / self.spacing[axis]) as usize).min(self.cells[axis] - 1)
    }

    /// Whether cell `index` is in the outermost layer (touches a wall).
    pub fn is_boundary(&self, index: usize) -> bool {
        (0..self.dim()).any(|a| {
            let c = self.coord(index, a);
            c == 0 || c + 1 == self.cells[a]
        })
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // the brute force indexes by axis on purpose
mod tests {
    use super::*;

    fn grids() -> Vec<Grid> {
        vec![
            Grid::new(vec![-1.5], vec![2.0], vec![7]),
            Grid::new(vec![0.0, -2.0], vec![4.0, 1.0], vec![5, 3]),
            Grid::from_spacing(vec![0.1, -0.3, 2.0], vec![0.2, 0.05, 1.5], vec![3, 4, 2]),
        ]
    }

    /// Linear index and integer coordinates are inverse to each other, and
    /// the linear order is x fastest: the brute-force enumeration of the
    /// coordinates with axis 0 innermost visits indices 0, 1, 2, ...
    #[test]
    fn index_and_coordinates_round_trip() {
        for g in grids() {
            let d = g.dim();
            let mut expected = 0;
            let n = |a: usize| if a < d { g.cells()[a] } else { 1 };
            for c2 in 0..n(2) {
                for c1 in 0..n(1) {
                    for c0 in 0..n(0) {
                        let c = &[c0, c1, c2][..d];
                        assert_eq!(g.index(c), expected);
                        for a in 0..d {
                            assert_eq!(g.coord(expected, a), c[a]);
                        }
                        assert!(expected < g.len());
                        expected += 1;
                    }
                }
            }
            assert_eq!(expected, g.len());
        }
    }

    /// Each center is lower + (c + 1/2) h (the same bits by every accessor),
    /// lies inside its cell, and maps back to its cell.
    #[test]
    fn centers_against_brute_force() {
        for g in grids() {
            let d = g.dim();
            for i in 0..g.len() {
                let x = g.center(i);
                for a in 0..d {
                    let c = g.coord(i, a);
                    let h = (g.upper()[a] - g.lower()[a]) / g.cells()[a] as f64;
                    assert!((g.spacing(a) - h).abs() <= 1e-15 * h.abs());
                    assert_eq!(x[a], g.lower()[a] + (c as f64 + 0.5) * g.spacing(a));
                    assert_eq!(x[a], g.center_along(a, c));
                    assert!(x[a] > g.lower()[a] + c as f64 * g.spacing(a));
                    assert!(x[a] < g.lower()[a] + (c + 1) as f64 * g.spacing(a));
                    assert_eq!(g.cell_along(a, x[a]), c);
                }
                match d {
                    1 => assert_eq!(g.center_array::<1>(i).to_vec(), x),
                    2 => assert_eq!(g.center_array::<2>(i).to_vec(), x),
                    _ => assert_eq!(g.center_array::<3>(i).to_vec(), x),
                }
            }
        }
    }

    /// The corners' grid keeps its corners, the spacing's grid its spacing;
    /// walls fall in the first and last cells; volumes, strides, boundary.
    #[test]
    fn descriptions_sizes_and_walls() {
        let g = Grid::new(vec![0.0, -2.0], vec![4.0, 1.0], vec![5, 3]);
        assert_eq!((g.lower(), g.upper()), (&[0.0, -2.0][..], &[4.0, 1.0][..]));
        assert_eq!(g.spacings(), &[0.8, 1.0]);
        assert_eq!((g.len(), g.stride(0), g.stride(1)), (15, 1, 5));
        assert!((g.cell_volume() - 0.8).abs() < 1e-15);
        assert_eq!((g.cell_along(0, 0.0), g.cell_along(0, 4.0)), (0, 4));
        let boundary = (0..g.len()).filter(|&i| g.is_boundary(i)).count();
        assert_eq!(boundary, 15 - 3);
        let s = Grid::from_spacing(vec![1.0], vec![0.1], vec![4]);
        assert_eq!(s.spacing(0), 0.1);
        assert_eq!(s.upper()[0], 1.0 + 4.0 * 0.1);
        assert!(!s.is_empty() && Grid::new(vec![0.0], vec![1.0], vec![0]).is_empty());
    }
}
