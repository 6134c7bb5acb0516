//! Species as clouds of weighted particles ([`cloud`]: positions, weights,
//! the species' settings), their initial laws ([`initial`]: one file per
//! kind, parsing and sampling) and particle files in the format of SPEC §5
//! ([`file`](mod@file)).

pub mod cloud;
pub mod file;
pub mod initial;

pub use cloud::*;
pub use initial::{InitialSpec, Sampling};
