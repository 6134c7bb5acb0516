//! Runs: the `jko` binary end to end, its output directory, and `jko compare`.
//!
//! - `cli`: output columns and bad input;
//! - `bad_domains`, `bad_steric`: refused `[domain]`, walls, backgrounds, `[steric]`;
//! - `same_bytes`: every scenario of data/scenarios writes the bytes recorded
//!   before the issue-15 refactor;
//! - `run_dir`, `hostile_run_dir`: interrupts, resume, directory rules;
//! - `robustness` (feature `fault-injection`): kills, injected faults, a full disk;
//! - `hostile_inputs`, `hostile_numerics`: overflowing values, degenerate clouds;
//! - `compare`, `hostile_compare`: distances between runs and bad inputs to them;
//! - `equilibrium`: `jko equilibrium` with particles, its files, resume and refusals;
//! - `run_record`, `vtk`, `init`: run.json, the ParaView series and `jko export`,
//!   `jko init`;
//! - `plot`: `jko plot` on every kind of run directory, its pixels and refusals;
//! - `mpi` (feature `mpi`): `mpirun -n P jko run` against one process, bad input.

mod bad_domains;
mod bad_steric;
mod box_compare;
mod cli;
mod compare;
mod equilibrium;
mod hostile_compare;
mod hostile_inputs;
mod hostile_numerics;
mod hostile_run_dir;
mod init;
// Needs an MPI build (and mpirun): the `mpi` feature.
#[cfg(feature = "mpi")]
mod mpi;
mod plot;
// Its faults are injected through hooks only that feature compiles in.
#[cfg(feature = "fault-injection")]
mod robustness;
mod run_dir;
mod run_record;
mod same_bytes;
mod vtk;
