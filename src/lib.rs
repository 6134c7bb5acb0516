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
//! [`stepper::step`]). The contract (model, scenario file, CSV columns) is
//! `docs/SPEC.md`.
//!
//! # Quick start
//!
//! A problem is built in code with [`stepper::Problem::builder`] (or read
//! from a scenario file with [`Scenario::from_file`], which derefs to its
//! problem) and stepped by a [`Simulation`]:
//!
//! ```
//! use jko::Simulation;
//! use jko::model::potential::PotentialSpec;
//! use jko::particles::InitialSpec;
//! use jko::stepper::Problem;
//!
//! // Ornstein–Uhlenbeck in 1D: d rho/dt = d/dx (d rho/dx + x rho), started
//! // from a Gaussian of standard deviation 0.5; its variance relaxes to 1.
//! let problem = Problem::builder(1, 0.05)
//!     .seed(7)
//!     .species(
//!         "u",
//!         400,
//!         1.0,
//!         PotentialSpec::Quadratic { center: vec![0.0], stiffness: vec![1.0] },
//!         InitialSpec::Gaussian { mean: vec![0.0], std: vec![0.5] },
//!     )
//!     .build()
//!     .expect("a valid problem");
//! let mut sim = Simulation::<1>::new(&problem)?;
//! let e0 = sim.initial_report()?.parts.total();
//! for _ in 0..5 {
//!     let report = sim.advance()?;
//!     assert!(report.parts.total() < e0, "the JKO scheme lowers the energy");
//! }
//! let var: f64 = sim.cloud.positions.iter().zip(&sim.cloud.weights)
//!     .map(|(x, w)| w * x[0] * x[0]).sum();
//! // Exact: 1 - (1 - 0.25) exp(-2 t) at t = 0.25 is 0.545; the particles
//! // and the JKO step (h = 0.05) agree to a few percent.
//! assert!((var - 0.545).abs() < 0.05, "variance {var}");
//! # Ok::<(), jko::Error>(())
//! ```
//!
//! `examples/quickstart.rs` is the same as a program; `jko run` drives a
//! [`Simulation`] to a directory of CSV files ([`driver`]). Both step from
//! one of rayon's threads ([`util::parallel::on_pool`]): from any other
//! thread, every parallel call inside a step costs two context switches,
//! a third of a small 1D run's time.
//!
//! # Layout
//!
//! The folder tree is the architecture; each layer uses only those below it
//! (checked by `tests/numerics/layering.rs`):
//!
//! - [`util`]: SIMD lanes and dispatch, deterministic parallel sums, FFT,
//!   interrupt and fault hooks; [`error`]: the error type;
//! - [`model`]: the kernel, the Green's functions, the potentials, closed forms;
//! - [`particles`]: clouds of weighted particles, initial laws, particle files;
//! - [`density`]: the blob density estimators (one trait, neighbour lists and
//!   the mesh); [`coupling`]: the Newtonian coupling backends (direct sum,
//!   sorted 1D, the multipole tree);
//! - [`energy`]: the free-energy terms, value beside gradient;
//! - [`stepper`]: the problem's plain settings, one JKO step, the simulation
//!   with sub-step retries;
//! - [`io`]: the scenario (TOML mapped onto the settings), output streams,
//!   checkpoints;
//! - [`driver`]: a run to a directory (lock, `--force`, resources, events);
//! - [`eulerian`]: the grid twin; [`compare`]: distances between runs;
//!   [`export`]: the ParaView series of a finished run;
//! - [`plot`]: figures of runs (densities, energy), through `compare`'s
//!   reading and density estimate;
//! - `distributed` (the `mpi` feature): `jko run` under MPI.

#![warn(missing_docs)]
// Loops over axes and stencil nodes read several arrays at one index
// (x[a], lower[a], strides[a]); an index reads better there than zips.
#![allow(clippy::needless_range_loop)]
// `!(v > 0.0)` is how a check refuses NaN along with the values out of
// range; the comparison is negated on purpose.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod compare;
pub mod coupling;
pub mod density;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod driver;
pub mod energy;
pub mod error;
pub mod eulerian;
pub mod export;
pub mod io;
pub mod model;
pub mod particles;
pub mod plot;
pub mod stepper;
pub mod util;

pub use driver::{RunOptions, RunSummary, run_to_dir};
pub use error::{Error, Result};
pub use io::scenario::Scenario;
pub use stepper::Simulation;

#[cfg(test)]
mod contract {
    /// The contract ships with the code: docs/SPEC.md is the steering
    /// repository's SPEC.md, word for word, wherever a copy of that is beside
    /// the clone (CI has one).
    #[test]
    fn docs_spec_is_the_shared_contract() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let ours = std::fs::read_to_string(root.join("docs/SPEC.md")).expect("docs/SPEC.md");
        assert!(
            ours.contains("## 10. Finite ion size"),
            "docs/SPEC.md is not the contract"
        );
        if let Ok(shared) = std::fs::read_to_string(root.join("../shared/SPEC.md")) {
            assert!(
                ours == shared,
                "docs/SPEC.md differs from ../shared/SPEC.md: copy it again"
            );
        }
    }
}
