//! Fast multipole method for the softened Newtonian kernel in 2D and 3D.
//!
//! Method: Cartesian Taylor-expansion FMM with dual tree traversal (Dehnen 2002, 2014),
//! applied to the *softened* kernel `G_delta` of [`crate::model::green`] itself.
//! Multipoles and locals are Cartesian Taylor polynomials of total degree `p`; the
//! derivatives `D^m G_delta` needed by M2L are computed exactly for the softened kernel
//! by the Lindsay–Krasny type recurrence of `taylor` (softening enters through
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
//! * `p = ceil(2 d + 1)` (7, 13, 19), the same in 2D and 3D;
//! * except in 3D at 5 to 6 digits: `theta + 0.05` and `p + 1` (0.5 and 14 at 1e-6),
//!   where the per-pair degree (below) makes the wider angle 14% (uniform) and 16%
//!   (clustered) faster at 1e6 points; the worst gradient error of the test clouds
//!   is then 6.3e-7 at 1e-6 asked (Gaussian, delta 0.1; core_halo 5.1e-7), a 1.6x
//!   margin. Measured at 1e-6 only, so other accuracies keep the rule above.
//!
//! These are not over-conservative: the worst errors of the test clouds stay a few
//! times below the asked accuracy, and with `C(p + 6, 6) / theta^3` M2L work and a
//! near field growing like `theta^-3` the cost is flat near the optimum, so nearby
//! (p, theta) pairs are less accurate and no faster (BENCHMARKS.md, "Multipole tree
//! parameters").
//!
//! ## Mixed precision
//! For accuracies down to `1e-7` ([`FmmParams::mixed_precision`]) the M2L terms
//! `D^(a+b) M_b` of total degree `|a| + |b| >= 4` are summed in single precision on
//! per-pair scaled values (`expansions::contract_mixed`): each such term is at most
//! `~theta^4` of the pair's interaction, so its `~6e-8` relative rounding is below
//! `3e-9` of it, far under the truncation error. The contraction is load-bound and
//! this halves its bytes; the worst errors of the test clouds are unchanged
//! (BENCHMARKS.md, "Multipole tree parameters").
//!
//! ## Degree per cell pair
//! In the mixed-precision M2L each accepted pair with `rho = (r_t + r_s) / |c_t - c_s|`
//! is truncated at the lowest degree `q <= p` with `rho^(q+1) <= theta^(p+1)`, the
//! bound of the worst accepted pair (`rho` close to `theta`) at full degree (`q`
//! at least 4, the single-precision split). The dual traversal accepts many pairs well
//! inside the MAC (`rho` between about `theta / 2` and `theta`), so most M2L sources
//! need fewer terms; the error bound per pair is unchanged and the worst errors of the
//! test clouds barely move (BENCHMARKS.md, "3D tree against FMM3D"). Local expansions
//! keep degree `p` (their terms above `q` get nothing from such a pair).
//!
//! ## Cost balance (does not change the error)
//! Leaf size and the direct-sum threshold for accepted leaf pairs only move work between
//! the near field (P2P, each unordered pair being evaluated once for both particles;
//! dearer in 2D, where it needs a log) and the far field (an M2L costs about
//! `C(p + 2D, 2D)` multiply-adds plus its share of P2M/L2L/L2P), with the error of
//! every accepted pair still bounded by the MAC. The values are the optima on Gaussian,
//! uniform and core-halo clouds (BENCHMARKS.md, "Multipole tree parameters"):
//!
//! * leaves of at most 32 / 64 / 64 particles in 2D and 48 / 128 / 256 in 3D for
//!   fewer than 5 / fewer than 8 / 8 or more digits: larger in 3D, where an M2L costs
//!   `C(p+6, 6)` terms against `C(p+4, 4)` in 2D and the near-field pair is cheaper.
//!   In 3D cells are split into octants, or into halves or quarters on the next
//!   Morton bits when that brings them below the leaf size (`octree`), so uniform
//!   clouds get leaves of `1/2` to `1` times the maximum at any `N` (octree levels
//!   alone give 30 or 244 particles at `N = 1e6`). In 2D the same split was slower
//!   or less accurate, so 2D keeps quadtree levels;
//! * an accepted leaf pair with `n_t n_s <= C(p + 2D, 2D) / 8` is summed directly, the
//!   cost of one M2L in pair evaluations.
//!
//! Error measure used to calibrate: `max_i |phi_i - phi_i^direct| / max_i |phi_i^direct|`,
//! and the same with Euclidean norms for the gradient.

mod engine;
mod essential;
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
    // 3D, 5 to 6 digits: the per-pair degree of the mixed-precision M2L makes wider
    // cells cheap, so a wider angle with one more degree (0.5 and 14 at 1e-6) moves
    // work from the near field to the M2L (module docs, "Degree per cell pair").
    let wide = D == 3 && (5.0 - 1e-9..=6.0 + 1e-9).contains(&digits);
    let theta = (0.5 - (digits - 3.0) / 60.0 + if wide { 0.05 } else { 0.0 }).clamp(0.3, 0.55);
    let order = ((2.0 * digits + 1.0).ceil() as usize + usize::from(wide)).clamp(2, 24);
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
        near_leaves_per_task: near::NEAR_LEAVES_PER_TASK,
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
    /// `phi_i ~ sum_{j != i} q_j G_delta(x_i - x_j)`, `grad_i ~ d phi_i / d x_i`,
    /// and returns `sum_i q_i phi_i` (twice the pair energy), summed in an
    /// order that no team changes. A member of a team wanting some
    /// particles ([`want`](Self::want)) gets their `grad` only.
    /// Panics only on length mismatch.
    pub fn evaluate(
        &mut self,
        x: &[[f64; D]],
        q: &[f64],
        phi: &mut [f64],
        grad: &mut [[f64; D]],
    ) -> f64 {
        self.engine.evaluate(x, q, phi, grad)
    }

    /// Divides the evaluations among the members of `team` (the process's
    /// team, [`crate::util::team::current`], by default), with the single
    /// process's bits (`engine::divided`).
    pub fn with_team(mut self, team: std::sync::Arc<dyn crate::util::team::Team>) -> Self {
        self.engine.set_team(team);
        self
    }

    /// The members dividing the evaluations.
    pub fn team(&self) -> std::sync::Arc<dyn crate::util::team::Team> {
        self.engine.team()
    }

    /// Which particles' `grad` the caller reads from now on (`None`: all;
    /// ascending indices): a member of a divided evaluation then receives
    /// the gradients of those only and no potential (the returned sum
    /// needs one number per near-field task); the other entries of `grad`
    /// and `phi` hold anything.
    pub fn want(&mut self, particles: Option<&[u32]>) {
        self.engine.want(particles);
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

/// The locally essential trees of `parts` ranks owning equal contiguous
/// ranges of the sorted (Morton) order of the tree the parameters `params`
/// build for the points `x`: per rank, what it would receive from the
/// others for its own targets (`essential` module docs; docs/mpi.md §5,
/// `examples/let_volume`). The tree is built here, nothing is evaluated.
pub fn essential_counts<const D: usize>(
    x: &[[f64; D]],
    params: &FmmParams,
    parts: usize,
) -> Vec<EssentialCounts> {
    use rayon::prelude::*;
    let mut tree = octree::Octree::<D>::new(params.leaf_size);
    tree.update(x, &vec![1.0; x.len()]);
    let traversal = traversal::TraversalParams {
        theta2: params.theta * params.theta,
        p2p_max_pairs: params.p2p_max_pairs,
    };
    crate::util::team::split_even(x.len(), parts)
        .into_par_iter()
        .map(|own| {
            let e = essential::essential(&tree.cells, &traversal, own.clone());
            EssentialCounts {
                own: own.len(),
                multipoles: e.multipoles.len(),
                leaves: e.leaves.len(),
                particles: e.particles,
            }
        })
        .collect()
}

/// The size of one rank's locally essential tree ([`essential_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EssentialCounts {
    /// The rank's own particles.
    pub own: usize,
    /// Multipoles it receives (cells of accepted pairs not wholly its own).
    pub multipoles: usize,
    /// Leaves of its near field holding particles of others.
    pub leaves: usize,
    /// The particles of others those leaves hold.
    pub particles: usize,
}
