//! The direct O(N^2) pair sum, each unordered pair evaluated once.
//!
//! Particles are cut into blocks of `BLOCK`; the pair (i, j), i < j, belongs
//! to the tile (I, J), I <= J, of their blocks. The task of block row I
//! evaluates its tiles left to right, accumulating the forces on its own
//! particles in registers ("row side") and the opposite forces on block J's
//! particles in a column buffer owned by row I ("column side"). The column
//! buffers are then added to the field block by block in ascending I. Every
//! addition thus happens in an order fixed by the algorithm, never by the
//! scheduler: the result has the same bits on any number of threads.
//!
//! Rows are processed in panels so the column buffers stay within
//! `PANEL_BYTES` whatever N. Positions live in a structure-of-arrays copy, and
//! the kernel (see [`crate::green::softened`]) is branch-free, so the inner
//! loop over j vectorizes.

use rayon::prelude::*;

use super::CouplingBackend;
use crate::green::softened;

/// Particles per block (tile side).
const BLOCK: usize = 256;
/// Memory budget of the column buffers of one panel.
const PANEL_BYTES: usize = 64 << 20;

pub struct DirectSum<const D: usize> {
    delta2: f64,
    /// Positions, one array per axis.
    soa: [Vec<f64>; D],
    /// Column-side buffers of the rows of a panel: `[row in panel][axis][j]`.
    cols: Vec<f64>,
    /// Energy sum of each block row.
    row_energy: Vec<f64>,
}

impl<const D: usize> DirectSum<D> {
    pub fn new(softening: f64) -> Self {
        DirectSum {
            delta2: softening * softening,
            soa: std::array::from_fn(|_| Vec::new()),
            cols: Vec::new(),
            row_energy: Vec::new(),
        }
    }
}

/// SIMD lanes of the pair loop. FP reductions do not vectorize by
/// themselves (reassociation changes rounding), so the loop keeps `LANES`
/// partial sums explicitly and adds them in a fixed order at the end.
const LANES: usize = 8;

/// Interactions of particle (xi, qi) with the sources j of a row segment.
/// Returns (sum_j q_j G, sum_j q_j grad G(xi - x_j)) and subtracts
/// qi grad G(xi - x_j) from the column side of each j.
#[inline(always)]
fn row_against<const D: usize>(
    xi: [f64; D],
    src: [&[f64]; D],
    q: &[f64],
    qi: f64,
    col: &mut [&mut [f64]; D],
    delta2: f64,
) -> (f64, [f64; D]) {
    let m = q.len();
    let mut pot = [0.0; LANES];
    let mut acc = [[0.0; LANES]; D];
    let full = m - m % LANES;
    for j0 in (0..full).step_by(LANES) {
        let qj: &[f64; LANES] = q[j0..j0 + LANES].try_into().unwrap();
        let mut d = [[0.0; LANES]; D];
        let mut s = [0.0; LANES];
        for a in 0..D {
            let xj: &[f64; LANES] = src[a][j0..j0 + LANES].try_into().unwrap();
            for l in 0..LANES {
                d[a][l] = xi[a] - xj[l];
                s[l] += d[a][l] * d[a][l];
            }
        }
        let mut g = [0.0; LANES];
        let mut slope = [0.0; LANES];
        for l in 0..LANES {
            (g[l], slope[l]) = softened::<D>(s[l], delta2);
        }
        for l in 0..LANES {
            pot[l] += qj[l] * g[l];
        }
        for a in 0..D {
            let c: &mut [f64; LANES] = (&mut col[a][j0..j0 + LANES]).try_into().unwrap();
            for l in 0..LANES {
                acc[a][l] += qj[l] * slope[l] * d[a][l];
                c[l] -= qi * slope[l] * d[a][l];
            }
        }
    }
    let mut p = pot.iter().sum::<f64>();
    let mut f: [f64; D] = std::array::from_fn(|a| acc[a].iter().sum());
    for j in full..m {
        let mut d = [0.0; D];
        let mut s = 0.0;
        for a in 0..D {
            d[a] = xi[a] - src[a][j];
            s += d[a] * d[a];
        }
        let (g, slope) = softened::<D>(s, delta2);
        p += q[j] * g;
        for a in 0..D {
            f[a] += q[j] * slope * d[a];
            col[a][j] -= qi * slope * d[a];
        }
    }
    (p, f)
}

impl<const D: usize> CouplingBackend<D> for DirectSum<D> {
    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64 {
        let n = x.len();
        for a in 0..D {
            self.soa[a].clear();
            self.soa[a].extend(x.iter().map(|p| p[a]));
        }
        field.fill([0.0; D]);
        let nb = n.div_ceil(BLOCK);
        self.row_energy.resize(nb, 0.0);
        let panel = (PANEL_BYTES / (8 * D * n.max(1))).clamp(1, nb.max(1));
        let (soa, delta2) = (&self.soa, self.delta2);

        for first in (0..nb).step_by(panel) {
            let rows = panel.min(nb - first);
            self.cols.resize(rows * D * n, 0.0);
            // Phase 1: each row of the panel evaluates its tiles.
            self.cols
                .par_chunks_mut(D * n)
                .zip(self.row_energy[first..first + rows].par_iter_mut())
                .zip(field[first * BLOCK..((first + rows) * BLOCK).min(n)].par_chunks_mut(BLOCK))
                .enumerate()
                .for_each(|(p, ((col, energy), out))| {
                    let ib = first + p;
                    let (i0, i1) = (ib * BLOCK, ((ib + 1) * BLOCK).min(n));
                    // Only columns j >= i1 are written by later tiles.
                    let mut col: [&mut [f64]; D] = {
                        let mut parts = col.chunks_mut(n);
                        std::array::from_fn(|_| &mut parts.next().unwrap()[i1..])
                    };
                    for c in col.iter_mut() {
                        c.fill(0.0);
                    }
                    let mut local = [[0.0; D]; BLOCK];
                    let mut e = 0.0;
                    // Diagonal tile: pairs i < j inside the block, both sides local.
                    for i in i0..i1 {
                        let xi: [f64; D] = std::array::from_fn(|a| soa[a][i]);
                        let mut pot = 0.0;
                        let mut acc = [0.0; D];
                        for j in i + 1..i1 {
                            let mut d = [0.0; D];
                            let mut s = 0.0;
                            for a in 0..D {
                                d[a] = xi[a] - soa[a][j];
                                s += d[a] * d[a];
                            }
                            let (g, slope) = softened::<D>(s, delta2);
                            pot += q[j] * g;
                            for a in 0..D {
                                acc[a] += q[j] * slope * d[a];
                                local[j - i0][a] -= q[i] * slope * d[a];
                            }
                        }
                        e += q[i] * pot;
                        for a in 0..D {
                            local[i - i0][a] += acc[a];
                        }
                    }
                    // Off-diagonal tiles, left to right, all at once per target i:
                    // the sources i1..n are contiguous.
                    if i1 < n {
                        for i in i0..i1 {
                            let xi: [f64; D] = std::array::from_fn(|a| soa[a][i]);
                            let src: [&[f64]; D] = std::array::from_fn(|a| &soa[a][i1..]);
                            let (pot, acc) =
                                row_against::<D>(xi, src, &q[i1..], q[i], &mut col, delta2);
                            e += q[i] * pot;
                            for a in 0..D {
                                local[i - i0][a] += acc[a];
                            }
                        }
                    }
                    *energy = e;
                    for (f, l) in out.iter_mut().zip(&local) {
                        for a in 0..D {
                            f[a] += l[a];
                        }
                    }
                });
            // Phase 2: add the column sides to the field, rows in ascending order.
            let cols = &self.cols;
            field[first * BLOCK..]
                .par_chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(k, out)| {
                    let j0 = (first * BLOCK) + k * BLOCK;
                    for p in 0..rows {
                        let i1 = ((first + p + 1) * BLOCK).min(n);
                        if j0 < i1 {
                            continue; // row p has no tile right of its diagonal here
                        }
                        let base = p * D * n;
                        for (t, f) in out.iter_mut().enumerate() {
                            for a in 0..D {
                                f[a] += cols[base + a * n + j0 + t];
                            }
                        }
                    }
                });
        }
        self.row_energy.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| {
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
