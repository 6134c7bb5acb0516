//! The mathematical model, independent of particles and files: the blob
//! kernel ([`kernel`]), the Green's functions of -Laplace and their
//! softening ([`green`]), the confining potentials U_k ([`potential`]), the
//! solvent entropy of finite ion size ([`steric`]), and
//! closed-form solutions used for validation ([`exact`]).

pub mod background;
pub mod domain;
pub mod exact;
pub mod green;
pub mod interval;
pub mod kernel;
pub mod potential;
pub mod steric;
