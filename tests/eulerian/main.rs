//! The Eulerian (finite-volume) solver: its API and input checks, invariants,
//! Ornstein-Uhlenbeck against the exact law, grid self-convergence, and the
//! free-space Poisson solve against closed forms.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod convergence;
mod invariants;
mod ornstein_uhlenbeck;
mod poisson;
