//! A grid divided among the members of a team by slabs, for the meshes'
//! FFTs: slabs of planes for the deposits, the transforms of the first
//! d - 1 axes and the sums over nodes, slabs of columns for the last axis'
//! transforms and the spectral multiplier, a transpose between them, and
//! the exchange of the nodes a member's particles read on other members'
//! planes. Users: the box's Poisson mesh ([`crate::coupling`]'s
//! `box_mesh`) and the mesh densities ([`crate::density::mesh`]).
//!
//! With axis 0 fastest, the nodes of planes `z0..z1` of the last axis
//! (a = d - 1) are one contiguous stretch of the grid, and every line of the
//! axes a < d - 1 lies in one plane: member p owns the planes `planes[p]`
//! (an even split), deposits into them, and transforms their lines along
//! a = 0..d-2 with no message. A line of the last axis crosses every plane,
//! so the data are transposed: member p receives the nodes whose index on
//! axis d - 2 is in `columns[p]` (an even split of that axis), all planes,
//! laid out as a grid of shape (n_0, .., |columns\[p\]|, n_{d-1}) (the shape
//! with axis d - 2 cut to the member's columns; axis 0 still fastest). It
//! transforms the last axis there, multiplies, transforms back, and the
//! inverse transpose returns the planes, on which the first axes are
//! transformed back in the reverse order.
//!
//! Every line is transformed by the same code on the same numbers wherever
//! it lies, and the axes are taken in the same order (0, .., d-1 forward,
//! d-1, .., 0 back) on one process and on a team: the same bits.
//!
//! The transpose: member p sends member q the block (axis d-1 in
//! `planes[p]`) x (axis d-2 in `columns[q]`), which is, per plane of p, one
//! contiguous run of |columns\[q\]| n_0 .. n_{d-3} nodes, and lands as one
//! contiguous stretch of q's column grid (planes z0..z1 of p, one after
//! the other). Volume per member and transpose: its slab, less 1/P of it.
//!
//! The reads ([`Segments`]): after a solve a member holds its planes; the
//! stencils of its particles read nodes on other members' planes too. It
//! receives those by segments of w nodes of axis 0 (an eighth of the row
//! within 4..=16): rows are whole planes' worth of lines of axis 0, and a
//! member's particles, a region of space, read parts of many rows. It
//! keeps them in a [`Halo`], its planes and the segments one after the
//! other, indexed by row: no member holds a grid of the whole mesh, so a
//! member's memory for a grid is its slab, the segments its particles
//! read, and 4 bytes per row of axis 0 (n^(d-1) of them).

use std::ops::Range;

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use strength_reduce::StrengthReducedUsize;

use crate::util::ghosts::Ghosts;
use crate::util::team::{Team, exchange_pairs, split_even};

/// A value the transposes carry: its numbers, in order.
pub trait Carried: Copy + Send + Sync {
    /// f64 numbers per value.
    const WIDTH: usize;
    /// Appends the value's numbers.
    fn put(self, out: &mut Vec<f64>);
    /// The value from its numbers.
    fn take(from: &[f64]) -> Self;
}

impl Carried for f64 {
    const WIDTH: usize = 1;
    fn put(self, out: &mut Vec<f64>) {
        out.push(self);
    }
    fn take(from: &[f64]) -> Self {
        from[0]
    }
}

impl Carried for Complex<f64> {
    const WIDTH: usize = 2;
    fn put(self, out: &mut Vec<f64>) {
        out.extend([self.re, self.im]);
    }
    fn take(from: &[f64]) -> Self {
        Complex::new(from[0], from[1])
    }
}

/// Who owns which planes and columns of a grid (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Slabs {
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

    /// The shape of this member's column grid (the grid's, for one member).
    pub fn column_shape<const D: usize>(&self, shape: [usize; D]) -> [usize; D] {
        let mut s = shape;
        if D >= 2 && !self.whole() {
            s[D - 2] = self.columns[self.rank].len();
        }
        s
    }

    /// The first index on axis d - 2 of this member's column grid.
    pub fn first_column(&self) -> usize {
        if self.whole() {
            0
        } else {
            self.columns[self.rank].start
        }
    }

    /// Nodes of member q's column grid per plane.
    fn column_plane(&self, q: usize) -> usize {
        self.inner * self.columns[q].len()
    }

    /// Collective: `columns` (this member's column grid) from every member's
    /// `slab` (its planes).
    pub fn to_columns<T: Carried>(&self, team: &dyn Team, slab: &[T], columns: &mut [T]) {
        let me = self.rank;
        let w = self.column_plane(me);
        let mut place = |p: usize, block: &[f64]| {
            let z = &self.planes[p];
            let to = &mut columns[z.start * w..z.end * w];
            to.iter_mut()
                .zip(block.chunks_exact(T::WIDTH))
                .for_each(|(v, n)| *v = T::take(n));
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
            assert_eq!(got.len(), self.planes[p].len() * w * T::WIDTH);
            place(p, &got);
        }
    }

    /// Collective: every member's `slab` (its planes) from the members'
    /// `columns` (each its column grid); the inverse of [`Self::to_columns`].
    pub fn to_planes<T: Carried>(&self, team: &dyn Team, columns: &[T], slab: &mut [T]) {
        let me = self.rank;
        let mut place = |q: usize, block: &[f64]| {
            let run = self.column_plane(q);
            let first = self.inner * self.columns[q].start;
            for (z, numbers) in block.chunks_exact((run * T::WIDTH).max(1)).enumerate() {
                let at = z * self.plane + first;
                (slab[at..at + run].iter_mut())
                    .zip(numbers.chunks_exact(T::WIDTH))
                    .for_each(|(v, n)| *v = T::take(n));
            }
        };
        let w = self.column_plane(me);
        let block = |z: &Range<usize>| {
            let mut out = Vec::with_capacity(z.len() * w * T::WIDTH);
            columns[z.start * w..z.end * w]
                .iter()
                .for_each(|v| v.put(&mut out));
            out
        };
        place(me, &block(&self.planes[me]));
        let mut incoming = Vec::new();
        exchange_pairs(
            team,
            |p, q| self.carries(q, p),
            |q| block(&self.planes[q]),
            |q, got| incoming.push((q, got)),
        );
        for (q, got) in incoming {
            assert_eq!(
                got.len(),
                self.mine().len() * self.column_plane(q) * T::WIDTH
            );
            place(q, &got);
        }
    }

    /// Whether member p's planes hold nodes of member q's columns.
    fn carries(&self, p: usize, q: usize) -> bool {
        !self.planes[p].is_empty() && !self.columns[q].is_empty()
    }

    /// This member's block for member q's columns: per plane, q's run.
    fn planes_to<T: Carried>(&self, q: usize, slab: &[T]) -> Vec<f64> {
        let run = self.column_plane(q);
        let first = self.inner * self.columns[q].start;
        let mut out = Vec::with_capacity(run * self.mine().len() * T::WIDTH);
        for z in 0..self.mine().len() {
            let at = z * self.plane + first;
            slab[at..at + run].iter().for_each(|v| v.put(&mut out));
        }
        out
    }
}

/// A grid as a member of a divided mesh holds it (module docs): the nodes
/// of its planes, and the segments of other members' planes it received,
/// one after the other; read through the [`Segments`] that fetched them.
/// For one member, `slab` is the whole grid.
#[derive(Debug, Clone, Default)]
pub struct Halo {
    /// This member's planes, in grid order.
    pub slab: Vec<f64>,
    /// The received segments, w nodes each, in the order of the plan.
    received: Vec<f64>,
}

impl Halo {
    /// Nodes held: the planes' and the received segments'.
    pub fn held(&self) -> usize {
        self.slab.len() + self.received.len()
    }
}

/// No entry (a row with no segment received, a segment not received).
const NONE: u32 = u32::MAX;

/// Segments of the rows of axis 0 of a grid: what a member reading nodes
/// on other members' planes receives (module docs), and where it keeps
/// them. Segment k of row r starts at node min(k w, n_0 - w) of the row,
/// so that every segment has one length; a row's last two may overlap.
///
/// A [`Halo`] holds the received segments compactly: the index is a table
/// of one entry per row of the grid (4 bytes per n_0 nodes), pointing the
/// rows with segments received to a block of one entry per segment of the
/// row; a read off the member's planes costs three indexed loads (the
/// row's block, the node's segment and place, the segment's entry) more
/// than on the whole grid.
#[derive(Debug, Clone)]
pub struct Segments {
    /// Nodes of axis 0 (a row).
    row: usize,
    /// Nodes per segment, w.
    width: usize,
    /// Segments per row.
    per_row: usize,
    /// Division by the row, and per node of a row its segment and place
    /// in it (the reads' divisions, done once).
    by_row: StrengthReducedUsize,
    place: Vec<[u32; 2]>,
    /// This member's nodes, whole planes (every node for one member).
    own: Range<usize>,
    /// Every member's segments, and the count of all.
    owned: Vec<Range<usize>>,
    total: usize,
    /// The plan of the last [`Self::plan`].
    ghosts: Ghosts,
    /// Per row of the grid: its block of `table`, or NONE (empty until a
    /// plan needs it).
    rows: Vec<u32>,
    /// Per block, per segment of its row: the segment's place among the
    /// received, or NONE.
    table: Vec<u32>,
    /// The rows given a block, cleared at the next plan.
    touched: Vec<u32>,
}

impl Segments {
    /// Most nodes per segment.
    pub const MOST: usize = 16;

    /// The segments of rows of `row` nodes of a grid divided by `slabs`.
    pub fn new(slabs: &Slabs, row: usize) -> Self {
        let width = (row / 8).clamp(4, Self::MOST).min(row);
        let per_row = row.div_ceil(width);
        let per_plane = slabs.plane / row * per_row;
        let start = |k: usize| (k * width).min(row - width);
        Segments {
            row,
            width,
            per_row,
            by_row: StrengthReducedUsize::new(row.max(1)),
            place: (0..row)
                .map(|x| [(x / width) as u32, (x - start(x / width)) as u32])
                .collect(),
            own: slabs.nodes(),
            owned: (slabs.planes.iter())
                .map(|p| p.start * per_plane..p.end * per_plane)
                .collect(),
            total: slabs.planes.last().map_or(0, |p| p.end) * per_plane,
            ghosts: Ghosts::default(),
            rows: Vec::new(),
            table: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Nodes per segment.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Segments received per fetch under the last plan.
    pub fn count(&self) -> usize {
        self.ghosts.count()
    }

    /// Notes in `out` the segments holding nodes `from..=to` of axis 0 of
    /// the row whose first node is `start` (a multiple of the row).
    #[inline(always)]
    pub fn push(&self, start: usize, from: usize, to: usize, out: &mut Reads) {
        let r = start / self.row * self.per_row;
        for k in from / self.width..=to / self.width {
            out.note((r + k) as u32);
        }
    }

    /// Collective: plans the fetches that bring this member the segments
    /// `reads` lists (in any order, repeats allowed) from the members whose
    /// planes hold them, and indexes where its [`Halo`]s will keep them.
    pub fn plan<'a>(&mut self, team: &dyn Team, reads: impl ParallelIterator<Item = &'a [u32]>) {
        let ghosts = Ghosts::plan(team, &self.owned, self.total, reads, |_| true);
        self.forget();
        self.index(&ghosts, 0);
        self.ghosts = ghosts;
    }

    /// Indexes the segments `ghosts` receives as the places `first..` of a
    /// halo's received segments, in their order.
    fn index(&mut self, ghosts: &Ghosts, first: usize) {
        let per_row = self.per_row;
        if ghosts.count() > 0 && self.rows.is_empty() {
            self.rows = vec![NONE; self.total / per_row];
        }
        for (j, s) in ghosts.received().enumerate() {
            let (r, k) = (s as usize / per_row, s as usize % per_row);
            if self.rows[r] == NONE {
                self.rows[r] = self.touched.len() as u32;
                self.touched.push(r as u32);
                self.table.resize(self.table.len() + per_row, NONE);
            }
            self.table[self.rows[r] as usize * per_row + k] = (first + j) as u32;
        }
    }

    /// Where segment s starts in this member's slab (s on its planes).
    fn in_slab(&self) -> impl Fn(u32) -> usize + use<> {
        let (row, width, per_row, first) = (self.row, self.width, self.per_row, self.own.start);
        move |s: u32| {
            let s = s as usize;
            s / per_row * row + (s % per_row * width).min(row - width) - first
        }
    }

    /// Collective: the planned segments into `halo` (whose `slab` holds
    /// this member's planes) from their owners.
    pub fn fetch(&mut self, team: &dyn Team, halo: &mut Halo) {
        let (width, at) = (self.width, self.in_slab());
        halo.received.resize(self.ghosts.count() * width, 0.0);
        (self.ghosts).exchange_apart(team, &halo.slab, width, at, &mut halo.received);
    }

    /// Collective, for values that never change (the box's fixed
    /// potential): plans the segments `reads` lists that `halo` does not
    /// hold yet, fetches them from their owners and keeps them after those
    /// it holds; the index grows and nothing is dropped (until
    /// [`Self::clear`]), so a member holds the union of what its reads have
    /// needed since. Not to be mixed with
    /// [`Self::plan`] on one halo.
    pub fn add<'a>(
        &mut self,
        team: &dyn Team,
        reads: impl ParallelIterator<Item = &'a [u32]>,
        halo: &mut Halo,
    ) {
        let (width, per_row) = (self.width, self.per_row);
        let held = |s: usize| {
            let block = self.rows.get(s / per_row).copied().unwrap_or(NONE);
            block != NONE && self.table[block as usize * per_row + s % per_row] != NONE
        };
        let mut ghosts = Ghosts::plan(team, &self.owned, self.total, reads, |s| !held(s));
        let old = halo.received.len() / width;
        halo.received.resize((old + ghosts.count()) * width, 0.0);
        let into = &mut halo.received[old * width..];
        ghosts.exchange_apart(team, &halo.slab, width, self.in_slab(), into);
        self.index(&ghosts, old);
        self.ghosts = ghosts;
    }

    /// Drops the segments `halo` received and their index, so that the
    /// next [`Self::add`] fetches from nothing (no message: a member may
    /// clear while others add).
    pub fn clear(&mut self, halo: &mut Halo) {
        self.forget();
        halo.received.clear();
    }

    /// Empties the index of received segments (the rows' table is kept,
    /// only the rows given a block are reset).
    fn forget(&mut self) {
        for &r in &self.touched {
            self.rows[r as usize] = NONE;
        }
        self.touched.clear();
        self.table.clear();
    }

    /// The nodes `at` (indices on axis 0) of the row of `halo` whose first
    /// node is `start` (a multiple of the row): from the member's planes,
    /// or from the segments the last [`Self::fetch`] brought; NaN for a
    /// node the member does not hold.
    #[inline(always)]
    pub fn row4(&self, halo: &Halo, start: usize, at: [usize; 4]) -> [f64; 4] {
        let o = start.wrapping_sub(self.own.start);
        if o < self.own.len() {
            let r = &halo.slab[o..o + self.row];
            return at.map(|x| r[x]);
        }
        let block = self.rows.get(start / self.by_row).copied().unwrap_or(NONE);
        if block == NONE {
            return [f64::NAN; 4];
        }
        let table = &self.table[block as usize * self.per_row..][..self.per_row];
        at.map(|x| {
            let [k, into] = self.place[x];
            match table[k as usize] {
                NONE => f64::NAN,
                j => halo.received[j as usize * self.width + into as usize],
            }
        })
    }
}

/// The segments a run of stencils reads, in the order first read. Nearby
/// stencils read mostly the same segments: a small direct-mapped memory of
/// the last ones noted drops most repeats at the cost of a compare, where
/// sorting the list took a tenth of an evaluation.
#[derive(Debug, Clone)]
pub struct Reads {
    /// The segments noted (a few repeats may remain).
    pub list: Vec<u32>,
    seen: [u32; 256],
}

impl Default for Reads {
    fn default() -> Self {
        Reads {
            list: Vec::new(),
            seen: [u32::MAX; 256],
        }
    }
}

impl Reads {
    /// Notes segment s.
    #[inline(always)]
    fn note(&mut self, s: u32) {
        let slot = &mut self.seen[(s as usize) & 255];
        if *slot != s {
            *slot = s;
            self.list.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::team::ThreadTeam;

    /// The transpose puts node (.., y, z) of the grid at its place in the
    /// column grid of the member owning y, for every member, 2D and 3D,
    /// real and complex values, with more members than some axes have
    /// indices (empty slabs), and the inverse gives every member its planes
    /// back.
    #[test]
    fn the_transpose_and_its_inverse_move_every_node_to_its_place() {
        fn check<T: Carried + PartialEq + std::fmt::Debug>(value: impl Fn(usize) -> T + Sync) {
            for shape in [vec![5usize, 7], vec![3, 2, 9], vec![4, 5, 3]] {
                for size in 1..=4 {
                    ThreadTeam::run(size, |t| {
                        let s = Slabs::new(&shape, size, t.rank());
                        let slab: Vec<T> = s.nodes().map(&value).collect();
                        let d = shape.len();
                        let cols = &s.columns[t.rank()];
                        let (inner, ny) = (s.inner, shape[d - 2]);
                        let mut columns =
                            vec![value(usize::MAX); inner * cols.len() * shape[d - 1]];
                        s.to_columns(&*t, &slab, &mut columns);
                        for z in 0..shape[d - 1] {
                            for y in cols.clone() {
                                for x in 0..inner {
                                    let at = (z * cols.len() + y - cols.start) * inner + x;
                                    let g = (z * ny + y) * inner + x;
                                    assert_eq!(columns[at], value(g), "{shape:?} size {size}");
                                }
                            }
                        }
                        let mut back = vec![value(usize::MAX); slab.len()];
                        s.to_planes(&*t, &columns, &mut back);
                        assert_eq!(back, slab);
                    });
                }
            }
        }
        check(|g| g as f64);
        check(|g| Complex::new(g as f64, -(g as f64) * 0.5));
    }

    /// A member reading random nodes receives, in whole segments, every
    /// node it read that other members' planes hold, with their values,
    /// and reads NaN at a node of no segment it received; it holds its
    /// planes and the segments, nothing else. Rows of 3 to 40 nodes (one
    /// segment a row to several, the last two overlapping); a second plan
    /// of other reads forgets the first's segments.
    #[test]
    fn segments_bring_every_node_read() {
        for shape in [[3usize, 5, 4], [23, 6, 5], [40, 3, 7]] {
            let nodes: usize = shape.iter().product();
            let value = |g: usize| g as f64 + 0.25;
            for size in 2..=3 {
                ThreadTeam::run(size, |t| {
                    let s = Slabs::new(&shape, size, t.rank());
                    let mut seg = Segments::new(&s, shape[0]);
                    let mut halo = Halo {
                        slab: s.nodes().map(value).collect(),
                        ..Halo::default()
                    };
                    for round in 0..2 {
                        let reads: Vec<usize> = (0..nodes / 3)
                            .map(|k| (k * 7919 + 13 * t.rank() + 101 * round) % nodes)
                            .collect();
                        let mut lists = vec![Reads::default()];
                        for &g in &reads {
                            let x = g % shape[0];
                            seg.push(g - x, x, x, &mut lists[0]);
                        }
                        let lists: Vec<Vec<u32>> = lists.into_iter().map(|r| r.list).collect();
                        seg.plan(&*t, lists.par_iter().map(|l| &l[..]));
                        seg.fetch(&*t, &mut halo);
                        let at = format!("{shape:?}, member {} of {size}, round {round}", t.rank());
                        let read = |g: usize| {
                            let x = g % shape[0];
                            seg.row4(&halo, g - x, [x; 4])[0]
                        };
                        for &g in &reads {
                            assert_eq!(read(g), value(g), "{at}");
                        }
                        let held = (0..nodes).filter(|&g| !read(g).is_nan()).count();
                        let mut whole = seg.count() * seg.width();
                        assert_eq!(halo.received.len(), whole, "{at}");
                        whole += s.nodes().len();
                        assert!(held <= whole, "{at}: {held} > {whole}");
                        for g in (0..nodes).filter(|&g| !read(g).is_nan()) {
                            assert_eq!(read(g), value(g), "{at}");
                        }
                    }
                });
            }
        }
    }
}
