//! Adaptive 2^D-tree (binary tree / quadtree / octree) over the particles.
//!
//! Particles are sorted by their Morton (Z-order) key; a cell is a contiguous range of
//! sorted particles sharing a key prefix, split until it holds `<= leaf_size`
//! particles (into octants, or in 3D into halves / quarters on the next key bits when
//! that is enough: see `build_cell`). Cells are stored in depth-first pre-order, so
//! every subtree is a contiguous range of cells (`id .. cell.end`) *and* of particles — which lets the
//! parallel phases hand each task a disjoint `&mut` slice.
//!
//! Geometry (`center` = center of the particles' bounding box, `radius` = largest
//! distance from `center` to a particle of the cell) is recomputed from the current
//! positions on every call (`refit`), keeping the topology and permutation. Any
//! topology is *correct* with refitted geometry (the acceptance test uses the true
//! radii); the topology is rebuilt only when refitting has made cells much larger
//! (sum of radii grown by more than `REBUILD_GROWTH`), i.e. when it becomes slow.

use crate::coupling::pair_kernel::Sources;
use rayon::prelude::*;

/// Rebuild when the sum of cell radii has grown by more than this factor since the build.
///
/// Small, because a loose tree costs on every evaluation and a build only once: the
/// near pairs and M2Ls grow quickly with the refitted radii (in 2D, 24% more near
/// pairs and 17% more M2Ls than a rebuilt tree at a growth between 1.05 and 1.1),
/// while a build costs ~5% of one evaluation (Morton sort and cells). On the first JKO step of 2D PNP at 1e6 particles per species, 1.05
/// instead of 1.25 cut the step's near pairs by 17% and its M2Ls by 13% for one more
/// build (BENCHMARKS.md, "2D PNP at 1e6 particles per species"); 1.02 and 1.05 gave
/// the same builds there, 1.1 the same as 1.25.
const REBUILD_GROWTH: f64 = 1.05;

#[derive(Clone, Copy, Debug)]
pub struct Cell<const D: usize> {
    pub center: [f64; D],
    pub radius: f64,
    /// First sorted particle.
    pub start: u32,
    /// Number of particles.
    pub count: u32,
    /// One past the last cell of this cell's subtree (pre-order).
    pub end: u32,
    pub is_leaf: bool,
}

impl<const D: usize> Cell<D> {
    #[inline]
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.count) as usize
    }
}

/// The tree plus the particles in tree (sorted) order, structure of arrays.
pub struct Octree<const D: usize> {
    pub cells: Vec<Cell<D>>,
    /// `perm[k]` = original index of sorted particle `k`.
    pub perm: Vec<u32>,
    /// `inv[i]` = sorted position of original particle `i`.
    pub inv: Vec<u32>,
    /// Sorted positions, one array per coordinate.
    pub pos: [Vec<f64>; D],
    /// Sorted charges.
    pub q: Vec<f64>,
    keys: Vec<(u64, u32)>,
    leaf_size: usize,
    built_radius_sum: f64,
    /// Number of topology (re)builds so far (for tests / diagnostics).
    pub builds: usize,
}

impl<const D: usize> Octree<D> {
    pub fn new(leaf_size: usize) -> Self {
        Self {
            cells: Vec::new(),
            perm: Vec::new(),
            inv: Vec::new(),
            pos: std::array::from_fn(|_| Vec::new()),
            q: Vec::new(),
            keys: Vec::new(),
            leaf_size: leaf_size.max(1),
            built_radius_sum: 0.0,
            builds: 0,
        }
    }

    pub fn sources(&self) -> Sources<'_, D> {
        Sources {
            pos: std::array::from_fn(|d| &self.pos[d][..]),
            q: &self.q,
        }
    }

    /// Bits per coordinate in the Morton key.
    const BITS: u32 = 63 / D as u32;

    /// Brings the tree up to date with positions `x` and charges `q`: refits the
    /// geometry when the particle count is unchanged and the refitted tree is still
    /// tight, rebuilds otherwise.
    pub fn update(&mut self, x: &[[f64; D]], q: &[f64]) {
        if self.cells.is_empty() || self.perm.len() != x.len() {
            self.build(x);
        } else {
            self.gather(x);
            let sum = self.refit_geometry();
            if sum > REBUILD_GROWTH * self.built_radius_sum {
                self.build(x);
            }
        }
        let perm = &self.perm;
        self.q
            .par_iter_mut()
            .zip(perm.par_iter())
            .for_each(|(qs, &p)| *qs = q[p as usize]);
    }

    fn build(&mut self, x: &[[f64; D]]) {
        let n = x.len();
        assert!(n < u32::MAX as usize, "too many particles");
        self.builds += 1;
        let (lo, side) = bounding_cube(x);
        let scale = (1u64 << Self::BITS) as f64 / side;
        let max_q = (1u64 << Self::BITS) - 1;
        self.keys.resize(n, (0, 0));
        self.keys.par_iter_mut().enumerate().for_each(|(i, k)| {
            let c: [u64; D] =
                std::array::from_fn(|d| (((x[i][d] - lo[d]) * scale).max(0.0) as u64).min(max_q));
            *k = (morton::<D>(c, Self::BITS), i as u32);
        });
        self.keys.par_sort_unstable();
        self.perm.resize(n, 0);
        self.inv.resize(n, 0);
        self.perm
            .par_iter_mut()
            .zip(self.keys.par_iter())
            .for_each(|(p, k)| *p = k.1);
        for (k, &p) in self.perm.iter().enumerate() {
            self.inv[p as usize] = k as u32;
        }
        self.cells.clear();
        if n > 0 {
            self.build_cell(0, n, 0);
        }
        for d in 0..D {
            self.pos[d].resize(n, 0.0);
        }
        self.q.resize(n, 0.0);
        self.gather(x);
        self.built_radius_sum = self.refit_geometry();
    }

    /// Appends the cell for sorted particles `start..end`, whose keys agree on their
    /// first `bit` bits, and its subtree.
    ///
    /// A cell is split on the next `D` key bits (into up to `2^D` octants), except
    /// in 3D when fewer bits already bring the average child to `<= leaf_size` particles:
    /// then it is split on the fewest such bits (halves or quarters of the cell along
    /// the next Morton axes). So a uniform cloud gets leaves of between about half
    /// and all of `leaf_size` particles at any `N`, instead of the `N / 8^level` of
    /// octree levels (e.g. 30 or 244 at `N = 1e6`).
    fn build_cell(&mut self, start: usize, end: usize, bit: u32) {
        let id = self.cells.len();
        let total = D as u32 * Self::BITS;
        let n = end - start;
        let is_leaf = n <= self.leaf_size || bit >= total;
        self.cells.push(Cell {
            center: [0.0; D],
            radius: 0.0,
            start: start as u32,
            count: n as u32,
            end: 0,
            is_leaf,
        });
        if !is_leaf {
            // Only in 3D: in 2D the quadtree levels are faster at equal accuracy
            // (BENCHMARKS.md, "Multipole tree parameters").
            let fewer = (D == 3).then(|| (1..D as u32).find(|&k| n <= self.leaf_size << k));
            let k = fewer.flatten().unwrap_or(D as u32).min(total - bit);
            let shift = total - bit - k;
            let mask = (1u64 << k) - 1;
            let digit = |key: &(u64, u32)| (key.0 >> shift) & mask;
            let mut s = start;
            while s < end {
                let dg = digit(&self.keys[s]);
                let e = s + self.keys[s..end].partition_point(|key| digit(key) <= dg);
                self.build_cell(s, e, bit + k);
                s = e;
            }
        }
        self.cells[id].end = self.cells.len() as u32;
    }

    /// Copies positions into sorted structure-of-arrays order.
    fn gather(&mut self, x: &[[f64; D]]) {
        let perm = &self.perm;
        for d in 0..D {
            self.pos[d]
                .par_iter_mut()
                .zip(perm.par_iter())
                .for_each(|(p, &i)| *p = x[i as usize][d]);
        }
    }

    /// Recomputes every cell's center and radius from the sorted positions; returns the
    /// sum of radii. Each cell scans its own particle range (O(N depth), parallel).
    fn refit_geometry(&mut self) -> f64 {
        let pos = &self.pos;
        self.cells.par_iter_mut().for_each(|c| {
            let r = c.range();
            let mut lo = [f64::INFINITY; D];
            let mut hi = [f64::NEG_INFINITY; D];
            for d in 0..D {
                for &v in &pos[d][r.clone()] {
                    lo[d] = lo[d].min(v);
                    hi[d] = hi[d].max(v);
                }
            }
            c.center = std::array::from_fn(|d| 0.5 * (lo[d] + hi[d]));
            let mut r2max: f64 = 0.0;
            for j in r {
                let mut r2 = 0.0;
                for d in 0..D {
                    let u = pos[d][j] - c.center[d];
                    r2 += u * u;
                }
                r2max = r2max.max(r2);
            }
            c.radius = r2max.sqrt();
        });
        self.cells.iter().map(|c| c.radius).sum()
    }
}

/// Smallest axis-aligned cube (lower corner, side) containing all points (slightly padded).
fn bounding_cube<const D: usize>(x: &[[f64; D]]) -> ([f64; D], f64) {
    let (lo, hi) = crate::util::parallel::bounding_box(x);
    let side = (0..D).map(|d| hi[d] - lo[d]).fold(0.0, f64::max);
    let side = if side > 0.0 { side * (1.0 + 1e-9) } else { 1.0 };
    assert!(side.is_finite(), "positions must be finite");
    (lo, side)
}

/// Interleaves the low `bits` bits of the `D` coordinates, most significant first.
fn morton<const D: usize>(c: [u64; D], bits: u32) -> u64 {
    let mut key = 0u64;
    for b in (0..bits).rev() {
        for cd in c.iter() {
            key = (key << 1) | ((cd >> b) & 1);
        }
    }
    key
}
