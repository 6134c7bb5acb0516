//! Peak memory per particle of a JKO step (not in CI).
//!
//!     cargo run --release --example memory -- D PARTICLES_PER_SPECIES [STEPS [coupling|nocoupling [H]]]
//!
//! Sets up two-species PNP in dimension D (2 or 3) with the multipole tree,
//! takes STEPS JKO steps (default 1), and prints the process's peak resident
//! memory (VmHWM) and that peak divided by the particle count, next to the
//! estimate `jko::driver::memory_estimate` that `jko run` checks before step 1.
//! Run it once per size: the peak is per process.

use std::time::Instant;

use jko::{Scenario, Simulation};

fn status_kib(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As `jko run` does (`jko::util::alloc`): the peak is then the data's,
    // not the allocator's arenas'.
    jko::util::alloc::single_arena();
    let args: Vec<String> = std::env::args().collect();
    let d: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let n: usize = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let steps: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1);
    // Fifth argument: the time step (default 1e-4, so that the automatic
    // bandwidth is the ~50-neighbour rule; with D h large its floor at half the
    // diffusion length holds up to 10x more neighbours, and memory grows with them).
    let h: f64 = args.get(5).map(|s| s.parse()).transpose()?.unwrap_or(1e-4);
    // A fourth argument "nocoupling" drops the interaction term (to split the peak).
    let lambda = if args.get(4).is_some_and(|a| a == "nocoupling") {
        0.0
    } else {
        1.0
    };
    let v = |x: f64| format!("[{}]", vec![format!("{x:?}"); d].join(", "));
    let text = format!(
        r#"
dimension = {d}
time_step = {h:e}
steps = {steps}
seed = 1
[coupling]
strength = {lambda}
method = "tree"
softening = 0.01
[[species]]
name = "u"
particles = {n}
potential = {{ kind = "quadratic", center = {z}, stiffness = 1.0 }}
initial = {{ kind = "gaussian", mean = {m}, std = 0.3 }}
[[species]]
name = "v"
charge = -1.0
particles = {n}
potential = {{ kind = "quadratic", center = {z}, stiffness = 1.0 }}
initial = {{ kind = "gaussian", mean = {mm}, std = 0.3 }}
"#,
        z = v(0.0),
        m = v(0.2),
        mm = v(-0.2),
        lambda = lambda,
        h = h
    );
    let s = Scenario::from_toml(&text, "memory.toml".as_ref())?;
    let total = 2 * n;
    let base = status_kib("VmHWM:");
    let t0 = Instant::now();
    let (setup, after, excess) = match d {
        2 => run::<2>(&s, steps)?,
        3 => run::<3>(&s, steps)?,
        _ => return Err("D must be 2 or 3".into()),
    };
    let peak = status_kib("VmHWM:");
    println!(
        "d = {d}, {total} particles, {steps} step(s) in {:.1} s: peak {:.1} MiB (setup {:.1} MiB, before {:.1} MiB) = {:.0} bytes/particle; estimate {:.0} bytes/particle; last step {after:.1} s",
        t0.elapsed().as_secs_f64(),
        peak as f64 / 1024.0,
        setup as f64 / 1024.0,
        base as f64 / 1024.0,
        (peak - base) as f64 * 1024.0 / total as f64,
        (jko::driver::memory_estimate(&s, total) + excess) as f64 / total as f64
    );
    Ok(())
}

/// Returns the peak after setup (KiB), the last step's duration (s) and the
/// estimate's allowance for lists wider than the neighbour rule's (bytes).
fn run<const D: usize>(
    s: &Scenario,
    steps: usize,
) -> Result<(u64, f64, u64), Box<dyn std::error::Error>> {
    let mut sim = Simulation::<D>::new(s)?;
    let excess = jko::driver::list_memory_excess(&sim);
    eprintln!(
        "bandwidths {:?}, list allowance {excess} bytes",
        sim.bandwidths
    );
    sim.initial_report()?;
    let setup = status_kib("VmHWM:");
    let mut last = 0.0;
    for _ in 0..steps {
        let t = Instant::now();
        let r = sim.advance()?;
        last = t.elapsed().as_secs_f64();
        eprintln!(
            "step {}: {} iterations, {:.1} s",
            sim.step, r.iterations, last
        );
    }
    Ok((setup, last, excess))
}
