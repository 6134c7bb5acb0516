//! Runtime selection of the widest available x86-64 vector instruction set.
//!
//! The hot loops are written as plain Rust over fixed-size lane arrays ([`V`]) inside
//! [`IsaTask::run`] implementations marked `#[inline(always)]`, generic over an [`Isa`]
//! that supplies the few operations plain Rust cannot express (approximate reciprocal
//! square root, fused multiply-add). [`with_best_isa`] inlines that body into a function
//! compiled for AVX-512 (or AVX2 + FMA) and selects it at run time, so the crate is fast
//! without `-C target-cpu=native` and correct on any CPU. The choice depends only on
//! the CPU, never on the number of threads, so results stay bit-identical across
//! thread counts (they may differ in the last bits between CPUs).

use crate::coupling::lanes::{LANES, V};

/// Instruction-set specific primitives.
pub trait Isa: Copy {
    /// `1 / sqrt(x)` for positive normal lanes, to a few ulp.
    fn rsqrt(x: V) -> V;
    /// `a * b + c` (fused where the instruction set has FMA).
    fn mul_add(a: V, b: V, c: V) -> V;
}

/// Plain IEEE operations (any CPU).
#[derive(Clone, Copy)]
pub struct Portable;

impl Isa for Portable {
    #[inline(always)]
    fn rsqrt(x: V) -> V {
        V::splat(1.0) / x.sqrt()
    }
    #[inline(always)]
    fn mul_add(a: V, b: V, c: V) -> V {
        a * b + c
    }
}

/// AVX2 + FMA: fused multiply-add, IEEE square root.
#[derive(Clone, Copy)]
pub struct Avx2;

impl Isa for Avx2 {
    #[inline(always)]
    fn rsqrt(x: V) -> V {
        V::splat(1.0) / x.sqrt()
    }
    #[inline(always)]
    fn mul_add(a: V, b: V, c: V) -> V {
        let mut r = c;
        for l in 0..LANES {
            r.0[l] = a.0[l].mul_add(b.0[l], c.0[l]);
        }
        r
    }
}

/// AVX-512: `vrsqrt14pd` (relative error < 2^-14) refined by two Newton steps
/// `y <- y (3/2 - x y^2 / 2)` (error ~ 2^-56 plus rounding), and FMA.
#[derive(Clone, Copy)]
pub struct Avx512;

impl Isa for Avx512 {
    #[inline(always)]
    fn rsqrt(x: V) -> V {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `Avx512` is only used inside `run_avx512`, after feature detection.
            let y0 = unsafe { rsqrt14(x) };
            let hx = V::splat(0.5) * x;
            let three_half = V::splat(1.5);
            let y1 = y0 * (three_half - hx * y0 * y0);
            y1 * (three_half - hx * y1 * y1)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Portable::rsqrt(x)
        }
    }
    #[inline(always)]
    fn mul_add(a: V, b: V, c: V) -> V {
        Avx2::mul_add(a, b, c)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn rsqrt14(x: V) -> V {
    use std::arch::x86_64::{_mm512_load_pd, _mm512_rsqrt14_pd, _mm512_store_pd};
    let mut out = V::ZERO;
    // SAFETY: `V` is 64-byte aligned and holds exactly 8 f64.
    unsafe {
        let y = _mm512_rsqrt14_pd(_mm512_load_pd(x.0.as_ptr()));
        _mm512_store_pd(out.0.as_mut_ptr(), y);
    }
    out
}

/// A unit of work whose `run` must be `#[inline(always)]` (so it is compiled for the
/// instruction set of the dispatching wrapper).
pub trait IsaTask {
    type Output;
    fn run<I: Isa>(self) -> Self::Output;
}

/// Runs `task`, compiled for the best instruction set this CPU supports.
#[inline(always)]
pub fn with_best_isa<T: IsaTask>(task: T) -> T::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512dq") {
            // SAFETY: the required CPU features were detected just above.
            return unsafe { run_avx512(task) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the required CPU features were detected just above.
            return unsafe { run_avx2(task) };
        }
    }
    task.run::<Portable>()
}

/// Runs `task` with portable operations only (for tests of the fallback path).
pub fn with_portable_isa<T: IsaTask>(task: T) -> T::Output {
    task.run::<Portable>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn run_avx512<T: IsaTask>(task: T) -> T::Output {
    task.run::<Avx512>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<T: IsaTask>(task: T) -> T::Output {
    task.run::<Avx2>()
}
