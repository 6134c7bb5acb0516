//! The fixed external potential of a box (SPEC §7-8), on the solver's mesh,
//! computed once:
//!
//! ```text
//! phi_ext = psi_C + phi_walls,
//! psi_C   = G_sigma * C                      (background charges)
//! phi_walls = sum_{insulating w} sigma_w int_w G_sigma(x, s) ds  +  h_V
//! ```
//!
//! - Background and wall-sheet charges are deposited on the mesh as the
//!   particles are (the B-spline weights integrated against C, images
//!   folded in) and go through the same K: the particles feel them through
//!   the same smoothed kernel G_sigma as each other, so a neutral
//!   arrangement stays neutral at every scale (no spurious field of size
//!   sigma where mobile and fixed charges cancel). Uniform and Gaussian
//!   shapes are products over the axes: each axis' weights
//!   int c_a(y) B((y - lower)/h - j) dy come from 5-point Gauss–Legendre on
//!   every knot interval (exact for the uniform shape; for a Gaussian the
//!   intervals are split to a quarter of its std). A Gaussian is restricted
//!   to the box and renormalized there; each factor is normalized to unit
//!   mass so the deposited charge is Q exactly.
//! - A charged insulating wall is a sheet of charge sigma_w per unit area
//!   on the wall (Green's representation, as in `interval`): its even image
//!   doubles it, so d phi / d nu = sigma_w beyond the smoothing layer
//!   (within ~3 sigma of the wall the sheet is spread by N_sigma).
//! - h_V is harmonic, equal to V on each electrode and with zero normal
//!   derivative on the insulating walls. Per electrode wall (axis a): the
//!   constant V is expanded on the other axes' bases (their walls' kinds,
//!   filtered by exp(-kappa_b^2 sigma^2 / 2), which smooths the corners
//!   where electrodes of different potentials meet), and each mode
//!   kappa_t = |kappa_tangential| decays along a as
//!   sinh(kappa_t (L - t)) / sinh(kappa_t L) (electrode opposite) or
//!   cosh(kappa_t (L - t)) / cosh(kappa_t L) (insulating opposite), t the
//!   distance to the wall; kappa_t = 0 gives 1 - t/L or 1. Two electrodes
//!   facing each other across insulating walls give exactly the linear
//!   potential.
//!
//! The sum is stored at the nodes of a grid padded by 2 nodes beyond each
//! wall (values there: the images for psi_C and the sheets, the harmonic
//! continuation for h_V, which Schwarz reflection makes the same
//! function), and read back by the cubic B-spline: the gradient is that of
//! the value. The node values are divided by the B-spline's transform
//! (sinc^4 on the tangential axes, (sinh(theta/2)/(theta/2))^4 along a for
//! the exponentials), so the B-spline sum reproduces the filtered series.
//!
//! The particles' energy in it, sum_i q_i phi_ext(X_i)
//! ([`ExternalPotential::sum_charges`]), is summed by planes of the padded
//! grid's last axis: particle i belongs to the plane of its stencil's first
//! node on that axis, a plane sums its particles in id order (fixed chunks
//! of `CHUNK`), and the planes' sums are added in plane order. The order
//! depends on the positions alone: the same bits on any team.
//!
//! Under a team of more than `HELD_WHOLE` (2) members (MPI ranks,
//! `util::team`) the potential is divided as the mesh is
//! ([`crate::util::slabs`]): a member deposits the sources into its planes
//! of the mesh, the solve is the mesh's divided one, h_V's last axis is
//! synthesized in the member's columns (when it is tangential) before the
//! others on its planes, and the member keeps its planes of the padded
//! grid: the mesh's shifted by PAD, the first and last members' with the
//! padding beyond their walls (whose images, planes 1, 2 and n - 1, n - 2,
//! are theirs when every member holds PAD + 1 planes or more; a mesh too
//! small for that is gathered and held whole). At each evaluation it sums
//! the planes it holds (their particles' stencils reach at most 3 planes
//! beyond; an even share of the planes when every member holds the whole
//! grid) and reads its wanted particles' values; the nodes off its
//! planes come by segments of axis 0 (`Segments::add`), planned only when
//! some member lacks one (one number a member says so) and kept, since
//! the values never change, until a member holds [`HELD_GROWTH`] times
//! what it last fetched from nothing: its next plan then starts from
//! nothing again, so what it holds follows its particles instead of
//! growing to the whole grid. Every value is the single process's, copied.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use super::axis::{Axis, bspline, bspline_hat, transform_axis};
use super::{BoxMesh, Stencil};
use crate::coupling::ExternalPotential;
use crate::model::background::{Background, BackgroundShape};
use crate::model::domain::WallCondition;
use crate::util::parallel::{CHUNK, sum_chunks};
use crate::util::slabs::{Halo, Reads, Segments, Slabs};
use crate::util::team::{Team, split_even};

/// Nodes of padding beyond each wall.
const PAD: usize = 2;

/// phi_ext = psi_C + phi_walls on a padded mesh (module docs).
pub struct BoxExternal<const D: usize> {
    lower: [f64; D],
    inv_h: [f64; D],
    pub(super) n: [usize; D],
    strides: [usize; D],
    /// phi_ext on this member's planes of the padded grid and the segments
    /// of other members' planes it fetched (the whole padded grid for one
    /// member).
    pub(super) values: Halo,
    /// The padded grid's planes, divided as the mesh's are.
    pub(super) slabs: Slabs,
    /// Where `values` keeps the fetched segments, and their plan.
    pub(super) segments: Segments,
    team: Arc<dyn Team>,
    /// Plans made and nodes received since the start (under a team).
    plans: usize,
    fetched: usize,
    /// Nodes received by the last plan that started from nothing: past
    /// [`HELD_GROWTH`] times it, the next plan starts from nothing again.
    baseline: usize,
    /// The energy's particles sorted by plane, and where each plane's
    /// start (kept between evaluations).
    order: Vec<u32>,
    starts: Vec<usize>,
}

impl<const D: usize> std::fmt::Debug for BoxExternal<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxExternal")
            .field("nodes", &self.n.map(|n| n + 1 + 2 * PAD))
            .field("held", &self.values.held())
            .finish()
    }
}

/// Members up to which each holds the whole padded grid: at 2 members
/// (bm6 of BENCHMARKS.md, "MPI: the box's fixed potential in slabs") a
/// member's own planes and its particles' region cover 0.86 of the grid,
/// and the fetches cost more time and memory than the other half saves.
const HELD_WHOLE: usize = 2;

/// Nodes of margin around a particle's stencil, per axis, when a member
/// plans the segments it fetches: a particle may move by this many cells
/// before its member plans again (the values are fixed, so a plan holds
/// until then).
const MARGIN: usize = 2;

/// A member whose fetched segments have grown past this many times what
/// its last fresh plan fetched (its particles wandered) drops them when it
/// plans next and fetches only what its particles read then: what it holds
/// stays within this many times its particles' footprint (plus one plan's
/// worth), where it would otherwise grow to the whole grid over a long run.
const HELD_GROWTH: usize = 2;

impl<const D: usize> BoxExternal<D> {
    /// The stencil of x on the padded grid (no fold: the padding holds the
    /// images and the harmonic continuation).
    #[inline(always)]
    fn stencil(&self, x: &[f64; D]) -> Stencil<D> {
        let mut st = Stencil {
            offset: [[0; 4]; D],
            w: [[0.0; 4]; D],
            dw: [[0.0; 4]; D],
        };
        for a in 0..D {
            let (first, t) = self.cell(x, a);
            let (w, dw) = bspline(t);
            for j in 0..4 {
                st.offset[a][j] = (first + j) * self.strides[a];
                st.w[a][j] = w[j];
                st.dw[a][j] = dw[j] * self.inv_h[a];
            }
        }
        st
    }
}

impl<const D: usize> ExternalPotential<D> for BoxExternal<D> {
    /// One B-spline sum over the stencil's nodes: read on the whole padded
    /// grid for one member; under a team, gathered first from the member's
    /// planes and the segments [`ExternalPotential::sum_charges`] fetched
    /// (NaN for nodes it does not hold). Both sum the same products in the
    /// same order.
    fn value_and_gradient(&self, x: &[f64; D]) -> (f64, [f64; D]) {
        self.read(x, true, true)
    }

    /// Collective: sum_i q_i phi_ext(x_i) by planes of the padded grid's
    /// last axis (module docs), and under a team the segments of the nodes
    /// its particles and `wanted` read off its planes.
    fn sum_charges(&mut self, x: &[[f64; D]], q: &[f64], wanted: Option<&[u32]>) -> Option<f64> {
        // The planes whose sums this member makes: its own, or, when every
        // member holds the whole grid, an even share of them.
        let size = self.team.size();
        let sharing = if self.slabs.whole() {
            split_even(self.n[D - 1] + 1 + 2 * PAD, size)
        } else {
            self.slabs.planes.clone()
        };
        let mine = sharing[self.team.rank()].clone();
        let this = &*self;
        let plane_of = |i: usize| this.cell(&x[i], D - 1).0;
        // This member's particles, in id order: those whose stencil starts
        // on its planes (all of them for one member).
        let own: Vec<u32> = if size == 1 {
            Vec::new()
        } else {
            let parts: Vec<Vec<u32>> = (0..x.len().div_ceil(CHUNK))
                .into_par_iter()
                .map(|c| {
                    (c * CHUNK..((c + 1) * CHUNK).min(x.len()))
                        .filter(|&i| mine.contains(&plane_of(i)))
                        .map(|i| i as u32)
                        .collect()
                })
                .collect();
            parts.concat()
        };
        if !self.slabs.whole() {
            let all: Vec<u32>;
            let wanted = match wanted {
                Some(w) => w,
                None => {
                    all = (0..x.len() as u32).collect();
                    &all
                }
            };
            self.fetch(x, &own, wanted);
        }
        // Stable counting sort by plane: each plane's particles in id
        // order (into buffers kept between evaluations).
        let (mut order, mut start) = (
            std::mem::take(&mut self.order),
            std::mem::take(&mut self.starts),
        );
        let this = &*self;
        let plane_of = |i: usize| this.cell(&x[i], D - 1).0;
        let ids = || -> Box<dyn Iterator<Item = usize> + '_> {
            if size == 1 {
                Box::new(0..x.len())
            } else {
                Box::new(own.iter().map(|&i| i as usize))
            }
        };
        start.clear();
        start.resize(mine.len() + 1, 0);
        for i in ids() {
            start[plane_of(i) - mine.start + 1] += 1;
        }
        for p in 0..mine.len() {
            start[p + 1] += start[p];
        }
        order.resize(start[mine.len()], 0);
        let mut next = start[..mine.len()].to_vec();
        for i in ids() {
            let p = plane_of(i) - mine.start;
            order[next[p]] = i as u32;
            next[p] += 1;
        }
        let sums: Vec<f64> = (0..mine.len())
            .into_par_iter()
            .map(|p| {
                let ids = &order[start[p]..start[p + 1]];
                sum_chunks(ids.len(), |r| {
                    r.map(|k| {
                        let i = ids[k] as usize;
                        q[i] * this.value(&x[i])
                    })
                    .sum()
                })
            })
            .collect();
        self.order = order;
        self.starts = start;
        if size == 1 {
            return Some(sums.iter().sum());
        }
        let counts: Vec<usize> = sharing.iter().map(Range::len).collect();
        let mut all = vec![0.0; sharing.last().map_or(0, |p| p.end)];
        self.team.all_gather(&sums, &counts, &mut all);
        Some(all.iter().sum())
    }
}

impl<const D: usize> BoxExternal<D> {
    /// phi_ext(x): the value of [`ExternalPotential::value_and_gradient`],
    /// the same bits.
    #[inline(always)]
    fn value(&self, x: &[f64; D]) -> f64 {
        self.read(x, true, false).0
    }

    /// The stencil's sums (module docs of `box_mesh`, `Stencil::sums`) on
    /// the values this member holds.
    #[inline(always)]
    fn read(&self, x: &[f64; D], value: bool, slope: bool) -> (f64, [f64; D]) {
        let st = self.stencil(x);
        st.sums_held(
            self.slabs.whole(),
            &self.segments,
            &self.values,
            value,
            slope,
        )
    }

    /// Collective (under a team): when some member's particles (`own` and
    /// `wanted`) read a node it does not hold, every member plans the
    /// segments its particles' stencils, widened by [`MARGIN`] nodes on
    /// each axis, read off its planes, and fetches those it lacks (all of
    /// them, dropping the rest, once it holds [`HELD_GROWTH`] times what
    /// it fetched fresh). Otherwise (most evaluations) one number a member
    /// is gathered and nothing else moves.
    fn fetch(&mut self, x: &[[f64; D]], own: &[u32], wanted: &[u32]) {
        let this = &*self;
        let held = |&i: &u32| {
            let st = this.stencil(&x[i as usize]);
            let values = st.gather(&this.segments, &this.values);
            values[..1 << (2 * D)].iter().all(|v| !v.is_nan())
        };
        let missing = !own.par_iter().all(held) || !wanted.par_iter().all(held);
        let size = self.team.size();
        let mut flags = vec![0.0; size];
        (self.team).all_gather(&[f64::from(u8::from(missing))], &vec![1; size], &mut flags);
        if flags.iter().all(|&f| f == 0.0) {
            return;
        }
        let lists: Vec<Vec<u32>> = (own.par_chunks(CHUNK).chain(wanted.par_chunks(CHUNK)))
            .map(|ids| {
                let mut read = Reads::default();
                for &i in ids {
                    this.margin_reads(&x[i as usize], &mut read);
                }
                read.list
            })
            .collect();
        // A fresh start or an addition exchange the same messages, so each
        // member chooses alone.
        let held = self.fetched_held();
        let fresh = held == 0 || held > HELD_GROWTH * self.baseline;
        if fresh {
            self.segments.clear(&mut self.values);
        }
        let team = &*self.team;
        self.segments
            .add(team, lists.par_iter().map(|r| &r[..]), &mut self.values);
        self.plans += 1;
        self.fetched += self.segments.count() * self.segments.width();
        if fresh {
            self.baseline = self.fetched_held();
        }
    }

    /// Nodes of other members' planes this member holds now (0 for one
    /// member).
    pub fn fetched_held(&self) -> usize {
        self.values.held() - self.values.slab.len()
    }

    /// The first node (padded index) of x's stencil on axis a and x's
    /// place in its cell: within the padding whatever x (beyond, the cubic
    /// extrapolates).
    #[inline(always)]
    fn cell(&self, x: &[f64; D], a: usize) -> (usize, f64) {
        let u = (x[a] - self.lower[a]) * self.inv_h[a];
        let fl = u.floor().clamp(-1.0, self.n[a] as f64);
        ((fl as i64 - 1 + PAD as i64) as usize, u - fl)
    }

    /// Notes in `read` the segments of the nodes of x's stencil widened by
    /// [`MARGIN`] on each axis (clipped to the padded grid).
    fn margin_reads(&self, x: &[f64; D], read: &mut Reads) {
        let span: [(usize, usize); D] = std::array::from_fn(|a| {
            let first = self.cell(x, a).0;
            let last = self.n[a] + 2 * PAD;
            (first.saturating_sub(MARGIN), (first + 3 + MARGIN).min(last))
        });
        let rows: usize = span[1..].iter().map(|(lo, hi)| hi - lo + 1).product();
        for r in 0..rows {
            let (mut start, mut rest) = (0, r);
            for a in 1..D {
                let len = span[a].1 - span[a].0 + 1;
                start += (span[a].0 + rest % len) * self.strides[a];
                rest /= len;
            }
            self.segments.push(start, span[0].0, span[0].1, read);
        }
    }

    /// Plans made and nodes received (in whole segments) since the start:
    /// 0 for one member.
    pub fn exchanges(&self) -> (usize, usize) {
        (self.plans, self.fetched)
    }
}

/// 5-point Gauss–Legendre nodes and weights on [-1, 1].
const GL5: [(f64, f64); 5] = [
    (0.0, 0.568_888_888_888_888_9),
    (-0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
    (0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
    (-0.906_179_845_938_664, 0.236_926_885_056_189_1),
    (0.906_179_845_938_664, 0.236_926_885_056_189_1),
];

/// m(j) = int_lo^hi c(y) B((y - lower)/h - j) dy over [lo, hi] clipped to
/// the axis, for nodes j = -PAD..=n + PAD (index j + PAD), normalized to
/// unit sum (None when the clipped interval is empty); each knot interval
/// is cut into `sub` pieces.
fn line_weights(
    ax: &Axis,
    lo: f64,
    hi: f64,
    c: impl Fn(f64) -> f64,
    sub: usize,
) -> Option<Vec<f64>> {
    let (lo, hi) = (lo.max(ax.lower), hi.min(ax.lower + ax.length));
    let mut m = vec![0.0; ax.n + 1 + 2 * PAD];
    if hi <= lo {
        return None;
    }
    let (first, last) = (
        ((lo - ax.lower) * ax.inv_h).floor() as i64,
        ((hi - ax.lower) * ax.inv_h).ceil() as i64,
    );
    for i in first..last {
        let (a, b) = (
            lo.max(ax.lower + i as f64 * ax.h),
            hi.min(ax.lower + (i + 1) as f64 * ax.h),
        );
        let piece = (b - a) / sub as f64;
        for s in 0..sub {
            let mid = a + (s as f64 + 0.5) * piece;
            for (z, wq) in GL5 {
                let y = mid + 0.5 * piece * z;
                let u = (y - ax.lower) * ax.inv_h;
                let fl = u.floor();
                let (w, _) = bspline(u - fl);
                let v = c(y) * wq * 0.5 * piece;
                for (j, wj) in w.iter().enumerate() {
                    let idx = (fl as i64 - 1 + j as i64 + PAD as i64).clamp(0, m.len() as i64 - 1);
                    m[idx as usize] += v * wj;
                }
            }
        }
    }
    let total: f64 = m.iter().sum();
    (total > 0.0).then(|| m.into_iter().map(|v| v / total).collect())
}

/// The B-spline weights of the point y on the axis (index j + PAD).
fn point_weights(ax: &Axis, y: f64) -> Vec<f64> {
    let mut m = vec![0.0; ax.n + 1 + 2 * PAD];
    let u = (y - ax.lower) * ax.inv_h;
    let fl = u.floor().clamp(-1.0, ax.n as f64);
    let (w, _) = bspline(u - fl);
    for (j, wj) in w.iter().enumerate() {
        m[(fl as i64 - 1 + PAD as i64) as usize + j] = *wj;
    }
    m
}

/// (sinh(theta/2) / (theta/2))^4: the B-spline sum of exp(theta u) is this
/// times exp(theta u).
fn bspline_laplace(theta: f64) -> f64 {
    let t = 0.5 * theta;
    if t.abs() < 1e-8 {
        1.0
    } else {
        (t.sinh() / t).powi(4)
    }
}

/// The normal profile of mode kappa at distance t from its electrode:
/// sinh or cosh (the opposite wall an electrode or not) of kappa (L - t),
/// over its value at t = 0, in a form that does not overflow.
fn profile(kappa: f64, t: f64, length: f64, opposite_electrode: bool) -> f64 {
    if kappa == 0.0 {
        return if opposite_electrode {
            1.0 - t / length
        } else {
            1.0
        };
    }
    let s = if opposite_electrode { -1.0 } else { 1.0 };
    (-kappa * t).exp() * (1.0 + s * (-2.0 * kappa * (length - t)).exp())
        / (1.0 + s * (-2.0 * kappa * length).exp())
}

impl<const D: usize> BoxMesh<D> {
    /// phi_ext = psi_C + phi_walls of this box with `backgrounds` (module
    /// docs of `external`), computed once. Refused when a background's
    /// dimension is not the box's or it has no charge inside the box.
    pub fn external(&self, backgrounds: &[Background]) -> Result<BoxExternal<D>, String> {
        // Under a team each member deposits into its planes and the solve
        // is divided (the single process's bits, module docs of `slabs`).
        let first = self.slabs.nodes().start;
        let mut charge = vec![0.0; self.slabs.nodes().len()];
        let mut lines = Vec::new();
        for b in backgrounds {
            self.deposit_background(b, first, &mut charge)?;
        }
        for (a, walls) in self.domain.walls.iter().enumerate() {
            for (side, w) in walls.iter().enumerate() {
                if let WallCondition::Insulating { surface_charge } = *w
                    && surface_charge != 0.0
                {
                    let factors: [Vec<f64>; D] = std::array::from_fn(|b| {
                        let ax = &self.axes[b];
                        if b == a {
                            point_weights(ax, ax.lower + side as f64 * ax.length)
                        } else {
                            line_weights(ax, ax.lower, ax.lower + ax.length, |_| 1.0, 1)
                                .expect("a box axis")
                        }
                    });
                    self.deposit_separable(
                        surface_charge * self.domain.wall_area(a),
                        &factors,
                        first,
                        &mut charge,
                    );
                }
            }
        }
        let mut columns = Vec::new();
        self.apply_green_on(
            &self.slabs,
            &mut charge,
            &self.green,
            &mut lines,
            &mut columns,
        );
        drop(columns);
        let mut ext = self.padded(&charge);
        drop(charge);
        for (a, walls) in self.domain.walls.iter().enumerate() {
            for (side, w) in walls.iter().enumerate() {
                if let WallCondition::Electrode { potential } = *w
                    && potential != 0.0
                {
                    self.add_electrode(a, side, potential, &mut ext, &mut lines);
                }
            }
        }
        Ok(ext)
    }

    /// Adds background `b`'s node charges (folded) to `charge`, the nodes
    /// `first..` of the mesh (whole planes).
    fn deposit_background(
        &self,
        b: &Background,
        first: usize,
        charge: &mut [f64],
    ) -> Result<(), String> {
        let bad = || format!("background '{}': not a {D}D background", b.name);
        match &b.shape {
            BackgroundShape::Points { positions, charges } => {
                let x: Vec<[f64; D]> = positions
                    .iter()
                    .map(|p| <[f64; D]>::try_from(&p[..]).map_err(|_| bad()))
                    .collect::<Result<_, _>>()?;
                let mut part = vec![0.0; charge.len()];
                self.deposit(&x, |i| charges[i], first, &mut part, &mut Vec::new());
                charge.iter_mut().zip(&part).for_each(|(c, p)| *c += p);
            }
            BackgroundShape::Uniform { lower, upper } => {
                if lower.len() != D || upper.len() != D {
                    return Err(bad());
                }
                let f: Vec<Option<Vec<f64>>> = (0..D)
                    .map(|a| line_weights(&self.axes[a], lower[a], upper[a], |_| 1.0, 1))
                    .collect();
                self.deposit_factors(b, f, first, charge)?;
            }
            BackgroundShape::Gaussian { mean, std } => {
                if mean.len() != D || std.len() != D {
                    return Err(bad());
                }
                let f: Vec<Option<Vec<f64>>> = (0..D)
                    .map(|a| {
                        let ax = &self.axes[a];
                        let (m, s) = (mean[a], std[a]);
                        let sub = ((4.0 * ax.h / s).ceil() as usize).clamp(1, 64);
                        line_weights(
                            ax,
                            ax.lower,
                            ax.lower + ax.length,
                            |y| (-0.5 * ((y - m) / s).powi(2)).exp(),
                            sub,
                        )
                    })
                    .collect();
                self.deposit_factors(b, f, first, charge)?;
            }
        }
        Ok(())
    }

    /// Deposits Q times the product of per-axis factors, refusing a
    /// background with no mass in the box.
    fn deposit_factors(
        &self,
        b: &Background,
        f: Vec<Option<Vec<f64>>>,
        first: usize,
        charge: &mut [f64],
    ) -> Result<(), String> {
        let f: Vec<Vec<f64>> = f
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| format!("background '{}' has no charge inside the box", b.name))?;
        let factors: [Vec<f64>; D] = f.try_into().expect("D factors");
        self.deposit_separable(b.charge, &factors, first, charge);
        Ok(())
    }

    /// charge[fold(j) - first] += q prod_a sign_a factors[a][j_a + PAD],
    /// over the padded nodes j whose fold is among the nodes `charge` holds.
    fn deposit_separable(&self, q: f64, factors: &[Vec<f64>; D], first: usize, charge: &mut [f64]) {
        let ext: [usize; D] = std::array::from_fn(|a| self.axes[a].n + 1 + 2 * PAD);
        let total: usize = ext.iter().product();
        for g in 0..total {
            let (mut v, mut at, mut rest) = (q, 0usize, g);
            for a in 0..D {
                let j = rest % ext[a];
                rest /= ext[a];
                let (idx, s) = self.axes[a].fold(j as i64 - PAD as i64);
                v *= s * factors[a][j];
                at += idx * self.strides[a];
            }
            if v != 0.0
                && let Some(c) = charge.get_mut(at.wrapping_sub(first))
            {
                *c += v;
            }
        }
    }

    /// The node potentials on the padded grid (ghost nodes by the images)
    /// from `phi`, this member's planes of the mesh, kept on this member's
    /// planes of the padded grid: under a team of more than [`HELD_WHOLE`]
    /// members, the padded grid's planes
    /// are the mesh's shifted by PAD, the first member's and the last's
    /// with the padding beyond their walls, whose images (planes 1, 2 and
    /// n - 1, n - 2) are theirs when every member has PAD + 1 planes or
    /// more; a mesh too small for that is gathered, and every member holds
    /// the whole padded grid.
    fn padded(&self, phi: &[f64]) -> BoxExternal<D> {
        let n: [usize; D] = std::array::from_fn(|a| self.axes[a].n);
        let ext = n.map(|n| n + 1 + 2 * PAD);
        let mut strides = [1usize; D];
        for a in 1..D {
            strides[a] = strides[a - 1] * ext[a - 1];
        }
        let planes = &self.slabs.planes;
        let size = planes.len();
        let gathered;
        let (slabs, phi, first) = if size > HELD_WHOLE && planes.iter().all(|p| p.len() > PAD) {
            let mut slabs = Slabs::new(&ext, size, self.slabs.rank);
            slabs.planes = (planes.iter().enumerate())
                .map(|(q, p)| {
                    let lo = if q == 0 { 0 } else { p.start + PAD };
                    let hi = if q + 1 == size {
                        ext[D - 1]
                    } else {
                        p.end + PAD
                    };
                    lo..hi
                })
                .collect();
            (slabs, phi, self.slabs.nodes().start)
        } else if size > 1 {
            let mut all = vec![0.0; self.nodes];
            let counts: Vec<usize> = planes.iter().map(|p| p.len() * self.slabs.plane).collect();
            self.team.all_gather(phi, &counts, &mut all);
            gathered = all;
            (Slabs::new(&ext, 1, 0), &gathered[..], 0)
        } else {
            (Slabs::new(&ext, 1, 0), phi, 0)
        };
        let values = (slabs.nodes().into_par_iter())
            .map(|g| {
                let (mut v, mut at, mut rest) = (1.0, 0usize, g);
                for a in 0..D {
                    let j = rest % ext[a];
                    rest /= ext[a];
                    let (idx, s) = self.axes[a].fold(j as i64 - PAD as i64);
                    v *= s;
                    at += idx * self.strides[a];
                }
                v * phi[at - first]
            })
            .collect();
        let mut grid = Halo::default();
        grid.slab = values;
        BoxExternal {
            lower: std::array::from_fn(|a| self.axes[a].lower),
            inv_h: std::array::from_fn(|a| self.axes[a].inv_h),
            n,
            strides,
            values: grid,
            segments: Segments::new(&slabs, ext[0]),
            slabs,
            team: self.team.clone(),
            plans: 0,
            fetched: 0,
            baseline: 0,
            order: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// Adds h for the electrode at (`axis`, `side`) held at `v` (module docs).
    fn add_electrode(
        &self,
        axis: usize,
        side: usize,
        v: f64,
        ext: &mut BoxExternal<D>,
        lines: &mut Vec<rustfft::num_complex::Complex<f64>>,
    ) {
        let axes = &self.axes;
        let normal = &axes[axis];
        let opposite = normal.kind.dirichlet(1 - side);
        let sigma = self.width;
        // Normal axis padded (j + PAD), tangential axes in spectral slots.
        let shape: [usize; D] = std::array::from_fn(|b| {
            if b == axis {
                normal.n + 1 + 2 * PAD
            } else {
                axes[b].n + 1
            }
        });
        let mut strides = [1usize; D];
        for b in 1..D {
            strides[b] = strides[b - 1] * shape[b - 1];
        }
        let coefficient = |g: usize| {
            let (mut c, mut k2, mut rest, mut jn) = (v, 0.0, g, 0usize);
            for (b, ax) in axes.iter().enumerate() {
                let k = rest % shape[b];
                rest /= shape[b];
                if b == axis {
                    jn = k;
                    continue;
                }
                let Some(kappa) = ax.wavenumber(k) else {
                    return 0.0;
                };
                k2 += kappa * kappa;
                c *= ax.weight(k) * ax.integral(k) * (-0.5 * kappa * kappa * sigma * sigma).exp()
                    / bspline_hat(kappa * ax.h);
            }
            let x = (jn as f64 - PAD as f64) * normal.h;
            let t = if side == 0 { x } else { normal.length - x };
            let kt = k2.sqrt();
            c * profile(kt, t, normal.length, opposite) / bspline_laplace(kt * normal.h)
        };
        // The grid of h divided as `ext` is, by planes of the last axis:
        // when that is the normal axis, the padded grid's own planes; else
        // the mesh's, whose images the padded planes read are the member's.
        let last = D - 1;
        let (size, rank) = (ext.slabs.planes.len(), ext.slabs.rank);
        let mut slabs = Slabs::new(&shape, size, rank);
        if axis == last {
            slabs.planes = ext.slabs.planes.clone();
        }
        let mut t_grid: Vec<f64> = if axis == last {
            (slabs.nodes().into_par_iter()).map(coefficient).collect()
        } else {
            // The last axis is tangential: synthesized first, in this
            // member's column grid, then brought to its planes.
            let cshape = slabs.column_shape(shape);
            let c0 = slabs.first_column();
            let nodes: usize = cshape.iter().product();
            let mut columns: Vec<f64> = (0..nodes)
                .into_par_iter()
                .map(|k| {
                    let (mut g, mut rest, mut stride) = (0, k, 1);
                    for b in 0..D {
                        let i = rest % cshape[b];
                        rest /= cshape[b];
                        g += if D >= 2 && b == D - 2 { i + c0 } else { i } * stride;
                        stride *= shape[b];
                    }
                    coefficient(g)
                })
                .collect();
            transform_axis(&mut columns, &cshape, last, &axes[last], true, lines);
            if slabs.whole() {
                columns
            } else {
                let mut slab = vec![0.0; slabs.nodes().len()];
                slabs.to_planes(&*self.team, &columns, &mut slab);
                slab
            }
        };
        let slab_shape = slabs.slab_shape(shape);
        for (b, ax) in axes.iter().enumerate().take(last) {
            if b != axis {
                transform_axis(&mut t_grid, &slab_shape, b, ax, true, lines);
            }
        }
        let t_first = slabs.nodes().start;
        let ext_shape: [usize; D] = std::array::from_fn(|b| axes[b].n + 1 + 2 * PAD);
        let first = ext.slabs.nodes().start;
        for (g, val) in ext.values.slab.iter_mut().enumerate() {
            let (mut s, mut at, mut rest) = (1.0, 0usize, g + first);
            for (b, ax) in axes.iter().enumerate() {
                let j = rest % ext_shape[b];
                rest /= ext_shape[b];
                if b == axis {
                    at += j * strides[b];
                } else {
                    let (idx, sign) = ax.fold(j as i64 - PAD as i64);
                    s *= sign;
                    at += idx * strides[b];
                }
            }
            *val += s * t_grid[at - t_first];
        }
    }
}
