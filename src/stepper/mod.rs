//! The stepper: one JKO step (the minimization over the new positions, in
//! [`step`]) and the stepping of a whole problem with rejected steps retried
//! as smaller sub-steps ([`simulation`]), and the least-energy state
//! reached by a continuation of growing steps ([`equilibrium`]).

pub mod equilibrium;
pub mod layout;
pub mod problem;
pub mod projected;
pub mod simulation;
pub mod step;

pub use equilibrium::EquilibriumSettings;
pub use problem::{Problem, ProblemBuilder};
pub use simulation::*;
pub use step::*;
