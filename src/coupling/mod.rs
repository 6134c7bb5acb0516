//! Backends for the Newtonian pair sum (SPEC §2):
//!
//!   U(x) = sum_{i<j} q_i q_j G_delta(x_i - x_j),
//!   field_i = sum_{j != i} q_j grad G_delta(x_i - x_j) = (1/q_i) dU/dx_i,
//!
//! with G_delta the softened kernel of [`crate::green`]. The interaction
//! energy is lambda U and its gradient lambda q_i field_i.

pub mod direct;

pub use direct::DirectSum;

/// A way to evaluate the pair sum and its field.
pub trait CouplingBackend<const D: usize>: Send {
    /// Returns U(x) and overwrites `field` (same length as `x`).
    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64;
}
