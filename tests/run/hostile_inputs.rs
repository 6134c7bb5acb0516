//! Hostile scenario values (issue 14, items 4 and 8): sizes that overflow,
//! parameters whose squares or products overflow, runaway text.
//!
//! - Each overflow input is refused at load time, on the binary, with exit
//!   status 2, a message naming the key, and no output directory.
//! - The resource estimates saturate instead of wrapping, and a saturated
//!   estimate is refused.
//! - Echoed user text is clipped: a 50 MB one-line scenario or a 10 MB
//!   species name gives a message of a few hundred characters.
//! - Property tests: random values (magnitudes 1e-320 to 1e308 of both signs,
//!   0, integers up to 2^64 - 1, negative integers, words) at every key and
//!   vector component of valid scenarios, through the parser, the resource
//!   checks and the set-up of the run (library), and through `jko run`
//!   (binary): a value or an error naming the key, never a panic, and a
//!   refused run leaves no directory behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::run::{jko, write};
use jko::{Error, Scenario, Simulation};
use proptest::prelude::*;

/// A small 2D scenario using most keys: two species, the direct sum.
const SMALL: &str = r#"
dimension = 2
time_step = 0.01
steps = 2
output_every = 1
seed = 4
on_collapse = "continue"
[coupling]
strength = 1.0
method = "direct"
softening = 0.1
accuracy = 1e-6
[density]
bandwidth = "auto"
method = "auto"
[solver]
tolerance = 1e-6
max_iterations = 50
memory = 5
max_halvings = 3
[grid]
lower = [-2.0, -2.0]
upper = [2.0, 2.0]
cells = [10, 12]
[[species]]
name = "u"
charge = 1.0
diffusion = 1.0
exponent = 2.0
mass = 1.0
particles = 20
potential = { kind = "double_well", center = [0.0, 0.0], radius = 1.0, depth = 0.5 }
initial = { kind = "barenblatt", center = [0.0, 0.0], radius = 0.5 }
[[species]]
name = "v"
charge = -1.0
diffusion = 0.5
particles = 10
potential = { kind = "quadratic", center = [0.0, 0.0], stiffness = [1.0, 2.0] }
initial = { kind = "uniform", lower = [-1.0, -1.0], upper = [1.0, 1.0] }
"#;

/// A 3D and a 1D scenario with the remaining kinds (gaussian, tree, mesh).
const SMALL_3D: &str = r#"
dimension = 3
time_step = 0.02
steps = 1
[coupling]
strength = -0.5
method = "tree"
softening = 0.2
accuracy = 1e-4
[density]
bandwidth = 0.3
method = "mesh"
[[species]]
name = "a"
particles = 20
potential = { kind = "quadratic", stiffness = 1.0 }
initial = { kind = "gaussian", mean = [0.0, 0.5, 0.0], std = [0.5, 0.5, 0.4] }
"#;

const SMALL_1D: &str = r#"
dimension = 1
time_step = 0.01
steps = 2
output_every = 2
[density]
method = "neighbours"
[[species]]
name = "a"
particles = 20
diffusion = 0.1
potential = { kind = "none" }
initial = { kind = "gaussian", mean = [0.0], std = 0.5 }
"#;

/// Runs the binary with a wall-clock guard; None if it had to be killed.
fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Option<std::process::Output> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `jko run` on `text`: the exit status and stderr; the output directory's
/// existence afterwards.
fn run_text(text: &str) -> (i32, String, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let scen = write(tmp.path(), "hostile.toml", text);
    let out = tmp.path().join("out");
    let o = jko()
        .args(["run", scen.to_str().unwrap(), "--out"])
        .arg(&out)
        .arg("-q")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let code = o.status.code().unwrap_or(-1);
    (code, stderr, out.exists())
}

/// `SMALL` with `from` replaced by `to` must be refused by the binary with
/// exit 2, a message naming every needle, no panic and no output directory.
fn refused(from: &str, to: &str, needles: &[&str]) {
    assert!(SMALL.contains(from), "test bug: `{from}` not in SMALL");
    let text = SMALL.replacen(from, to, 1);
    let (code, stderr, left) = run_text(&text);
    assert_eq!(code, 2, "`{to}`: {stderr}");
    assert!(!stderr.contains("panicked"), "`{to}`: {stderr}");
    for n in needles.iter().chain(&["hostile.toml"]) {
        assert!(stderr.contains(n), "`{to}`: `{n}` not in {stderr}");
    }
    assert!(!left, "`{to}`: a refused run left its directory");
}

#[test]
fn solver_settings_beyond_their_bounds_are_refused_naming_the_key() {
    // 2^62: the memory estimate wrapped, then L-BFGS's allocation aborted.
    refused(
        "memory = 5",
        "memory = 4611686018427387904",
        &["solver.memory", "at most 1000"],
    );
    refused(
        "memory = 5",
        "memory = 1001",
        &["solver.memory", "at most 1000"],
    );
    refused(
        "max_iterations = 50",
        "max_iterations = 9223372036854775807",
        &["solver.max_iterations", "at most 10000000"],
    );
    refused(
        "max_halvings = 3",
        "max_halvings = 4611686018427387904",
        &["solver.max_halvings", "at most 20"],
    );
    refused(
        "tolerance = 1e-6",
        "tolerance = 1e-320",
        &["solver.tolerance", "1e-100"],
    );
}

#[test]
fn counts_beyond_their_bounds_are_refused_naming_the_key() {
    // Above i64: the TOML parser refuses it, quoting the line.
    refused(
        "steps = 2",
        "steps = 9223372036854775808",
        &["steps", "TOML"],
    );
    refused(
        "steps = 2",
        "steps = 9223372036854775807",
        &["steps", "at most 9007199254740992"],
    );
    refused(
        "output_every = 1",
        "output_every = 4611686018427387904",
        &["output_every", "at most"],
    );
    // Each species within the per-species limit, the sum beyond it.
    let text = SMALL
        .replacen("particles = 20", "particles = 2147483648", 1)
        .replacen("particles = 10", "particles = 2147483648", 1);
    let (code, stderr, left) = run_text(&text);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("species[1].particles") && stderr.contains("in all"),
        "{stderr}"
    );
    assert!(!left);
}

/// A `steps` within its bound whose output cannot fit on any disk: the disk
/// estimate saturates (it wrapped) and the run is refused naming `steps`.
#[test]
fn an_absurd_disk_estimate_is_refused_naming_steps() {
    let text = SMALL.replacen("steps = 2", "steps = 9007199254740992", 1);
    let (code, stderr, left) = run_text(&text);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("steps = 9007199254740992") && stderr.contains("output_every"),
        "{stderr}"
    );
    assert!(!left, "a refused run left its directory");
}

#[test]
fn bandwidths_whose_square_overflows_or_underflows_are_refused() {
    for method in ["mesh", "neighbours", "auto"] {
        for eps in ["1e-200", "1e200", "1e-320", "1.7e308"] {
            let to = format!("bandwidth = {eps}\nmethod = \"{method}\"");
            let bound = if eps.starts_with("1e-") {
                "at least 1e-100"
            } else {
                "at most 1e100"
            };
            refused(
                "bandwidth = \"auto\"\nmethod = \"auto\"",
                &to,
                &["density.bandwidth", bound],
            );
        }
    }
}

#[test]
fn parameters_whose_squares_overflow_are_refused_naming_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("softening = 0.1", "softening = 1e200", "coupling.softening"),
        (
            "softening = 0.1",
            "softening = 1e-200",
            "coupling.softening",
        ),
        ("strength = 1.0", "strength = 1e300", "coupling.strength"),
        ("strength = 1.0", "strength = -1e-310", "coupling.strength"),
        ("time_step = 0.01", "time_step = 1e-320", "time_step"),
        ("time_step = 0.01", "time_step = 1e150", "time_step"),
        (
            "lower = [-1.0, -1.0]",
            "lower = [-1e300, -1.0]",
            "species[1].initial.lower[0]",
        ),
        (
            "stiffness = [1.0, 2.0]",
            "stiffness = [1.0, 1e300]",
            "species[1].potential.stiffness[1]",
        ),
        (
            "radius = 1.0, depth",
            "radius = 1e-200, depth",
            "species[0].potential.radius",
        ),
        ("depth = 0.5", "depth = 1e250", "species[0].potential.depth"),
        (
            "center = [0.0, 0.0], radius = 0.5",
            "center = [1e101, 0.0], radius = 0.5",
            "species[0].initial.center[0]",
        ),
        ("mass = 1.0", "mass = 1e-300", "species[0].mass"),
        ("charge = -1.0", "charge = 1e120", "species[1].charge"),
        (
            "diffusion = 0.5",
            "diffusion = 1e200",
            "species[1].diffusion",
        ),
        ("exponent = 2.0", "exponent = 1e300", "species[0].exponent"),
        (
            "upper = [2.0, 2.0]",
            "upper = [2.0, 1e200]",
            "grid.upper[1]",
        ),
    ];
    for (from, to, key) in cases {
        refused(from, to, &[key]);
    }
    // The gaussian's mean and std (issue: mean 1e300 ended in "EnergyParts { ... NaN }").
    let text = SMALL_1D.replacen("mean = [0.0]", "mean = [1e300]", 1);
    let (code, stderr, left) = run_text(&text);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("species[0].initial.mean[0]"), "{stderr}");
    assert!(!stderr.contains("EnergyParts"), "{stderr}");
    assert!(!left);
    let text = SMALL_1D.replacen("std = 0.5", "std = 1e200", 1);
    let (code, stderr, _) = run_text(&text);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("species[0].initial.std"), "{stderr}");
}

/// The largest values the bounds let through still run to completion in
/// the parts that only scale (a 1e100 coordinate, a 1e-100 time step), or
/// end with a message that is not a Debug dump.
#[test]
fn values_at_the_bounds_are_accepted() {
    // A cloud of 1e99 spread at 1e100 (a narrower one would be coincident
    // in f64), with a bandwidth it resolves.
    let text = SMALL_1D
        .replacen("mean = [0.0], std = 0.5", "mean = [1e100], std = 1e99", 1)
        .replacen(
            "method = \"neighbours\"",
            "method = \"neighbours\"\nbandwidth = 1e98",
            1,
        );
    assert!(text.contains("bandwidth = 1e98") && text.contains("std = 1e99"));
    let (code, stderr, _) = run_text(&text);
    assert!(code == 0 || code == 3, "{code}: {stderr}");
    assert!(
        !stderr.contains("EnergyParts") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let text = SMALL_1D.replacen("time_step = 0.01", "time_step = 1e-100", 1);
    let (code, stderr, _) = run_text(&text);
    assert!(code == 0 || code == 3, "{code}: {stderr}");
    assert!(
        !stderr.contains("EnergyParts") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// A 50 MB line and a 10 MB name (or method, or key) are not echoed in full.
#[test]
fn runaway_input_text_is_clipped_in_messages() {
    let big = "x".repeat(50 << 20);
    let name = "n".repeat(10 << 20);
    let cases: Vec<(String, &str)> = vec![
        (format!("dimension = 2 {big}\n"), "TOML"),
        (format!("dimension = 2\ntime_step = {big}\n"), "TOML"),
        (
            SMALL.replacen("name = \"u\"", &format!("name = \"{name}\""), 1),
            "species[0].name",
        ),
        (
            SMALL.replacen("method = \"direct\"", &format!("method = \"{name}\""), 1),
            "coupling.method",
        ),
        (
            SMALL.replacen("kind = \"uniform\"", &format!("kind = \"{name}\""), 1),
            "species[1].initial.kind",
        ),
        (
            SMALL.replacen("seed = 4", &format!("seed = 4\n{name} = 1"), 1),
            "TOML",
        ),
        (
            SMALL.replacen("radius = 0.5 }", &format!("radius = 0.5, {name} = 1 }}"), 1),
            "species[0].initial",
        ),
        (
            SMALL.replacen(
                "on_collapse = \"continue\"",
                &format!("on_collapse = \"{name}\""),
                1,
            ),
            "on_collapse",
        ),
    ];
    for (text, key) in &cases {
        let (code, stderr, left) = run_text(text);
        assert_eq!(code, 2, "{key}: {}", &stderr[..stderr.len().min(500)]);
        assert!(
            stderr.len() < 1500,
            "{key}: a message of {} bytes: {}...",
            stderr.len(),
            &stderr[..500]
        );
        assert!(
            stderr.contains(key) && stderr.contains("characters"),
            "{key}: {stderr}"
        );
        assert!(!left);
    }
}

/// The estimates saturate where they wrapped, and a saturated estimate is
/// refused whatever the machine.
#[test]
fn resource_estimates_saturate_and_are_refused() {
    let text = SMALL
        .replacen("steps = 2", "steps = 9007199254740992", 1)
        .replacen("memory = 5", "memory = 1000", 1);
    let s = Scenario::from_toml(&text, Path::new("s.toml")).unwrap();
    let n = 2 * jko::io::scenario::MAX_PARTICLES;
    assert_eq!(jko::driver::output_estimate(&s, n), u64::MAX);
    let mem = jko::driver::memory_estimate(&s, n);
    assert!(
        mem >= jko::driver::memory_estimate(&s, n / 2),
        "wrapped: {mem}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let e = jko::driver::check_resources(&s, tmp.path()).unwrap_err();
    assert!(e.to_string().contains("steps = 9007199254740992"), "{e}");
    let e = jko::driver::check_memory(&s, n, u64::MAX, "species.particles", "").unwrap_err();
    assert!(e.to_string().contains("species.particles"), "{e}");
}

/// A mesh whose cell count overflows usize (a narrow kernel on a wide 3D
/// cloud) is refused, not allocated (it asked the allocator for usize::MAX).
#[test]
fn a_mesh_whose_size_overflows_is_refused() {
    let x: Vec<[f64; 3]> = (0..8)
        .map(|i| {
            let s = if i % 2 == 0 { -1e3 } else { 1e3 };
            [s, s * (i as f64 - 3.5) / 3.5, -s]
        })
        .collect();
    let w = vec![1.0 / 8.0; 8];
    assert_eq!(jko::density::mesh::cells_needed(&x, 1e-10), usize::MAX);
    for limit in [usize::MAX, 1 << 20] {
        let mut mesh = jko::density::mesh::MeshDensity::<3>::new(1e-10, limit);
        assert!(mesh.compute(&x, &w).is_err());
        mesh.reset();
        assert!(mesh.compute(&x, &w).is_err());
    }
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

/// One step of a path into a TOML document.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every leaf of `v` (and every array, replaced whole), with its path.
fn leaves(v: &toml::Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        toml::Value::Table(t) => {
            for (k, c) in t {
                path.push(Seg::Key(k.clone()));
                leaves(c, path, out);
                path.pop();
            }
        }
        toml::Value::Array(a) => {
            if a.iter().all(|e| !e.is_table()) {
                out.push(path.clone());
            }
            for (i, c) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                leaves(c, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn at<'v>(v: &'v mut toml::Value, path: &[Seg]) -> &'v mut toml::Value {
    path.iter().fold(v, |v, s| match s {
        Seg::Key(k) => v.get_mut(k.as_str()).unwrap(),
        Seg::Index(i) => v.get_mut(*i).unwrap(),
    })
}

/// The name of the key a path ends in (its last key segment).
fn key_of(path: &[Seg]) -> String {
    path.iter()
        .rev()
        .find_map(|s| match s {
            Seg::Key(k) => Some(k.clone()),
            Seg::Index(_) => None,
        })
        .unwrap()
}

const MARK: &str = "@@hostile@@";

/// `template` with the value at leaf `pick` (modulo the leaf count)
/// replaced by the TOML literal `literal`; and the key's name.
fn with_value(template: &str, pick: usize, literal: &str) -> (String, String) {
    let mut doc: toml::Value = toml::from_str(template).unwrap();
    let mut paths = Vec::new();
    leaves(&doc, &mut Vec::new(), &mut paths);
    let path = &paths[pick % paths.len()];
    *at(&mut doc, path) = toml::Value::String(MARK.into());
    let text = toml::to_string(&doc).unwrap();
    (
        text.replacen(&format!("\"{MARK}\""), literal, 1),
        key_of(path),
    )
}

/// TOML literals: reals of magnitude 1e-320 to 1e308 of both signs, zero,
/// integers up to 2^64 - 1 and down to -2^63, words, vectors.
fn literal() -> impl Strategy<Value = String> {
    let real = (any::<bool>(), -320i32..=308, 1.0f64..10.0).prop_map(|(neg, e, m)| {
        let v = m * 10f64.powi(e);
        let v = if v.is_finite() { v } else { f64::MAX };
        format!("{:e}", if neg { -v } else { v })
    });
    prop_oneof![
        3 => real,
        1 => Just("0".to_string()),
        1 => Just("0.0".to_string()),
        1 => Just("-0.0".to_string()),
        1 => prop_oneof![
            Just(u64::MAX),
            Just(1u64 << 63),
            Just((1u64 << 63) - 1),
            Just(1u64 << 62),
            Just((1u64 << 53) + 1),
            Just((1u64 << 31) + 1),
            Just(1u64 << 40),
            0u64..4,
        ]
        .prop_map(|v| v.to_string()),
        2 => any::<u64>().prop_map(|v| v.to_string()),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => prop_oneof![
            Just("\"auto\""),
            Just("\"mesh\""),
            Just("\"none\""),
            Just("\"\""),
            Just("[]"),
            Just("[1e308, -1e-320]"),
            Just("[18446744073709551615]"),
            Just("\"ünïcode\""),
        ]
        .prop_map(String::from),
    ]
}

/// `n` scenarios in memory that passed the checks are set up (cloud drawn,
/// estimators chosen, memory of the lists checked, initial energy) only up
/// to this many particles, to keep the property fast.
const SET_UP_PARTICLES: usize = 5000;

fn set_up<const D: usize>(s: &Scenario) -> jko::Result<()> {
    let mut sim = Simulation::<D>::new(s)?;
    jko::driver::check_list_memory(s, &sim)?;
    // Accepted, but perhaps a mesh of gigabytes (a wide cloud on a narrow
    // kernel): evaluated only when small, the test shares the machine.
    let n = sim.cloud.len();
    let need = jko::driver::memory_estimate(s, n) + jko::driver::list_memory_excess(&sim);
    if need > 1 << 28 {
        return Ok(());
    }
    sim.initial_report().map(|_| ())
}

/// What the library says about `text` whose `key` was changed: Ok, or an
/// error whose message names the key. Panics propagate (the property fails).
fn library_verdict(text: &str, key: &str) -> std::result::Result<(), String> {
    let named = |e: &Error| {
        let m = e.to_string();
        if m.contains(key) {
            Ok(())
        } else {
            Err(format!("the error does not name `{key}`: {m}"))
        }
    };
    let s = match Scenario::from_toml(text, Path::new("hostile.toml")) {
        Ok(s) => s,
        Err(e) => return named(&e),
    };
    let tmp = tempfile::tempdir().unwrap();
    if let Err(e) = jko::driver::check_resources(&s, tmp.path()) {
        // The estimates grow with the counts, the history and the steps.
        let m = e.to_string();
        return if ["particles", "steps", "output_every", "memory"]
            .iter()
            .any(|k| m.contains(k))
        {
            Ok(())
        } else {
            Err(format!("a resource refusal naming no count: {m}"))
        };
    }
    let n: usize = s.species.iter().filter_map(|sp| sp.particles).sum();
    if n <= SET_UP_PARTICLES {
        let r = match s.dimension {
            1 => set_up::<1>(&s),
            2 => set_up::<2>(&s),
            _ => set_up::<3>(&s),
        };
        if let Err(e) = r
            && e.to_string().trim().is_empty()
        {
            return Err("an empty error message".into());
        }
    }
    Ok(())
}

/// `default` cases, or PROPTEST_CASES when set (longer runs: README, "Fuzzing").
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(n)
}

fn template() -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => Just(SMALL), 1 => Just(SMALL_3D), 1 => Just(SMALL_1D)]
}

proptest! {
    #![proptest_config(cases(256))]

    /// Parser, resource checks and set-up: a value or an error naming the
    /// key, never a panic.
    #[test]
    fn random_values_at_every_key_give_a_value_or_an_error_naming_the_key(
        template in template(),
        pick in any::<usize>(),
        value in literal(),
    ) {
        let (text, key) = with_value(template, pick, &value);
        if let Err(why) = library_verdict(&text, &key) {
            prop_assert!(false, "{key} = {value}: {why}\n{text}");
        }
    }
}

proptest! {
    #![proptest_config(cases(24))]

    /// The binary on the same kind of scenarios: exit 0, 2, 3, 4 or 5 (a
    /// collapse), never a panic (101) or a signal; a refused run (2, or 4
    /// before anything is written) leaves no directory behind. (Not the 3D
    /// mesh template: a wide cloud there is a legitimate run of gigabytes.)
    #[test]
    fn random_values_through_jko_run_never_crash(
        template in prop_oneof![Just(SMALL), Just(SMALL_1D)],
        pick in any::<usize>(),
        value in literal(),
    ) {
        let (text, key) = with_value(template, pick, &value);
        let tmp = tempfile::tempdir().unwrap();
        let scen = write(tmp.path(), "hostile.toml", &text);
        let out = tmp.path().join("out");
        let mut cmd = jko();
        cmd.args(["run", scen.to_str().unwrap(), "--out"]).arg(&out).arg("-q");
        // A legitimate but long run (a huge max_iterations on a stiff
        // problem) is cut short: it is not what this property is about.
        let Some(o) = run_with_timeout(&mut cmd, Duration::from_secs(10)) else {
            eprintln!("{key} = {value}: still running after 10 s, stopped");
            return Ok(());
        };
        let stderr = String::from_utf8_lossy(&o.stderr);
        let code = o.status.code();
        prop_assert!(
            matches!(code, Some(0 | 2 | 3 | 4 | 5)),
            "{key} = {value}: status {:?}: {stderr}\n{text}", o.status
        );
        prop_assert!(!stderr.contains("panicked"), "{key} = {value}: {stderr}");
        if code == Some(2) {
            // The key, or the keys of the estimate it fed (a wide cloud's
            // density estimate, the memory of many particles).
            let named = [key.as_str(), "TOML", "density.bandwidth", "species.particles"]
                .iter()
                .any(|k| stderr.contains(k));
            prop_assert!(named, "{key} = {value}: {stderr}");
        }
        if matches!(code, Some(2 | 4)) {
            prop_assert!(!out.exists(), "{key} = {value}: a refused run left {}", out.display());
        }
    }
}
