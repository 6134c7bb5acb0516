//! Reference O(N^2) direct sums (also the near-field kernel of the tree code).
//!
//! `phi_i = sum_{j != i} q_j G_delta(x_i - x_j)` and
//! `grad_i = sum_{j != i} q_j (grad G_delta)(x_i - x_j)`, with `G_delta` the softened
//! Green's function of `-Laplace` of [`crate::model::green`], evaluated by the
//! vectorized kernel of [`crate::coupling::pair_kernel`] (checked against
//! [`crate::model::green::softened`] below).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::green::softened;

    /// The vectorized kernel (`pair_kernel::Softened`, scaled by
    /// `green::scale`) is the G_delta of `model::green`.
    #[test]
    fn direct_evaluate_is_the_sum_of_green_softened() {
        fn check<const D: usize>(delta: f64) {
            let n = 37;
            let x: Vec<[f64; D]> = (0..n)
                .map(|i| std::array::from_fn(|a| ((i * (2 * a + 3) + a) % 11) as f64 * 0.13 - 0.6))
                .collect();
            let q: Vec<f64> = (0..n)
                .map(|i| if i % 3 == 0 { -0.7 } else { 1.1 })
                .collect();
            let mut phi = vec![0.0; n];
            let mut grad = vec![[0.0; D]; n];
            direct_evaluate(&x, &q, delta, &mut phi, &mut grad);
            for i in 0..n {
                let (mut p, mut g, mut scale) = (0.0, [0.0; D], 0.0f64);
                for j in (0..n).filter(|&j| j != i) {
                    let u: [f64; D] = std::array::from_fn(|a| x[i][a] - x[j][a]);
                    let (v, slope) = softened::<D>(u.iter().map(|c| c * c).sum(), delta * delta);
                    p += q[j] * v;
                    scale = scale.max((q[j] * v).abs());
                    for a in 0..D {
                        g[a] += q[j] * slope * u[a];
                    }
                }
                let tol = 1e-12 * n as f64 * scale.max(1.0);
                assert!((phi[i] - p).abs() <= tol, "D={D} i={i}: {} {p}", phi[i]);
                for a in 0..D {
                    assert!(
                        (grad[i][a] - g[a]).abs() <= tol / delta.max(0.05),
                        "D={D} i={i} axis {a}"
                    );
                }
            }
        }
        check::<1>(0.0);
        check::<1>(0.05);
        check::<2>(0.05);
        check::<3>(0.05);
    }
}
