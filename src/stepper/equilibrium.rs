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
//! gradient's norm), or when a stage at the largest step size cannot move
//! (its step is stationary to the rounding of J): the gradient is then at
//! the rounding floor of E_N. The step size stops growing at
//! [`MAX_STEP_FACTOR`] times h_0, where the transport term is 1e-12 of its
//! first size, so the last stages are the unregularized minimization
//! (warm-started, each a full L-BFGS minimization).
//!
//! [`check_existence`] refuses the problems known to have no equilibrium
//! before any work.

/// Settings of the continuation (extension `[equilibrium]`, README).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquilibriumSettings {
    /// Stop when ||grad E_N||_w has fallen by this factor from the initial state's.
    pub tolerance: f64,
    /// h_{j+1} = growth * h_j (> 1).
    pub growth: f64,
    /// Most continuation stages before giving up (no convergence: its own exit status).
    pub max_stages: usize,
    /// Each stage's minimization stops when the gradient of its J has fallen
    /// by this factor (looser than a run's: only the last stages need to be
    /// accurate, and the stopping rule above judges them).
    pub stage_tolerance: f64,
}

impl Default for EquilibriumSettings {
    fn default() -> Self {
        EquilibriumSettings {
            tolerance: 1e-6,
            growth: 4.0,
            max_stages: 60,
            stage_tolerance: 1e-3,
        }
    }
}

/// The step size stops growing at h_0 times this factor.
pub const MAX_STEP_FACTOR: f64 = 1e12;

/// The step size of stage `j` (1-based): h_0 g^(j-1), at most h_0 MAX_STEP_FACTOR.
pub fn stage_step(settings: &EquilibriumSettings, time_step: f64, j: u64) -> f64 {
    let cap = time_step * MAX_STEP_FACTOR;
    let e = (j.saturating_sub(1)).min(i32::MAX as u64) as i32;
    (time_step * settings.growth.powi(e)).min(cap)
}

/// The largest step size of the continuation.
pub fn max_stage_step(time_step: f64) -> f64 {
    time_step * MAX_STEP_FACTOR
}

/// Refuses a problem that has no least-energy state (SPEC §9), with the key
/// to change and why. `masses[k]` is species k's mass. Two cases are known
/// from the settings alone:
///
/// - **nothing confines a species in free space**: its potential does not
///   grow at infinity (`PotentialSpec::confines`) and no self-attraction holds
///   it: a free-space equilibrium needs either, else the species spreads
///   forever and E_N decreases without end. Self-attraction (lambda < 0,
///   z_k != 0) holds a species by itself in d = 1 (G grows like |x|), in
///   d = 2 when m_k > 1 (the log attraction beats rho^m's decay) and in
///   d = 3 when m_k > 4/3 (the polytropes); a box confines everything.
/// - **collapse**: with attraction (lambda < 0) the continuum energy is
///   unbounded below when a group I of species can concentrate at a point.
///   Concentrating I in a disc of radius r changes E by
///   -(2 sum_{i in I} D_i M_i - |lambda| Q_I^2 / (4 pi)) log(1/r) in d = 2
///   for species with m = 1 (Q_I = sum_{i in I} z_i M_i): so a group with
///   |lambda| Q_I^2 >= 8 pi sum_{i in I} D_i M_i has no minimizer (the
///   Keller–Segel critical mass, 8 pi D / |lambda| for one species of unit
///   charge). In d = 3 any charged group of species with m < 4/3 collapses
///   (rho^m costs r^(-3(m-1)), the attraction -Q^2/r). The particle energy,
///   softened, stays bounded, but its minimizer is then a cluster at the
///   softening scale, not an equilibrium of the model: refused too.
///
/// Other cases (attraction between unlike charges, confinement by another
/// species' field) are not decided here: the continuation then stops after
/// `max_stages` with its own exit status if it finds no stationary state.
pub fn check_existence(
    problem: &crate::stepper::Problem,
    masses: &[f64],
) -> Result<(), crate::stepper::problem::KeyError> {
    let d = problem.dimension;
    let lambda = problem.coupling.strength;
    let sp = &problem.species;
    if problem.domain.as_box().is_none() {
        for (k, s) in sp.iter().enumerate() {
            let self_held = lambda < 0.0
                && s.charge != 0.0
                && match d {
                    1 => true,
                    2 => s.exponent > 1.0,
                    _ => s.exponent > 4.0 / 3.0,
                };
            if !s.potential.confines() && !self_held {
                return Err((
                    format!("species[{k}].potential"),
                    format!(
                        "nothing confines species \"{}\" in free space (its potential does not grow in every \
                         direction, and it does not attract itself enough to stay together), so it spreads \
                         forever and there is no equilibrium: give it a confining potential (a quadratic with \
                         every stiffness > 0, or a double well) or put the problem in a [domain] box",
                        crate::error::clip(&s.name, crate::error::MAX_ECHO)
                    ),
                ));
            }
        }
    }
    if lambda >= 0.0 || d == 1 {
        return Ok(());
    }
    // Every group of species that can concentrate (at most 2^K - 1 of them;
    // K is small in practice, and capped so the check stays instant).
    let can_collapse: Vec<usize> = (0..sp.len())
        .filter(|&k| match d {
            2 => sp[k].exponent == 1.0,
            _ => sp[k].exponent < 4.0 / 3.0,
        })
        .filter(|&k| sp[k].charge != 0.0)
        .collect();
    if can_collapse.len() > 16 {
        return Ok(());
    }
    for set in 1u32..(1u32 << can_collapse.len()) {
        let members: Vec<usize> = (0..can_collapse.len())
            .filter(|b| set & (1 << b) != 0)
            .map(|b| can_collapse[b])
            .collect();
        let q: f64 = members.iter().map(|&k| sp[k].charge * masses[k]).sum();
        let entropy: f64 = members.iter().map(|&k| sp[k].diffusion * masses[k]).sum();
        let names: Vec<String> = members
            .iter()
            .map(|&k| format!("\"{}\"", crate::error::clip(&sp[k].name, 60)))
            .collect();
        let collapses = match d {
            2 => -lambda * q * q >= 8.0 * std::f64::consts::PI * entropy,
            _ => q != 0.0,
        };
        if collapses {
            let why = if d == 2 {
                format!(
                    "|lambda| Q^2 = {:e} >= 8 pi sum D M = {:e} (Q = sum z M = {q:e}: the Keller–Segel critical \
                     mass is reached, and the densities concentrate into a point)",
                    -lambda * q * q,
                    8.0 * std::f64::consts::PI * entropy
                )
            } else {
                "in d = 3 an attracting charged species with exponent m < 4/3 concentrates into a point \
                 whatever its mass (use m > 4/3)"
                    .to_string()
            };
            return Err((
                "coupling.strength".into(),
                format!(
                    "the attraction (strength {lambda:e} < 0) has no equilibrium for species {}: {why}; \
                     the free energy is unbounded below. Lower |strength| or the masses, or raise the diffusion",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
