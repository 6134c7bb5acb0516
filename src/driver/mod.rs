//! The run driver: a run to a directory ([`run`]: the loop, resources,
//! bookkeeping; [`files`]: its CSV files and checkpoint state), the least-energy
//! state to a directory ([`equilibrium`]), the output directory rules (lock, `--force`, paths:
//! [`dir`]), the physical events ([`events`]) and the record of how each run
//! was made (`run.json`, [`record`]).

pub mod books;
pub mod dir;
pub mod equilibrium;
pub mod events;
pub mod files;
pub mod record;
pub mod resources;
pub mod run;
pub mod start;

pub use equilibrium::{EquilibriumSummary, Stage, equilibrium_to_dir};
pub use record::{Phase, RUN_RECORD, RunRecord};
pub use resources::{
    MAX_ESTIMATE, check_list_memory, check_memory, check_resources, list_memory_excess,
    memory_estimate, output_estimate,
};
pub use run::*;
pub use start::{all_run_file_names, input_entries, input_paths};
