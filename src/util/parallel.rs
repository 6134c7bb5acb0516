//! Deterministic parallel reductions, and where parallel work is started.
//!
//! rayon's `sum` adds in an order that depends on work stealing, so results
//! would change in the last bits with the thread count. Here a range is cut
//! into fixed chunks, each chunk is summed serially, and the chunk sums are
//! added in order: the same bits on 1 thread or 64.
//!
//! [`on_pool`]: a long computation should be started on one of rayon's
//! threads. A `join` or parallel iterator called from any other thread (the
//! process's main thread, a Python caller's) hands its job to the pool and
//! blocks on a mutex and condition variable until it is done: two context
//! switches per call. A small 1D step makes hundreds of such calls per
//! evaluation, and they were a third of a 4 000-particle run's time.

use rayon::prelude::*;

/// Chunk length of every deterministic reduction. Fixed, never derived from
/// the thread count.
pub const CHUNK: usize = 1024;

/// Runs `f` on a thread of rayon's global pool and waits for it, so that the
/// parallel calls inside it are cheap (module docs); in place if already
/// there. Not for code that calls MPI, which must stay on the main thread
/// (`crate::distributed`).
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// sum_{i in 0..n} f(i), reduced in a fixed order.
pub fn sum_indexed<F>(n: usize, f: F) -> f64
where
    F: Fn(usize) -> f64 + Sync,
{
    sum_chunks(n, |r| r.map(&f).sum())
}

/// Sum of `f(chunk)` over fixed chunks of `0..n`, added in chunk order.
pub fn sum_chunks<F>(n: usize, f: F) -> f64
where
    F: Fn(std::ops::Range<usize>) -> f64 + Sync,
{
    let chunks = n.div_ceil(CHUNK);
    if chunks <= 1 {
        return f(0..n);
    }
    let parts: Vec<f64> = (0..chunks)
        .into_par_iter()
        .map(|c| f(c * CHUNK..((c + 1) * CHUNK).min(n)))
        .collect();
    parts.iter().sum()
}

/// The smallest axis-aligned box holding every point: (lower, upper) corners
/// (infinite and reversed for no points). Parallel; min and max are exact, so
/// the result is the same whatever the thread count.
pub fn bounding_box<const D: usize>(x: &[[f64; D]]) -> ([f64; D], [f64; D]) {
    let empty = || ([f64::INFINITY; D], [f64::NEG_INFINITY; D]);
    x.par_iter()
        .fold(empty, |(mut lo, mut hi), p| {
            for a in 0..D {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
            (lo, hi)
        })
        .reduce(empty, |(a, b), (c, e)| {
            (
                std::array::from_fn(|d| a[d].min(c[d])),
                std::array::from_fn(|d| b[d].max(e[d])),
            )
        })
}

/// Runs `f` in a fresh rayon pool of `threads` threads (for the tests that
/// results do not depend on the thread count).
#[cfg(test)]
pub(crate) fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// The particles of `wanted` (ascending indices) within `range`: the
/// wanted particles of one chunk of a gradient
/// ([`crate::energy::FreeEnergy::want`]).
pub(crate) fn wanted_in(wanted: &[u32], range: std::ops::Range<usize>) -> &[u32] {
    let from = wanted.partition_point(|&i| (i as usize) < range.start);
    let to = wanted.partition_point(|&i| (i as usize) < range.end);
    &wanted[from..to]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bits_on_one_and_two_threads() {
        let f = |i: usize| ((i as f64) * 0.37).sin() * 1e-3 + 1.0 / (1.0 + i as f64);
        let n = 100_003;
        let one = on_threads(1, || sum_indexed(n, f));
        let two = on_threads(2, || sum_indexed(n, f));
        assert_eq!(one.to_bits(), two.to_bits());
    }
}
