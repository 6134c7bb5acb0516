//! The box mesh divided among the members of a team: slabs of planes for
//! the deposit, the transforms of the first d - 1 axes and the energy, and
//! slabs of columns for the last axis' transforms and K, with a transpose
//! between them.
//!
//! With axis 0 fastest, the nodes of planes `z0..z1` of the last axis
//! (a = d - 1) are one contiguous stretch of the grid, and every line of the
//! axes a < d - 1 lies in one plane: member p owns the planes `planes[p]`
//! (an even split), deposits into them, and transforms their lines along
//! a = 0..d-2 with no message. A line of the last axis crosses every plane,
//! so the data are transposed: member p receives the nodes whose index on
//! axis d - 2 is in `columns[p]` (an even split of that axis), all planes,
//! laid out as a grid of shape (n_0, .., |columns[p]|, n_{d-1}) (the shape
//! with axis d - 2 cut to the member's columns; axis 0 still fastest). It
//! transforms the last axis there, multiplies by K, transforms back, and
//! the inverse transpose returns the planes, on which the first axes are
//! transformed back in the reverse order.
//!
//! Every line is transformed by the same code on the same numbers wherever
//! it lies, and the axes are taken in the same order (0, .., d-1 forward,
//! d-1, .., 0 back) on one process and on a team: the same bits.
//!
//! The transpose: member p sends member q the block (axis d-1 in
//! `planes[p]`) x (axis d-2 in `columns[q]`), which is, per plane of p, one
//! contiguous run of |columns[q]| n_0 .. n_{d-3} numbers, and lands as one
//! contiguous stretch of q's column grid (planes z0..z1 of p, one after
//! the other). Volume per member and transpose: its slab, less 1/P of it.

use std::ops::Range;

use crate::util::team::{Team, exchange_pairs, split_even};

/// Who owns which planes and columns (module docs).
#[derive(Debug, Clone)]
pub(super) struct Slabs {
    /// `planes[p]`: member p's planes of the last axis.
    pub planes: Vec<Range<usize>>,
    /// `columns[p]`: member p's indices on axis d - 2, after the transpose.
    pub columns: Vec<Range<usize>>,
    /// This member.
    pub rank: usize,
    /// Nodes per plane of the last axis.
    pub plane: usize,
    /// Nodes per index of axis d - 2 within a plane (n_0 .. n_{d-3}).
    inner: usize,
}

impl Slabs {
    /// The split of a grid of `shape` among `size` members, for member
    /// `rank`; one member (or d = 1, where a plane is a node and nothing is
    /// transposed) holds everything.
    pub fn new(shape: &[usize], size: usize, rank: usize) -> Self {
        let d = shape.len();
        let plane: usize = shape[..d - 1].iter().product();
        let inner: usize = shape[..d.saturating_sub(2)].iter().product();
        let (size, rank) = if d >= 2 { (size, rank) } else { (1, 0) };
        let columns = if d >= 2 { shape[d - 2] } else { 1 };
        Slabs {
            planes: split_even(shape[d - 1], size),
            columns: split_even(columns, size),
            rank,
            plane,
            inner,
        }
    }

    /// Whether one member holds the whole grid (no message).
    pub fn whole(&self) -> bool {
        self.planes.len() == 1
    }

    /// This member's planes.
    pub fn mine(&self) -> Range<usize> {
        self.planes[self.rank].clone()
    }

    /// This member's nodes of the grid, as a range of flat indices.
    pub fn nodes(&self) -> Range<usize> {
        let p = self.mine();
        p.start * self.plane..p.end * self.plane
    }

    /// The shape of this member's slab of planes.
    pub fn slab_shape<const D: usize>(&self, shape: [usize; D]) -> [usize; D] {
        let mut s = shape;
        s[D - 1] = self.mine().len();
        s
    }

    /// The shape of this member's column grid.
    pub fn column_shape<const D: usize>(&self, shape: [usize; D]) -> [usize; D] {
        let mut s = shape;
        if D >= 2 && !self.whole() {
            s[D - 2] = self.columns[self.rank].len();
        }
        s
    }

    /// Numbers of member q's column grid per plane.
    fn column_plane(&self, q: usize) -> usize {
        self.inner * self.columns[q].len()
    }

    /// Collective: `columns` (this member's column grid) from every member's
    /// `slab` (its planes).
    pub fn to_columns(&self, team: &dyn Team, slab: &[f64], columns: &mut [f64]) {
        let me = self.rank;
        let mut place = |p: usize, block: &[f64]| {
            let w = self.column_plane(me);
            let z = &self.planes[p];
            columns[z.start * w..z.end * w].copy_from_slice(block);
        };
        place(me, &self.planes_to(me, slab));
        let mut incoming = Vec::new();
        exchange_pairs(
            team,
            |p, q| self.carries(p, q),
            |q| self.planes_to(q, slab),
            |p, got| incoming.push((p, got)),
        );
        for (p, got) in incoming {
            place(p, &got);
        }
    }

    /// Collective: every member's `slab` (its planes) from the members'
    /// `columns` (each its column grid); the inverse of [`Self::to_columns`].
    pub fn to_planes(&self, team: &dyn Team, columns: &[f64], slab: &mut [f64]) {
        let me = self.rank;
        let mut place = |q: usize, block: &[f64]| {
            let run = self.column_plane(q);
            let first = self.inner * self.columns[q].start;
            for (z, run_of_z) in block.chunks_exact(run.max(1)).enumerate() {
                let at = z * self.plane + first;
                slab[at..at + run].copy_from_slice(run_of_z);
            }
        };
        let w = self.column_plane(me);
        let own = &self.planes[me];
        place(me, &columns[own.start * w..own.end * w]);
        let mut incoming = Vec::new();
        exchange_pairs(
            team,
            |p, q| self.carries(q, p),
            |q| {
                let z = &self.planes[q];
                columns[z.start * w..z.end * w].to_vec()
            },
            |q, got| incoming.push((q, got)),
        );
        for (q, got) in incoming {
            assert_eq!(got.len(), self.mine().len() * self.column_plane(q));
            place(q, &got);
        }
    }

    /// Whether member p's planes hold nodes of member q's columns.
    fn carries(&self, p: usize, q: usize) -> bool {
        !self.planes[p].is_empty() && !self.columns[q].is_empty()
    }

    /// This member's block for member q's columns: per plane, q's run.
    fn planes_to(&self, q: usize, slab: &[f64]) -> Vec<f64> {
        let run = self.column_plane(q);
        let first = self.inner * self.columns[q].start;
        let mut out = Vec::with_capacity(run * self.mine().len());
        for z in 0..self.mine().len() {
            let at = z * self.plane + first;
            out.extend_from_slice(&slab[at..at + run]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::team::ThreadTeam;

    /// The transpose puts node (.., y, z) of the grid at its place in the
    /// column grid of the member owning y, for every member, 2D and 3D,
    /// with more members than some axes have indices (empty slabs), and
    /// the inverse gives every member its planes back.
    #[test]
    fn the_transpose_and_its_inverse_move_every_node_to_its_place() {
        for shape in [vec![5usize, 7], vec![3, 2, 9], vec![4, 5, 3]] {
            let nodes: usize = shape.iter().product();
            for size in 1..=4 {
                ThreadTeam::run(size, |t| {
                    let s = Slabs::new(&shape, size, t.rank());
                    let slab: Vec<f64> = s.nodes().map(|g| g as f64).collect();
                    let d = shape.len();
                    let cols = &s.columns[t.rank()];
                    let (inner, ny) = (s.inner, shape[d - 2]);
                    let mut columns = vec![f64::NAN; inner * cols.len() * shape[d - 1]];
                    s.to_columns(&*t, &slab, &mut columns);
                    for z in 0..shape[d - 1] {
                        for y in cols.clone() {
                            for x in 0..inner {
                                let at = (z * cols.len() + y - cols.start) * inner + x;
                                let g = (z * ny + y) * inner + x;
                                assert_eq!(columns[at], g as f64, "shape {shape:?} size {size}");
                            }
                        }
                    }
                    let mut back = vec![f64::NAN; slab.len()];
                    s.to_planes(&*t, &columns, &mut back);
                    assert_eq!(back, slab);
                    assert!(nodes >= slab.len());
                });
            }
        }
    }
}
