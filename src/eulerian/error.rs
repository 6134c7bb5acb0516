//! Errors of the Eulerian solver. Every message names the field and says what is wrong.

/// What can go wrong when building or running an [`crate::eulerian::EulerianSolver`].
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum EulerianError {
    /// The `[grid]` description is unusable (`field` is `lower`, `upper` or `cells`).
    #[error("grid: field `{field}`: {reason}")]
    InvalidGrid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A species field is unusable; `species` is the species' name (or its index if unnamed).
    #[error("species `{species}`: field `{field}`: {reason}")]
    InvalidSpecies {
        /// The species' name (or its index if unnamed).
        species: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The problem as a whole is unusable (no species, non-finite coupling strength, ...).
    #[error("problem: field `{field}`: {reason}")]
    InvalidProblem {
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `advance(h)` was given a negative or non-finite `h`.
    #[error("time step: {0} is not a finite non-negative number")]
    InvalidTimeStep(f64),
    /// The discrete solution became non-finite or negative (should not happen under the
    /// step-size rule; reported instead of writing garbage).
    #[error("eulerian run broke down at t = {time}: {reason}")]
    Breakdown {
        /// Simulated time at which it was found.
        time: f64,
        /// Which value went bad, and where.
        reason: String,
    },
    /// A step would take more explicit sub-steps than the solver's limit
    /// (see [`crate::eulerian::MAX_SUBSTEPS`]); the solution is left at the step's start.
    #[error(
        "at t = {time}, this step needs about {needed:.3e} sub-steps, over the limit of {limit} \
         per step ({taken} taken, dt = {dt:.3e}): the explicit scheme's sub-step is bounded by the \
         fastest cell's outflow rate ({rate:.3e} per unit time: drift |grad(U + lambda z psi)| / dx \
         plus diffusion D m rho^(m-1) / dx^2), which the problem makes stiff. A smaller time_step \
         does not help (it splits the same sub-steps among more steps); use a coarser [grid], a \
         softer potential (smaller stiffness or depth), a weaker coupling or diffusion, or the \
         particle solver (`jko run`), which is implicit"
    )]
    TooManySubsteps {
        /// Simulated time at the step's start.
        time: f64,
        /// Most sub-steps allowed per step.
        limit: usize,
        /// Sub-steps taken before giving up.
        taken: usize,
        /// Estimated sub-steps the step needs.
        needed: f64,
        /// The sub-step size the rate allows.
        dt: f64,
        /// The fastest cell's outflow rate, per unit time.
        rate: f64,
    },
    /// The grid equilibrium's Newton solve did not converge (or broke down); the reason
    /// says what to try.
    #[error("grid equilibrium: {reason}")]
    Equilibrium {
        /// What happened, and what to try.
        reason: String,
    },
    /// SIGINT/SIGTERM ([`crate::util::interrupt`]) stopped the grid
    /// equilibrium's Newton solve.
    #[error("interrupted after {iterations} Newton steps")]
    Interrupted {
        /// Newton steps done.
        iterations: usize,
    },
    /// Binning particles: a particle lies outside the box, or has a bad weight.
    #[error("binning particles: particle {index}: {reason}")]
    InvalidParticle {
        /// The particle's index in the given arrays (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
}
