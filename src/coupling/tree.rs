//! Fast multipole method for the softened Newtonian kernel in 2D and 3D.
//!
//! Method: Cartesian Taylor-expansion FMM with dual tree traversal (Dehnen 2002, 2014),
//! applied to the *softened* kernel itself:
//! `G_delta(x) = -ln(|x|^2+delta^2)/(4 pi)` (d = 2), `1/(4 pi sqrt(|x|^2+delta^2))` (d = 3).
//! Multipoles and locals are Cartesian Taylor polynomials of total degree `p`; the
//! derivatives `D^m G_delta` needed by M2L are computed exactly for the softened kernel
//! by the Lindsay–Krasny type recurrence of [`taylor`] (softening enters through
//! `R^2 = |x|^2 + delta^2` only). So near pairs (direct, softened) and far pairs
//! (Taylor expansion of the softened kernel) approximate the same function; no
//! harmonic-expansion assumption is made. Cartesian Taylor expansions were chosen over
//! kernel-independent interpolation (BLTC / bbFMM) because for a radial kernel they
//! need only `C(p+D, D)` coefficients per cell and an M2L of `C(p+2D, 2D)` multiply-adds,
//! and because softening only improves their convergence (the Taylor series of
//! `f(|z|^2+delta^2)` along any line converges within radius `sqrt(|z|^2+delta^2)`).
//!
//! The gradient is the exact gradient of the approximation: near field by the exact
//! kernel gradient, far field by differentiating the local Taylor polynomial.
//!
//! ## Accuracy rule
//! With the acceptance criterion `r_t + r_s < theta * |c_t - c_s|` the truncation error
//! of one cell pair is `O(theta^(p+1))` relative to that pair's interaction. We fix
//! `theta` and the degree from the number of digits `d = log10(1/eps)` of the requested
//! relative accuracy `eps` (see [`params_for_accuracy`]; constants calibrated on the
//! worst clouds of `tests/numerics/tree_accuracy.rs`, the gradient being the binding constraint):
//!
//! * `theta = 0.5 - (d - 3) / 60` (0.5, 0.45, 0.4 for 1e-3, 1e-6, 1e-9),
//! * `p = ceil(2 d + 1)` (7, 13, 19), the same in 2D and 3D.
//!
//! These are not over-conservative: on the test clouds at N = 2e4 the worst errors
//! (the gradient on the dense core of `core_halo`, 2D and 3D) are 2-5 times below the
//! asked accuracy at all three settings (BENCHMARKS.md). For 1e-6 in 3D the pairs
//! (p, theta) = (11, 0.4), (14, 0.5), (16, 0.55) reach 3.7e-7, 5.5e-7, 6.7e-7 on the
//! worst cloud (against 2.5e-7) and were not measurably faster: with
//! `C(p + 6, 6) / theta^3` M2L work and a near field growing like `theta^-3`, the
//! cost is flat near the optimum.
//!
//! ## Mixed precision
//! For accuracies down to `1e-7` ([`FmmParams::mixed_precision`]) the M2L terms
//! `D^(a+b) M_b` of total degree `|a| + |b| >= 4` are summed in single precision on
//! per-pair scaled values (`expansions::contract_mixed`): each such term is at most
//! `~theta^4` of the pair's interaction, so its `~6e-8` relative rounding is below
//! `3e-9` of it, far under the truncation error. The contraction is load-bound and
//! this halves its bytes: one M2L at `p = 13` (d = 3) takes 1.8 us instead of 3.0 us
//! in double precision, derivatives included (`m2l_speed`). The worst errors of the
//! test clouds are unchanged (BENCHMARKS.md).
//!
//! ## Cost balance (does not change the error)
//! Leaf size and the direct-sum threshold for accepted leaf pairs only move work between
//! the near field (P2P, ~0.5 ns per ordered pair in 3D, ~0.85 ns in 2D where it needs a
//! log, each unordered pair being evaluated once for both particles) and
//! the far field (an M2L costs about `C(p + 2D, 2D) * 0.12 ns` plus its share of
//! P2M/L2L/L2P), with the error of every accepted pair still bounded by the MAC. The
//! values are the measured optima on Gaussian, uniform and core-halo clouds of 1e4-1e5
//! particles (single thread, see BENCHMARKS.md):
//!
//! * leaves of at most 32 / 64 / 64 particles in 2D and 48 / 128 / 256 in 3D for
//!   fewer than 5 / fewer than 8 / 8 or more digits: larger in 3D, where an M2L costs
//!   `C(p+6, 6)` terms against `C(p+4, 4)` in 2D and the near-field pair is cheaper.
//!   In 3D cells are split into octants, or into halves or quarters on the next
//!   Morton bits when that brings them below the leaf size (`octree`), so uniform
//!   clouds get leaves of `1/2` to `1` times the maximum at any `N` (octree levels
//!   alone give 30 or 244 particles at `N = 1e6`). In 2D the same split was 7% slower
//!   on the PNP cloud with leaves of 64 and, with 32, raised the `core_halo` gradient
//!   error from 3.3e-7 to 7.7e-7, so 2D keeps quadtree levels. Measured after the
//!   mixed-precision M2L:
//!   3D at 1e-6 cost the same with leaves of 64-128 on uniform clouds (1e5 and
//!   1e6) and 10% less with 96 than with 128 on `core_halo`. Since the near field
//!   sums each leaf pair once (`near`), 128 is the better choice at 1e6: 4.5% less
//!   CPU than 96 on the uniform cloud and 6% less on `core_halo` (one thread,
//!   2026-11-25); 160 gained nothing more, and a direct-sum threshold of 6000
//!   instead of 3391 saved 0.4% (uniform) and 2.6% (`core_halo`), left for now;
//! * an accepted leaf pair with `n_t n_s <= C(p + 2D, 2D) / 8` is summed directly, the
//!   measured cost of one M2L in pair evaluations.
//!
//! Error measure used to calibrate: `max_i |phi_i - phi_i^direct| / max_i |phi_i^direct|`,
//! and the same with Euclidean norms for the gradient.

mod engine;
mod expansions;
mod multi_index;
mod near;
mod octree;
mod taylor;
mod traversal;

pub(crate) use engine::Engine;
pub use engine::{FmmParams, FmmStats};

use crate::coupling::pair_kernel::Softened;

/// The FMM parameters used for relative accuracy `accuracy` in dimension `D` (see module docs).
pub fn params_for_accuracy<const D: usize>(accuracy: f64) -> FmmParams {
    assert!(
        accuracy > 0.0 && accuracy < 1.0,
        "accuracy must be in (0, 1)"
    );
    let digits = (-accuracy.log10()).max(1.0);
    let theta = (0.5 - (digits - 3.0) / 60.0).clamp(0.3, 0.55);
    let order = ((2.0 * digits + 1.0).ceil() as usize).clamp(2, 24);
    let nt2 = (1..=2 * D).fold(1usize, |acc, k| acc * (order + k) / k);
    let leaf_size = match (D, digits < 5.0, digits < 8.0) {
        (2, true, _) => 32,
        (2, false, _) => 64,
        (_, true, _) => 48,
        (_, false, true) => 128,
        _ => 256,
    };
    FmmParams {
        order,
        theta,
        leaf_size,
        p2p_max_pairs: (nt2 / 8) as u64,
        mixed_precision: digits <= 7.0 + 1e-9,
    }
}

/// Multipole evaluator for `D = 2` or `3` (see module docs for the method).
pub struct TreeCoupling<const D: usize> {
    engine: Engine<D, Softened<D>>,
}

impl<const D: usize> TreeCoupling<D> {
    /// `accuracy`: target relative error of the potential (e.g. 1e-3, 1e-6, 1e-9),
    /// mapped to expansion degree and opening angle by [`params_for_accuracy`].
    /// `softening` must be `> 0`.
    pub fn new(softening: f64, accuracy: f64) -> Self {
        Self::with_params(softening, params_for_accuracy::<D>(accuracy))
    }

    /// Evaluator with explicit parameters (for tuning and benchmarks).
    pub fn with_params(softening: f64, params: FmmParams) -> Self {
        assert!(D == 2 || D == 3, "TreeCoupling supports D = 2 and 3");
        Self {
            engine: Engine::new(Softened::<D>::new(softening), params),
        }
    }

    /// Overwrites `phi[i]` and `grad[i]` for all `i`:
    /// `phi_i ~ sum_{j != i} q_j G_delta(x_i - x_j)`, `grad_i ~ d phi_i / d x_i`.
    /// Panics only on length mismatch.
    pub fn evaluate(&mut self, x: &[[f64; D]], q: &[f64], phi: &mut [f64], grad: &mut [[f64; D]]) {
        self.engine.evaluate(x, q, phi, grad);
    }

    /// The expansion order and tree parameters chosen for the requested accuracy.
    pub fn params(&self) -> FmmParams {
        self.engine.params()
    }

    /// Interaction counts of the last evaluation.
    pub fn stats(&self) -> FmmStats {
        self.engine.stats
    }
}
