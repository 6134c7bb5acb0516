//! Numerics: each piece against its definition, without a whole run's physics.
//!
//! - `gradients`: every energy term's gradient against central differences;
//! - `steric`: the steric term against its O(N^2) definition and central
//!   differences, one bandwidth and two, free space and a box;
//! - `coupling_conformance`: every coupling backend, from one list, against
//!   the O(N^2) sum and central differences of its energy;
//! - `tree_*`: the multipole tree and the sorted 1D sum (accuracy, gradient,
//!   exactness, bit-identical on 1 and 2 threads);
//! - `fuzz_inputs`: the input parsers never panic;
//! - `layering`: dependencies in src/ point down only.

mod coupling_conformance;
mod fuzz_inputs;
mod gradients;
mod layering;
mod steric;
mod tree_accuracy;
mod tree_determinism;
mod tree_gradient;
mod tree_one_d;
