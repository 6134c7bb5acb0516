//! # jko — mesh-free JKO schemes for multi-species Wasserstein gradient flows
//!
//! Species k = 1..K with densities rho_k on R^d (d = 1, 2, 3) follow the
//! Wasserstein gradient flow of
//!
//! ```text
//! E(rho) = sum_k [ D_k F_m(rho_k) + int rho_k U_k ] + (lambda/2) int |grad psi|^2,
//! -Laplace psi = sum_k z_k rho_k,
//! ```
//!
//! i.e. `d/dt rho_k = div(D_k grad rho_k^m + rho_k grad(U_k + lambda z_k psi))`
//! (Poisson–Nernst–Planck for lambda > 0, Keller–Segel or gravity for
//! lambda < 0). Each species is a cloud of weighted particles; one JKO step
//! minimizes transport cost plus particle free energy with L-BFGS (see
//! [`jko`]). The contract (model, scenario file, CSV columns) is SPEC.md.
//!
//! Layout: [`scenario`] reads the input, [`particles`] holds the clouds,
//! [`energy`] has one type per free-energy term (value + gradient), built on
//! [`kernel`], [`density`], [`potential`], [`green`] and the [`coupling`]
//! backends; [`jko`] is the stepper, [`simulation`] the stepping with
//! rejected steps retried smaller, [`run`] the run to a directory with
//! [`checkpoint`]s, [`events`] and [`interrupt`] handling, [`output`] the CSV
//! files; [`eulerian`] is the grid solver and [`compare`] puts runs side by
//! side; [`exact`] has closed-form solutions for validation; [`fault`] holds
//! the test-only fault-injection hooks.

pub mod compare;
pub mod coupling;
pub mod density;
pub mod driver;
pub mod energy;
pub mod error;
pub mod eulerian;
pub mod io;
pub mod model;
pub mod particles;
pub mod stepper;
pub mod util;

pub use driver::{RunOptions, RunSummary, run_to_dir};
pub use error::{Error, Result};
pub use io::scenario::Scenario;
pub use stepper::Simulation;
