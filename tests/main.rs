//! The integration tests of jko, one test crate (`cargo test --release --test
//! suite`), so that the library's generic numerics are instantiated and
//! optimized once for all of them rather than once per crate (four crates took
//! about three times the compile time of this one).
//!
//! - [`physics`]: whole JKO runs against exact solutions and invariants;
//! - [`numerics`]: each piece against its definition and finite differences;
//! - [`run`]: the `jko` binary end to end, its files, faults and MPI;
//! - [`eulerian`]: the grid solver against closed forms and convergence rates;
//! - [`support`]: the helpers they share.
//!
//! A module runs alone by its path: `cargo test --release --test suite physics::walls`.

// Loops over axes and particles read several arrays at one index.
#![allow(clippy::needless_range_loop)]

mod support;

mod eulerian;
mod numerics;
mod physics;
mod run;
