//! The limits of a scenario beyond those of each value
//! ([`crate::util::checks`]): counts have the upper bounds of the `MAX_*`
//! constants, chosen so that no size computation can overflow before the
//! numerics start, and species names are safe as file-name parts.

use crate::error::Result;
use crate::particles::Species;
use crate::util::checks::Checker;

pub use crate::particles::initial::MAX_PATH_BYTES;
pub use crate::util::checks::{MAX_MAGNITUDE, MIN_MAGNITUDE};

/// Largest particle count per species, and of all species together, we
/// accept before allocating anything: 2^31 particles of d = 3 already need
/// ~100 GiB of positions alone, and every size product stays far from 2^64.
pub const MAX_PARTICLES: usize = 1 << 31;

/// Largest `steps` and `output_every`: step numbers and times n h stay exact
/// in f64 (2^53), and the disk estimate of the output cannot overflow.
pub const MAX_STEPS: usize = 1 << 53;

/// Largest `[solver] memory` (L-BFGS history): 2 memory vectors of N d numbers
/// each; a longer history than a few tens gains nothing.
pub const MAX_SOLVER_MEMORY: usize = 1000;

/// Largest `[solver] max_iterations` per JKO step.
pub const MAX_SOLVER_ITERATIONS: usize = 10_000_000;

/// Largest `[solver] max_halvings`: 2^20 sub-steps per step.
pub const MAX_HALVINGS: usize = 20;

/// Largest exponent m: rho^m must stay finite for the densities a run meets
/// (rho^10 overflows only above rho = 1e30).
pub const MAX_EXPONENT: f64 = 10.0;

/// Longest scenario file read (scenarios are a few kB; this bounds what a
/// stray file given as a scenario can take in memory).
pub const MAX_SCENARIO_BYTES: u64 = 64 << 20;

/// A species name: 1 to 64 characters among letters, digits, `_`, `-`, `.`.
pub(super) fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// All species together stay within [`MAX_PARTICLES`] (the sum is checked,
/// so no later size product starts from a wrapped count).
pub(super) fn total_particles(c: &Checker, species: &[Species]) -> Result<()> {
    let mut total = 0usize;
    for (k, s) in species.iter().enumerate() {
        total = total.saturating_add(s.particles.unwrap_or(0));
        if total > MAX_PARTICLES {
            return Err(c.err(
                &format!("species[{k}].particles"),
                format!(
                    "the species up to this one have {total} particles, more than this build \
                     supports in all ({MAX_PARTICLES})"
                ),
            ));
        }
    }
    Ok(())
}
