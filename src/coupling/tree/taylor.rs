//! Taylor coefficients (derivatives) of the *softened* kernels, by recurrence.
//!
//! For `k(z) = (|z|^2 + delta^2)^nu` (`R^2 = |z|^2 + delta^2`) the Taylor coefficients
//! `T_m = D^m k(z) / m!` satisfy, for `|m| >= 1` (derived from
//! `R^2 grad k = 2 nu z k`; the Lindsay–Krasny recurrence for `nu = -1/2`):
//!
//! ```text
//! |m| R^2 T_m = (2 nu - 2|m| + 2) sum_i z_i T_{m - e_i} + (2 nu - |m| + 2) sum_i T_{m - 2 e_i}
//! ```
//!
//! For `k(z) = ln(|z|^2 + delta^2)` (the limit `(R^{2 nu} - 1)/nu`, `nu -> 0`) the same holds
//! with `nu = 0` plus the source terms `2 z_i` at `m = e_i` and `1 * |m| = 2` at `m = 2 e_i`.
//! The softening enters only through `R^2`, so these are the exact Taylor coefficients
//! of the softened kernel (not of the harmonic one). Along any real line through `z`
//! the nearest complex singularity is at distance `>= R >= |z|`, so the expansions
//! converge at least as fast as those of the unsoftened kernel.
//!
//! These `k` are the unscaled kernels of [`crate::coupling::pair_kernel`]
//! (`G_delta = scale * k`, the one statement being [`crate::model::green`]); the
//! series form stays here for speed, and the tests below check the Taylor
//! polynomials against the kernels themselves.
//!
//! [`FarKernel::derivatives`] returns `D^m k(z) = m! T_m` for `LANES` displacements at once.

use super::multi_index::MultiIndex;
use crate::coupling::pair_kernel::{Correction1d, PairKernel, Softened, V};
use crate::util::simd_dispatch::Isa;

/// A kernel with far-field (Taylor) derivatives.
pub trait FarKernel<const D: usize>: PairKernel<D> {
    /// Writes the Taylor coefficients `out[m] = D^m k(z) / m!` for all `|m| <= p`, and
    /// `out[mi.len()] = 0` (zero row used by the index tables).
    /// `out.len() >= mi.len() + 1`.
    fn taylor_coefficients(&self, mi: &MultiIndex<D>, z: &[V; D], out: &mut [V]);

    /// The same for the degrees `<= degree` only (`out[m]` for `m < mi.count[degree]`,
    /// and the zero row `out[mi.len()]`): an M2L truncated at a lower degree needs no
    /// more (the recurrence for degree `n` reads degrees `n - 1` and `n - 2` only).
    #[inline(always)]
    fn taylor_coefficients_to(&self, mi: &MultiIndex<D>, z: &[V; D], degree: usize, out: &mut [V]) {
        let _ = degree;
        self.taylor_coefficients(mi, z, out);
    }

    /// Writes `out[m] = D^m k(z)` for all `|m| <= p`, and `out[mi.len()] = 0`.
    #[inline(always)]
    fn derivatives<I: Isa>(&self, mi: &MultiIndex<D>, z: &[V; D], out: &mut [V]) {
        self.taylor_coefficients(mi, z, out);
        let n = mi.len();
        for (o, f) in out[..n].iter_mut().zip(&mi.factorial) {
            *o = I::mul(*o, V::splat(*f));
        }
    }
}

/// Fills `out[m]` for all `m` with `from <= m < to` by the power-kernel recurrence
/// with exponent `nu` (`out` holds the lower-degree coefficients already).
/// The coefficients `(2 nu - 2|m| + 2) / |m|` and `(2 nu - |m| + 2) / |m|` are formed
/// once per degree; the index tables are used unchecked (entries `<= mi.len()`,
/// asserted below to be in `out`), which keeps this loop at a few vector operations
/// per term: it is about a tenth of an M2L.
#[inline(always)]
fn recurrence<const D: usize>(
    mi: &MultiIndex<D>,
    nu: f64,
    z: &[V; D],
    inv_r2: V,
    from: usize,
    to: usize,
    out: &mut [V],
) {
    assert!(out.len() > mi.len() && to <= mi.len());
    let mut m = from;
    while m < to {
        let deg = mi.degree[m] as usize;
        let end = mi.count[deg].min(to);
        let a = V::splat((2.0 * nu - 2.0 * deg as f64 + 2.0) / deg as f64) * inv_r2;
        let b = V::splat((2.0 * nu - deg as f64 + 2.0) / deg as f64) * inv_r2;
        for k in m..end {
            let (m1, m2) = (&mi.minus1[k], &mi.minus2[k]);
            // SAFETY: `minus1`/`minus2` entries are `<= mi.len() < out.len()`.
            let get = |i: u32| unsafe { *out.get_unchecked(i as usize) };
            let mut s1 = z[0] * get(m1[0]);
            let mut s2 = get(m2[0]);
            for i in 1..D {
                s1 += z[i] * get(m1[i]);
                s2 += get(m2[i]);
            }
            out[k] = a * s1 + b * s2;
        }
        m = end;
    }
}

impl<const D: usize> FarKernel<D> for Softened<D> {
    #[inline(always)]
    fn taylor_coefficients(&self, mi: &MultiIndex<D>, z: &[V; D], out: &mut [V]) {
        self.taylor_coefficients_to(mi, z, mi.order, out);
    }

    #[inline(always)]
    fn taylor_coefficients_to(&self, mi: &MultiIndex<D>, z: &[V; D], degree: usize, out: &mut [V]) {
        let degree = degree.min(mi.order);
        out[mi.len()] = V::ZERO;
        let n = mi.count[degree];
        let mut r2 = V::splat(self.delta2);
        for zd in z {
            r2 += *zd * *zd;
        }
        let inv_r2 = V::splat(1.0) / r2;
        match D {
            2 => {
                // ln R^2: degree 0, 1 explicit, degree 2 with the source term, then nu = 0.
                out[0] = r2.ln();
                for m in 1..mi.count[1.min(degree)] {
                    let i = (0..D).find(|&i| mi.exps[m][i] == 1).unwrap();
                    out[m] = V::splat(2.0) * z[i] * inv_r2;
                }
                if degree >= 2 {
                    recurrence(mi, 0.0, z, inv_r2, mi.count[1], mi.count[2], out);
                    for m in mi.count[1]..mi.count[2] {
                        if mi.exps[m].contains(&2) {
                            out[m] += inv_r2;
                        }
                    }
                    recurrence(mi, 0.0, z, inv_r2, mi.count[2], n, out);
                }
            }
            3 => {
                out[0] = inv_r2.sqrt();
                recurrence(mi, -0.5, z, inv_r2, 1, n, out);
            }
            _ => {
                out[0] = r2.sqrt();
                recurrence(mi, 0.5, z, inv_r2, 1, n, out);
            }
        }
    }
}

impl FarKernel<1> for Correction1d {
    /// `c(z) = sqrt(z^2 + delta^2) - |z|`: same coefficients as `sqrt` for degree >= 2
    /// (valid for `z != 0`, i.e. for separated clusters), with degree 0 and 1 in
    /// cancellation-free form.
    #[inline(always)]
    fn taylor_coefficients(&self, mi: &MultiIndex<1>, z: &[V; 1], out: &mut [V]) {
        let n = mi.len();
        out[n] = V::ZERO;
        let d2 = V::splat(self.delta2);
        let r2 = z[0] * z[0] + d2;
        let r = r2.sqrt();
        let inv_r2 = V::splat(1.0) / r2;
        out[0] = r;
        recurrence(mi, 0.5, z, inv_r2, 1, n, out);
        let c = d2 / (r + z[0].abs());
        out[0] = c;
        if n > 1 {
            out[1] = -(z[0].signum0() * c / r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<const D: usize, K: FarKernel<D>>(k: &K, z0: [f64; D], order: usize, tol: f64) {
        // Compare the Taylor polynomial at z0 + h with the kernel at z0 + h.
        let mi = MultiIndex::<D>::new(order);
        let z = std::array::from_fn(|d| V::splat(z0[d]));
        let mut out = vec![V::ZERO; mi.len() + 1];
        k.derivatives::<crate::util::simd_dispatch::Portable>(&mi, &z, &mut out);
        let h: [f64; D] = std::array::from_fn(|d| 0.01 * (d as f64 + 1.0));
        let mut approx = 0.0;
        for m in 0..mi.len() {
            let mut mono = 1.0;
            for d in 0..D {
                mono *= h[d].powi(mi.exps[m][d] as i32);
            }
            approx += out[m].0[0] * mono / mi.factorial[m];
        }
        let exact = {
            let src = crate::coupling::pair_kernel::Sources::<D> {
                pos: std::array::from_fn(|_| &[0.0][..]),
                q: &[1.0],
            };
            let mut t = crate::coupling::pair_kernel::TargetBlock::<D> {
                x: std::array::from_fn(|d| V::splat(z0[d] + h[d])),
                phi: V::ZERO,
                grad: [V::ZERO; D],
            };
            k.accumulate::<crate::util::simd_dispatch::Portable>(&mut t, &src, 0..1);
            t.phi.0[0]
        };
        assert!(
            (approx - exact).abs() < tol * exact.abs(),
            "{approx} vs {exact}"
        );
    }

    #[test]
    fn taylor_matches_kernel() {
        check(&Softened::<3>::new(0.3), [0.5, -0.2, 0.3], 10, 1e-13);
        check(&Softened::<2>::new(0.3), [0.5, -0.2], 10, 1e-13);
        check(&Softened::<1>::new(0.3), [0.5], 10, 1e-13);
        check(&Correction1d { delta2: 0.09 }, [0.5], 12, 1e-12);
        check(&Correction1d { delta2: 0.09 }, [-0.7], 12, 1e-12);
    }
}
