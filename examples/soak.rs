//! Soak test (not in CI): a long run through the whole run machinery (files,
//! checkpoints, events), watching resident memory and open files.
//!
//!     cargo run --release --example soak -- [STEPS] [PARTICLES_PER_SPECIES]
//!
//! Defaults: 10 000 JKO steps of two species in 2D with 5 000 particles each
//! (1e4 in all): blob diffusion (kd-tree neighbour lists, rebuilt as the
//! particles move), a double well and a quadratic well, h = 0.002, a frame
//! and a checkpoint every 100 steps. No coupling, so that a step costs ~0.1 s
//! and the soak ends in under half an hour. Every 500 steps it prints the step, the resident
//! set (VmRSS), the peak (VmHWM) and the number of open file descriptors; at
//! the end, the spread of both after warm-up (step 1000). Flat means no leak:
//! the run holds O(N) memory and a fixed set of files, whatever the step count.

use std::time::Instant;

use jko::Scenario;
use jko::driver::{Observer, RunOptions};
use jko::stepper::StepReport;

fn status_kib(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

struct Watch {
    t0: Instant,
    samples: Vec<(u64, u64, usize)>,
}

impl Observer for Watch {
    fn step(&mut self, step: u64, r: &StepReport) {
        if step.is_multiple_of(500) {
            let (rss, hwm, fds) = (status_kib("VmRSS:"), status_kib("VmHWM:"), open_files());
            println!(
                "{step:>6} {:>8.1} s  E = {:+.6e}  {:>3} it  RSS {:>7} KiB  peak {:>7} KiB  fds {fds}",
                self.t0.elapsed().as_secs_f64(),
                r.parts.total(),
                r.iterations,
                rss,
                hwm
            );
            self.samples.push((step, rss, fds));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5_000);
    let text = format!(
        r#"
dimension = 2
time_step = 0.002
steps = {steps}
output_every = 100
seed = 1
[[species]]
name = "u"
diffusion = 0.5
particles = {n}
potential = {{ kind = "double_well", center = [0.0, 0.0], radius = 1.0, depth = 0.5 }}
initial = {{ kind = "gaussian", mean = [0.5, 0.0], std = 0.4 }}
[[species]]
name = "v"
diffusion = 0.5
particles = {n}
potential = {{ kind = "quadratic", center = [0.0, 0.0], stiffness = 1.0 }}
initial = {{ kind = "gaussian", mean = [-0.5, 0.0], std = 0.4 }}
"#
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("soak.toml");
    std::fs::write(&path, text)?;
    let s = Scenario::from_file(&path)?;
    println!(
        "soak: {steps} steps, 2 x {n} particles, d = 2, output in {}",
        dir.path().display()
    );
    println!(
        "  step     time  energy                 it  resident            peak                open files"
    );
    let mut watch = Watch {
        t0: Instant::now(),
        samples: Vec::new(),
    };
    let out = dir.path().join("out");
    let summary = jko::run_to_dir(&s, &out, RunOptions::default(), &mut watch)?;
    let late: Vec<_> = watch.samples.iter().filter(|s| s.0 >= 1000).collect();
    if let (Some(lo), Some(hi)) = (
        late.iter().map(|s| s.1).min(),
        late.iter().map(|s| s.1).max(),
    ) {
        let fds: std::collections::BTreeSet<usize> = late.iter().map(|s| s.2).collect();
        println!(
            "after step 1000: resident {lo}-{hi} KiB (spread {:.2}%), open files {fds:?}",
            100.0 * (hi - lo) as f64 / lo as f64
        );
    }
    let size: u64 = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{} steps in {:.1} s, {} L-BFGS iterations, {} rejected attempts, {} events; output {:.1} MB",
        summary.steps,
        watch.t0.elapsed().as_secs_f64(),
        summary.total_iterations,
        summary.rejected_attempts,
        summary.events,
        size as f64 / 1e6
    );
    Ok(())
}
