//! The direct O(N^2) pair sum, each unordered pair evaluated once.
//!
//! With a = |d|^2 + delta^2, d = x_i - x_j, the softened kernel of
//! [`crate::green`] is written G = c_pot k(a), grad G(d) = c_grad f(a) d
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
//! Rows are processed in panels so the column buffers stay within
//! `PANEL_BYTES` whatever N. `ln`, `1/a` and `a^-1/2` come from
//! [`Isa`] on AVX-512: a table-driven
//! logarithm and `rcp14`/`rsqrt14` with polynomial corrections (about 1 ulp,
//! so no division or square root in the 2D and 3D loops). 1 ulp per pair is
//! the rounding the sum adds anyway; the finite-difference gradient tests
//! (1e-6) and the tree-vs-direct comparisons are far coarser.

use rayon::prelude::*;

use super::CouplingBackend;
use crate::coupling::lanes::{LANES, V};
use crate::coupling::simd_dispatch::{Isa, IsaTask, with_best_isa};

/// Particles per block (tile side); a multiple of `LANES`.
const BLOCK: usize = 256;
/// Packs per block.
const BLOCK_PACKS: usize = BLOCK / LANES;
/// Targets per sweep (held in registers); divides `LANES`. Measured on
/// Zen 4, one thread, N = 1e4: 1, 2, 4 targets take 96, 63, 63 ms in 2D and
/// 49, 47, 52 ms in 3D (with 4 the 32 vector registers spill).
const TARGETS: usize = 2;
/// Memory budget of the column buffers of one panel.
const PANEL_BYTES: usize = 64 << 20;

/// Eight particles: positions per axis and charges (0 in the padding lanes
/// past the last particle, which then add exact zeros everywhere).
#[derive(Clone, Copy)]
struct Pack<const D: usize> {
    x: [V; D],
    q: V,
}

pub struct DirectSum<const D: usize> {
    delta2: f64,
    packs: Vec<Pack<D>>,
    /// Column sums of the rows of a panel: `[row in panel][pack][axis]`.
    cols: Vec<[V; D]>,
    /// Sum q_i P_i of each block row.
    row_energy: Vec<f64>,
}

impl<const D: usize> DirectSum<D> {
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
        }
    }
}

/// (c_pot, c_grad) with G = c_pot k(a) and grad G(d) = c_grad f(a) d:
/// G = -sqrt(a)/2, -ln(a)/(4 pi), 1/(4 pi sqrt(a)) for d = 1, 2, 3.
const fn scales(d: usize) -> (f64, f64) {
    use std::f64::consts::PI;
    match d {
        1 => (-0.5, -0.5),
        2 => (-1.0 / (4.0 * PI), -1.0 / (2.0 * PI)),
        _ => (1.0 / (4.0 * PI), -1.0 / (4.0 * PI)),
    }
}

/// (k(a), f(a)) of the module docs, lane by lane. In 1D a = 0 occurs when
/// delta = 0 (a particle against itself in a masked lane, or two coincident
/// particles); f is then 0, i.e. sign(0) = 0 as in [`crate::green::softened`].
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
        let d: [V; D] = std::array::from_fn(|a| xi[t][a] - xj[a]);
        let mut s = delta2;
        for da in &d {
            s = I::mul_add(*da, *da, s);
        }
        let (k, f) = pair::<I, D>(s);
        pot[t] = I::mul_add(qrow[t], k, pot[t]);
        let (fr, fc) = (qrow[t] * f, qcol[t] * f);
        for a in 0..D {
            grad[t][a] = I::mul_add(fr, d[a], grad[t][a]);
            col[a] = I::mul_add(fc, d[a], col[a]);
        }
    }
}

/// Phase 1 of block row `ib`: adds S_i to `out` (the block's field), writes
/// the row's column sums to `col` (indexed by pack), returns sum_i q_i P_i.
struct Row<'a, const D: usize> {
    packs: &'a [Pack<D>],
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
            for (src, c) in packs[p + 1..].iter().zip(&mut col[p + 1..]) {
                step::<I, D, T>(
                    &xi,
                    &[src.q; T],
                    &qcol,
                    &src.x,
                    c,
                    &mut pot,
                    &mut grad,
                    delta2,
                );
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

impl<const D: usize> CouplingBackend<D> for DirectSum<D> {
    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64 {
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
        field.fill([0.0; D]);
        let nb = n.div_ceil(BLOCK);
        self.row_energy.resize(nb, 0.0);
        let panel = (PANEL_BYTES / (std::mem::size_of::<[V; D]>() * np.max(1))).clamp(1, nb.max(1));
        let (packs, delta2) = (&self.packs[..], self.delta2);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::green::softened;

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

    #[test]
    fn same_bits_on_one_and_two_threads() {
        let (x, q) = cloud::<2>(1500);
        let run = |t: usize| {
            crate::parallel::on_threads(t, || {
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
}
