//! The direct O(N^2) pair sum, each unordered pair evaluated once.
//!
//! With a = |d|^2 + delta^2, d = x_i - x_j, the softened kernel of
//! [`crate::model::green`] is written G = c_pot k(a), grad G(d) = c_grad f(a) d
//! (k, f from `pair`: ln a and 1/a in 2D, a^-1/2 and a^-3/2 in 3D,
//! sqrt(a) and a^-1/2 in 1D), so that
//!
//!   U       = c_pot  sum_i q_i P_i,      P_i = sum_{j>i} q_j k(a_ij),
//!   field_i = c_grad (S_i + C_i),        S_i = sum_{j>i} q_j f(a_ij) d_ij,
//!                                        C_i = - sum_{j<i} q_j f(a_ji) d_ji:
//!
//! each pair's k and f are computed once and serve both particles (a "row"
//! side S for the lower index, a "column" side C for the higher one).
//!
//! Particles are packed eight to a `Pack` (structure of arrays, the width
//! of one AVX-512 register) and cut into blocks of `BLOCK`. The task of block
//! row I takes its targets `T` at a time (broadcast in registers) against all
//! later packs of sources, `T x 8` pairs per step: the row sums stay in
//! registers for the whole sweep, and each source pack's column sums are
//! loaded and stored once per `T` targets. The first pack of a sweep holds the
//! targets themselves and is masked to j > i. The column sums go to a buffer
//! owned by row I; they are then added to the field block by block in
//! ascending I. Every addition thus happens in an order fixed by the
//! algorithm, never by the scheduler: the result has the same bits on any
//! number of threads.
//!
//! In 2D the logarithm is taken of products: for a run of consecutive source
//! packs whose eight charges all equal one value q (a species with equal
//! weights, the usual case), sum_j q ln a_j = q ln(prod_j a_j), so each lane
//! multiplies its arguments and takes one `ln` per `run_len` packs instead of
//! one per pair (the logarithm was half of the work per pair). `run_len` is
//! chosen per evaluation from the bounding box so that every product stays a
//! normal number: delta^2 <= a <= delta^2 + diam^2 (see `log_run_len`). A
//! product of K factors carries K roundings, a relative error of K ulp, i.e.
//! an absolute error of ~K * 1.1e-16 in its logarithm: for K <= 16 the same
//! size as the ~1 ulp of the per-pair `ln` on |ln a| of order ten.
//!
//! Rows are processed in panels so the column buffers stay within
//! `PANEL_BYTES` whatever N. `ln`, `1/a` and `a^-1/2` come from
//! [`Isa`] on AVX-512: a table-driven
//! logarithm and `rcp14`/`rsqrt14` with polynomial corrections (about 1 ulp,
//! so no division or square root in the 2D and 3D loops). 1 ulp per pair is
//! the rounding the sum adds anyway; the finite-difference gradient tests
//! (1e-6) and the tree-vs-direct comparisons are far coarser.

use rayon::prelude::*;

use std::sync::Arc;

use super::CouplingBackend;
use crate::model::green;
use crate::util::ghosts::Ghosts;
use crate::util::lanes::{LANES, V};
use crate::util::simd_dispatch::{Isa, IsaTask, with_best_isa};
use crate::util::team::{self, Team};

/// Particles per block (tile side); a multiple of `LANES`.
const BLOCK: usize = 256;
/// Packs per block.
const BLOCK_PACKS: usize = BLOCK / LANES;
/// Targets per sweep (held in registers); divides `LANES`. The fastest
/// count in 2D and 3D: with 4 the 32 vector registers spill
/// (BENCHMARKS.md, "Direct sum: targets per sweep").
const TARGETS: usize = 2;
/// Memory budget of the column buffers of one panel.
const PANEL_BYTES: usize = 64 << 20;
/// Most source packs whose arguments one 2D product gathers (see the module
/// docs: the rounding of a product grows with its length).
const MAX_LOG_RUN: usize = 16;

/// Eight particles: positions per axis and charges (0 in the padding lanes
/// past the last particle, which then add exact zeros everywhere).
#[derive(Clone, Copy)]
struct Pack<const D: usize> {
    x: [V; D],
    q: V,
}

/// The exact O(N^2) pair sum of the softened Green's function, vectorized
/// over packs of eight particles.
pub struct DirectSum<const D: usize> {
    delta2: f64,
    packs: Vec<Pack<D>>,
    /// Column sums of the rows of a panel: `[row in panel][pack][axis]`.
    cols: Vec<[V; D]>,
    /// Sum q_i P_i of each block row.
    row_energy: Vec<f64>,
    /// The charge shared by all eight lanes of each pack (NaN if they differ
    /// or are 0): the 2D product runs (module docs).
    uniform_q: Vec<f64>,
    /// `PANEL_BYTES`, smaller in the tests of several panels.
    panel_bytes: usize,
    /// The members that divide the sum by block rows ([`BlockLayout`]).
    team: Arc<dyn Team>,
    /// The particles whose field the caller reads (`None`: all).
    wanted: Option<Vec<u32>>,
    /// Under a team: the exchange of the row sums this member's panels
    /// read from other members (step 1 of [`Self::divided`]), planned for
    /// this many particles.
    rows_plan: Option<(usize, Ghosts)>,
}

impl<const D: usize> DirectSum<D> {
    /// A direct sum with Plummer softening `softening` = delta (> 0 in
    /// d = 2, 3; 0 allowed in d = 1).
    pub fn new(softening: f64) -> Self {
        assert!((1..=3).contains(&D), "dimension must be 1, 2 or 3");
        let delta2 = softening * softening;
        // a >= delta^2 must stay a positive normal number for ln, 1/a, a^-1/2.
        assert!(
            D == 1 || delta2 >= f64::MIN_POSITIVE,
            "softening must be > 0 (and delta^2 a normal number) in d = 2, 3"
        );
        DirectSum {
            delta2,
            packs: Vec::new(),
            cols: Vec::new(),
            row_energy: Vec::new(),
            uniform_q: Vec::new(),
            panel_bytes: PANEL_BYTES,
            team: team::current(),
            wanted: None,
            rows_plan: None,
        }
    }

    /// The sum divided among the members of `team` (the process's team,
    /// [`team::current`], by default).
    pub fn with_team(mut self, team: Arc<dyn Team>) -> Self {
        self.team = team;
        self.rows_plan = None;
        self
    }
}

/// (c_pot, c_grad) with G = c_pot k(a) and grad G(d) = c_grad f(a) d:
/// c_pot is [`green::scale`] (the one statement of G_delta), and since
/// grad k(a) = 2 k'(a) d, c_grad is c_pot (1D, f = a^-1/2), 2 c_pot (2D,
/// f = 1/a) or -c_pot (3D, f = a^-3/2). Scaling by 2 or -1 is exact.
const fn scales(d: usize) -> (f64, f64) {
    let c = green::scale(d);
    match d {
        1 => (c, c),
        2 => (c, 2.0 * c),
        _ => (c, -c),
    }
}

/// (k(a), f(a)) of the module docs, lane by lane. In 1D a = 0 occurs when
/// delta = 0 (a particle against itself in a masked lane, or two coincident
/// particles); f is then 0, i.e. sign(0) = 0 as in [`crate::model::green::softened`].
#[inline(always)]
fn pair<I: Isa, const D: usize>(a: V) -> (V, V) {
    match D {
        1 => {
            let r = a.sqrt();
            (
                r,
                V::from_fn(|l| if r.0[l] > 0.0 { 1.0 / r.0[l] } else { 0.0 }),
            )
        }
        2 => (I::ln(a), I::recip(a)),
        _ => {
            let inv = I::rsqrt(a);
            (inv, inv * inv * inv)
        }
    }
}

/// How many source packs a 2D product may gather: the largest K <= 16 with
/// a_min^K and a_max^K normal f64 for every argument a in [delta^2,
/// delta^2 + diam^2] (diam^2 the squared diagonal of the bounding box).
/// 1 (a logarithm per pair) when even two factors could leave that range.
fn log_run_len(delta2: f64, diam2: f64) -> usize {
    let a_max = delta2 + diam2;
    if !(delta2 > 0.0 && a_max.is_finite()) {
        return 1;
    }
    // 2^-1022 is the smallest normal, 2^1024 overflows: 1000 leaves a margin
    // for the rounding of the bounding box and of the products.
    let span = (-delta2.log2()).max(a_max.log2()).max(1.0);
    ((1000.0 / span) as usize).clamp(1, MAX_LOG_RUN)
}

/// d = x_i - x_j and a = |d|^2 + delta^2 of one target against a source pack.
#[inline(always)]
fn separation<I: Isa, const D: usize>(xi: &[V; D], xj: &[V; D], delta2: V) -> ([V; D], V) {
    let d: [V; D] = std::array::from_fn(|a| xi[a] - xj[a]);
    let mut s = delta2;
    for da in &d {
        s = I::mul_add(*da, *da, s);
    }
    (d, s)
}

/// The field of one pair on both sides: `fr d` to the target's row sum,
/// `fc d` to the source's column sum.
#[inline(always)]
fn add_field<I: Isa, const D: usize>(
    fr: V,
    fc: V,
    d: &[V; D],
    grad: &mut [V; D],
    col: &mut [V; D],
) {
    for a in 0..D {
        grad[a] = I::mul_add(fr, d[a], grad[a]);
        col[a] = I::mul_add(fc, d[a], col[a]);
    }
}

/// The `T` targets of a sweep against one source pack: `qrow[t]` are the
/// sources' charges seen by target t, `qcol[t]` the factor -q_t seen by the
/// sources (both zero in masked lanes).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step<I: Isa, const D: usize, const T: usize>(
    xi: &[[V; D]; T],
    qrow: &[V; T],
    qcol: &[V; T],
    xj: &[V; D],
    col: &mut [V; D],
    pot: &mut [V; T],
    grad: &mut [[V; D]; T],
    delta2: V,
) {
    for t in 0..T {
        let (d, s) = separation::<I, D>(&xi[t], xj, delta2);
        let (k, f) = pair::<I, D>(s);
        pot[t] = I::mul_add(qrow[t], k, pot[t]);
        add_field::<I, D>(qrow[t] * f, qcol[t] * f, &d, &mut grad[t], col);
    }
}

/// [`step`] in 2D for a source pack of uniform charge `q` in a product run:
/// the arguments a are multiplied into `prod` (the logarithm is taken by
/// the caller at the end of the run) and every lane is a real pair.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step_product<I: Isa, const D: usize, const T: usize>(
    xi: &[[V; D]; T],
    q: V,
    qcol: &[V; T],
    xj: &[V; D],
    col: &mut [V; D],
    prod: &mut [V; T],
    grad: &mut [[V; D]; T],
    delta2: V,
) {
    for t in 0..T {
        let (d, s) = separation::<I, D>(&xi[t], xj, delta2);
        prod[t] = I::mul(prod[t], s);
        let f = I::recip(s);
        add_field::<I, D>(q * f, qcol[t] * f, &d, &mut grad[t], col);
    }
}

/// Phase 1 of block row `ib`: adds S_i to `out` (the block's field), writes
/// the row's column sums to `col` (indexed by pack), returns sum_i q_i P_i.
struct Row<'a, const D: usize> {
    packs: &'a [Pack<D>],
    uniform_q: &'a [f64],
    log_run: usize,
    ib: usize,
    col: &'a mut [[V; D]],
    out: &'a mut [[f64; D]],
    delta2: f64,
}

impl<const D: usize> IsaTask for Row<'_, D> {
    type Output = f64;

    #[inline(always)]
    fn run<I: Isa>(self) -> f64 {
        row::<I, D, TARGETS>(self)
    }
}

#[inline(always)]
fn row<I: Isa, const D: usize, const T: usize>(task: Row<'_, D>) -> f64 {
    let Row {
        packs,
        uniform_q,
        log_run,
        ib,
        col,
        out,
        delta2,
    } = task;
    let delta2 = V::splat(delta2);
    let p0 = ib * BLOCK_PACKS;
    let p1 = (p0 + BLOCK_PACKS).min(packs.len());
    col[p0..].fill([V::ZERO; D]);
    let mut energy = 0.0;
    for p in p0..p1 {
        for g in (0..LANES).step_by(T) {
            let here = &packs[p];
            let xi: [[V; D]; T] =
                std::array::from_fn(|t| std::array::from_fn(|a| V::splat(here.x[a].0[g + t])));
            let qi: [f64; T] = std::array::from_fn(|t| here.q.0[g + t]);
            let mut pot = [V::ZERO; T];
            let mut grad = [[V::ZERO; D]; T];
            // The targets' own pack: only sources j > i, lane by lane.
            let qrow: [V; T] =
                std::array::from_fn(|t| V::from_fn(|l| if l > g + t { here.q.0[l] } else { 0.0 }));
            let qcol: [V; T] =
                std::array::from_fn(|t| V::from_fn(|l| if l > g + t { -qi[t] } else { 0.0 }));
            step::<I, D, T>(
                &xi,
                &qrow,
                &qcol,
                &here.x,
                &mut col[p],
                &mut pot,
                &mut grad,
                delta2,
            );
            let qcol: [V; T] = std::array::from_fn(|t| V::splat(-qi[t]));
            let mut s = p + 1;
            while s < packs.len() {
                let q = uniform_q[s];
                if D != 2 || log_run < 2 || q.is_nan() {
                    step::<I, D, T>(
                        &xi,
                        &[packs[s].q; T],
                        &qcol,
                        &packs[s].x,
                        &mut col[s],
                        &mut pot,
                        &mut grad,
                        delta2,
                    );
                    s += 1;
                    continue;
                }
                let mut e = s + 1;
                while e < packs.len() && e - s < log_run && uniform_q[e].to_bits() == q.to_bits() {
                    e += 1;
                }
                let mut prod = [V::splat(1.0); T];
                for (src, c) in packs[s..e].iter().zip(&mut col[s..e]) {
                    step_product::<I, D, T>(
                        &xi,
                        V::splat(q),
                        &qcol,
                        &src.x,
                        c,
                        &mut prod,
                        &mut grad,
                        delta2,
                    );
                }
                for t in 0..T {
                    pot[t] = I::mul_add(V::splat(q), I::ln(prod[t]), pot[t]);
                }
                s = e;
            }
            for t in 0..T {
                let i = (p - p0) * LANES + g + t;
                // Padding targets (charge 0) have no place in `out`.
                if i < out.len() {
                    energy += qi[t] * pot[t].sum();
                    for a in 0..D {
                        out[i][a] += grad[t][a].sum();
                    }
                }
            }
        }
    }
    energy
}

impl<const D: usize> DirectSum<D> {
    /// Packs the particles and their charges, marks the packs of uniform
    /// charge, and returns the 2D product run length (module docs).
    fn prepare(&mut self, x: &[[f64; D]], q: &[f64]) -> usize {
        let n = x.len();
        let np = n.div_ceil(LANES);
        self.packs.clear();
        self.packs.extend((0..np).map(|p| {
            let lane = |l: usize| (p * LANES + l < n).then(|| p * LANES + l);
            Pack {
                x: std::array::from_fn(|a| V::from_fn(|l| lane(l).map_or(0.0, |i| x[i][a]))),
                q: V::from_fn(|l| lane(l).map_or(0.0, |i| q[i])),
            }
        }));
        self.uniform_q.clear();
        self.uniform_q.extend(self.packs.iter().map(|p| {
            let q = p.q.0[0];
            if q != 0.0 && p.q.0.iter().all(|v| v.to_bits() == q.to_bits()) {
                q
            } else {
                f64::NAN
            }
        }));
        if D == 2 {
            let (lo, hi) = crate::util::parallel::bounding_box(x);
            let diam2 = (0..D).map(|a| (hi[a] - lo[a]).powi(2)).sum::<f64>();
            log_run_len(self.delta2, diam2)
        } else {
            1
        }
    }
}

impl<const D: usize> CouplingBackend<D> for DirectSum<D> {
    fn describe(&self) -> String {
        "direct sum (exact)".into()
    }

    fn want(&mut self, particles: Option<&[u32]>) {
        self.wanted = particles.map(<[u32]>::to_vec);
    }

    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64 {
        if self.team.size() > 1 {
            return self.divided(x, q, field);
        }
        let n = x.len();
        let np = n.div_ceil(LANES);
        let log_run = self.prepare(x, q);
        field.fill([0.0; D]);
        let nb = n.div_ceil(BLOCK);
        self.row_energy.resize(nb, 0.0);
        let panel = panel_rows::<D>(n, self.panel_bytes);
        let (packs, uniform_q, delta2) = (&self.packs[..], &self.uniform_q[..], self.delta2);

        for first in (0..nb).step_by(panel) {
            let rows = panel.min(nb - first);
            self.cols.resize(rows * np, [V::ZERO; D]);
            // Phase 1: each row of the panel sweeps its sources.
            self.cols
                .par_chunks_mut(np)
                .zip(self.row_energy[first..first + rows].par_iter_mut())
                .zip(field[first * BLOCK..((first + rows) * BLOCK).min(n)].par_chunks_mut(BLOCK))
                .enumerate()
                .for_each(|(p, ((col, energy), out))| {
                    *energy = with_best_isa(Row {
                        packs,
                        uniform_q,
                        log_run,
                        ib: first + p,
                        col,
                        out,
                        delta2,
                    });
                });
            // Phase 2: add the column sums to the field, rows in ascending order.
            let cols = &self.cols;
            field[first * BLOCK..]
                .par_chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(k, out)| {
                    let p0 = (first + k) * BLOCK_PACKS;
                    // Rows up to this block's own have columns here.
                    for row in cols.chunks(np).take(k + 1) {
                        for (f, i) in out.iter_mut().zip(p0 * LANES..) {
                            let c = &row[i / LANES];
                            for a in 0..D {
                                f[a] += c[a].0[i % LANES];
                            }
                        }
                    }
                });
        }
        let (c_pot, c_grad) = scales(D);
        field.par_chunks_mut(BLOCK).for_each(|out| {
            for f in out {
                for v in f.iter_mut() {
                    *v *= c_grad;
                }
            }
        });
        c_pot * self.row_energy.iter().sum::<f64>()
    }
}

/// Block rows per panel for `n` particles (module docs): the column buffers
/// of one panel stay within `PANEL_BYTES`.
fn panel_rows<const D: usize>(n: usize, bytes: usize) -> usize {
    let np = n.div_ceil(LANES);
    let nb = n.div_ceil(BLOCK);
    (bytes / (std::mem::size_of::<[V; D]>() * np.max(1))).clamp(1, nb.max(1))
}

/// The sum split by block rows, with the same bits as
/// [`CouplingBackend::energy_and_field`]: a [`Team`] of several members
/// (MPI ranks under `mpirun`) gives each member a range of block rows.
///
/// The single-process sum adds, for particle j of block b(j) in the panel
/// starting at block P(j): the column sums col_I\[j\] of the block rows
/// I < P(j) in ascending I, then its row sum S_j, then col_I\[j\] for
/// P(j) <= I <= b(j) in ascending I; then it scales by c_grad. The energy is
/// c_pot times the sum of the block rows' energies in block order. A block
/// row's S, col and energy depend on the positions alone, so they can be
/// computed anywhere; the split keeps the order of the additions:
///
/// 1. each part computes its block rows ([`DirectSum::block_rows`]);
/// 2. every part learns all row sums S and all row energies;
/// 3. an accumulator per particle visits the parts in block order, each
///    adding its columns ([`BlockLayout::accumulate`], which inserts S_j at
///    block P(j)); when it has passed block b(j), particle j's field is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLayout {
    /// Particles.
    pub n: usize,
    /// Block rows.
    pub blocks: usize,
    /// Block rows per panel.
    pub panel: usize,
}

/// What a range of block rows contributes ([`BlockLayout`]).
#[derive(Debug, Clone, Default)]
pub struct BlockRows<const D: usize> {
    /// The block rows, `first..first + energy.len()`.
    pub first: usize,
    /// Each block row's sum of q_i P_i (before the factor c_pot).
    pub energy: Vec<f64>,
    /// Row sums S_j of the particles of these block rows, in order.
    pub rows: Vec<[f64; D]>,
    /// Column sums of each block row I, for the particles j >= I * BLOCK.
    cols: Vec<Vec<[f64; D]>>,
}

impl BlockLayout {
    /// The layout of the sum over `n` particles in dimension `D`.
    pub fn new<const D: usize>(n: usize) -> Self {
        BlockLayout {
            n,
            blocks: n.div_ceil(BLOCK),
            panel: panel_rows::<D>(n, PANEL_BYTES),
        }
    }

    /// The particles of block rows `blocks`.
    pub fn particles(&self, blocks: &std::ops::Range<usize>) -> std::ops::Range<usize> {
        (blocks.start * BLOCK).min(self.n)..(blocks.end * BLOCK).min(self.n)
    }

    /// The particles whose row sums [`Self::accumulate`] reads for block
    /// rows `blocks`: those of every panel that starts among them (a
    /// panel's row sums are added at its first block), which may run past
    /// `blocks`.
    pub fn panel_reads(&self, blocks: &std::ops::Range<usize>) -> Vec<u32> {
        (blocks.clone())
            .filter(|ib| ib.is_multiple_of(self.panel))
            .flat_map(|ib| self.particles(&(ib..(ib + self.panel).min(self.blocks))))
            .map(|j| j as u32)
            .collect()
    }

    /// `parts` consecutive ranges of block rows of about equal work (block
    /// row I meets the packs from its own on: work ~ N - I * BLOCK); empty
    /// ranges when there are more parts than blocks.
    pub fn split(&self, parts: usize) -> Vec<std::ops::Range<usize>> {
        let work = |i: usize| (self.n - i * BLOCK) as f64;
        let total: f64 = (0..self.blocks).map(work).sum();
        let mut out = Vec::with_capacity(parts);
        let (mut start, mut done) = (0, 0.0);
        for p in 0..parts {
            let target = total * (p + 1) as f64 / parts as f64;
            let mut end = start;
            while end < self.blocks && (p + 1 == parts || done + 0.5 * work(end) < target) {
                done += work(end);
                end += 1;
            }
            out.push(start..end);
            start = end;
        }
        out
    }

    /// Step 3 of [`BlockLayout`]: adds the columns of `rows` (and, at the
    /// first block of each panel, that panel's row sums from `all_rows`, the
    /// S of every particle) to `acc`, the accumulators of particles
    /// `acc_first..n`, `acc_first` at most `rows.first * BLOCK`.
    pub fn accumulate<const D: usize>(
        &self,
        rows: &BlockRows<D>,
        all_rows: &[[f64; D]],
        acc: &mut [[f64; D]],
        acc_first: usize,
    ) {
        assert!(acc_first <= rows.first * BLOCK && acc.len() == self.n - acc_first);
        for (k, col) in rows.cols.iter().enumerate() {
            let ib = rows.first + k;
            if ib.is_multiple_of(self.panel) {
                let panel = self.particles(&(ib..(ib + self.panel).min(self.blocks)));
                for j in panel {
                    for a in 0..D {
                        acc[j - acc_first][a] += all_rows[j][a];
                    }
                }
            }
            let j0 = ib * BLOCK;
            acc[j0 - acc_first..]
                .par_chunks_mut(BLOCK)
                .zip(col.par_chunks(BLOCK))
                .for_each(|(f, c)| {
                    for (f, c) in f.iter_mut().zip(c) {
                        for a in 0..D {
                            f[a] += c[a];
                        }
                    }
                });
        }
    }

    /// The energy and the scale of the field once every accumulator is
    /// final: `block_energy` holds every block row's energy in order; the
    /// field is `acc` times the returned c_grad.
    pub fn finish<const D: usize>(block_energy: &[f64]) -> (f64, f64) {
        let (c_pot, c_grad) = scales(D);
        (c_pot * block_energy.iter().sum::<f64>(), c_grad)
    }
}

impl<const D: usize> DirectSum<D> {
    /// Step 1 of [`BlockLayout`]: the row sums, columns and energies of
    /// block rows `blocks` only, by the same code as the whole sum.
    pub fn block_rows(
        &mut self,
        x: &[[f64; D]],
        q: &[f64],
        blocks: std::ops::Range<usize>,
    ) -> BlockRows<D> {
        let n = x.len();
        let log_run = self.prepare(x, q);
        let np = self.packs.len();
        let layout = BlockLayout::new::<D>(n);
        let mut rows = vec![[0.0; D]; layout.particles(&blocks).len()];
        let mut energy = vec![0.0; blocks.len()];
        let (packs, uniform_q, delta2) = (&self.packs[..], &self.uniform_q[..], self.delta2);
        let cols: Vec<Vec<[f64; D]>> = rows
            .par_chunks_mut(BLOCK)
            .zip(energy.par_iter_mut())
            .enumerate()
            .map(|(k, (out, energy))| {
                let ib = blocks.start + k;
                let mut col = vec![[V::ZERO; D]; np];
                *energy = with_best_isa(Row {
                    packs,
                    uniform_q,
                    log_run,
                    ib,
                    col: &mut col,
                    out,
                    delta2,
                });
                (ib * BLOCK..n)
                    .map(|i| std::array::from_fn(|a| col[i / LANES][a].0[i % LANES]))
                    .collect()
            })
            .collect();
        BlockRows {
            first: blocks.start,
            energy,
            rows,
            cols,
        }
    }

    /// The sum divided among the team's members ([`BlockLayout`]), with the
    /// single process's bits. Member r owns the block rows
    /// `layout.split(size)[r]`; per evaluation:
    ///
    /// 1. the row sums S_j a member's panels read beyond its blocks (those
    ///    of a panel it starts that runs into later members' blocks: at
    ///    most a panel's particles, d numbers each, [`Ghosts`]), and an
    ///    `all_gather` of its block rows' energies (N / 256 numbers);
    /// 2. a pipeline 0 -> 1 -> ... -> P-1: member r receives the partial
    ///    field of the particles from its first block on, adds its blocks'
    ///    columns in ascending block order, and passes the rest on (at most
    ///    N x d numbers per hop);
    /// 3. `all_gather` of the finished field of each member's particles,
    ///    or, when the member wants some particles only
    ///    ([`CouplingBackend::want`]), the field of those it does not own
    ///    from their owners ([`Ghosts`]).
    fn divided(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64 {
        let team = self.team.clone();
        team.agree_on_interrupt();
        let (rank, size) = (team.rank(), team.size());
        let n = x.len();
        let mut layout = BlockLayout::new::<D>(n);
        layout.panel = panel_rows::<D>(n, self.panel_bytes);
        let ranges = layout.split(size);
        let mine = self.block_rows(x, q, ranges[rank].clone());
        let particles: Vec<_> = ranges.iter().map(|r| layout.particles(r)).collect();

        // 1. The row sums this member's panels read, and every block row's
        // energy, on every member.
        let mut all_rows = vec![[0.0; D]; n];
        all_rows[particles[rank].clone()].copy_from_slice(&mine.rows);
        if self.rows_plan.as_ref().is_none_or(|(m, _)| *m != n) {
            let reads = layout.panel_reads(&ranges[rank]);
            let plan = Ghosts::plan(&*team, &particles, n, rayon::iter::once(&reads[..]), |_| {
                true
            });
            self.rows_plan = Some((n, plan));
        }
        if let Some((_, plan)) = &mut self.rows_plan {
            plan.exchange(&*team, all_rows.as_flattened_mut(), D);
        }
        let counts: Vec<usize> = particles.iter().map(|p| p.len() * D).collect();
        let mut energies = vec![0.0; layout.blocks];
        let block_counts: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
        team.all_gather(&mine.energy, &block_counts, &mut energies);

        // 2. The pipeline of accumulators, in block order.
        let first = particles[rank].start;
        let mut acc = vec![[0.0; D]; n - first];
        if rank > 0 {
            let got = team.receive(rank - 1);
            acc.as_flattened_mut().copy_from_slice(&got);
        }
        layout.accumulate(&mine, &all_rows, &mut acc, first);
        if rank + 1 < size {
            let next = particles[rank + 1].start;
            team.send(rank + 1, acc[next - first..].as_flattened());
        }

        // 3. The finished field, of every particle or of the wanted ones.
        let done = &acc[..particles[rank].len()];
        match &self.wanted {
            Some(wanted) => {
                field[particles[rank].clone()].copy_from_slice(done);
                let reads = rayon::iter::once(&wanted[..]);
                let mut ghosts = Ghosts::plan(&*team, &particles, n, reads, |_| true);
                ghosts.exchange(&*team, field.as_flattened_mut(), D);
            }
            None => team.all_gather(done.as_flattened(), &counts, field.as_flattened_mut()),
        }
        let (u, c_grad) = BlockLayout::finish::<D>(&energies);
        for f in field.iter_mut() {
            for v in f.iter_mut() {
                *v *= c_grad;
            }
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::green::softened;

    /// Reference: every ordered pair, in the plainest form.
    fn naive<const D: usize>(x: &[[f64; D]], q: &[f64], delta: f64) -> (f64, Vec<[f64; D]>) {
        let mut e = 0.0;
        let mut f = vec![[0.0; D]; x.len()];
        for i in 0..x.len() {
            for j in 0..x.len() {
                if i == j {
                    continue;
                }
                let d: [f64; D] = std::array::from_fn(|a| x[i][a] - x[j][a]);
                let s: f64 = d.iter().map(|v| v * v).sum();
                let (g, slope) = softened::<D>(s, delta * delta);
                if i < j {
                    e += q[i] * q[j] * g;
                }
                for a in 0..D {
                    f[i][a] += q[j] * slope * d[a];
                }
            }
        }
        (e, f)
    }

    fn cloud<const D: usize>(n: usize) -> (Vec<[f64; D]>, Vec<f64>) {
        let x = (0..n)
            .map(|i| {
                std::array::from_fn(|a| ((i * (a + 3)) as f64 * 0.618_034 + a as f64 * 0.1).fract())
            })
            .collect();
        let q = (0..n)
            .map(|i| if i % 3 == 0 { -0.7 } else { 1.1 } / n as f64)
            .collect();
        (x, q)
    }

    fn check<const D: usize>(n: usize) {
        let (x, q) = cloud::<D>(n);
        let (e0, f0) = naive(&x, &q, 0.05);
        let mut f = vec![[0.0; D]; n];
        let e = DirectSum::<D>::new(0.05).energy_and_field(&x, &q, &mut f);
        // Same terms in another order: rounding-level differences only.
        assert!(
            (e - e0).abs() <= 1e-12 * e0.abs().max(1e-300),
            "D={D} n={n}: {e} vs {e0}"
        );
        let scale = f0.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        for i in 0..n {
            for a in 0..D {
                assert!(
                    (f[i][a] - f0[i][a]).abs() <= 1e-12 * scale,
                    "D={D} n={n} i={i}"
                );
            }
        }
    }

    #[test]
    fn matches_the_naive_sum_across_block_edges() {
        for n in [1, 2, 255, 256, 257, 700] {
            check::<1>(n);
            check::<2>(n);
            check::<3>(n);
        }
    }

    /// Two species of equal weights, as a scenario gives them: the 2D sum
    /// takes its logarithms of products (module docs). The species boundary
    /// falls on a pack edge (400) and inside a pack (403), where that pack
    /// has mixed charges and takes the per-pair path.
    #[test]
    fn logarithms_of_products_match_the_naive_sum() {
        for (n, n_plus, scale, delta) in [
            (700, 400, 1.0, 0.05),
            (700, 403, 1.0, 0.05),
            // Wide clouds and tiny softening: shorter runs (16, 4, then none).
            (300, 150, 1e3, 1e-3),
            (300, 150, 1e30, 1e-3),
            (300, 150, 1e150, 1e-3),
            (300, 150, 1.0, 1e-150),
        ] {
            let (mut x, _) = cloud::<2>(n);
            for xi in &mut x {
                xi[0] *= scale;
                xi[1] *= scale;
            }
            let q: Vec<f64> = (0..n)
                .map(|i| if i < n_plus { 1.0 } else { -1.0 } / n as f64)
                .collect();
            let (e0, f0) = naive(&x, &q, delta);
            let mut f = vec![[0.0; 2]; n];
            let e = DirectSum::<2>::new(delta).energy_and_field(&x, &q, &mut f);
            // The K <= 16 roundings of a product are ~2e-15 absolute in its
            // logarithm, ~1e-15 of the sum of |terms| with |ln a| >= 2 (true
            // here): 1e-13 of that sum leaves room for the summation itself.
            // (The energy can cancel far below the sum of |terms|: 1e-4 of it
            // at scale 1e3.)
            let mut abs_sum = 0.0;
            for i in 0..n {
                for j in i + 1..n {
                    let r2 = (x[i][0] - x[j][0]).powi(2) + (x[i][1] - x[j][1]).powi(2);
                    abs_sum += (q[i] * q[j] * softened::<2>(r2, delta * delta).0).abs();
                }
            }
            assert!(
                (e - e0).abs() <= 1e-13 * abs_sum,
                "n={n} n+={n_plus} scale={scale}: {e} vs {e0} (sum of |terms| {abs_sum})"
            );
            let fs = f0.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
            for (fi, gi) in f.iter().zip(&f0) {
                for a in 0..2 {
                    assert!((fi[a] - gi[a]).abs() <= 1e-12 * fs);
                }
            }
        }
    }

    #[test]
    fn log_runs_keep_products_normal() {
        assert_eq!(log_run_len(0.02f64.powi(2), 4.0), MAX_LOG_RUN);
        for (delta2, diam2) in [(1e-300, 1.0), (1e-8, 1e250), (1e-3, 1e-3), (4e-4, 1e12)] {
            let k = log_run_len(delta2, diam2) as i32;
            if k > 1 {
                assert!(delta2.powi(k) >= f64::MIN_POSITIVE, "{delta2} {diam2} {k}");
                assert!((delta2 + diam2).powi(k).is_finite(), "{delta2} {diam2} {k}");
            }
        }
        assert_eq!(log_run_len(1e-300, 1.0), 1);
        assert_eq!(log_run_len(1.0, f64::INFINITY), 1);
    }

    #[test]
    fn same_bits_on_one_and_two_threads() {
        let (x, q) = cloud::<2>(1500);
        let run = |t: usize| {
            crate::util::parallel::on_threads(t, || {
                let mut f = vec![[0.0; 2]; x.len()];
                let e = DirectSum::<2>::new(0.01).energy_and_field(&x, &q, &mut f);
                (
                    e.to_bits(),
                    f.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>(),
                )
            })
        };
        assert_eq!(run(1), run(2));
    }

    /// The split of [`BlockLayout`], run in one process over 1-4 parts and
    /// with panels of one, two and all block rows, gives the whole sum's bits.
    #[test]
    fn block_rows_reassemble_to_the_same_bits() {
        fn check<const D: usize>(n: usize) {
            let (x, q) = cloud::<D>(n);
            let row_bytes = std::mem::size_of::<[V; D]>() * n.div_ceil(LANES);
            for panel in [1, 2, usize::MAX] {
                let mut single = DirectSum::<D>::new(0.05);
                single.panel_bytes = row_bytes.saturating_mul(panel);
                let mut whole = vec![[0.0; D]; n];
                let e = single.energy_and_field(&x, &q, &mut whole);
                let mut layout = BlockLayout::new::<D>(n);
                layout.panel = panel_rows::<D>(n, single.panel_bytes);
                for parts in 1..=4 {
                    let mut sum = DirectSum::<D>::new(0.05);
                    let pieces: Vec<BlockRows<D>> = layout
                        .split(parts)
                        .into_iter()
                        .map(|r| sum.block_rows(&x, &q, r))
                        .collect();
                    let all_rows: Vec<[f64; D]> =
                        pieces.iter().flat_map(|p| p.rows.clone()).collect();
                    let energies: Vec<f64> = pieces.iter().flat_map(|p| p.energy.clone()).collect();
                    let mut acc = vec![[0.0; D]; n];
                    for p in &pieces {
                        layout.accumulate(p, &all_rows, &mut acc, 0);
                    }
                    let (u, c_grad) = BlockLayout::finish::<D>(&energies);
                    assert_eq!(u.to_bits(), e.to_bits(), "D={D} n={n} parts={parts}");
                    for (f, g) in acc.iter().zip(&whole) {
                        for a in 0..D {
                            assert_eq!((f[a] * c_grad).to_bits(), g[a].to_bits());
                        }
                    }
                }
            }
        }
        for n in [1, 9, 256, 700, 1100] {
            check::<1>(n);
            check::<2>(n);
            check::<3>(n);
        }
    }

    /// The sum divided among 2-4 members of a [`ThreadTeam`] (threads
    /// standing for MPI ranks) gives each member the single process's bits,
    /// with panels of one, two and all block rows (so that panels run
    /// across members' ranges), each member receiving the row sums of at
    /// most a panel's particles beyond its own (the panels it starts).
    /// Checked by hand: reading no other member's row sums fails it.
    #[test]
    fn a_team_gets_the_single_process_bits() {
        use crate::util::team::ThreadTeam;
        fn check<const D: usize>(n: usize) {
            let (x, q) = cloud::<D>(n);
            let row_bytes = std::mem::size_of::<[V; D]>() * n.div_ceil(LANES);
            for panel in [1, 2, usize::MAX] {
                let bytes = row_bytes.saturating_mul(panel);
                let mut single = DirectSum::<D>::new(0.05);
                single.panel_bytes = bytes;
                let mut whole = vec![[0.0; D]; n];
                let e = single.energy_and_field(&x, &q, &mut whole);
                let most = (panel.min(n.div_ceil(BLOCK)) * BLOCK).min(n);
                for size in 2..=4 {
                    for (e_r, f_r, received) in ThreadTeam::run(size, |t| {
                        let mut f = vec![[0.0; D]; n];
                        let mut sum = DirectSum::<D>::new(0.05).with_team(t);
                        sum.panel_bytes = bytes;
                        let e = sum.energy_and_field(&x, &q, &mut f);
                        (e, f, sum.rows_plan.map_or(0, |(_, g)| g.count()))
                    }) {
                        let at = format!("D={D} n={n} size={size} panel={panel}");
                        assert_eq!(e_r.to_bits(), e.to_bits(), "{at}");
                        for (f, g) in f_r.iter().zip(&whole) {
                            for a in 0..D {
                                assert_eq!(f[a].to_bits(), g[a].to_bits(), "{at}");
                            }
                        }
                        assert!(received < most, "{at}: {received} row sums received");
                    }
                }
            }
        }
        for n in [1, 300, 1100] {
            check::<2>(n);
            check::<3>(n);
        }
    }

    /// A member wanting some particles only (`want`; here every particle
    /// whose index is the member's rank modulo the team's size, so most of
    /// them lie in other members' block rows) gets their field with the
    /// single process's bits, and the whole energy; its other entries stay
    /// as they were (NaN here), since nothing is gathered for them.
    #[test]
    fn members_wanting_some_particles_get_their_bits() {
        use crate::util::team::ThreadTeam;
        fn check<const D: usize>(n: usize) {
            let (x, q) = cloud::<D>(n);
            let mut whole = vec![[0.0; D]; n];
            let e = DirectSum::<D>::new(0.05).energy_and_field(&x, &q, &mut whole);
            for size in 2..=3 {
                let got = ThreadTeam::run(size, |t| {
                    let wanted: Vec<u32> = (t.rank() as u32..n as u32).step_by(size).collect();
                    let mut sum = DirectSum::<D>::new(0.05).with_team(t);
                    sum.want(Some(&wanted));
                    let mut f = vec![[f64::NAN; D]; n];
                    (sum.energy_and_field(&x, &q, &mut f), f, wanted)
                });
                for (rank, (e_r, f_r, wanted)) in got.iter().enumerate() {
                    assert_eq!(e_r.to_bits(), e.to_bits(), "D={D} size={size}");
                    for &i in wanted {
                        let (f, g) = (f_r[i as usize], whole[i as usize]);
                        assert_eq!(f.map(f64::to_bits), g.map(f64::to_bits), "particle {i}");
                    }
                    let unread = f_r.iter().filter(|f| f[0].is_nan()).count();
                    assert!(unread > 0, "member {rank} of {size} got every field");
                }
            }
        }
        check::<2>(1100);
        check::<3>(1100);
    }
}
