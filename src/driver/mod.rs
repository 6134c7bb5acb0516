//! The run driver: a run to a directory ([`run`]: the loop, resources,
//! bookkeeping; [`files`]: its CSV files and checkpoint state), the output directory rules (lock, `--force`, paths:
//! [`dir`]) and the physical events ([`events`]).

pub mod dir;
pub mod events;
pub mod files;
pub mod run;

pub use run::*;
