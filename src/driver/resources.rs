//! Resource checks made before a run allocates or writes anything: the
//! memory its particles, optimizer and density estimators will hold, and the
//! disk its output will take. Every estimate saturates (an absurd scenario
//! is refused, never wrapped), and a refusal names the keys that set it.

use std::path::Path;

use crate::density;
use crate::error::{Error, Result};
use crate::io::scenario::Scenario;
use crate::stepper::Simulation;

/// Memory a run of `n` particles in dimension `d` needs, in bytes: the
/// optimizer's vectors (2 memory + ~16 arrays of n d numbers) plus the
/// neighbour lists and trees, calibrated on the peaks of runs with the
/// neighbour-rule bandwidth (BENCHMARKS.md, "Memory"). A wider bandwidth
/// holds more neighbours than this.
/// Saturating: an estimate that does not fit in a u64 is u64::MAX, which
/// [`check_memory`] refuses whatever the machine.
pub fn memory_estimate(s: &Scenario, n: usize) -> u64 {
    let d = s.dimension as u64;
    let lists_and_trees = [600, 1700, 4300][s.dimension - 1];
    let vectors = (s.solver.memory as u64)
        .saturating_mul(2)
        .saturating_add(16);
    let per_particle = vectors
        .saturating_mul(8 * d)
        .saturating_add(lists_and_trees);
    (n as u64).saturating_mul(per_particle)
}

/// Memory the density estimators of `sim` need beyond what
/// [`memory_estimate`] counts (lists of the neighbour rule): each estimator
/// says ([`crate::density::DensityEstimator::extra_memory`]), per species
/// one for the density column and one more for the diffusion term if D > 0.
/// Known once the cloud is drawn and the bandwidths chosen, before any list
/// or mesh is built. Saturating.
pub fn list_memory_excess<const D: usize>(sim: &Simulation<D>) -> u64 {
    sim.cloud
        .blocks
        .iter()
        .zip(&sim.plans)
        .map(|(b, plan)| {
            let x = &sim.cloud.positions[b.range.clone()];
            let w = &sim.cloud.weights[b.range.clone()];
            let estimators: u64 = if b.diffusion > 0.0 { 2 } else { 1 };
            plan.build::<D>()
                .extra_memory(x, w)
                .saturating_mul(estimators)
        })
        .fold(0u64, u64::saturating_add)
}

/// Bytes the output files will take, roughly: ~21 bytes per number in
/// shortest round-trip form. Saturating at u64::MAX (an absurd `steps`).
pub fn output_estimate(s: &Scenario, n: usize) -> u64 {
    let n = n as u64;
    let d = s.dimension as u64;
    let frames = (s.steps / s.output_every.max(1)) as u64 + 2;
    let row = 21 * (d + 3) + 16;
    let frames_bytes = frames.saturating_mul(n).saturating_mul(row);
    let energy_rows = (s.steps as u64).saturating_add(1).saturating_mul(200);
    let checkpoint = n.saturating_mul(2 * 2 * 8 * d);
    frames_bytes
        .saturating_add(energy_rows)
        .saturating_add(checkpoint)
}

/// Largest memory or disk estimate accepted even where the free amount
/// cannot be read: 2^60 bytes (an exbibyte) is no machine's; a saturated
/// estimate is above it.
pub const MAX_ESTIMATE: u64 = 1 << 60;

fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(b: u64) -> String {
    if b >= MAX_ESTIMATE {
        return "more than 2^60 bytes (more than any machine has)".to_string();
    }
    format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30))
}

/// Refuse a run of `n` particles that needs `need` bytes where less is
/// available (or more than [`MAX_ESTIMATE`] anywhere); `why` says what
/// raised the estimate, `keys` the scenario keys that set it.
pub fn check_memory(s: &Scenario, n: usize, need: u64, keys: &str, why: &str) -> Result<()> {
    let have = available_memory();
    let refused = match have {
        Some(have) => need > have,
        None => need > MAX_ESTIMATE,
    };
    if refused || need > MAX_ESTIMATE {
        let have = have.map_or("no way to tell what is available".to_string(), |h| {
            format!("this machine has {} available", gib(h))
        });
        return Err(Error::input(
            &s.path,
            keys,
            format!(
                "{n} particles need about {} of memory{why} (with [solver] memory = {}), {have}",
                gib(need),
                s.solver.memory
            ),
        ));
    }
    Ok(())
}

/// Once the cloud is drawn and the bandwidths known, but before any
/// neighbour list is built: the estimate with the lists those bandwidths
/// hold ([`list_memory_excess`]).
pub fn check_list_memory<const D: usize>(s: &Scenario, sim: &Simulation<D>) -> Result<()> {
    check_mesh_sizes(s, sim)?;
    let n = sim.cloud.len();
    let excess = list_memory_excess(sim);
    if excess == 0 {
        return Ok(());
    }
    let why = format!(
        " with the density estimates of bandwidths {:?} ({} more than the neighbour rule's lists; \
         neighbour lists need less with a smaller [density] bandwidth, or with \"auto\" a smaller time step, \
         a mesh needs less with a larger bandwidth)",
        sim.bandwidths,
        gib(excess)
    );
    let need = memory_estimate(s, n).saturating_add(excess);
    check_memory(s, n, need, "species.particles, density.bandwidth", &why)
}

/// A mesh no machine can hold ([`crate::density::mesh::MAX_MESH_CELLS`]): its node
/// indices count from the origin in cells of eps/2, so a cloud wide against
/// its bandwidth, or far from the origin, has none. Refused naming the keys,
/// rather than as a memory estimate of exbibytes.
fn check_mesh_sizes<const D: usize>(s: &Scenario, sim: &Simulation<D>) -> Result<()> {
    for (k, (b, plan)) in sim.cloud.blocks.iter().zip(&sim.plans).enumerate() {
        if !matches!(plan.estimator, density::Estimator::Mesh { .. }) {
            continue;
        }
        let x = &sim.cloud.positions[b.range.clone()];
        let cells = crate::density::mesh::cells_needed(x, plan.eps);
        if cells > crate::density::mesh::MAX_MESH_CELLS {
            let (lo, hi) = crate::util::parallel::bounding_box(x);
            return Err(Error::input(
                &s.path,
                format!("density.bandwidth, species[{k}].initial"),
                format!(
                    "the density mesh of species \"{}\" at bandwidth {:e} would need more than {} cells: \
                     its cloud spans {lo:?} to {hi:?}, and the mesh counts cells of eps/2 from the origin. \
                     Use a larger bandwidth, method = \"neighbours\", or an initial law (mean, center, \
                     lower/upper) nearer the origin",
                    b.name,
                    plan.eps,
                    crate::density::mesh::MAX_MESH_CELLS
                ),
            ));
        }
    }
    Ok(())
}

/// Refuse, before allocating anything, a run that cannot fit in memory or on
/// the disk (`dir` must exist; its file system is the one asked). Every
/// estimate saturates, so an absurd count is refused, never wrapped.
pub fn check_resources(s: &Scenario, dir: &Path) -> Result<()> {
    let n = s
        .species
        .iter()
        .filter_map(|sp| sp.particles)
        .fold(0usize, usize::saturating_add);
    check_memory(s, n, memory_estimate(s, n), "species.particles", "")?;
    let need = output_estimate(s, n);
    let have = fs4::available_space(dir).ok();
    if have.is_some_and(|have| need > have) || need > MAX_ESTIMATE {
        let have = have.map_or("an unknown amount".to_string(), gib);
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!(
                    "the run will write about {} (steps = {}, output_every = {}, {n} particles) and only {have} is free: free space, write fewer frames (output_every), fewer steps, or choose another --out",
                    gib(need),
                    s.steps,
                    s.output_every
                ),
            ),
        ));
    }
    Ok(())
}
