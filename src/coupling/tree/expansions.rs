//! Cartesian multipole and local expansions of total degree `p` (Dehnen-style
//! truncation `|a| + |b| <= p`), valid for any kernel with Taylor derivatives.
//!
//! Conventions (`P_m(v) = v^m / m!`, `D^m k` = derivatives from [`FarKernel`]):
//!
//! * multipole of a cell with center `c`: `M_m = sum_j q_j P_m(c - x_j)`
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
use crate::util::lanes::V32;
use crate::util::simd_dispatch::Isa;

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
    /// Mixed precision: scaled multipoles and derivatives in single precision (+ zero row).
    mult32: Vec<V32>,
    deriv32: Vec<V32>,
    /// Sources of one M2L with their degrees, as `(u32::MAX - degree, source)`.
    order: Vec<(u32, u32)>,
}

impl M2lScratch {
    pub fn new(nterms: usize) -> Self {
        Self {
            mult: vec![V::ZERO; nterms],
            deriv: vec![V::ZERO; nterms + 1],
            acc: vec![V::ZERO; nterms],
            zero: vec![0.0; nterms],
            mult32: vec![V32::ZERO; nterms],
            deriv32: vec![V32::ZERO; nterms + 1],
            order: Vec::new(),
        }
    }
}

/// Terms `D^(a+b) M_b` of total degree `|a| + |b| <= EXACT_DEGREE` stay in double
/// precision in the mixed-precision M2L (see [`m2l`]).
pub const EXACT_DEGREE: usize = 3;

/// Mixed-precision M2L settings (see [`m2l`]).
#[derive(Clone, Copy, Debug)]
pub struct MixedM2l {
    /// About the largest `|q_j|` (keeps the single-precision values in range).
    pub charge_scale: f64,
    /// `ln` of the relative truncation error allowed per cell pair. A pair with
    /// `rho = (r_t + r_s) / |c_t - c_s|` (`< theta` by the MAC) has a truncation error
    /// `~rho^(q+1)` of its interaction at degree `q`; it gets the lowest `q` (at least
    /// `EXACT_DEGREE + 1`, at most the order `p`) with `(q + 1) ln rho <= log_bound`.
    /// With `log_bound = (p + 1) ln theta` every pair keeps the error bound of the
    /// worst accepted pair at full degree; `-inf` gives every pair the full degree.
    pub log_bound: f64,
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
pub fn p2m<I: Isa, const D: usize>(
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
        // `I::mul` (one vector instruction for LLVM): with `q * *m` LLVM vectorizes
        // this loop across `a` with gathers and scatters (5% of a tree evaluation).
        for (a, m) in acc.iter_mut().zip(mono.iter()) {
            *a += I::mul(q, *m);
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

/// M2L: adds to `local` (about `c_target`, radius `r_target`) the local expansions of
/// all `sources` (cells with centers `centers(s)`, radii `radii(s)` and multipoles
/// `multipole(s)`, `n` numbers each). Sources are processed `LANES` at a time, one per
/// lane; lane sums are combined in a fixed order at the end, so the result is
/// deterministic.
///
/// With `mixed = Some(..)` (order `p > EXACT_DEGREE`, dimension `>= 2`) the terms
/// `D^(a+b) M_b` of total degree `|a| + |b| > EXACT_DEGREE` are summed in single
/// precision (see [`contract_mixed`]; `charge_scale > 0` should be about the largest
/// `|q_j|`: it only keeps the single-precision values away from overflow and
/// underflow), and each source pair is truncated at its own degree `q <= p`
/// ([`MixedM2l::log_bound`]): the contraction costs `C(q + 2D, 2D)` instead of
/// `C(p + 2D, 2D)` multiply-adds, 3.4x less at `q = 10` than at `p = 13` in 3D.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn m2l<'m, I: Isa, const D: usize, K: FarKernel<D>>(
    kernel: &K,
    mi: &MultiIndex<D>,
    c_target: &[f64; D],
    r_target: f64,
    sources: &[u32],
    centers: impl Fn(usize) -> [f64; D],
    radii: impl Fn(usize) -> f64,
    multipole: impl Fn(usize) -> &'m [f64],
    mixed: Option<MixedM2l>,
    scratch: &mut M2lScratch,
    local: &mut [f64],
) {
    let n = mi.len();
    if sources.is_empty() {
        return;
    }
    let mixed = mixed.filter(|_| D >= 2 && mi.order > EXACT_DEGREE);
    scratch.acc.fill(V::ZERO);
    let zero = std::mem::take(&mut scratch.zero);
    // Mixed precision: each source gets the lowest degree that meets the pair bound
    // (see [`MixedM2l::log_bound`]); sources sorted by degree, highest first, so a
    // batch of `LANES` shares nearly one degree (the first lane's). The key
    // (degree, index) is unique, so the order and the sums are deterministic.
    let mut order = std::mem::take(&mut scratch.order);
    order.clear();
    match mixed {
        Some(mx) => order.extend(sources.iter().map(|&s| {
            let (c, r) = (centers(s as usize), radii(s as usize));
            let d2: f64 = (0..D).map(|d| (c_target[d] - c[d]).powi(2)).sum();
            let rho_ln = ((r_target + r) / d2.sqrt()).ln();
            let q = if rho_ln < 0.0 {
                (mx.log_bound / rho_ln).ceil() - 1.0
            } else {
                f64::INFINITY
            };
            let q = q.clamp((EXACT_DEGREE + 1) as f64, mi.order as f64) as u32;
            (u32::MAX - q, s)
        })),
        None => order.extend(sources.iter().map(|&s| (0, s))),
    }
    if mixed.is_some() {
        order.sort_unstable();
    }
    for batch in order.chunks(LANES) {
        let degree = (u32::MAX - batch[0].0).min(mi.order as u32) as usize;
        let batch: [u32; LANES] = std::array::from_fn(|l| batch.get(l).map_or(u32::MAX, |b| b.1));
        let batch = &batch[..batch.iter().take_while(|&&s| s != u32::MAX).count()];
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
            Some(&s) => multipole(s as usize),
            None => &zero[..n],
        });
        match mixed {
            None => {
                kernel.derivatives::<I>(mi, &z, &mut scratch.deriv);
                for (m, row) in scratch.mult[..n].iter_mut().enumerate() {
                    *row = V::from_fn(|l| rows[l][m]);
                }
                contract::<I, D>(mi, &scratch.deriv, &scratch.mult, &mut scratch.acc);
            }
            Some(mx) => {
                kernel.taylor_coefficients_to(mi, &z, degree, &mut scratch.deriv);
                contract_mixed::<I, D>(mi, &z, &rows, mx.charge_scale, degree, scratch);
            }
        }
    }
    scratch.order = order;
    scratch.zero = zero;
    for (o, a) in local.iter_mut().zip(scratch.acc.iter()) {
        *o += a.sum();
    }
}

/// Mixed-precision M2L contraction of one batch (Taylor coefficients
/// `D^k k(z) / k!` in `scratch.deriv`,
/// multipoles of the lanes in `rows`), added to `scratch.acc`.
///
/// The terms of total degree `|a| + |b| <= EXACT_DEGREE` (84 of 27 132 at `p = 13`,
/// d = 3) are summed in double precision. All others are summed in single precision
/// on scaled values: with `r = |z|` per lane and `Q = charge_scale`,
/// `D~_k = D^k k(z) r^(|k| + D - 2)` and `M~_b = M_b / (r^|b| Q)` are O(1)-bounded
/// (`|D~_k| <~ |k|!`, `|M~_b| <~ n_cell theta^|b| / b!` since the MAC gives
/// `r_s < theta r`), so nothing overflows or underflows whatever the length scale,
/// and `sum_b D~_(a+b) M~_b = L_a r^(|a| + D - 2) / Q` is unscaled in double
/// precision. A single-precision term carries a relative rounding error of
/// `~6e-8` and is at most `~theta^(EXACT_DEGREE + 1)` (0.04 at `theta = 0.45`) of the
/// pair's interaction, so the rounding stays far below the truncation error at
/// accuracies down to `1e-7`. Each `acc[a]` is a sum in a fixed order (deterministic).
#[inline(always)]
fn contract_mixed<I: Isa, const D: usize>(
    mi: &MultiIndex<D>,
    z: &[V; D],
    rows: &[&[f64]; LANES],
    charge_scale: f64,
    degree: usize,
    sc: &mut M2lScratch,
) {
    let n_all = mi.len();
    let p = degree;
    assert!(p > EXACT_DEGREE && p <= mi.order && rows.iter().all(|r| r.len() >= n_all));
    // Only the terms of degree `<= p` are formed: the prefix `0..count[p]`.
    let n = mi.count[p];
    assert!(sc.deriv.len() > n && sc.deriv32.len() > n && sc.mult32.len() >= n);
    let mut r2 = z[0] * z[0];
    for zd in &z[1..] {
        r2 = I::mul_add(*zd, *zd, r2);
    }
    let r = r2.sqrt();
    let inv_r = V::splat(1.0) / r;
    // up[k] = r^(k + D - 2), down[k] = r^-k / Q, unscale[k] = Q r^-(k + D - 2).
    let mut up = [V::ZERO; 32];
    let mut down = [V::ZERO; 32];
    let mut unscale = [V::ZERO; 32];
    assert!(p < up.len());
    let c = if D == 3 { r } else { V::splat(1.0) };
    let inv_c = if D == 3 { inv_r } else { V::splat(1.0) };
    up[0] = c;
    down[0] = V::splat(1.0 / charge_scale);
    unscale[0] = V::splat(charge_scale) * inv_c;
    for k in 1..=p {
        up[k] = up[k - 1] * r;
        down[k] = down[k - 1] * inv_r;
        unscale[k] = unscale[k - 1] * inv_r;
    }
    let deg = &mi.degree[..n];
    let lo = mi.count[EXACT_DEGREE];
    // Everything cut to length `n` so that the loop has no bounds checks.
    let rows: [&[f64]; LANES] = std::array::from_fn(|l| &rows[l][..n]);
    let fact = &mi.factorial[..n];
    let (deriv, mult) = (&mut sc.deriv[..n], &mut sc.mult[..n]);
    let (deriv32, mult32) = (&mut sc.deriv32[..n], &mut sc.mult32[..n]);
    for m in 0..n {
        let v = V::from_fn(|l| rows[l][m]);
        let dm = deg[m] as usize % up.len();
        let d = I::mul(deriv[m], V::splat(fact[m]));
        if m < lo {
            mult[m] = v;
            deriv[m] = d;
        }
        mult32[m] = V32::from_v(I::mul(v, down[dm]));
        deriv32[m] = V32::from_v(I::mul(d, up[dm]));
    }
    sc.deriv32[n_all] = V32::ZERO;
    // Double precision: |a| + |b| <= EXACT_DEGREE.
    for (a, (acc, &da)) in sc.acc[..lo].iter_mut().zip(deg).enumerate() {
        let pairs = &mi.pair_sum[mi.pair_off[a]..];
        let nb = mi.count[EXACT_DEGREE - da as usize];
        let mut s = V::ZERO;
        for (&k, m) in pairs[..nb].iter().zip(&sc.mult[..nb]) {
            s = I::mul_add(sc.deriv[k as usize], *m, s);
        }
        *acc += s;
    }
    // Single precision: the rest, `GROUP` local terms sharing each multipole load
    // as in [`contract`].
    let (deriv, mult) = (&sc.deriv32[..=n_all], &sc.mult32[..n]);
    for (k, &(a0, cnt, _)) in mi.groups.iter().enumerate() {
        let da = mi.degree[a0 as usize] as usize;
        // Groups are in increasing degree; partners `b` in increasing degree, so
        // degree `p` keeps the groups with `|a| <= p` and their first `count[p - |a|]`
        // partners (the table indices `a + b` then stay below `count[p]`, all formed).
        if da > p {
            break;
        }
        let partners = mi.count[p - da];
        let b0 = if da <= EXACT_DEGREE {
            mi.count[EXACT_DEGREE - da]
        } else {
            0
        };
        let off = mi.group_off[k] / 2;
        let words = &mi.group_bytes32[off + b0 * GROUP / 2..off + partners * GROUP / 2];
        let base = deriv.as_ptr().cast::<u8>();
        // Four named accumulators (not an array): LLVM then keeps them in registers.
        const { assert!(GROUP == 4) };
        let [mut s0, mut s1, mut s2, mut s3] = [V32::ZERO; GROUP];
        for (w, &m) in words.chunks_exact(2).zip(&mult[b0..partners]) {
            // SAFETY: the byte offsets are those of entries `<= n_all < deriv.len()` of
            // `deriv` (see `MultiIndex::new`), which is aligned for `V32`.
            let d = |o: u64| unsafe { *base.add(o as usize).cast::<V32>() };
            let (w0, w1) = (w[0], w[1]);
            s0 = I::mul_add32(d(w0 & 0xffff_ffff), m, s0);
            s1 = I::mul_add32(d(w0 >> 32), m, s1);
            s2 = I::mul_add32(d(w1 & 0xffff_ffff), m, s2);
            s3 = I::mul_add32(d(w1 >> 32), m, s3);
        }
        let s = [s0, s1, s2, s3];
        let u = unscale[da];
        for (a, si) in sc.acc[a0 as usize..].iter_mut().zip(&s[..cnt as usize]) {
            *a = I::widen_mul_add(*si, u, *a);
        }
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
    use crate::util::simd_dispatch::{Isa, IsaTask, with_best_isa};

    struct Many<'a> {
        k: Softened<3>,
        mi: &'a MultiIndex<3>,
        srcs: &'a [u32],
        mult: &'a [f64],
        sc: &'a mut M2lScratch,
        local: &'a mut [f64],
        mixed: Option<MixedM2l>,
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
                    0.5,
                    self.srcs,
                    |s| [3.0 + s as f64, 1.0, 2.0],
                    |_| 0.5,
                    |s| &self.mult[s * self.mi.len()..(s + 1) * self.mi.len()],
                    self.mixed,
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
        for (p, mixed) in [
            (4usize, None),
            (6, None),
            (9, None),
            (13, None),
            (
                13,
                Some(MixedM2l {
                    charge_scale: 1.0,
                    log_bound: f64::NEG_INFINITY,
                }),
            ),
        ] {
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
                mixed,
                reps,
            });
            let dt = t.elapsed().as_secs_f64();
            let per = dt / (reps * 64) as f64;
            println!(
                "p={p} mixed={} nt={nt} pairs={} M2L: {:.1} ns each ({:.2} ns per pair-term)",
                mixed.is_some(),
                mi.pair_sum.len(),
                per * 1e9,
                per * 1e9 / mi.pair_sum.len() as f64
            );
        }
    }
}
