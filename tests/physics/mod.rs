//! Physics: whole JKO runs against exact solutions and invariants.
//!
//! - `ornstein_uhlenbeck`: mean and variance against the exact OU law;
//! - `barenblatt`: porous-medium second moment against the Barenblatt profile;
//! - `invariants`: mass, energy decrease, the Coulomb energy as a field integral;
//! - `coupling_methods`: runs with the tree and sorted backends against "direct";
//! - `equilibrium`: the particle equilibrium against the grid Poisson–Boltzmann one;
//! - `steric`: compressed runs stay below close packing with `[steric]`.

mod barenblatt;
mod coupling_methods;
mod equilibrium;
mod invariants;
mod ornstein_uhlenbeck;
mod steric;
mod walls;
