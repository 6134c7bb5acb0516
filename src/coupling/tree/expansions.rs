//! Cartesian multipole and local expansions of total degree `p` (Dehnen-style
//! truncation `|a| + |b| <= p`), valid for any kernel with Taylor derivatives.
//!
//! Conventions (`P_m(v) = v^m / m!`, `D^m k` = derivatives from [`FarKernel`]):
//!
//! * multipole of a cell with centre `c`: `M_m = sum_j q_j P_m(c - x_j)`
//!   (= `(-1)^|m| sum_j q_j (x_j - c)^m / m!`);
//! * far potential of the cell at `x`: `sum_m M_m D^m k(x - c)` (Taylor expansion of
//!   `k(x - x_j)` about `x - c`);
//! * local expansion about `c_t`: `L_a = sum_b D^(a+b) k(c_t - c_s) M_b` (`|a|+|b| <= p`), i.e.
//!   the derivatives of the far field at `c_t`; potential `sum_a L_a P_a(x - c_t)`,
//!   gradient `sum_a L_(a+e_i) P_a(x - c_t)`;
//! * M2M: `M_m(parent) = sum_(a+g=m) M_a(child) P_g(c_parent - c_child)`;
//! * L2L: `L_a(child) = sum_g L_(a+g)(parent) P_g(c_child - c_parent)`.

use super::multi_index::{GROUP, MultiIndex};
use super::taylor::FarKernel;
use crate::coupling::pair_kernel::{LANES, Sources, TargetBlock, V};
use crate::coupling::simd_dispatch::Isa;

/// Scratch space for one M2L batch (reused, never reallocated in the hot loop).
pub struct M2lScratch {
    /// Transposed multipoles of the `LANES` sources of a batch.
    mult: Vec<V>,
    /// Kernel derivatives for the `LANES` displacements (+ zero row).
    deriv: Vec<V>,
    /// Per-lane partial local expansion.
    acc: Vec<V>,
    /// Zero multipole for the padded lanes of a batch.
    zero: Vec<f64>,
}

impl M2lScratch {
    pub fn new(nterms: usize) -> Self {
        Self {
            mult: vec![V::ZERO; nterms],
            deriv: vec![V::ZERO; nterms + 1],
            acc: vec![V::ZERO; nterms],
            zero: vec![0.0; nterms],
        }
    }
}

/// Fills `p[m] = P_m(v)` (`v^m / m!`) for every multi-index, `LANES` points at once.
#[inline(always)]
pub fn monomials<const D: usize>(mi: &MultiIndex<D>, v: &[V; D], p: &mut [V]) {
    p[0] = V::splat(1.0);
    for m in 1..mi.len() {
        let (parent, d, inv) = mi.mono_parent[m];
        p[m] = p[parent as usize] * v[d as usize] * V::splat(inv);
    }
}

/// P2M: multipole `out` (overwritten) of the particles `range` of `src` about `center`.
/// `mono` and `acc` are scratch of length `mi.len()`.
#[inline(always)]
pub fn p2m<const D: usize>(
    mi: &MultiIndex<D>,
    center: &[f64; D],
    src: &Sources<'_, D>,
    range: std::ops::Range<usize>,
    mono: &mut [V],
    acc: &mut [V],
    out: &mut [f64],
) {
    acc.fill(V::ZERO);
    let mut j = range.start;
    while j < range.end {
        let n = (range.end - j).min(LANES);
        let v: [V; D] =
            std::array::from_fn(|d| V::from_fn(|l| center[d] - src.pos[d][j + l.min(n - 1)]));
        let q = V::from_fn(|l| if l < n { src.q[j + l] } else { 0.0 });
        monomials(mi, &v, mono);
        for (a, m) in acc.iter_mut().zip(mono.iter()) {
            *a += q * *m;
        }
        j += n;
    }
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        *o = a.sum();
    }
}

/// The children of one cell, one per lane (a cell has at most `2^D <= LANES`).
pub struct Children<'a, const D: usize> {
    pub count: usize,
    pub centers: [[f64; D]; LANES],
    /// Each child's multipole (M2M input) or local (L2L output) coefficients.
    pub coeffs: [&'a [f64]; LANES],
}

/// M2M of all children of a cell at once, one child per lane: overwrites `parent` with
/// `M_m(parent) = sum_child sum_(a+g=m) M_a(child) P_g(c_parent - c_child)`.
/// Lane `l`'s sum runs over the pair table in a fixed order and the lanes are added
/// in child order, so the result does not depend on threading. `mono` and `acc` are
/// scratch of length `mi.len()`.
#[inline(always)]
pub fn m2m<I: Isa, const D: usize>(
    mi: &MultiIndex<D>,
    children: &Children<'_, D>,
    c_parent: &[f64; D],
    mono: &mut [V],
    acc: &mut [V],
    parent: &mut [f64],
) {
    let n = mi.len();
    let k = children.count;
    assert!(k <= LANES && mono.len() >= n && acc.len() >= n && parent.len() >= n);
    assert!(children.coeffs[..k].iter().all(|c| c.len() >= n));
    let v: [V; D] = std::array::from_fn(|d| {
        V::from_fn(|l| {
            if l < k {
                c_parent[d] - children.centers[l][d]
            } else {
                0.0
            }
        })
    });
    monomials(mi, &v, mono);
    acc[..n].fill(V::ZERO);
    for a in 0..n {
        let m = V::from_fn(|l| if l < k { children.coeffs[l][a] } else { 0.0 });
        let pairs = &mi.pair_sum[mi.pair_off[a]..mi.pair_off[a + 1]];
        for (&s, &g) in pairs.iter().zip(mono.iter()) {
            // SAFETY: pair-table entries are `< n <= acc.len()`.
            let t = unsafe { acc.get_unchecked_mut(s as usize) };
            *t = I::mul_add(m, g, *t);
        }
    }
    for (p, a) in parent[..n].iter_mut().zip(acc.iter()) {
        *p = a.sum();
    }
}

/// L2L to all children of a cell at once, one child per lane: overwrites each child's
/// local with `L_a(child) = sum_g L_(a+g)(parent) P_g(c_child - c_parent)`.
/// `mono` is scratch of length `mi.len()`.
#[inline(always)]
pub fn l2l<I: Isa, const D: usize>(
    mi: &MultiIndex<D>,
    parent: &[f64],
    c_parent: &[f64; D],
    centers: &[[f64; D]; LANES],
    children: &mut [&mut [f64]],
    mono: &mut [V],
) {
    let n = mi.len();
    let k = children.len();
    assert!(k <= LANES && mono.len() >= n && parent.len() >= n);
    assert!(children.iter().all(|c| c.len() >= n));
    let v: [V; D] = std::array::from_fn(|d| {
        V::from_fn(|l| {
            if l < k {
                centers[l][d] - c_parent[d]
            } else {
                0.0
            }
        })
    });
    monomials(mi, &v, mono);
    for a in 0..n {
        let pairs = &mi.pair_sum[mi.pair_off[a]..mi.pair_off[a + 1]];
        let mut s = [V::ZERO; 2];
        for (g, (&idx, m)) in pairs.iter().zip(mono.iter()).enumerate() {
            // SAFETY: pair-table entries are `< n <= parent.len()`.
            let p = V::splat(unsafe { *parent.get_unchecked(idx as usize) });
            s[g & 1] = I::mul_add(p, *m, s[g & 1]);
        }
        let s = s[0] + s[1];
        for (l, c) in children.iter_mut().enumerate() {
            c[a] = s.0[l];
        }
    }
}

/// M2L: adds to `local` (about `c_target`) the local expansions of all `sources`
/// (cells with centres `centers[s]` and multipoles `mult[s * n .. (s + 1) * n]`).
/// Sources are processed `LANES` at a time, one per lane; lane sums are combined in a
/// fixed order at the end, so the result is deterministic.
#[inline(always)]
pub fn m2l<I: Isa, const D: usize, K: FarKernel<D>>(
    kernel: &K,
    mi: &MultiIndex<D>,
    c_target: &[f64; D],
    sources: &[u32],
    centers: impl Fn(usize) -> [f64; D],
    mult: &[f64],
    scratch: &mut M2lScratch,
    local: &mut [f64],
) {
    let n = mi.len();
    if sources.is_empty() {
        return;
    }
    scratch.acc.fill(V::ZERO);
    for batch in sources.chunks(LANES) {
        let cs: [[f64; D]; LANES] = std::array::from_fn(|l| {
            if l < batch.len() {
                centers(batch[l] as usize)
            } else {
                [0.0; D]
            }
        });
        // Padded lanes get a harmless displacement and zero multipole.
        let z: [V; D] = std::array::from_fn(|d| {
            V::from_fn(|l| {
                if l < batch.len() {
                    c_target[d] - cs[l][d]
                } else {
                    1.0
                }
            })
        });
        let rows: [&[f64]; LANES] = std::array::from_fn(|l| match batch.get(l) {
            Some(&s) => &mult[s as usize * n..(s as usize + 1) * n],
            None => &scratch.zero[..n],
        });
        for (m, row) in scratch.mult[..n].iter_mut().enumerate() {
            *row = V::from_fn(|l| rows[l][m]);
        }
        kernel.derivatives(mi, &z, &mut scratch.deriv);
        contract::<I, D>(mi, &scratch.deriv, &scratch.mult, &mut scratch.acc);
    }
    for (o, a) in local.iter_mut().zip(scratch.acc.iter()) {
        *o += a.sum();
    }
}

/// `acc[a] += sum_b deriv[a + b] * mult[b]` over `|a| + |b| <= p`.
///
/// This is the O(p^6) (d = 3) heart of the method, bound by loads: a plain loop needs
/// two vector loads per multiply-add. Here [`GROUP`] multi-indices `a` of equal degree
/// share each load of `mult[b]` ([`MultiIndex::groups`]), i.e. `GROUP + 1` loads per
/// `GROUP` multiply-adds, and the table indices are used unchecked (they are
/// `<= mi.len()` by construction, `deriv` has the extra zero row). Each `acc[a]` is
/// still a sum over `b` in a fixed order, so the result does not depend on threading.
#[inline(always)]
fn contract<I: Isa, const D: usize>(mi: &MultiIndex<D>, deriv: &[V], mult: &[V], acc: &mut [V]) {
    let n = mi.len();
    assert!(deriv.len() > n && mult.len() >= n && acc.len() >= n);
    for (k, &(a0, cnt, partners)) in mi.groups.iter().enumerate() {
        let idx = &mi.group_sum[mi.group_off[k]..mi.group_off[k] + GROUP * partners as usize];
        let mut s = [V::ZERO; GROUP];
        for (ix, m) in idx.chunks_exact(GROUP).zip(&mult[..partners as usize]) {
            for i in 0..GROUP {
                // SAFETY: table entries are `<= n < deriv.len()` (see `MultiIndex::new`).
                let d = unsafe { *deriv.get_unchecked(ix[i] as usize) };
                s[i] = I::mul_add(d, *m, s[i]);
            }
        }
        for (a, si) in acc[a0 as usize..].iter_mut().zip(&s[..cnt as usize]) {
            *a += *si;
        }
    }
}

/// L2P: adds the far field of the local expansion `local` (about `center`) to the
/// potential and gradient of the target block. `mono` is scratch of length `mi.len()`.
#[inline(always)]
pub fn l2p<const D: usize>(
    mi: &MultiIndex<D>,
    local: &[f64],
    center: &[f64; D],
    t: &mut TargetBlock<D>,
    mono: &mut [V],
) {
    let v: [V; D] = std::array::from_fn(|d| t.x[d] - V::splat(center[d]));
    monomials(mi, &v, mono);
    let mut phi = [V::ZERO; 2];
    for (m, (&l, p)) in local.iter().zip(mono.iter()).enumerate() {
        phi[m & 1] += V::splat(l) * *p;
    }
    t.phi += phi[0] + phi[1];
    for d in 0..D {
        let mut g = [V::ZERO; 2];
        for m in 0..mi.len_below_top() {
            g[m & 1] += V::splat(local[mi.plus1[m][d] as usize]) * mono[m];
        }
        t.grad[d] += g[0] + g[1];
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use crate::coupling::pair_kernel::Softened;
    use crate::coupling::simd_dispatch::{Isa, IsaTask, with_best_isa};

    struct Many<'a> {
        k: Softened<3>,
        mi: &'a MultiIndex<3>,
        srcs: &'a [u32],
        mult: &'a [f64],
        sc: &'a mut M2lScratch,
        local: &'a mut [f64],
        reps: usize,
    }
    impl IsaTask for Many<'_> {
        type Output = ();
        #[inline(always)]
        fn run<I: Isa>(self) {
            for r in 0..self.reps {
                let c = [r as f64 * 1e-9, 0.0, 0.0];
                m2l::<I, 3, _>(
                    &self.k,
                    self.mi,
                    &c,
                    self.srcs,
                    |s| [3.0 + s as f64, 1.0, 2.0],
                    self.mult,
                    self.sc,
                    self.local,
                );
            }
        }
    }

    /// `cargo test --release m2l_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn m2l_speed() {
        for p in [4usize, 6, 9, 13] {
            let mi = MultiIndex::<3>::new(p);
            let nt = mi.len();
            let srcs: Vec<u32> = (0..64).collect();
            let mult: Vec<f64> = (0..64 * nt).map(|i| (i % 7) as f64).collect();
            let mut sc = M2lScratch::new(nt);
            let mut local = vec![0.0; nt];
            let reps = 2000;
            let t = std::time::Instant::now();
            with_best_isa(Many {
                k: Softened::<3>::new(0.01),
                mi: &mi,
                srcs: &srcs,
                mult: &mult,
                sc: &mut sc,
                local: &mut local,
                reps,
            });
            let dt = t.elapsed().as_secs_f64();
            let per = dt / (reps * 64) as f64;
            println!(
                "p={p} nt={nt} pairs={} M2L: {:.1} ns each ({:.2} ns per pair-term)",
                mi.pair_sum.len(),
                per * 1e9,
                per * 1e9 / mi.pair_sum.len() as f64
            );
        }
    }
}
