//! Files: the scenario (TOML, SPEC §3, mapped onto the numerics' settings:
//! [`scenario`]), the CSV output streams ([`output`]) and run checkpoints
//! ([`checkpoint`]) and ParaView files ([`vtk`]).

pub mod checkpoint;
pub mod output;
pub mod scenario;
pub mod vtk;
