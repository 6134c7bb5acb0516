//! Reference O(N^2) direct sums (also the near-field kernel of the tree code).
//!
//! `phi_i = sum_{j != i} q_j G_delta(x_i - x_j)` and
//! `grad_i = sum_{j != i} q_j (grad G_delta)(x_i - x_j)`, with `G_delta` the softened
//! Green's function of `-Laplace` (see [`crate::coupling::pair_kernel`]):
//! `-sqrt(x^2+delta^2)/2` (d = 1), `-ln(|x|^2+delta^2)/(4 pi)` (d = 2),
//! `1/(4 pi sqrt(|x|^2+delta^2))` (d = 3).
//!
//! Parallel over targets with rayon; each target sums its sources serially in
//! index order `j = 0, 1, ..`, so the result does not depend on the number of threads.
//! Targets are processed in blocks of [`LANES`] so the loop vectorizes over targets.

use crate::coupling::pair_kernel::{LANES, PairKernel, Softened, Sources, TargetBlock};
use crate::util::simd_dispatch::{Isa, IsaTask, with_best_isa};
use rayon::prelude::*;

/// Direct evaluation of `phi` and `grad` for `D = 1, 2, 3` (see module docs).
/// Panics on length mismatch, on `softening < 0`, and on `softening == 0` for `D > 1`.
pub fn direct_evaluate<const D: usize>(
    x: &[[f64; D]],
    q: &[f64],
    softening: f64,
    phi: &mut [f64],
    grad: &mut [[f64; D]],
) {
    let n = x.len();
    assert!(
        q.len() == n && phi.len() == n && grad.len() == n,
        "length mismatch"
    );
    let kernel = Softened::<D>::new(softening);
    let pos: [Vec<f64>; D] = std::array::from_fn(|d| x.iter().map(|p| p[d]).collect());
    let src = Sources {
        pos: std::array::from_fn(|d| &pos[d][..]),
        q,
    };
    phi.par_chunks_mut(CHUNK)
        .zip(grad.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(c, (phi, grad))| {
            with_best_isa(DirectChunk {
                kernel,
                src,
                first: c * CHUNK,
                phi,
                grad,
            })
        });
}

/// Targets per parallel work item (a multiple of `LANES`).
const CHUNK: usize = 16 * LANES;

/// All sources acting on the targets `first..first + phi.len()`.
struct DirectChunk<'a, const D: usize, K> {
    kernel: K,
    src: Sources<'a, D>,
    first: usize,
    phi: &'a mut [f64],
    grad: &'a mut [[f64; D]],
}

impl<const D: usize, K: PairKernel<D>> IsaTask for DirectChunk<'_, D, K> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let n = self.src.q.len();
        let scale = self.kernel.scale();
        for (b, (phi_b, grad_b)) in self
            .phi
            .chunks_mut(LANES)
            .zip(self.grad.chunks_mut(LANES))
            .enumerate()
        {
            let first = self.first + b * LANES;
            let mut t = TargetBlock::load(&self.src, first, phi_b.len());
            self.kernel
                .accumulate_skip_self::<I>(&mut t, &self.src, 0..n, first);
            for l in 0..phi_b.len() {
                phi_b[l] = scale * t.phi.0[l];
                grad_b[l] = std::array::from_fn(|d| scale * t.grad[d].0[l]);
            }
        }
    }
}
