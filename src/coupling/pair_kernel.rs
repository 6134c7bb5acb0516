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
//! so that `G_delta` is the softened Green's function of `-Laplace` stated in
//! [`crate::model::green`] (`scale` is [`crate::model::green::scale`]). The
//! unscaled forms stay here, written on [`V`] lanes, for speed; the tests of
//! [`crate::coupling::reference`] check them against [`crate::model::green::softened`].
//! `u = x_target - x_source`; `phi_i = scale * sum_j q_j k(x_i - x_j)` and
//! `grad_i = scale * sum_j q_j grad k(x_i - x_j)`.
//!
//! Targets are held in "lanes" (structure of arrays of width `LANES`) so that the
//! innermost loop over lanes vectorizes; each lane (target) accumulates its sources
//! serially in the order given, which makes results independent of threading.

use crate::util::simd_dispatch::Isa;
use std::ops::Range;

pub use crate::util::lanes::{LANES, V};

/// Positions and charges of sources in structure-of-arrays layout.
#[derive(Clone, Copy)]
pub struct Sources<'a, const D: usize> {
    /// Coordinates per axis, `pos[a][j]` = axis `a` of source `j`.
    pub pos: [&'a [f64]; D],
    /// Charge q_j of each source.
    pub q: &'a [f64],
}

/// A block of `LANES` targets with their (unscaled) accumulators.
#[derive(Clone, Copy)]
pub struct TargetBlock<const D: usize> {
    /// Target positions per axis, one target per lane.
    pub x: [V; D],
    /// Accumulated potential sum_j q_j K(x - x_j) of each target, before the kernel's scale.
    pub phi: V,
    /// Accumulated gradient of `phi` with respect to the target position,
    /// before the kernel's scale.
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

    /// `[qc k(u), qr k(u), qc h(u), qr h(u)]` with `grad k(u) = -h(u) u`, lane by lane.
    /// All kernels here are even, `k(-u) = k(u)`, with odd gradients, so one evaluation
    /// serves both particles of a pair (charges `qc` and `qr`; the mutual near field of
    /// the multipole tree). `h` is finite wherever `k` is (0 where the gradient is 0).
    /// The sign makes `h = |u|^-3 > 0` in 3D, where a negation would cost an
    /// instruction per pair; the products are formed here because the cheapest order
    /// depends on the kernel.
    fn mutual_terms<I: Isa>(&self, u: &[V; D], qc: V, qr: V) -> [V; 4];

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
    /// delta^2, the squared Plummer softening.
    pub delta2: f64,
}

impl<const D: usize> Softened<D> {
    /// The kernel of softening `delta` >= 0 (> 0 in d = 2, 3); panics otherwise.
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

    /// 3D: `k = 1/R` by `rsqrt_fast` (about 1.2 ulp), `h = k R^-2` formed from
    /// `qc k` and `qr k` (one multiplication less than `h` first); 2D:
    /// `(ln R^2, -2/R^2)` by the table-driven `ln` and `recip` (about 1 ulp);
    /// 1D: `(R, -1/R)` (`h = 0` at `R = 0`).
    #[inline(always)]
    fn mutual_terms<I: Isa>(&self, u: &[V; D], qc: V, qr: V) -> [V; 4] {
        let mut r2 = V::splat(self.delta2);
        for ud in u {
            r2 = I::mul_add(*ud, *ud, r2);
        }
        match D {
            3 => {
                let inv = I::rsqrt_fast(r2);
                let (a, b, m) = (qc * inv, qr * inv, inv * inv);
                [a, b, a * m, b * m]
            }
            2 => {
                let (k, h) = (I::ln(r2), V::splat(-2.0) * I::recip(r2));
                [qc * k, qr * k, qc * h, qr * h]
            }
            _ => {
                let r = r2.sqrt();
                let h = V::from_fn(|l| if r.0[l] > 0.0 { -1.0 / r.0[l] } else { 0.0 });
                [qc * r, qr * r, qc * h, qr * h]
            }
        }
    }

    fn scale(&self) -> f64 {
        crate::model::green::scale(D)
    }
}

/// The 1D softening correction `c(u) = sqrt(u^2 + delta^2) - |u| = delta^2 / (sqrt(u^2+delta^2) + |u|)`,
/// with `c'(u) = u / sqrt(u^2+delta^2) - sign(u) = -sign(u) c(u) / sqrt(u^2+delta^2)`
/// (written in the cancellation-free forms). Scale `-1/2` as for the 1D kernel.
#[derive(Clone, Copy, Debug)]
pub struct Correction1d {
    /// delta^2, the squared Plummer softening.
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

    /// `k = c`, `h = c / (R |u|)`, i.e. `c'(u) = -h u` as above; `h = 0` at `u = 0`,
    /// where `c'(0) = -sign(0) c / R = 0`.
    #[inline(always)]
    fn mutual_terms<I: Isa>(&self, u: &[V; 1], qc: V, qr: V) -> [V; 4] {
        let r = I::mul_add(u[0], u[0], V::splat(self.delta2)).sqrt();
        let a = u[0].abs();
        let c = V::splat(self.delta2) / (r + a);
        let h = V::from_fn(|l| {
            if a.0[l] > 0.0 {
                c.0[l] / (r.0[l] * a.0[l])
            } else {
                0.0
            }
        });
        [qc * c, qr * c, qc * h, qr * h]
    }

    fn scale(&self) -> f64 {
        crate::model::green::scale(1)
    }
}
