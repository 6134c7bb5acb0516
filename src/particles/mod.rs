//! Species as clouds of weighted particles ([`cloud`]: positions, weights,
//! initial sampling) and particle files in the format of SPEC §5 ([`file`]).

pub mod cloud;
pub mod file;

pub use cloud::*;
