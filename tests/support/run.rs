//! The `jko` binary end to end: the command, a standard scenario, a run's files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test, with no fault injected.
pub fn jko() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jko"));
    c.env_remove("JKO_FAULT");
    c
}

/// Two-species 2D PNP, 500 particles, direct coupling: `STEPS` steps, a frame
/// every `EVERY` (about a second for 40 steps).
pub fn pnp_2d(steps: u64, every: u64) -> String {
    format!(
        r#"
dimension = 2
time_step = 0.01
steps = {steps}
output_every = {every}
seed = 3
[coupling]
strength = 1.0
method = "direct"
softening = 0.1
[[species]]
name = "u"
charge = 1.0
particles = 300
potential = {{ kind = "quadratic", center = [0.0, 0.0], stiffness = 1.0 }}
initial = {{ kind = "gaussian", mean = [0.2, 0.0], std = 0.5 }}
[[species]]
name = "v"
charge = -1.0
particles = 200
potential = {{ kind = "quadratic", center = [0.0, 0.0], stiffness = 2.0 }}
initial = {{ kind = "uniform", lower = [-1.0, -1.0], upper = [1.0, 1.0] }}
"#
    )
}

pub const OUTPUTS: [&str; 3] = ["particles.csv", "energy.csv", "events.csv"];

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The bytes of the three CSV files of a run.
pub fn outputs(dir: &Path) -> Vec<Vec<u8>> {
    OUTPUTS
        .iter()
        .map(|n| std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}")))
        .collect()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The records of one of a run's CSV files.
pub fn records(dir: &Path, file: &str) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(dir.join(file)).unwrap();
    r.records().map(|r| r.unwrap()).collect()
}
