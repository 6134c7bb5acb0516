//! Pairwise (near-field) kernels, evaluated for a block of `LANES` targets at once.
//!
//! All kernels are stored *unscaled*: the Green's function is `G = scale * k`, with
//!
//! | D | `k(u)`                      | `grad k(u)`            | `scale`     |
//! |---|-----------------------------|------------------------|-------------|
//! | 1 | `sqrt(u^2 + delta^2)`        | `u / sqrt(u^2+delta^2)` (`sign(u)` if `delta = 0`, `sign(0) = 0`) | `-1/2` |
//! | 2 | `ln(|u|^2 + delta^2)`        | `2 u / (|u|^2+delta^2)` | `-1/(4 pi)` |
//! | 3 | `(|u|^2 + delta^2)^(-1/2)`   | `-u (|u|^2+delta^2)^(-3/2)` | `1/(4 pi)` |
//!
//! so that `G_delta` is the softened Green's function of `-Laplace` of the crate docs.
//! `u = x_target - x_source`; `phi_i = scale * sum_j q_j k(x_i - x_j)` and
//! `grad_i = scale * sum_j q_j grad k(x_i - x_j)`.
//!
//! Targets are held in "lanes" (structure of arrays of width `LANES`) so that the
//! innermost loop over lanes vectorizes; each lane (target) accumulates its sources
//! serially in the order given, which makes results independent of threading.

use crate::coupling::simd_dispatch::Isa;
use std::ops::Range;

pub use crate::coupling::lanes::{LANES, V};

/// Positions and charges of sources in structure-of-arrays layout.
#[derive(Clone, Copy)]
pub struct Sources<'a, const D: usize> {
    pub pos: [&'a [f64]; D],
    pub q: &'a [f64],
}

/// A block of `LANES` targets with their (unscaled) accumulators.
#[derive(Clone, Copy)]
pub struct TargetBlock<const D: usize> {
    pub x: [V; D],
    pub phi: V,
    pub grad: [V; D],
}

impl<const D: usize> TargetBlock<D> {
    /// Loads targets `first..first+n` (n <= LANES) of `src`; missing lanes repeat the last target.
    #[inline]
    pub fn load(src: &Sources<'_, D>, first: usize, n: usize) -> Self {
        let x = std::array::from_fn(|d| V::from_fn(|l| src.pos[d][first + l.min(n - 1)]));
        Self {
            x,
            phi: V::ZERO,
            grad: [V::ZERO; D],
        }
    }
}

/// A near-field kernel `k` (see module docs).
pub trait PairKernel<const D: usize>: Sync + Send + Copy {
    /// Adds `q_j k(x_l - x_j)` and its gradient to lane `l`, with per-lane charges `q`.
    fn update<I: Isa>(&self, t: &mut TargetBlock<D>, xs: [f64; D], q: V);

    /// The factor `scale` with `G = scale * k`.
    fn scale(&self) -> f64;

    /// Accumulates all sources `range` into every lane.
    #[inline(always)]
    fn accumulate<I: Isa>(
        &self,
        t: &mut TargetBlock<D>,
        src: &Sources<'_, D>,
        range: Range<usize>,
    ) {
        // Fresh local accumulators (added to `t` at the end) keep LLVM from
        // scalarizing the loop-carried lanes.
        let mut acc = TargetBlock {
            x: t.x,
            phi: V::ZERO,
            grad: [V::ZERO; D],
        };
        for j in range {
            let xs = std::array::from_fn(|d| src.pos[d][j]);
            self.update::<I>(&mut acc, xs, V::splat(src.q[j]));
        }
        t.phi += acc.phi;
        for d in 0..D {
            t.grad[d] += acc.grad[d];
        }
    }

    /// Like [`accumulate`](Self::accumulate) but lane `l` skips source `first_target + l`
    /// (the self-interaction `j = i` is excluded from the sums).
    #[inline(always)]
    fn accumulate_skip_self<I: Isa>(
        &self,
        t: &mut TargetBlock<D>,
        src: &Sources<'_, D>,
        range: Range<usize>,
        first_target: usize,
    ) {
        let lo = first_target.clamp(range.start, range.end);
        let hi = (first_target + LANES).clamp(range.start, range.end);
        self.accumulate::<I>(t, src, range.start..lo);
        for j in lo..hi {
            let xs = std::array::from_fn(|d| src.pos[d][j]);
            let q = V::from_fn(|l| if first_target + l == j { 0.0 } else { src.q[j] });
            self.update::<I>(t, xs, q);
        }
        self.accumulate::<I>(t, src, hi..range.end);
    }
}

/// The softened Newtonian kernel of dimension `D` (1, 2 or 3); see module docs.
#[derive(Clone, Copy, Debug)]
pub struct Softened<const D: usize> {
    pub delta2: f64,
}

impl<const D: usize> Softened<D> {
    pub fn new(delta: f64) -> Self {
        assert!(D >= 1 && D <= 3, "dimension must be 1, 2 or 3");
        assert!(
            delta >= 0.0 && delta.is_finite(),
            "softening must be finite and >= 0"
        );
        if D > 1 {
            assert!(
                delta * delta >= f64::MIN_POSITIVE,
                "softening must be > 0 (and delta^2 a normal number) in d = 2, 3"
            );
        }
        Self {
            delta2: delta * delta,
        }
    }
}

impl<const D: usize> PairKernel<D> for Softened<D> {
    #[inline(always)]
    fn update<I: Isa>(&self, t: &mut TargetBlock<D>, xs: [f64; D], q: V) {
        let u: [V; D] = std::array::from_fn(|d| t.x[d] - V::splat(xs[d]));
        let mut r2 = V::splat(self.delta2);
        for ud in &u {
            r2 += *ud * *ud;
        }
        match D {
            3 => {
                let inv = I::rsqrt(r2);
                let qi = q * inv;
                t.phi += qi;
                let f = qi * inv * inv;
                // Component-wise (not `for d`) so LLVM keeps each accumulator in one register.
                t.grad[0] = I::mul_add(-f, u[0], t.grad[0]);
                t.grad[1] = I::mul_add(-f, u[1], t.grad[1]);
                t.grad[2] = I::mul_add(-f, u[2], t.grad[2]);
            }
            2 => {
                t.phi += q * r2.ln();
                let f = V::splat(2.0) * q / r2;
                for d in 0..D {
                    t.grad[d] += f * u[d];
                }
            }
            _ => {
                let r = r2.sqrt();
                t.phi += q * r;
                let g = V::from_fn(|l| {
                    if r.0[l] > 0.0 {
                        u[0].0[l] / r.0[l]
                    } else {
                        0.0
                    }
                });
                t.grad[0] += q * g;
            }
        }
    }

    fn scale(&self) -> f64 {
        match D {
            3 => 1.0 / (4.0 * std::f64::consts::PI),
            2 => -1.0 / (4.0 * std::f64::consts::PI),
            _ => -0.5,
        }
    }
}

/// The 1D softening correction `c(u) = sqrt(u^2 + delta^2) - |u| = delta^2 / (sqrt(u^2+delta^2) + |u|)`,
/// with `c'(u) = u / sqrt(u^2+delta^2) - sign(u) = -sign(u) c(u) / sqrt(u^2+delta^2)`
/// (written in the cancellation-free forms). Scale `-1/2` as for the 1D kernel.
#[derive(Clone, Copy, Debug)]
pub struct Correction1d {
    pub delta2: f64,
}

impl PairKernel<1> for Correction1d {
    #[inline(always)]
    fn update<I: Isa>(&self, t: &mut TargetBlock<1>, xs: [f64; 1], q: V) {
        let u = t.x[0] - V::splat(xs[0]);
        let r = (u * u + V::splat(self.delta2)).sqrt();
        let c = V::splat(self.delta2) / (r + u.abs());
        t.phi += q * c;
        t.grad[0] -= q * u.signum0() * c / r;
    }

    fn scale(&self) -> f64 {
        -0.5
    }
}

impl<const D: usize> Softened<D> {
    /// The sums of [`PairKernel::accumulate`] (and, with `skip = Some(first_target)`,
    /// of [`PairKernel::accumulate_skip_self`]) for the d = 2, 3 kernels (table in the
    /// module docs), written for the multipole tree's leaf pairs: source coordinates
    /// are read from pre-cut slices (no bounds checks in the loop), and the target
    /// positions and the sums pass through memory (`black_box`) at entry and exit.
    /// Without that, LLVM matches the loop's lanes to the way the caller builds and
    /// stores them lane by lane and splits every vector into shuffled 2- and 4-lane
    /// pieces; with it each lane operation is one AVX-512 instruction (3x per pair,
    /// measured). The self pair is removed by a zero charge in its lane, so lane `l`
    /// still adds its sources in index order.
    #[inline(always)]
    pub fn accumulate_leaf<I: Isa>(
        &self,
        t: &mut TargetBlock<D>,
        src: &Sources<'_, D>,
        range: Range<usize>,
        skip: Option<usize>,
    ) {
        let start = range.start;
        let n = range.len();
        let pos: [&[f64]; D] = std::array::from_fn(|d| &src.pos[d][range.clone()]);
        let q = &src.q[range];
        let lane = V::from_fn(|l| l as f64);
        let first = skip.map_or(-1.0e300, |f| f as f64 - start as f64);
        let delta2 = V::splat(self.delta2);
        let x = std::hint::black_box(t.x);
        let mut phi = V::ZERO;
        // 3D: minus the gradient sums (negated once at the end, exactly).
        let mut g = [V::ZERO; D];
        for j in 0..n {
            let mut qj = V::splat(q[j]);
            if skip.is_some() {
                let k = V::splat(j as f64 - first);
                qj = V::from_fn(|l| if k.0[l] == lane.0[l] { 0.0 } else { qj.0[l] });
            }
            let u: [V; D] = std::array::from_fn(|d| x[d] - V::splat(pos[d][j]));
            let mut r2 = delta2;
            for ud in &u {
                r2 = I::mul_add(*ud, *ud, r2);
            }
            if D == 3 {
                let inv = I::rsqrt_fast(r2);
                let qi = qj * inv;
                phi += qi;
                let f = qi * inv * inv;
                for d in 0..D {
                    g[d] = I::mul_add(f, u[d], g[d]);
                }
            } else {
                phi = I::mul_add(qj, r2.ln(), phi);
                let f = V::splat(2.0) * qj / r2;
                for d in 0..D {
                    g[d] = I::mul_add(f, u[d], g[d]);
                }
            }
        }
        let (phi, g) = std::hint::black_box((phi, g));
        t.phi += phi;
        for d in 0..D {
            if D == 3 {
                t.grad[d] -= g[d];
            } else {
                t.grad[d] += g[d];
            }
        }
    }
}
