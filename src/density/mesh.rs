//! Blob densities on a mesh (particle-mesh), for kernels too wide for
//! neighbour sums: the cost of an evaluation is O(N 4^d + M log M) for M
//! mesh cells, whatever the number of particles under a kernel.
//!
//! On the lattice of nodes g Delta (g in Z^d, Delta = eps / CELLS_PER_BANDWIDTH,
//! anchored at the origin, never at the cloud) with the tensor cubic B-spline
//! W(u) = B(u_1) ... B(u_d), u = x / Delta:
//!
//! ```text
//!   M_g    = sum_j w_j W(u_j - g)                      mass deposit
//!   phi_g  = sum_h Kd(g - h) M_h                       discrete convolution (FFT)
//!   rho_i  = sum_g W(u_i - g) phi_g                    interpolation
//! ```
//!
//! Kd is a Wendland C2 kernel of standard deviation eps' sampled at the
//! nodes and scaled to unit discrete mass (sum_g Kd(g) Delta^d = 1). Deposit
//! and interpolation each spread like B (per-axis variance Delta^2/3), so
//! eps'^2 = eps^2 - 2 Delta^2/3 keeps the effective kernel's per-axis
//! variance at eps^2 (SPEC §2), and rho_i is the blob estimate with a kernel
//! that is, up to the B-spline's aliasing (relative size ~(Delta/(2 pi eps))^4
//! for a cubic spline), the Wendland kernel of bandwidth eps. Each species'
//! mass is exact: sum_g M_g = sum_j w_j and sum_g W(u - g) = 1.
//!
//! The diffusion energy E = sum_i w_i s(rho_i) (s = D f_m) is s composed
//! with these linear maps, so its gradient follows exactly by the chain
//! rule: with a_g = sum_i w_i s'(rho_i) W(u_i - g) and b = Kd * a (Kd is
//! even),
//!
//! ```text
//!   dE/dX_k = (w_k / Delta) sum_g grad_u W(u_k - g) [ s'(rho_k) phi_g + b_g ],
//! ```
//!
//! two deposits, two convolutions and two interpolations per evaluation. B is
//! C^2, so the energy is C^2 in the positions.
//!
//! The mesh is the lattice's window over the cloud, padded by the kernel's
//! reach so the FFT's periodic wrap-around never reaches a particle: the
//! energy is the same function of X wherever the window sits, so it does not
//! jump when particles move the window during a line search.
//!
//! The convolutions transform the axes 0..d-1 forward and d-1..0 back.
//!
//! Divided among the members of a [`Team`] (MPI ranks), d >= 2, when the
//! window has [`DIVIDED_CELLS_PER_POINT`] cells a point or more (a smaller
//! one is every member's, as the deposits and FFTs of any window were until
//! session 29), the mesh is cut in slabs ([`crate::util::slabs`]): a member
//! deposits into its planes of the last axis (it runs over every particle,
//! passes over those whose last coordinate puts their stencil off its
//! planes, and adds the others' stencil nodes in its planes, in the
//! chunks' order: each node's sum is the single process's), transforms
//! them, and after a
//! transpose the last axis of its columns, where it multiplies by Kd's
//! transform. The interpolations
//! (rho_i, and the gradient's pass) are per particle: each member does
//! those of its own ranges of `CHUNK` particles (equal counts: every
//! particle costs one stencil) and an `all_gather` gives every member all
//! densities, with the single process's bits; a member wanting some
//! particles' gradient only ([`super::DensityEstimator::want`]) computes
//! theirs and exchanges none. The nodes of phi and of the gradient's
//! convolution that those stencils read on other members' planes come by
//! segments of axis 0, planned once per `compute` (the positions are
//! those of the gradient passes that follow), and are kept beside the
//! member's planes ([`crate::util::slabs::Halo`]): no member holds a grid
//! of the whole window.

use crate::util::math::cubic_bspline as bspline;
use rayon::prelude::*;
use rustfft::num_complex::Complex;

use crate::model::kernel::{RadialKernel, WendlandC2};
use crate::util::fft::{GridFft, fast_length};
use crate::util::grid::Grid;
use crate::util::parallel::CHUNK;
use crate::util::slabs::{Halo, Reads, Segments, Slabs};
use crate::util::team::{self, Team, share, split_chunks};
use std::ops::Range;
use std::sync::Arc;

/// eps / Delta: two mesh cells per kernel standard deviation. The B-spline's
/// aliasing then perturbs the estimate by ~(1/(4 pi))^4 ~ 4e-5 relative, and
/// the kernel's support (radius ~3.5 eps after narrowing) is ~14 cells across.
pub const CELLS_PER_BANDWIDTH: f64 = 2.0;

/// A mesh estimate may use up to this many times the cells of the cloud at
/// the start of the step (a line search's long trial steps); beyond, the
/// trial is refused.
pub const MESH_GROWTH: usize = 16;

/// Hard limit on a mesh's cells whatever `max_cells` says: 2^40 cells take
/// 64 TiB ([`BYTES_PER_CELL`] each), beyond any machine, and a limit derived
/// by saturating arithmetic (usize::MAX) must still refuse rather than ask
/// the allocator for more than it can address.
pub const MAX_MESH_CELLS: usize = 1 << 40;

/// Under a team, a window is divided by slabs when it has at least this
/// many cells per point; a smaller one is every member's. What the division
/// costs grows with the points (every member runs over them to find its
/// planes' deposits, and plans the nodes its stencils read), what it saves
/// with the cells too (the FFTs). Measured at 2 ranks, divided against
/// every rank's (BENCHMARKS.md, "MPI: the meshes divided by slabs" and
/// "MPI: where a density window is divided"): 2.5 cells a point, 3%
/// slower; ~5, even; ~8, 1.05x faster; ~13, 1.2x; ~27, 1.35x.
pub const DIVIDED_CELLS_PER_POINT: usize = 4;

/// Particles per deposit chunk: each chunk deposits into a grid of its own,
/// the grids are added in chunk order (the same bits on any thread count).
const DEPOSIT_CHUNK: usize = 16384;

/// At most this many cells in all the chunk grids together.
const MAX_CHUNK_CELLS: usize = 1 << 24;

/// Products of one weight per axis over the 4^D stencil nodes, node
/// j_0 + 4 j_1 + 16 j_2 (axis 0 fastest, as the mesh's layout).
#[inline(always)]
fn tensor<const D: usize>(w: &[[f64; 4]; D], out: &mut [f64; 64]) {
    out[0] = 1.0;
    let mut len = 1;
    for wa in w {
        // Expand in place from the back: entry k is read before it is overwritten.
        for k in (0..len).rev() {
            let v = out[k];
            for j in (0..4).rev() {
                out[j * len + k] = v * wa[j];
            }
        }
        len *= 4;
    }
}

/// The window of the lattice the mesh covers: `shape[a]` nodes from node
/// `lo` on each axis, as the grid ([`Grid`]) whose cell `c` is centered on
/// the node `g = lo + c` (lower corner `(lo - 1/2) Delta`, spacing Delta),
/// so a mesh array is that grid's cell array (x fastest).
#[derive(Debug, Clone, PartialEq)]
struct Window<const D: usize> {
    /// Lattice index of the mesh's first node on each axis.
    lo: [i64; D],
    grid: Grid,
    /// The grid's strides, copied into an array: the stencil reads them for
    /// every particle, and a fixed-size array keeps that loop free of
    /// bounds checks and heap reads.
    strides: [usize; D],
    /// Flat offsets of the 4^D stencil nodes from the stencil's first node.
    offsets: Vec<usize>,
}

impl<const D: usize> Window<D> {
    fn new(lo: [i64; D], shape: [usize; D], spacing: f64) -> Self {
        let grid = Self::grid(lo, shape, spacing);
        let strides: [usize; D] = std::array::from_fn(|a| grid.stride(a));
        let offsets = (0..4usize.pow(D as u32))
            .map(|k| (0..D).map(|a| (k >> (2 * a) & 3) * strides[a]).sum())
            .collect();
        Window {
            lo,
            grid,
            strides,
            offsets,
        }
    }

    fn grid(lo: [i64; D], shape: [usize; D], spacing: f64) -> Grid {
        Grid::from_spacing(
            lo.iter().map(|&l| (l as f64 - 0.5) * spacing).collect(),
            vec![spacing; D],
            shape.to_vec(),
        )
    }

    /// The same shape moved to start at node `lo` (strides and offsets stand).
    fn move_to(&mut self, lo: [i64; D], spacing: f64) {
        self.lo = lo;
        self.grid = Self::grid(lo, self.shape(), spacing);
    }

    /// Nodes per axis.
    fn shape(&self) -> [usize; D] {
        std::array::from_fn(|a| self.grid.cells()[a])
    }

    /// Total nodes.
    fn cells(&self) -> usize {
        self.grid.len()
    }

    /// The values of `grid` at the 4^D nodes of the stencil whose first
    /// node is `base`, node j_0 + 4 j_1 + 16 j_2 (as `offsets`).
    #[inline(always)]
    fn values(&self, segments: &Segments, grid: &Halo, base: usize) -> [f64; 64] {
        let row = if D == 1 {
            self.grid.cells()[0]
        } else {
            self.strides[1]
        };
        let x0 = base % row;
        let at = [x0, x0 + 1, x0 + 2, x0 + 3];
        let mut values = [0.0; 64];
        for (k, out) in values
            .chunks_exact_mut(4)
            .take(4usize.pow(D as u32 - 1))
            .enumerate()
        {
            let start = base - x0 + self.offsets[4 * k];
            out.copy_from_slice(&segments.row4(grid, start, at));
        }
        values
    }

    /// The stencil of a particle: flat index of its first node and the
    /// B-spline weights and derivatives per axis (u = x / Delta).
    #[inline(always)]
    fn stencil(&self, x: &[f64; D], inv_spacing: f64) -> (usize, [[f64; 4]; D], [[f64; 4]; D]) {
        let mut base = 0;
        let mut w = [[0.0; 4]; D];
        let mut dw = [[0.0; 4]; D];
        for a in 0..D {
            let u = x[a] * inv_spacing;
            let fl = u.floor();
            base += (fl as i64 - 1 - self.lo[a]) as usize * self.strides[a];
            (w[a], dw[a]) = bspline(u - fl);
        }
        (base, w, dw)
    }
}

/// The blob density estimate of one species on a mesh (module docs).
pub struct MeshDensity<const D: usize> {
    eps: f64,
    spacing: f64,
    /// The narrowed kernel Kd is sampled from (eps'^2 = eps^2 - 2 Delta^2/3).
    kernel: WendlandC2,
    /// Kd vanishes beyond this many nodes from its center, on every axis.
    reach: usize,
    /// Largest mesh an evaluation may use; beyond it the estimate is
    /// refused. At least `min_max_cells`, and after a [`reset`](Self::reset)
    /// MESH_GROWTH times the cells of the next estimate's cloud (the step's
    /// start X^n), so a cloud that spreads over a run keeps its mesh.
    max_cells: usize,
    min_max_cells: usize,
    rebase: bool,
    window: Option<Window<D>>,
    /// Transforms of the window's shape and the real transform of Kd on it,
    /// divided by the cell count (the inverse transform's normalization),
    /// on this member's column grid (the whole window for one member).
    fft: Option<GridFft>,
    kernel_hat: Vec<f64>,
    /// phi = Kd * M, and b = Kd * a for the gradient (module docs): this
    /// member's planes and the segments of others its stencils read (the
    /// whole window for one member).
    phi: Halo,
    conv: Halo,
    /// Deposit grids, one per chunk, then their sum (this member's planes).
    chunk_grids: Vec<f64>,
    deposit: Vec<f64>,
    /// The planes' transform, and the column grid (empty for one member).
    work: Vec<Complex<f64>>,
    columns: Vec<Complex<f64>>,
    lines: Vec<Complex<f64>>,
    rho: Vec<f64>,
    /// The members dividing the mesh and the interpolations (module docs),
    /// the window's slabs, and the segments the last `compute` planned.
    team: Arc<dyn Team>,
    divided_cells_per_point: usize,
    slabs: Slabs,
    segments: Segments,
    /// The particles whose gradient the caller reads
    /// ([`super::DensityEstimator::want`]; `None`: all).
    wanted: Option<Vec<u32>>,
}

impl<const D: usize> std::fmt::Debug for MeshDensity<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshDensity")
            .field("eps", &self.eps)
            .field("spacing", &self.spacing)
            .field("shape", &self.window.as_ref().map(|w| w.shape()))
            .finish()
    }
}

/// Why a mesh estimate was refused: the cloud spans more cells than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshTooLarge {
    /// Cells the cloud would need.
    pub cells: usize,
    /// Cells the estimator allows.
    pub max_cells: usize,
}

impl<const D: usize> MeshDensity<D> {
    /// Estimator of bandwidth `eps`, refusing clouds that need more than
    /// `max_cells` mesh cells.
    pub fn new(eps: f64, max_cells: usize) -> Self {
        assert!(eps > 0.0 && eps.is_finite());
        let spacing = eps / CELLS_PER_BANDWIDTH;
        let narrowed = (eps * eps - 2.0 * spacing * spacing / 3.0).sqrt();
        let kernel = WendlandC2::new(D, narrowed);
        MeshDensity {
            eps,
            spacing,
            kernel,
            reach: (kernel.support() / spacing).floor() as usize,
            max_cells: max_cells.min(MAX_MESH_CELLS),
            min_max_cells: max_cells.min(MAX_MESH_CELLS),
            rebase: false,
            window: None,
            fft: None,
            kernel_hat: Vec::new(),
            phi: Halo::default(),
            conv: Halo::default(),
            chunk_grids: Vec::new(),
            deposit: Vec::new(),
            work: Vec::new(),
            columns: Vec::new(),
            lines: Vec::new(),
            rho: Vec::new(),
            team: team::current(),
            divided_cells_per_point: DIVIDED_CELLS_PER_POINT,
            slabs: Slabs::new(&[1; D], 1, 0),
            segments: Segments::new(&Slabs::new(&[1; D], 1, 0), 1),
            wanted: None,
        }
    }

    /// The interpolations divided among the members of `team` (the
    /// process's team, [`team::current`], by default; module docs).
    pub fn with_team(mut self, team: Arc<dyn Team>) -> Self {
        self.team = team;
        self.window = None;
        self
    }

    /// Whether a window of `cells` cells for `points` points is divided by
    /// slabs (module docs): under a team, d >= 2, and a window of at least
    /// [`DIVIDED_CELLS_PER_POINT`] cells a point.
    fn divided(&self, cells: usize, points: usize) -> bool {
        self.team.size() > 1 && D >= 2 && cells >= self.divided_cells_per_point * points
    }

    /// Divides every window, however small, under a team (for the tests).
    #[cfg(test)]
    pub(crate) fn dividing_every_window(mut self) -> Self {
        self.divided_cells_per_point = 0;
        self
    }

    /// Every member's particles, of `n`, in whole chunks of `CHUNK`.
    fn parts(&self, n: usize) -> Vec<Range<usize>> {
        split_chunks(n, self.team.size())
    }

    /// The kernel's standard deviation eps (before the narrowing that makes
    /// up for the B-spline's spread).
    pub fn bandwidth(&self) -> f64 {
        self.eps
    }

    /// The window a cloud needs: the nodes its stencils touch, plus `reach`
    /// nodes of padding on each axis against the FFT's wrap-around (nodes g,
    /// h of the stencils are then at wrapped distances above the reach
    /// unless they are truly within it), each axis rounded up to a fast FFT
    /// length. Returns (lowest node, shape).
    pub fn window_of(&self, x: &[[f64; D]]) -> Result<([i64; D], [usize; D]), MeshTooLarge> {
        let (lo, shape, cells) = self.window_needed(x)?;
        if cells > self.max_cells {
            return Err(MeshTooLarge {
                cells,
                max_cells: self.max_cells,
            });
        }
        Ok((lo, shape))
    }

    /// [`window_of`](Self::window_of) and its cell count (saturating at
    /// usize::MAX), whatever the limit; refused only for coordinates beyond
    /// the i64 node indices (non-finite ones, or no particles).
    fn window_needed(&self, x: &[[f64; D]]) -> Result<([i64; D], [usize; D], usize), MeshTooLarge> {
        let (lo, hi) = crate::util::parallel::bounding_box(x);
        let inv = 1.0 / self.spacing;
        let mut first = [0i64; D];
        let mut shape = [0usize; D];
        for a in 0..D {
            let (l, h) = ((lo[a] * inv).floor(), (hi[a] * inv).floor());
            if !(l.abs() < 1e15 && h.abs() < 1e15 && l <= h) {
                return Err(MeshTooLarge {
                    cells: usize::MAX,
                    max_cells: self.max_cells,
                });
            }
            first[a] = l as i64 - 1;
            let used = (h - l) as usize + 4;
            shape[a] = fast_length((used + self.reach).max(2 * self.reach + 1));
        }
        let cells = shape
            .iter()
            .try_fold(1usize, |c, &n| c.checked_mul(n))
            .unwrap_or(usize::MAX);
        Ok((first, shape, cells))
    }

    /// Bases the next estimate's limit on its cloud: at the start of a JKO
    /// step, the cloud X^n (see `max_cells`).
    pub fn reset(&mut self) {
        self.rebase = true;
    }

    /// Sets the window for `x`, resizing the buffers and transforming Kd
    /// again when the shape changed.
    fn place(&mut self, x: &[[f64; D]]) -> Result<(), MeshTooLarge> {
        let (lo, shape, cells) = self.window_needed(x)?;
        if std::mem::take(&mut self.rebase) {
            self.max_cells = self
                .min_max_cells
                .max(cells.saturating_mul(MESH_GROWTH))
                .min(MAX_MESH_CELLS);
        }
        if cells > self.max_cells {
            return Err(MeshTooLarge {
                cells,
                max_cells: self.max_cells,
            });
        }
        match &mut self.window {
            // The same shape: the stencil offsets and Kd's transform stand.
            Some(w) if w.shape() == shape => w.move_to(lo, self.spacing),
            _ => {
                let window = Window::new(lo, shape, self.spacing);
                let (size, rank) = (self.team.size(), self.team.rank());
                self.slabs = match self.divided(cells, x.len()) {
                    true => Slabs::new(&shape, size, rank),
                    false => Slabs::new(&shape, 1, 0),
                };
                let (slab, columns) = (self.slabs.nodes().len(), self.column_cells(shape));
                let zero = Complex::new(0.0, 0.0);
                self.segments = Segments::new(&self.slabs, shape[0]);
                self.phi.slab.resize(slab, 0.0);
                self.conv.slab.resize(slab, 0.0);
                self.deposit.resize(slab, 0.0);
                self.work.resize(slab, zero);
                self.columns
                    .resize(if self.slabs.whole() { 0 } else { columns }, zero);
                self.transform_kernel(&window);
                self.window = Some(window);
            }
        }
        Ok(())
    }

    /// Nodes of this member's column grid for a window of `shape`.
    fn column_cells(&self, shape: [usize; D]) -> usize {
        self.slabs.column_shape(shape).iter().product()
    }

    /// Kd on the window's periodic mesh (offsets wrapped), transformed, on
    /// this member's column grid (`self.slabs` set for the window).
    fn transform_kernel(&mut self, window: &Window<D>) {
        let (grid, cells) = (&window.grid, window.cells());
        let (spacing, kernel) = (self.spacing, self.kernel);
        let value = |idx: usize| {
            let mut r2 = 0.0;
            for (a, &n) in grid.cells().iter().enumerate() {
                let j = grid.coord(idx, a);
                let o = if j <= n / 2 {
                    j as f64
                } else {
                    j as f64 - n as f64
                };
                r2 += (o * spacing).powi(2);
            }
            kernel.value(r2)
        };
        let mut k: Vec<Complex<f64>> = (self.slabs.nodes().into_par_iter())
            .map(|idx| Complex::new(value(idx), 0.0))
            .collect();
        // The discrete mass, summed over every node in order (the single
        // process's sum, on every member).
        let sum: f64 = if self.slabs.whole() {
            k.iter().map(|v| v.re).sum()
        } else {
            (0..cells).map(value).sum()
        };
        let mass = sum * spacing.powi(D as i32);
        let fft = GridFft::new(grid.cells());
        let mut columns = std::mem::take(&mut self.columns);
        let shape = window.shape();
        let spectrum = self.transform(&fft, &mut k, &mut columns, shape, |_| {});
        // Kd is real and even, so its transform is real.
        let scale = 1.0 / (mass * cells as f64);
        self.kernel_hat = spectrum.iter().map(|v| v.re * scale).collect();
        self.columns = columns;
        self.fft = Some(fft);
    }

    /// The forward transform of the window's planes `slab` (this member's,
    /// module docs), then `multiply` on the spectrum, this member's column
    /// grid (`columns`, or `slab` itself for one member), which it returns;
    /// with `back`, see [`Self::transform_back`].
    fn transform<'a>(
        &mut self,
        fft: &GridFft,
        slab: &'a mut [Complex<f64>],
        columns: &'a mut [Complex<f64>],
        shape: [usize; D],
        multiply: impl FnOnce(&mut [Complex<f64>]),
    ) -> &'a mut [Complex<f64>] {
        let slab_shape = self.slabs.slab_shape(shape);
        for a in 0..D - 1 {
            fft.along(slab, &slab_shape, a, false, &mut self.lines);
        }
        let data = if self.slabs.whole() {
            slab
        } else {
            self.slabs.to_columns(&*self.team, slab, columns);
            columns
        };
        let column_shape = self.slabs.column_shape(shape);
        fft.along(data, &column_shape, D - 1, false, &mut self.lines);
        multiply(data);
        data
    }

    /// The inverse of [`Self::transform`]: the synthesis of the last axis on
    /// the column grid, then (after the transpose back) of the axes d-2..0
    /// on the planes, in `slab`.
    fn transform_back(
        &mut self,
        fft: &GridFft,
        slab: &mut [Complex<f64>],
        columns: &mut [Complex<f64>],
        shape: [usize; D],
    ) {
        let column_shape = self.slabs.column_shape(shape);
        let data: &mut [Complex<f64>] = if self.slabs.whole() { slab } else { columns };
        fft.along(data, &column_shape, D - 1, true, &mut self.lines);
        if !self.slabs.whole() {
            self.slabs.to_planes(&*self.team, columns, slab);
        }
        let slab_shape = self.slabs.slab_shape(shape);
        for a in (0..D - 1).rev() {
            fft.along(slab, &slab_shape, a, true, &mut self.lines);
        }
    }

    /// `self.deposit` = sum_i value(i) W(u_i - g) on this member's planes
    /// (each node's sum the whole window's: module docs).
    fn deposit<F: Fn(usize) -> f64 + Sync>(&mut self, x: &[[f64; D]], value: F) {
        let window = self.window.as_ref().expect("placed");
        let (mine, plane) = (self.slabs.nodes(), self.slabs.plane);
        let (first, cells) = (mine.start, mine.len());
        let inv = 1.0 / self.spacing;
        let chunks = deposit_chunks(x.len(), window.cells());
        let per = x.len().div_ceil(chunks).max(1);
        let whole = self.slabs.whole();
        // This member's planes z0..z1: a particle whose planes z..z+3 miss
        // them is passed over before its stencil is made.
        let (z0, z1) = ((first / plane) as i64, ((first + cells) / plane) as i64);
        let deposit_range = |grid: &mut [f64], range: std::ops::Range<usize>| {
            grid.fill(0.0);
            let mut nodes = [0.0; 64];
            for i in range {
                if !whole {
                    let z = (x[i][D - 1] * inv).floor() as i64 - 1 - window.lo[D - 1];
                    if z + 3 < z0 || z >= z1 {
                        continue;
                    }
                }
                let (base, w, _) = window.stencil(&x[i], inv);
                // The stencil's planes are base's and the 3 after it.
                if !whole && (base + 4 * plane <= first || base >= first + cells) {
                    continue;
                }
                tensor(&w, &mut nodes);
                let v = value(i);
                let stencil = window.offsets.iter().zip(&nodes);
                if whole {
                    stencil.for_each(|(o, wn)| grid[base + o] += v * wn);
                } else {
                    for (o, wn) in stencil {
                        let g = (base + o).wrapping_sub(first);
                        if g < cells {
                            grid[g] += v * wn;
                        }
                    }
                }
            }
        };
        if chunks == 1 {
            deposit_range(&mut self.deposit, 0..x.len());
            return;
        }
        self.chunk_grids.resize(chunks * cells, 0.0);
        self.chunk_grids
            .par_chunks_mut(cells.max(1))
            .enumerate()
            .for_each(|(c, grid)| deposit_range(grid, c * per..((c + 1) * per).min(x.len())));
        let grids = &self.chunk_grids;
        self.deposit
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(b, out)| {
                for (k, o) in out.iter_mut().enumerate() {
                    let g = b * CHUNK + k;
                    *o = (0..chunks).map(|c| grids[c * cells + g]).sum();
                }
            });
    }

    /// out = Kd * self.deposit (periodic on the window, which the padding
    /// makes the same as the free-space sum at every node a stencil touches)
    /// on this member's planes.
    fn convolve(&mut self, into_phi: bool) {
        let fft = self.fft.take().expect("placed");
        let shape = self.window.as_ref().expect("placed").shape();
        let (mut work, mut columns) = (
            std::mem::take(&mut self.work),
            std::mem::take(&mut self.columns),
        );
        let kernel_hat = std::mem::take(&mut self.kernel_hat);
        work.par_iter_mut()
            .zip(self.deposit.par_iter())
            .for_each(|(c, &v)| *c = Complex::new(v, 0.0));
        self.transform(&fft, &mut work, &mut columns, shape, |data| {
            data.par_iter_mut()
                .zip(kernel_hat.par_iter())
                .for_each(|(c, &k)| *c *= k)
        });
        self.transform_back(&fft, &mut work, &mut columns, shape);
        let out = if into_phi {
            &mut self.phi
        } else {
            &mut self.conv
        };
        (out.slab.par_iter_mut())
            .zip(work.par_iter())
            .for_each(|(o, c)| *o = c.re);
        (self.work, self.columns, self.kernel_hat) = (work, columns, kernel_hat);
        self.fft = Some(fft);
    }

    /// Collective (a member of a divided mesh): plans the segments of phi
    /// and of the gradient's convolution that the stencils of its own
    /// particles (`parts`) and wanted ones read (module docs).
    fn plan_reads(&mut self, x: &[[f64; D]], mine: Range<usize>) {
        let window = self.window.as_ref().expect("placed");
        let segments = &self.segments;
        let (row, inv) = (window.strides[1.min(D - 1)], 1.0 / self.spacing);
        let stencil_rows = |i: usize, out: &mut Reads| {
            let (base, _, _) = window.stencil(&x[i], inv);
            let x0 = base % row;
            let mut starts = [0usize; 16];
            let mut len = 1;
            starts[0] = base - x0;
            for a in 1..D {
                for k in (0..len).rev() {
                    for j in (0..4).rev() {
                        starts[j * len + k] = starts[k] + j * window.strides[a];
                    }
                }
                len *= 4;
            }
            for &start in &starts[..len] {
                segments.push(start, x0, x0 + 3, out);
            }
        };
        let own = (mine.into_par_iter().step_by(CHUNK)).map(|first| {
            let mut read = Reads::default();
            (first..(first + CHUNK).min(x.len())).for_each(|i| stencil_rows(i, &mut read));
            read.list
        });
        let wanted = self.wanted.as_deref().unwrap_or(&[]);
        let theirs = wanted.par_chunks(CHUNK).map(|ids| {
            let mut read = Reads::default();
            ids.iter()
                .for_each(|&i| stencil_rows(i as usize, &mut read));
            read.list
        });
        let reads: Vec<Vec<u32>> = own.chain(theirs).collect();
        (self.segments).plan(&*self.team, reads.par_iter().map(|r| &r[..]));
    }

    /// Collective (a member of a divided mesh): the planned segments of phi
    /// (or of the gradient's convolution) from the members holding them.
    fn fetch(&mut self, into_phi: bool) {
        let grid = if into_phi {
            &mut self.phi
        } else {
            &mut self.conv
        };
        self.segments.fetch(&*self.team, grid);
    }

    /// rho at every particle of `x` (one species, weights `w`), or an error
    /// if the cloud needs more than the allowed mesh.
    pub fn compute(&mut self, x: &[[f64; D]], w: &[f64]) -> Result<&[f64], MeshTooLarge> {
        self.place(x)?;
        let divided = self.team.size() > 1;
        if divided {
            self.team.agree_on_interrupt();
        }
        self.deposit(x, |i| w[i]);
        self.convolve(true);
        let parts = self.parts(x.len());
        if !self.slabs.whole() {
            self.plan_reads(x, parts[self.team.rank()].clone());
            self.fetch(true);
        }
        let window = self.window.as_ref().expect("placed");
        let (phi, inv) = (&self.phi, 1.0 / self.spacing);
        let (segments, whole) = (&self.segments, self.slabs.whole());
        let mine = &parts[self.team.rank()];
        self.rho.resize(x.len(), 0.0);
        self.rho
            .par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .enumerate()
            .filter(|(c, _)| mine.contains(&(c * CHUNK)))
            .for_each(|(_, (rho, x))| {
                let mut nodes = [0.0; 64];
                for (r, xi) in rho.iter_mut().zip(x) {
                    let (base, w, _) = window.stencil(xi, inv);
                    tensor(&w, &mut nodes);
                    // The same products in the same order on a whole
                    // window as on a member's planes and segments.
                    *r = if whole {
                        let grid = &phi.slab;
                        (window.offsets.iter())
                            .zip(&nodes)
                            .map(|(o, wn)| wn * grid[base + o])
                            .sum()
                    } else {
                        let values = window.values(segments, phi, base);
                        (values.iter().take(window.offsets.len()))
                            .zip(&nodes)
                            .map(|(v, wn)| wn * v)
                            .sum()
                    };
                }
            });
        if divided {
            share(&*self.team, &parts, 1, &mut self.rho);
        }
        Ok(&self.rho)
    }

    /// The densities of the last `compute`.
    pub fn rho(&self) -> &[f64] {
        &self.rho
    }

    /// Adds to `grad` the gradient of E = sum_i w_i s(rho_i) at the positions
    /// of the last [`compute`](Self::compute), given `slope[i]` = s'(rho_i)
    /// (module docs).
    pub fn add_gradient(
        &mut self,
        x: &[[f64; D]],
        w: &[f64],
        slope: &[f64],
        grad: &mut [[f64; D]],
    ) {
        self.deposit(x, |i| w[i] * slope[i]);
        self.gradient_pass(x, grad, |i| (slope[i], 1.0, w[i]));
    }

    /// Adds to `grad` the gradient of the linear form sum_i c_i rho_i at
    /// fixed `c`, at the positions of the last [`compute`](Self::compute)
    /// with weights `w` ([`super::DensityEstimator::add_linear_gradient`]):
    /// c_l grad phi(X_l) + w_l grad (K * c)(X_l), phi = K * w.
    pub fn add_linear_gradient(
        &mut self,
        x: &[[f64; D]],
        w: &[f64],
        c: &[f64],
        grad: &mut [[f64; D]],
    ) {
        self.deposit(x, |i| c[i]);
        self.gradient_pass(x, grad, |i| (c[i], w[i], 1.0));
    }

    /// After the deposit of the sources b of the gradient: adds to particle
    /// i's gradient o_i (a_i grad phi + b_i grad (K * b)) at X_i, with
    /// (a_i, b_i, o_i) = `coefficients(i)`.
    fn gradient_pass<F: Fn(usize) -> (f64, f64, f64) + Sync>(
        &mut self,
        x: &[[f64; D]],
        grad: &mut [[f64; D]],
        coefficients: F,
    ) {
        self.convolve(false);
        if !self.slabs.whole() {
            self.fetch(false);
        }
        let window = self.window.as_ref().expect("placed");
        let (phi, b, inv) = (&self.phi, &self.conv, 1.0 / self.spacing);
        let (segments, whole) = (&self.segments, self.slabs.whole());
        // Particle i's term, from the mesh's nodes (a member's planes and
        // the segments it received): the same bits wherever it is computed.
        let add = |i: usize, gi: &mut [f64; D], nodes: &mut [[f64; 64]; D]| {
            let (si, bi, wi) = coefficients(i);
            let (base, wt, dw) = window.stencil(&x[i], inv);
            for (a, nodes_a) in nodes.iter_mut().enumerate() {
                let mut f = wt;
                f[a] = dw[a];
                tensor(&f, nodes_a);
            }
            let mut acc = [0.0; D];
            let mut node = |n: usize, phi_n: f64, b_n: f64| {
                let v = si * phi_n + bi * b_n;
                for a in 0..D {
                    acc[a] += nodes[a][n] * v;
                }
            };
            if whole {
                let (phi, b) = (&phi.slab, &b.slab);
                for (n, o) in window.offsets.iter().enumerate() {
                    node(n, phi[base + o], b[base + o]);
                }
            } else {
                let (phi, b) = (
                    window.values(segments, phi, base),
                    window.values(segments, b, base),
                );
                for n in 0..window.offsets.len() {
                    node(n, phi[n], b[n]);
                }
            }
            for a in 0..D {
                gi[a] += wi * inv * acc[a];
            }
        };
        let wanted = self.wanted.as_deref().filter(|_| self.team.size() > 1);
        if let Some(wanted) = wanted {
            // A member wanting some particles computes theirs, and needs
            // nobody's: it holds the nodes their stencils read.
            grad.par_chunks_mut(CHUNK).enumerate().for_each(|(c, g)| {
                let first = c * CHUNK;
                let mut nodes = [[0.0; 64]; D];
                for &i in crate::util::parallel::wanted_in(wanted, first..first + g.len()) {
                    add(i as usize, &mut g[i as usize - first], &mut nodes);
                }
            });
            return;
        }
        let parts = self.parts(x.len());
        let mine = &parts[self.team.rank()];
        grad.par_chunks_mut(CHUNK)
            .enumerate()
            .filter(|(c, _)| mine.contains(&(c * CHUNK)))
            .for_each(|(c, g)| {
                let mut nodes = [[0.0; 64]; D];
                for (k, gi) in g.iter_mut().enumerate() {
                    add(c * CHUNK + k, gi, &mut nodes);
                }
            });
        // The gradient was the same on every member before this pass, so
        // the owners' values are every member's.
        if self.team.size() > 1 {
            share(&*self.team, &parts, D, grad.as_flattened_mut());
        }
    }
}

/// Mesh cells the cloud `x` needs at bandwidth `eps` (see
/// [`MeshDensity::window_of`]), saturating at usize::MAX.
pub fn cells_needed<const D: usize>(x: &[[f64; D]], eps: f64) -> usize {
    match MeshDensity::<D>::new(eps, usize::MAX).window_needed(x) {
        Ok((_, _, cells)) => cells,
        Err(e) => e.cells,
    }
}

/// Bytes a mesh estimator holds per cell besides its deposit chunks: four
/// real grids (deposit, phi, the convolution, Kd's transform), the complex
/// work grid and the FFT's gathered lines.
pub const BYTES_PER_CELL: usize = 4 * 8 + 2 * 16;

/// Bytes a mesh estimator of `cells` cells holds for `n` particles (saturating): the
/// grids of [`BYTES_PER_CELL`] and one deposit grid per chunk of
/// DEPOSIT_CHUNK particles (at most MAX_CHUNK_CELLS cells in all).
pub fn bytes(n: usize, cells: usize) -> usize {
    let chunks = deposit_chunks(n, cells);
    let chunk_grids = if chunks > 1 {
        chunks.saturating_mul(cells)
    } else {
        0
    };
    BYTES_PER_CELL
        .saturating_mul(cells)
        .saturating_add(chunk_grids.saturating_mul(8))
}

/// How many deposit grids `n` particles on `cells` cells use.
fn deposit_chunks(n: usize, cells: usize) -> usize {
    n.div_ceil(DEPOSIT_CHUNK)
        .clamp(1, (MAX_CHUNK_CELLS / cells.max(1)).max(1))
}

impl<const D: usize> super::DensityEstimator<D> for MeshDensity<D> {
    fn bandwidth(&self) -> f64 {
        self.eps
    }

    fn compute(&mut self, x: &[[f64; D]], w: &[f64]) -> Result<&[f64], MeshTooLarge> {
        MeshDensity::compute(self, x, w)
    }

    fn add_gradient(&mut self, x: &[[f64; D]], w: &[f64], slope: &[f64], grad: &mut [[f64; D]]) {
        MeshDensity::add_gradient(self, x, w, slope, grad);
    }

    fn add_linear_gradient(&mut self, x: &[[f64; D]], w: &[f64], c: &[f64], grad: &mut [[f64; D]]) {
        MeshDensity::add_linear_gradient(self, x, w, c, grad);
    }

    fn reset(&mut self) {
        MeshDensity::reset(self);
    }

    fn want(&mut self, particles: Option<&[u32]>) {
        self.wanted = particles.map(<[u32]>::to_vec);
    }

    /// The mesh of the initial cloud ([`bytes`]; it grows with the cloud,
    /// and a trial may take up to [`MESH_GROWTH`] times it).
    fn extra_memory(&self, x: &[[f64; D]], _w: &[f64]) -> u64 {
        bytes(x.len(), cells_needed(x, self.eps)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weights are the cubic B-spline (a partition of unity of mean u and
    /// variance 1/3 about u), their derivatives its derivative.
    #[test]
    fn bspline_weights() {
        for f in [0.0, 0.1, 0.5, 0.77, 0.999] {
            let (w, dw) = bspline(f);
            let sum: f64 = w.iter().sum();
            let mean: f64 = w
                .iter()
                .enumerate()
                .map(|(j, v)| v * (j as f64 - 1.0))
                .sum();
            let var: f64 = w
                .iter()
                .enumerate()
                .map(|(j, v)| v * (j as f64 - 1.0 - f).powi(2))
                .sum();
            assert!((sum - 1.0).abs() < 1e-15 && (mean - f).abs() < 1e-15);
            assert!((var - 1.0 / 3.0).abs() < 1e-15, "{var}");
            let h = 1e-6;
            let (wp, _) = bspline(f + h);
            let (wm, _) = bspline(f - h);
            for j in 0..4 {
                assert!((dw[j] - (wp[j] - wm[j]) / (2.0 * h)).abs() < 1e-9);
            }
            assert!(dw.iter().sum::<f64>().abs() < 1e-15);
        }
    }

    #[test]
    fn tensor_products_in_layout_order() {
        let w = [[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]];
        let mut out = [0.0; 64];
        tensor(&w, &mut out);
        for j1 in 0..4 {
            for j0 in 0..4 {
                assert_eq!(out[j0 + 4 * j1], w[0][j0] * w[1][j1]);
            }
        }
    }
}

#[cfg(test)]
mod estimate_tests {
    use super::*;
    use crate::density::BlobDensity;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn gaussian_cloud<const D: usize>(n: usize, seed: u64) -> (Vec<[f64; D]>, Vec<f64>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let x = (0..n)
            .map(|_| std::array::from_fn(|_| StandardNormal.sample(&mut rng)))
            .collect();
        (x, vec![1.0 / n as f64; n])
    }

    fn compare<const D: usize>(n: usize, eps: f64) -> (f64, f64) {
        let (x, w) = gaussian_cloud::<D>(n, 7);
        let mut mesh = MeshDensity::<D>::new(eps, usize::MAX);
        let a = mesh.compute(&x, &w).unwrap().to_vec();
        let b = BlobDensity::<D>::new(eps).compute(&x, &w).to_vec();
        let mut max: f64 = 0.0;
        let mut sum2 = 0.0;
        for (p, q) in a.iter().zip(&b) {
            let r = (p - q).abs() / q;
            max = max.max(r);
            sum2 += r * r;
        }
        (max, (sum2 / n as f64).sqrt())
    }

    /// The estimate against the neighbour sum with the Wendland kernel of
    /// the same eps, on a standard Gaussian cloud: both kernels have unit
    /// mass and per-axis variance eps^2 and differ in shape (the mesh's is
    /// the narrowed Wendland smoothed by two B-splines), so the estimates
    /// differ by O(eps^4 |D^4 rho| / rho) plus the difference of their
    /// sampling noise. Measured rms relative differences: 5e-4 (1D, eps =
    /// 0.05), 1.8e-3 (2D, 0.1), 3.0e-3 (3D, 0.2); the bounds are twice
    /// these. Without the narrowing (eps' = eps) the mean would be biased by
    /// (2 Delta^2/3) Laplace rho / 2 (~1% here), failing them.
    #[test]
    fn matches_the_kernel_sum() {
        let cases = [
            compare::<1>(20000, 0.05),
            compare::<2>(20000, 0.1),
            compare::<3>(20000, 0.2),
        ];
        for (d, ((max, rms), bound)) in cases.iter().zip([1e-3, 4e-3, 6e-3]).enumerate() {
            println!(
                "{}D: rms relative difference {rms:.2e} (bound {bound:.0e}), max {max:.2e}",
                d + 1
            );
            assert!(*rms < bound);
        }
    }

    /// The FFT convolution on the padded window against the formula of the
    /// module docs summed directly (Kd(g - h) over all node pairs): the
    /// padding keeps the periodic wrap-around away, so they agree to
    /// rounding (1e-12 relative), in 1D, 2D and 3D.
    #[test]
    fn fft_convolution_equals_the_direct_formula() {
        fn check<const D: usize>(eps: f64) {
            let (x, w) = gaussian_cloud::<D>(40, 3);
            let mut mesh = MeshDensity::<D>::new(eps, usize::MAX);
            let rho = mesh.compute(&x, &w).unwrap().to_vec();
            let window = mesh.window.clone().unwrap();
            let (delta, kernel) = (mesh.spacing, mesh.kernel);
            // Node coordinates of flat index g.
            let node = |g: usize| -> [i64; D] {
                std::array::from_fn(|a| window.grid.coord(g, a) as i64 + window.lo[a])
            };
            let kd = |g: [i64; D], h: [i64; D]| {
                let r2: f64 = (0..D).map(|a| ((g[a] - h[a]) as f64 * delta).powi(2)).sum();
                kernel.value(r2)
            };
            let reach = mesh.reach as i64;
            let mut mass = 0.0;
            for o in 0..(2 * reach + 1).pow(D as u32) {
                let off: [i64; D] = std::array::from_fn(|a| {
                    (o / (2 * reach + 1).pow(a as u32)) % (2 * reach + 1) - reach
                });
                mass += kd(off, [0; D]);
            }
            mass *= delta.powi(D as i32);
            // M_h, then rho_i = sum_g W_i(g) sum_h Kd(g - h) M_h over stencil nodes.
            let mut m = vec![0.0; window.cells()];
            let mut nodes = [0.0; 64];
            for (xi, wi) in x.iter().zip(&w) {
                let (base, wt, _) = window.stencil(xi, 1.0 / delta);
                tensor(&wt, &mut nodes);
                for (o, v) in window.offsets.iter().zip(&nodes) {
                    m[base + o] += wi * v;
                }
            }
            let sources: Vec<usize> = (0..window.cells()).filter(|&h| m[h] != 0.0).collect();
            for (xi, r) in x.iter().zip(&rho) {
                let (base, wt, _) = window.stencil(xi, 1.0 / delta);
                tensor(&wt, &mut nodes);
                let mut direct = 0.0;
                for (o, v) in window.offsets.iter().zip(&nodes) {
                    let g = node(base + o);
                    let phi: f64 = sources.iter().map(|&h| kd(g, node(h)) * m[h]).sum();
                    direct += v * phi / mass;
                }
                assert!(
                    (r - direct).abs() <= 1e-12 * direct,
                    "{D}D: {r} vs {direct}"
                );
            }
        }
        check::<1>(0.05);
        check::<2>(0.3);
        check::<3>(0.6);
    }

    /// The effective kernel of one particle, probed by particles of weight
    /// 0 on a fine grid: unit mass (exact for the mesh: the B-splines are a
    /// partition of unity and Kd has unit discrete mass) and per-axis
    /// variance eps^2 (the narrowing; off by the sampled Wendland's second
    /// moment: measured 2.6e-4 relative at two cells per eps, bound 1e-3).
    /// Probe quadrature at eps/50 adds ~1e-6.
    #[test]
    fn one_particle_spreads_with_unit_mass_and_variance() {
        let eps = 0.1;
        let center = 0.0123;
        let h = eps / 50.0;
        let mut x: Vec<[f64; 1]> = vec![[center]];
        x.extend((-400..=400).map(|k| [center + k as f64 * h]));
        let mut w = vec![0.0; x.len()];
        w[0] = 1.0;
        let mut mesh = MeshDensity::<1>::new(eps, usize::MAX);
        let rho = mesh.compute(&x, &w).unwrap();
        let mass: f64 = rho[1..].iter().sum::<f64>() * h;
        let var: f64 = x[1..]
            .iter()
            .zip(&rho[1..])
            .map(|(p, r)| (p[0] - center).powi(2) * r)
            .sum::<f64>()
            * h;
        println!("mass {mass}, variance / eps^2 {}", var / (eps * eps));
        assert!((mass - 1.0).abs() < 1e-6, "{mass}");
        assert!((var / (eps * eps) - 1.0).abs() < 1e-3, "{var}");
    }

    /// Where the window sits does not change the estimate: a far particle
    /// of weight 0 moves the window's origin and grows its shape, and the
    /// densities agree to rounding.
    #[test]
    fn the_window_does_not_change_the_estimate() {
        let (mut x, mut w) = gaussian_cloud::<2>(3000, 5);
        let mut mesh = MeshDensity::<2>::new(0.1, usize::MAX);
        let a = mesh.compute(&x, &w).unwrap().to_vec();
        let before = mesh.window.clone().unwrap();
        x.push([-9.7, 3.3]);
        w.push(0.0);
        let b = mesh.compute(&x, &w).unwrap().to_vec();
        let after = mesh.window.clone().unwrap();
        assert!(before.lo != after.lo && before.shape() != after.shape());
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() <= 1e-12 * p, "{p} vs {q}");
        }
    }

    /// Several deposit chunks, added in chunk order: the same bits on one
    /// thread and two.
    #[test]
    fn same_bits_on_any_thread_count() {
        let (x, w) = gaussian_cloud::<2>(3 * DEPOSIT_CHUNK + 17, 9);
        let run = || {
            let mut mesh = MeshDensity::<2>::new(0.05, usize::MAX);
            let rho = mesh.compute(&x, &w).unwrap().to_vec();
            let slope: Vec<f64> = rho.iter().map(|r| 1.0 / r).collect();
            let mut grad = vec![[0.0; 2]; x.len()];
            mesh.add_gradient(&x, &w, &slope, &mut grad);
            (rho, grad)
        };
        let one = crate::util::parallel::on_threads(1, run);
        let two = crate::util::parallel::on_threads(2, run);
        assert!(one == two);
    }

    /// The interpolations divided among 2-4 members of a team (threads
    /// standing for MPI ranks), with the mesh every member's or divided too
    /// (deposits, FFTs: slabs of 2D and 3D windows, with 2D in several
    /// deposit chunks too), give every member the single process's bits:
    /// densities, gradient (added to a gradient already holding other
    /// terms) and linear gradient.
    #[test]
    fn a_team_gets_the_single_process_bits() {
        use crate::util::team::ThreadTeam;
        fn check<const D: usize>(n: usize, eps: f64) {
            let (x, w) = gaussian_cloud::<D>(n, 3);
            let run = |team: Option<Arc<dyn Team>>, divide: bool| {
                let mut mesh = MeshDensity::<D>::new(eps, usize::MAX);
                if let Some(t) = team {
                    mesh = mesh.with_team(t);
                }
                if divide {
                    mesh = mesh.dividing_every_window();
                }
                let rho = mesh.compute(&x, &w).unwrap().to_vec();
                let slope: Vec<f64> = rho.iter().map(|r| 1.0 / r).collect();
                let mut grad: Vec<[f64; D]> = (0..n).map(|i| [i as f64 * 1e-3; D]).collect();
                mesh.add_gradient(&x, &w, &slope, &mut grad);
                mesh.add_linear_gradient(&x, &w, &slope, &mut grad);
                let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(&rho), bits(grad.as_flattened()))
            };
            let single = run(None, false);
            for size in 2..=4 {
                for divide in [false, true] {
                    let got = ThreadTeam::run(size, |t| run(Some(t), divide));
                    for (rank, got) in got.iter().enumerate() {
                        let at = format!("D={D}: member {rank} of {size}, divided {divide}");
                        assert!(got == &single, "{at} differs");
                    }
                }
            }
        }
        check::<2>(5 * CHUNK + 17, 0.1);
        check::<2>(2 * DEPOSIT_CHUNK + 17, 0.1);
        check::<3>(2 * CHUNK + 5, 0.3);
    }

    /// A member that wants some particles' gradient only
    /// ([`super::super::DensityEstimator::want`]; here every third particle
    /// and a band, for 2 and 3 members) computes theirs from its planes of
    /// the mesh and the nodes it receives, with the single process's bits,
    /// and exchanges no gradient.
    #[test]
    fn members_wanting_some_particles_get_their_bits() {
        use super::super::DensityEstimator;
        use crate::util::team::ThreadTeam;
        let n = 5 * CHUNK + 17;
        let (x, w) = gaussian_cloud::<2>(n, 3);
        let run = |team: Option<Arc<dyn Team>>, wanted: Option<&[u32]>, divide: bool| {
            let mut mesh = MeshDensity::<2>::new(0.1, usize::MAX);
            if let Some(t) = team {
                mesh = mesh.with_team(t);
            }
            if divide {
                mesh = mesh.dividing_every_window();
            }
            DensityEstimator::want(&mut mesh, wanted);
            let rho = mesh.compute(&x, &w).unwrap().to_vec();
            let slope: Vec<f64> = rho.iter().map(|r| 1.0 / r).collect();
            let mut grad: Vec<[f64; 2]> = (0..n).map(|i| [i as f64 * 1e-3; 2]).collect();
            mesh.add_gradient(&x, &w, &slope, &mut grad);
            mesh.add_linear_gradient(&x, &w, &slope, &mut grad);
            grad
        };
        let single = run(None, None, false);
        for (size, divide) in [(2, false), (3, false), (2, true), (3, true)] {
            let members = ThreadTeam::run(size, |t| {
                let r = t.rank();
                let wanted: Vec<u32> = (0..n as u32)
                    .filter(|&i| {
                        if r == 0 {
                            i % 3 == 0
                        } else {
                            (i as usize * r).is_multiple_of(size)
                        }
                    })
                    .collect();
                let grad = run(Some(t), Some(&wanted), divide);
                (wanted, grad)
            });
            for (rank, (wanted, grad)) in members.iter().enumerate() {
                assert!(!wanted.is_empty());
                for &i in wanted {
                    let (a, b) = (grad[i as usize], single[i as usize]);
                    assert!(
                        a.map(f64::to_bits) == b.map(f64::to_bits),
                        "member {rank} of {size} (divided {divide}), particle {i}: {a:?} against {b:?}"
                    );
                }
            }
        }
    }

    /// A cloud spread beyond the allowed cells is refused, naming the sizes.
    #[test]
    fn too_large_a_mesh_is_refused() {
        let x = vec![[0.0, 0.0], [100.0, 100.0]];
        let mut mesh = MeshDensity::<2>::new(0.01, 1 << 20);
        let err = mesh.compute(&x, &[0.5, 0.5]).unwrap_err();
        assert!(err.cells > err.max_cells && err.max_cells == 1 << 20);
        let bad = vec![[f64::NAN, 0.0]];
        assert!(mesh.compute(&bad, &[1.0]).is_err());
        // After a reset the limit follows the next cloud: MESH_GROWTH times
        // its cells (here 432^2), so a cloud that spread keeps its mesh, and
        // trials may take 16 times that, not more.
        let mut mesh = MeshDensity::<2>::new(0.1, 1 << 16);
        let spread = vec![[0.0, 0.0], [20.0, 20.0]];
        assert!(mesh.compute(&spread, &[0.5, 0.5]).is_err());
        mesh.reset();
        let cells = cells_needed(&spread, 0.1);
        assert!(mesh.compute(&spread, &[0.5, 0.5]).is_ok());
        assert_eq!(mesh.max_cells, MESH_GROWTH * cells);
        assert!(mesh.window_of(&[[0.0, 0.0], [70.0, 70.0]]).is_ok());
        assert!(mesh.window_of(&[[0.0, 0.0], [90.0, 90.0]]).is_err());
    }
}
