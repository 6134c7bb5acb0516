//! Particle-mesh Poisson solver in a box (SPEC §7, d = 2, 3; it also runs
//! in d = 1, where the closed forms of [`crate::model::interval`] are the
//! production path and serve here as a check).
//!
//! # What is computed
//!
//! psi solves `-Laplace psi = q` in the box B = [lower, upper] with, on each
//! wall, the homogeneous condition of that wall: psi = 0 on an electrode
//! (Dirichlet), d psi / d nu = 0 on an insulating wall (Neumann), any mix.
//! Its kernel G_box(x, y) is the sum over the images of y (odd across an
//! electrode, even across an insulating wall) of the free kernel G of
//! SPEC §1. With insulating walls only, the mode kappa = 0 is dropped: psi
//! has zero mean over the box (-Laplace G_box = delta_y - 1/|B|, the box
//! being neutral by SPEC §7), as the 1D Neumann function of `interval`.
//!
//! Particles use G_box smoothed at the softening scale: G_sigma =
//! G_box * N_sigma in one argument, N_sigma the centered Gaussian of per-axis
//! standard deviation sigma (spectral filter exp(-|kappa|^2 sigma^2 / 2)).
//! sigma = c_d delta with c_d chosen so that G_sigma and the free-space
//! Plummer kernel G_delta agree at zero distance ([`WIDTH_PER_SOFTENING`]):
//! the self and near energies are those of the free-space run. How far from
//! the exact kernel (r = |x - y|, away from the walls):
//!
//! ```text
//! d = 2: G_sigma(r) - G(r) = -E1(r^2 / (2 sigma^2)) / (4 pi)
//! d = 3: G_sigma(r) - G(r) = -erfc(r / (sqrt(2) sigma)) / (4 pi r)
//! ```
//!
//! below 1e-8 relative beyond r = 6 sigma (Plummer's relative error,
//! delta^2 / (2 r^2 log r) or delta^2 / (2 r^2), decays only algebraically),
//! and the same at the images: G_sigma is G_box beyond 6 sigma from a
//! charge and from its images.
//!
//! # The mesh
//!
//! Nodes x_m = lower + m h per axis (walls on nodes), h = L / n with n the
//! smallest FFT-friendly count giving h <= sigma / [`CELLS_PER_WIDTH`]. With
//! the cubic B-spline W(u) = B(u_1)...B(u_d), u = (x - lower) / h per axis,
//! and fold(j) the node of the box a node j of Z stands for (with the sign
//! of its image, see `axis`):
//!
//! ```text
//!   M_g   = sum_i q_i sum_j s_j W(u_i - j) [fold(j) = g]     deposit (images folded in)
//!   Phi   = K M                                              sine/cosine solve
//!   phi_i = sum_j s_j W(u_i - j) Phi_fold(j)                 interpolation
//!   U     = (1/2) sum_i q_i phi_i = (1/2) sum_{i,j} q_i q_j G_mesh(x_i, x_j)
//!         = (1/2) sum_g M_g Phi_g
//! ```
//!
//! all pairs, the self term included (the smoothed self energy plus the
//! physical image self energy). The last form is how U is computed: the
//! deposit and the interpolation use the same folded stencils, so
//! exchanging the sums over i and over the stencil's nodes gives it
//! exactly (to rounding), and it needs no phi_i, only the field. K is
//! diagonal in the product basis of the axes' transforms (`axis` module
//! docs), with
//!
//! ```text
//! K_k = prod_a nu_{k_a} * exp(-|kappa|^2 sigma^2 / 2) / (|kappa|^2 prod_a What(kappa_a h_a)^2)
//! ```
//!
//! What(theta) = sinc(theta/2)^4 the B-spline's transform: dividing by it
//! once for the deposit and once for the interpolation makes G_mesh the
//! sampled G_sigma up to aliasing, relative size ~(h / (2 pi sigma))^4
//! ~ 4e-5 at two cells per sigma. K is symmetric, so
//!
//! ```text
//!   field_i = (1/q_i) dU/dx_i = sum_j s_j grad W(u_i - j) Phi_fold(j)
//! ```
//!
//! exactly the gradient of the U computed (field = +grad phi, the crate's
//! sign, so the force on i is -lambda q_i field_i). Units: x in the box's
//! units, psi per unit charge as G; the energy is lambda U.
//!
//! Cost per evaluation: one deposit (4^d nodes a particle), 2d sine/cosine
//! transforms over the mesh (each an FFT of 2 or 4 times the axis: the
//! axes 0..d-1 forward, K, then d-1..0 back), one interpolation of the
//! gradient (d stencil sums a particle) and the energy's sum over the
//! nodes. Deposits go to fixed chunks of particles, each into its own
//! grid, added in chunk order, and the energy is summed per plane of the
//! last axis in fixed chunks, then over the planes in order: the same bits
//! on any thread count.
//!
//! Under a team of several members (MPI ranks, `util::team`) and d >= 2,
//! the mesh is divided by slabs ([`crate::util::slabs`]): member p owns planes
//! `planes[p]` of the last axis, deposits into them (it runs over every
//! particle, passes over those away from the walls whose last coordinate
//! puts their stencil off its planes, and adds the others' stencil nodes
//! in its planes, in the chunks' order: each node's sum is the single
//! process's), transforms the lines
//! of the first d - 1 axes there, and, after a transpose, those of the last
//! axis in its columns of axis d - 2, with K; the transpose back and the
//! first axes' synthesis leave Phi on its planes. The energy is the sum of
//! the gathered plane sums (one number a plane). The interpolations: a
//! member that wants some particles' field only ([`CouplingBackend::want`],
//! a JKO step's member) receives the nodes of Phi their stencils read on
//! other members' planes (by segments of axis 0, `util::ghosts`, planned at
//! each evaluation) and interpolates those particles; otherwise it does so
//! for its part of the particles (chunks of `CHUNK`), and the fields are
//! shared by an `all_gather` of N d numbers. Each node's and each
//! particle's values are computed by the same code on the same numbers
//! wherever they run: the single process's bits on any team. A member
//! holds its slab's grids and the segments of Phi it received
//! ([`crate::util::slabs::Halo`]), never a grid of the whole mesh for the
//! solve. The fixed potential of charged walls, electrodes and backgrounds
//! ([`BoxExternal`], solved once) is divided so too, beyond 2 members
//! (module docs of `external`); a box with none has none
//! (`coupling::domain_backends`).

mod axis;
mod external;
#[cfg(test)]
mod tests;

use rayon::prelude::*;
use rustfft::num_complex::Complex;

use self::axis::{Axis, Kind, bspline, bspline_hat, transform_axis};
use super::CouplingBackend;
use crate::model::domain::BoxDomain;
use crate::util::fft::fast_length;
use crate::util::parallel::{CHUNK, sum_chunks, wanted_in};
use crate::util::slabs::{Halo, Reads, Segments, Slabs};
use crate::util::team::{self, Team, share, split_chunks};
use std::ops::Range;
use std::sync::Arc;

pub use external::BoxExternal;

/// Mesh cells per Gaussian width sigma: the filter is exp(-2 pi^2) ~ 3e-9
/// at the Nyquist wavenumber, and the B-spline aliasing ~4e-5 relative.
pub const CELLS_PER_WIDTH: f64 = 2.0;

/// sigma / delta per dimension (index d - 1): G_sigma(0) = G_delta(0).
/// d = 1: E|sigma Z| = delta, sigma = delta sqrt(pi/2); d = 2:
/// ln(2 sigma^2) - gamma = ln(delta^2), sigma = delta sqrt(e^gamma / 2);
/// d = 3: sqrt(2/pi) / sigma = 1 / delta, sigma = delta sqrt(2/pi).
pub const WIDTH_PER_SOFTENING: [f64; 3] = [
    1.253_314_137_315_500_3,
    0.943_657_135_163_621_5,
    0.797_884_560_802_865_4,
];

/// Largest mesh (nodes) a box may use: 2^24 nodes hold ~1.3 GiB of grids.
pub const MAX_NODES: usize = 1 << 24;

/// Bytes per node: the charge, potential and K grids (f64), and the
/// gathered FFT lines (complex, up to 4 times the axis).
pub const BYTES_PER_NODE: usize = 3 * 8 + 4 * 16;

/// Particles per deposit chunk (each into its own grid).
const DEPOSIT_CHUNK: usize = 65536;

/// At most this many nodes in all the chunk grids together.
const MAX_CHUNK_NODES: usize = 1 << 23;

/// The particle-mesh solver of a box (module docs).
pub struct BoxMesh<const D: usize> {
    domain: BoxDomain,
    axes: [Axis; D],
    /// sigma, the Gaussian width.
    width: f64,
    shape: [usize; D],
    strides: [usize; D],
    nodes: usize,
    /// K in the spectral slots of this member's column grid (0 in unused
    /// slots and at kappa = 0; the whole grid for one member).
    green: Vec<f64>,
    /// Phi on this member's planes and the segments of other planes its
    /// interpolations read (every node for one member).
    potential: Halo,
    /// Where `potential` keeps the segments, and their plan.
    segments: Segments,
    /// The last deposit M on this member's planes, kept for the energy
    /// (1/2) sum_g M_g Phi_g.
    charge: Vec<f64>,
    chunk_grids: Vec<f64>,
    lines: Vec<Complex<f64>>,
    /// This member's column grid (empty for one member).
    columns: Vec<f64>,
    /// Nodes of Phi received at the last evaluation (under a team).
    fetched: usize,
    /// The members that divide the mesh and the interpolations (module docs).
    team: Arc<dyn Team>,
    slabs: Slabs,
    /// The particles whose field the caller reads (`None`: all).
    wanted: Option<Vec<u32>>,
}

impl<const D: usize> std::fmt::Debug for BoxMesh<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxMesh")
            .field("width", &self.width)
            .field("cells", &self.axes.each_ref().map(|a| a.n))
            .finish()
    }
}

impl<const D: usize> BoxMesh<D> {
    /// The solver for `domain` at Plummer softening `softening` = delta > 0
    /// (sigma = [`WIDTH_PER_SOFTENING`] delta). Refused, with the reason,
    /// when the mesh would exceed [`MAX_NODES`].
    pub fn new(domain: &BoxDomain, softening: f64) -> Result<Self, String> {
        if !(softening > 0.0 && softening.is_finite()) {
            return Err(format!(
                "the box mesh needs a softening > 0, not {softening}"
            ));
        }
        Self::with_width(
            domain,
            WIDTH_PER_SOFTENING[D - 1] * softening,
            CELLS_PER_WIDTH,
        )
    }

    /// The solver with Gaussian width `sigma` and `cells_per_width` mesh
    /// cells per sigma (at least; the counts are rounded up to FFT-friendly
    /// sizes, at least 4 per axis).
    pub fn with_width(
        domain: &BoxDomain,
        sigma: f64,
        cells_per_width: f64,
    ) -> Result<Self, String> {
        if domain.dimension() != D {
            return Err(format!("a {D}D box mesh for a {}D box", domain.dimension()));
        }
        let target = sigma / cells_per_width;
        if !(target > 0.0 && target.is_finite()) {
            return Err(format!("the box mesh needs a width > 0, not {sigma}"));
        }
        let mut count = [0usize; D];
        let mut nodes = 1usize;
        for (a, c) in count.iter_mut().enumerate() {
            let cells = (domain.length(a) / target).ceil();
            *c = if cells < MAX_NODES as f64 {
                fast_length((cells as usize).max(4))
            } else {
                MAX_NODES
            };
            nodes = nodes.saturating_mul(*c + 1);
        }
        if nodes > MAX_NODES {
            return Err(format!(
                "the box mesh would need {nodes} nodes ({count:?} cells of at most {target:.3e}, \
                 sigma / {cells_per_width} at softening width sigma = {sigma:.3e}); at most {MAX_NODES}: \
                 raise the softening or shrink the box"
            ));
        }
        let axes: [Axis; D] = std::array::from_fn(|a| {
            Axis::new(
                Kind::of(&domain.walls[a]),
                domain.lower[a],
                domain.upper[a],
                count[a],
            )
        });
        let shape = count.map(|n| n + 1);
        let mut strides = [1usize; D];
        for a in 1..D {
            strides[a] = strides[a - 1] * shape[a - 1];
        }
        let mesh = BoxMesh {
            domain: domain.clone(),
            axes,
            width: sigma,
            shape,
            strides,
            nodes,
            green: Vec::new(),
            potential: Halo::default(),
            segments: Segments::new(&Slabs::new(&shape, 1, 0), shape[0]),
            charge: Vec::new(),
            chunk_grids: Vec::new(),
            lines: Vec::new(),
            columns: Vec::new(),
            fetched: 0,
            team: team::current(),
            slabs: Slabs::new(&shape, 1, 0),
            wanted: None,
        };
        Ok(mesh.with_team(team::current()))
    }

    /// The mesh and the interpolations divided among the members of `team`
    /// (the process's team, [`team::current`], by default; module docs).
    pub fn with_team(mut self, team: Arc<dyn Team>) -> Self {
        self.slabs = Slabs::new(&self.shape, team.size(), team.rank());
        self.segments = Segments::new(&self.slabs, self.shape[0]);
        self.team = team;
        self.charge = vec![0.0; self.slabs.nodes().len()];
        self.potential.slab = vec![0.0; self.slabs.nodes().len()];
        self.green = self.green_multipliers(&self.slabs);
        let columns = self.green.len();
        self.columns = if self.slabs.whole() {
            Vec::new()
        } else {
            vec![0.0; columns]
        };
        self
    }

    /// Every member's particles, of `n`, in whole chunks of `CHUNK`.
    fn parts(&self, n: usize) -> Vec<Range<usize>> {
        split_chunks(n, self.team.size())
    }

    /// U = (1/2) sum_g M_g Phi_g of the last solve (module docs: equal to
    /// (1/2) sum_i q_i phi_i, since the deposit and the interpolation use
    /// the same stencils), summed per plane of the last axis in fixed
    /// chunks and over the planes in order. A member sums its planes; the
    /// plane sums are gathered (one number a plane).
    fn energy(&self) -> f64 {
        let (m, phi) = (&self.charge, &self.potential.slab);
        let plane = self.slabs.plane;
        let mine: Vec<f64> = m
            .par_chunks(plane)
            .zip(phi.par_chunks(plane))
            .map(|(m, phi)| sum_chunks(plane, |r| r.map(|g| m[g] * phi[g]).sum()))
            .collect();
        if self.slabs.whole() {
            return 0.5 * mine.iter().sum::<f64>();
        }
        let counts: Vec<usize> = self.slabs.planes.iter().map(Range::len).collect();
        let mut all = vec![0.0; self.shape[D - 1]];
        self.team.all_gather(&mine, &counts, &mut all);
        0.5 * all.iter().sum::<f64>()
    }

    /// K of the module docs on the spectral slots of the column grid of
    /// `slabs` (the whole grid for one member).
    fn green_multipliers(&self, slabs: &Slabs) -> Vec<f64> {
        let (axes, sigma) = (&self.axes, self.width);
        let shape = slabs.column_shape(self.shape);
        let first = slabs.first_column();
        let nodes: usize = shape.iter().product();
        (0..nodes)
            .into_par_iter()
            .map(|idx| {
                let (mut k2, mut factor) = (0.0, 1.0);
                let mut rest = idx;
                for (a, ax) in axes.iter().enumerate() {
                    let mut k = rest % shape[a];
                    rest /= shape[a];
                    if D >= 2 && a == D - 2 {
                        k += first;
                    }
                    let Some(kappa) = ax.wavenumber(k) else {
                        return 0.0;
                    };
                    k2 += kappa * kappa;
                    factor *= ax.weight(k) / bspline_hat(kappa * ax.h).powi(2);
                }
                if k2 == 0.0 {
                    0.0
                } else {
                    factor * (-0.5 * k2 * sigma * sigma).exp() / k2
                }
            })
            .collect()
    }

    /// The box.
    pub fn domain(&self) -> &BoxDomain {
        &self.domain
    }

    /// sigma, the Gaussian width of the smoothing.
    pub fn width(&self) -> f64 {
        self.width
    }

    /// Cells per axis.
    pub fn cells(&self) -> [usize; D] {
        self.axes.each_ref().map(|a| a.n)
    }

    /// Bytes one member holds for `particles` particles: the slab's grids
    /// of [`BYTES_PER_NODE`] (for one member, the whole grid's), the
    /// deposit chunk grids of the slab and, under a team, the index of the
    /// received segments (4 bytes a row of axis 0; the segments themselves
    /// are the nodes its particles read off its planes, a share that falls
    /// as the region of its particles' surface).
    pub fn extra_memory(&self, particles: usize) -> u64 {
        let slab = self.slabs.nodes().len().max(self.green.len());
        let chunks = deposit_chunks(particles, self.nodes);
        let grids = if chunks > 1 { chunks * slab * 8 } else { 0 };
        let index = if self.slabs.whole() {
            0
        } else {
            self.nodes / self.shape[0] * 4
        };
        (BYTES_PER_NODE * slab + index + grids) as u64
    }

    /// `slab` (this member's planes under `slabs`) = K of the members'
    /// planes, in place: the transforms of slabs.rs, with `green` the K of
    /// this member's column grid and `columns` room for that grid.
    fn apply_green_on(
        &self,
        slabs: &Slabs,
        slab: &mut [f64],
        green: &[f64],
        lines: &mut Vec<Complex<f64>>,
        columns: &mut Vec<f64>,
    ) {
        let slab_shape = slabs.slab_shape(self.shape);
        for a in 0..D - 1 {
            transform_axis(slab, &slab_shape, a, &self.axes[a], false, lines);
        }
        let data: &mut [f64] = if slabs.whole() {
            slab
        } else {
            columns.resize(green.len(), 0.0);
            slabs.to_columns(&*self.team, slab, columns);
            columns
        };
        let shape = slabs.column_shape(self.shape);
        let last = &self.axes[D - 1];
        transform_axis(data, &shape, D - 1, last, false, lines);
        data.par_chunks_mut(CHUNK)
            .zip(green.par_chunks(CHUNK))
            .for_each(|(d, k)| d.iter_mut().zip(k).for_each(|(v, k)| *v *= k));
        transform_axis(data, &shape, D - 1, last, true, lines);
        if !slabs.whole() {
            slabs.to_planes(&*self.team, columns, slab);
        }
        for a in (0..D - 1).rev() {
            transform_axis(slab, &slab_shape, a, &self.axes[a], true, lines);
        }
    }

    /// The folded stencil of x: node offsets and the signed weights and
    /// gradients (d/dx) of its 4^d nodes, per axis.
    #[inline(always)]
    fn stencil(&self, x: &[f64; D]) -> Stencil<D> {
        let mut st = Stencil {
            offset: [[0; 4]; D],
            w: [[0.0; 4]; D],
            dw: [[0.0; 4]; D],
        };
        for (a, ax) in self.axes.iter().enumerate() {
            let u = (x[a] - ax.lower) * ax.inv_h;
            // Any finite x has images; the clamp keeps absurd ones from
            // overflowing the node arithmetic (a NaN stays NaN in the weights).
            let fl = u.floor().clamp(-1e15, 1e15);
            let (w, dw) = bspline(u - fl);
            let first = fl as i64 - 1;
            if first >= 1 && first + 3 < ax.n as i64 {
                // Away from the walls (most particles): no image, no fold.
                for j in 0..4 {
                    st.offset[a][j] = (first as usize + j) * self.strides[a];
                    st.w[a][j] = w[j];
                    st.dw[a][j] = dw[j] * ax.inv_h;
                }
                continue;
            }
            for j in 0..4 {
                let (idx, s) = ax.fold(first + j as i64);
                st.offset[a][j] = idx * self.strides[a];
                st.w[a][j] = s * w[j];
                st.dw[a][j] = s * dw[j] * ax.inv_h;
            }
        }
        st
    }

    /// `charge` = sum_i value(i) (folded W(u_i - .)) on the nodes `first..`
    /// (`charge.len()` of them, whole planes of the last axis), deposited by
    /// fixed chunks of particles into `grids` and added in chunk order: each
    /// node's sum is the whole grid's, whichever nodes are asked for.
    fn deposit<F: Fn(usize) -> f64 + Sync>(
        &self,
        x: &[[f64; D]],
        value: F,
        first: usize,
        charge: &mut [f64],
        grids: &mut Vec<f64>,
    ) {
        let nodes = charge.len();
        let chunks = deposit_chunks(x.len(), self.nodes);
        let per = x.len().div_ceil(chunks).max(1);
        // A member's planes z0..z1 of the last axis: a particle away from
        // the walls whose planes j..j+3 miss them is passed over before its
        // stencil is made (most particles, on many members).
        let (last, stride) = (&self.axes[D - 1], self.strides[D - 1]);
        let (z0, z1) = ((first / stride) as i64, ((first + nodes) / stride) as i64);
        let divided = nodes < self.nodes;
        let deposit_range = |grid: &mut [f64], range: std::ops::Range<usize>| {
            grid.fill(0.0);
            let (mut off, mut wt) = ([0usize; 64], [0.0; 64]);
            let inside = |o: usize| o.wrapping_sub(first) < nodes;
            for i in range {
                if divided {
                    let u = (x[i][D - 1] - last.lower) * last.inv_h;
                    let j = u.floor().clamp(-1e15, 1e15) as i64 - 1;
                    let interior = j >= 1 && j + 3 < last.n as i64;
                    if interior && (j + 3 < z0 || j >= z1) {
                        continue;
                    }
                }
                let st = self.stencil(&x[i]);
                if !st.offset[D - 1].iter().any(|&o| inside(o)) {
                    continue;
                }
                st.nodes(&mut off, &mut wt, None);
                let v = value(i);
                for (o, w) in off.iter().zip(&wt).take(1 << (2 * D)) {
                    if inside(*o) {
                        grid[*o - first] += v * w;
                    }
                }
            }
        };
        if chunks == 1 {
            deposit_range(charge, 0..x.len());
            return;
        }
        grids.resize(chunks * nodes, 0.0);
        grids
            .par_chunks_mut(nodes.max(1))
            .enumerate()
            .for_each(|(c, grid)| deposit_range(grid, c * per..((c + 1) * per).min(x.len())));
        let grids = &grids[..];
        charge
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(b, out)| {
                for (k, o) in out.iter_mut().enumerate() {
                    let g = b * CHUNK + k;
                    *o = (0..chunks).map(|c| grids[c * nodes + g]).sum();
                }
            });
    }

    /// phi(x) if `value` and grad phi(x) if `slope` (0 for what is not
    /// asked) from the last solve's Phi: read on the whole grid for one
    /// member; under a team, gathered first from the member's planes and
    /// the segments it received (NaN where it holds none). Both sum the
    /// same products in the same order.
    #[inline(always)]
    fn interpolate(&self, x: &[f64; D], value: bool, slope: bool) -> (f64, [f64; D]) {
        let st = self.stencil(x);
        st.sums_held(
            self.slabs.whole(),
            &self.segments,
            &self.potential,
            value,
            slope,
        )
    }

    /// Nodes of Phi this member received at the last evaluation (0 for one
    /// member; under a team, the nodes its wanted particles read outside
    /// its planes, in whole segments, or all of them when it wants all).
    pub fn fetched_nodes(&self) -> usize {
        self.fetched
    }

    /// The potential sum_j q_j G_mesh(x, x_j) of the charges of the last
    /// [`energy_and_field`](CouplingBackend::energy_and_field), and its
    /// gradient. Under a team, a member holds the nodes of its planes and
    /// those its particles' stencils read at that evaluation (its own, or
    /// those it wanted): elsewhere the values are NaN.
    pub fn potential(&self, x: &[f64; D]) -> (f64, [f64; D]) {
        self.interpolate(x, true, true)
    }

    /// Solves for the charges `q` at `x` (deposit, K), leaving the node
    /// potentials of this member's planes in `self.potential` (collective).
    fn solve(&mut self, x: &[[f64; D]], q: &[f64]) {
        let mut potential = std::mem::take(&mut self.potential);
        let mut charge = std::mem::take(&mut self.charge);
        let mut grids = std::mem::take(&mut self.chunk_grids);
        let mut lines = std::mem::take(&mut self.lines);
        let mut columns = std::mem::take(&mut self.columns);
        let mine = self.slabs.nodes();
        self.deposit(x, |i| q[i], mine.start, &mut charge, &mut grids);
        let slab = &mut potential.slab;
        slab.copy_from_slice(&charge);
        self.apply_green_on(&self.slabs, slab, &self.green, &mut lines, &mut columns);
        self.potential = potential;
        self.charge = charge;
        self.chunk_grids = grids;
        self.lines = lines;
        self.columns = columns;
    }

    /// Collective: brings this member's `potential` the nodes that the
    /// stencils of `particles` read, from the members whose planes hold
    /// them, by segments of axis 0 ([`Segments`]). Planned at each call:
    /// the particles move.
    fn fetch_nodes(&mut self, x: &[[f64; D]], particles: &[u32]) {
        let (this, segments) = (&*self, &self.segments);
        let reads: Vec<Vec<u32>> = particles
            .par_chunks(CHUNK)
            .map(|ids| {
                let mut read = Reads::default();
                for &i in ids {
                    let st = this.stencil(&x[i as usize]);
                    let (lo, hi) = (st.offset[0].iter().min(), st.offset[0].iter().max());
                    let (lo, hi) = (*lo.unwrap(), *hi.unwrap());
                    st.rows(|start| segments.push(start, lo, hi, &mut read));
                }
                read.list
            })
            .collect();
        let team = &*self.team;
        self.segments.plan(team, reads.par_iter().map(|r| &r[..]));
        self.fetched = self.segments.count() * self.segments.width();
        self.segments.fetch(team, &mut self.potential);
    }
}

/// A particle's folded stencil (per axis: 4 node offsets, weights, d/dx).
struct Stencil<const D: usize> {
    offset: [[usize; 4]; D],
    w: [[f64; 4]; D],
    dw: [[f64; 4]; D],
}

impl<const D: usize> Stencil<D> {
    /// The stencil's sums against the values of its nodes, `read(k, o)`
    /// for node k (in the order of [`Self::nodes`]) at offset o: phi if
    /// `value`, grad phi if `slope` (0 for what is not asked).
    #[inline(always)]
    fn sums(
        &self,
        read: impl Fn(usize, usize) -> f64,
        value: bool,
        slope: bool,
    ) -> (f64, [f64; D]) {
        let (mut off, mut wt) = ([0usize; 64], [0.0; 64]);
        let count = 1 << (2 * D);
        let mut phi = 0.0;
        if value {
            self.nodes(&mut off, &mut wt, None);
            phi = (0..count).map(|k| wt[k] * read(k, off[k])).sum();
        }
        let mut grad = [0.0; D];
        if slope {
            for (a, g) in grad.iter_mut().enumerate() {
                self.nodes(&mut off, &mut wt, Some(a));
                *g = (0..count).map(|k| wt[k] * read(k, off[k])).sum();
            }
        }
        (phi, grad)
    }

    /// [`Self::sums`] on a grid as a member holds it: read directly when
    /// it holds the whole grid (`whole`), else gathered first from its
    /// planes and the segments it received (NaN where it holds none). Both
    /// sum the same products in the same order.
    #[inline(always)]
    fn sums_held(
        &self,
        whole: bool,
        segments: &Segments,
        halo: &Halo,
        value: bool,
        slope: bool,
    ) -> (f64, [f64; D]) {
        if whole {
            let grid = &halo.slab;
            return self.sums(|_, o| grid[o], value, slope);
        }
        let values = self.gather(segments, halo);
        self.sums(|k, _| values[k], value, slope)
    }

    /// The values of the stencil's nodes (in the order of [`Self::nodes`])
    /// from a divided grid as a member holds it: its planes and the
    /// segments it received (NaN where it holds none).
    #[inline(always)]
    fn gather(&self, segments: &Segments, halo: &Halo) -> [f64; 64] {
        let mut values = [0.0; 64];
        let mut k = 0;
        self.rows(|start| {
            let row = segments.row4(halo, start, self.offset[0]);
            values[k..k + 4].copy_from_slice(&row);
            k += 4;
        });
        values
    }

    /// `row(o)` for the first node o of each of the stencil's 4^(d-1) rows
    /// (its nodes of axis 0 index 0: the offsets of the other axes).
    #[inline(always)]
    fn rows(&self, mut row: impl FnMut(usize)) {
        let mut off = [0usize; 16];
        let mut len = 1;
        for a in 1..D {
            for k in (0..len).rev() {
                for j in (0..4).rev() {
                    off[j * len + k] = off[k] + self.offset[a][j];
                }
            }
            len *= 4;
        }
        off[..len].iter().for_each(|&o| row(o));
    }

    /// The 4^d node offsets and weight products (node j_0 + 4 j_1 + 16 j_2),
    /// with the derivative on axis `derivative` if given.
    #[inline(always)]
    fn nodes(&self, off: &mut [usize; 64], wt: &mut [f64; 64], derivative: Option<usize>) {
        off[0] = 0;
        wt[0] = 1.0;
        let mut len = 1;
        for a in 0..D {
            let w = if derivative == Some(a) {
                &self.dw[a]
            } else {
                &self.w[a]
            };
            // Expand from the back: entry k is read before it is overwritten.
            for k in (0..len).rev() {
                let (o, v) = (off[k], wt[k]);
                for j in (0..4).rev() {
                    off[j * len + k] = o + self.offset[a][j];
                    wt[j * len + k] = v * w[j];
                }
            }
            len *= 4;
        }
    }
}

/// How many deposit grids `n` particles on `nodes` nodes use.
fn deposit_chunks(n: usize, nodes: usize) -> usize {
    n.div_ceil(DEPOSIT_CHUNK)
        .clamp(1, (MAX_CHUNK_NODES / nodes.max(1)).max(1))
}

impl<const D: usize> CouplingBackend<D> for BoxMesh<D> {
    fn describe(&self) -> String {
        let cells: Vec<String> = self.cells().iter().map(|n| n.to_string()).collect();
        format!(
            "box particle mesh ({} cells, sigma {:.4e})",
            cells.join(" x "),
            self.width
        )
    }

    /// U = (1/2) sum_{i,j} q_i q_j G_mesh(x_i, x_j), all pairs and the self
    /// terms, and field_i = (1/q_i) dU/dx_i exactly (module docs).
    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64 {
        let divided = self.team.size() > 1;
        if divided {
            self.team.agree_on_interrupt();
        }
        self.solve(x, q);
        let energy = self.energy();
        let parts = self.parts(x.len());
        if !self.slabs.whole() {
            // Not wanting, a member interpolates its part of the particles.
            let wanted = self.wanted.take();
            match &wanted {
                Some(ids) => self.fetch_nodes(x, ids),
                None => {
                    let ids: Vec<u32> = parts[self.team.rank()].clone().map(|i| i as u32).collect();
                    self.fetch_nodes(x, &ids);
                }
            }
            self.wanted = wanted;
        }
        let this = &*self;
        let slope = |xi: &[f64; D]| this.interpolate(xi, false, true).1;
        match self.wanted.as_deref().filter(|_| divided) {
            // A member wanting some particles interpolates their field,
            // wherever they are: it holds the nodes their stencils read
            // (its planes, and the segments fetched above).
            Some(wanted) => field.par_chunks_mut(CHUNK).enumerate().for_each(|(c, f)| {
                let first = c * CHUNK;
                for &i in wanted_in(wanted, first..first + f.len()) {
                    f[i as usize - first] = slope(&x[i as usize]);
                }
            }),
            None => {
                let mine = &parts[self.team.rank()];
                field
                    .par_chunks_mut(CHUNK)
                    .zip(x.par_chunks(CHUNK))
                    .enumerate()
                    .filter(|(c, _)| mine.contains(&(c * CHUNK)))
                    .for_each(|(_, (f, x))| {
                        f.iter_mut().zip(x).for_each(|(fi, xi)| *fi = slope(xi));
                    });
                if divided {
                    share(&*self.team, &parts, D, field.as_flattened_mut());
                }
            }
        }
        energy
    }

    fn want(&mut self, particles: Option<&[u32]>) {
        self.wanted = particles.map(<[u32]>::to_vec);
    }
}
