//! The Eulerian (finite-volume) solver: its API and input checks, invariants,
//! Ornstein-Uhlenbeck against the exact law, grid self-convergence, and the
//! free-space Poisson solve against closed forms; the box (walls, background charges):
//! its Poisson solve, the Debye layer, relaxation in a box, the CLI on a box.

mod api;
mod box_poisson;
mod box_runs;
mod convergence;
mod debye;
mod equilibrium;
mod invariants;
mod ornstein_uhlenbeck;
mod poisson;
