//! Errors of the Eulerian solver. Every message names the field and says what is wrong.

/// What can go wrong when building or running an [`crate::eulerian::EulerianSolver`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EulerianError {
    /// The `[grid]` description is unusable (`field` is `lower`, `upper` or `cells`).
    #[error("grid: field `{field}`: {reason}")]
    InvalidGrid { field: &'static str, reason: String },
    /// A species field is unusable; `species` is the species' name (or its index if unnamed).
    #[error("species `{species}`: field `{field}`: {reason}")]
    InvalidSpecies {
        species: String,
        field: &'static str,
        reason: String,
    },
    /// The problem as a whole is unusable (no species, non-finite coupling strength, ...).
    #[error("problem: field `{field}`: {reason}")]
    InvalidProblem { field: &'static str, reason: String },
    /// `advance(h)` was given a negative or non-finite `h`.
    #[error("time step: {0} is not a finite non-negative number")]
    InvalidTimeStep(f64),
    /// The discrete solution became non-finite or negative (should not happen under the
    /// step-size rule; reported instead of writing garbage).
    #[error("eulerian run broke down at t = {time}: {reason}")]
    Breakdown { time: f64, reason: String },
    /// Binning particles: a particle lies outside the box, or has a bad weight.
    #[error("binning particles: particle {index}: {reason}")]
    InvalidParticle { index: usize, reason: String },
}
