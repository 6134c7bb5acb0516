//! The least-energy stationary state of a problem (SPEC §9): E_N minimized
//! over the particle positions, without the transport term.
//!
//! Far from equilibrium E_N is not convex in the positions, and a plain
//! minimization from the initial clouds can stall or tangle particles. The
//! strategy is a continuation of JKO steps whose size grows geometrically,
//!
//! ```text
//!   h_j = h_0 g^j,   h_0 = time_step,  g = growth,
//! ```
//!
//! each the minimization of sum_i w_i |X_i - X_i^j|^2 / (2 h_j) + E_N(X):
//! while h_j is small the transport term keeps every step a small convex
//! correction (the gradient flow's own path); as h_j grows it fades, and a
//! fixed point of the JKO map of any h is a stationary point of E_N (at
//! X^{j+1} = X^j the step's optimality condition is grad E_N = 0). The
//! continuation ends when
//!
//! ```text
//!   ||grad E_N||_w = sqrt( sum_i |grad_i E_N|^2 / w_i )  <=  tolerance * ||grad E_N(X^0)||_w
//! ```
//!
//! (the norm of the velocity field -grad E_N / w in L^2(w): the Wasserstein
//! gradient's norm), or, when that is below what f64 resolves, at the
//! rounding floor of the energy's gradient; the step size stops growing at
//! [`MAX_STEP_FACTOR`] times h_0 · g^8, where the transport term is below
//! rounding for every realistic cloud, so the last stages are the
//! unregularized minimization.

/// Settings of the continuation (extension `[equilibrium]`, README).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquilibriumSettings {
    /// Stop when ||grad E_N||_w has fallen by this factor from the initial state's.
    pub tolerance: f64,
    /// h_{j+1} = growth * h_j (> 1).
    pub growth: f64,
    /// Most continuation stages before giving up (no convergence: its own exit status).
    pub max_stages: usize,
}

impl Default for EquilibriumSettings {
    fn default() -> Self {
        EquilibriumSettings {
            tolerance: 1e-6,
            growth: 4.0,
            max_stages: 60,
        }
    }
}

/// The step size stops growing at h_0 g^8 times this factor.
pub const MAX_STEP_FACTOR: f64 = 1e6;
