//! `jko run` and its output directory: interrupts and --resume, the rules for
//! a directory that already holds something, physical and optimizer events.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::run::{jko, outputs, pnp_2d, records, stderr, write};

/// `jko ARGS` started, its standard error piped.
fn start(args: &[&str]) -> std::process::Child {
    jko()
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` (as `kill` spells it: "-INT", "-TERM") to `child`.
fn kill(child: &std::process::Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} failed");
}

/// The text of `data/scenarios/NAME.toml`.
fn data_scenario(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("data/scenarios/{name}.toml"));
    std::fs::read_to_string(path).unwrap()
}

fn run(scen: &Path, out: &Path, extra: &[&str]) -> Output {
    jko()
        .args([
            "run",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .args(extra)
        .output()
        .unwrap()
}

/// SIGINT and SIGTERM: the run writes a checkpoint, exits with status 130
/// and says how to continue; `--resume` then ends with the bytes of a run
/// never interrupted.
#[test]
fn an_interrupted_run_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let scen = write(tmp.path(), "s.toml", &pnp_2d(60, 5));
    let reference = tmp.path().join("reference");
    let t0 = Instant::now();
    assert!(run(&scen, &reference, &[]).status.success());
    let duration = t0.elapsed();
    for signal in ["-INT", "-TERM"] {
        let out = tmp.path().join(format!("sig{signal}"));
        let child = start(&[
            "run",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ]);
        // Signal once the run is under way (its first checkpoint exists).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !out.join("checkpoint.jko").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(duration / 3);
        kill(&child, signal);
        let o = child.wait_with_output().unwrap();
        if o.status.success() {
            // The run finished before the signal arrived: nothing to test on this machine.
            eprintln!("{signal}: the run ended before the signal");
            continue;
        }
        assert_eq!(o.status.code(), Some(130), "{signal}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("interrupted after step"),
            "{}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
        assert!(
            !out.join("particles.csv").exists(),
            "a final name before the end"
        );
        let (_, cp) = jko::io::checkpoint::read(&out).unwrap().unwrap();
        assert!(
            cp.meta.step > 0 && cp.meta.step < 60,
            "checkpoint at step {}",
            cp.meta.step
        );
        let o = run(&scen, &out, &["--resume"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            outputs(&out) == outputs(&reference),
            "{signal}: resumed output differs"
        );
    }
}

/// What `jko run` does with a directory that is not new.
#[test]
fn the_output_directory_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let small = pnp_2d(4, 2);
    let scen = write(tmp.path(), "s.toml", &small);

    // A directory with other files is not ours: refused, unless --force, which
    // writes beside them and deletes none of them.
    let out = tmp.path().join("busy");
    std::fs::create_dir(&out).unwrap();
    write(&out, "notes.txt", "keep me");
    let o = run(&scen, &out, &[]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("holds no jko run") && stderr(&o).contains("notes.txt"),
        "{}",
        stderr(&o)
    );
    assert!(run(&scen, &out, &["--force"]).status.success());
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "keep me"
    );

    // A finished run: refused without a flag, "already complete" with --resume
    // (files untouched), overwritten with --force.
    let before = outputs(&out);
    let o = run(&scen, &out, &[]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("finished run"), "{}", stderr(&o));
    let o = jko()
        .args([
            "run",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--resume",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(stderr(&o).contains("already complete"), "{}", stderr(&o));
    assert!(outputs(&out) == before);

    // --resume of another scenario's run is refused, naming the changed input.
    let other = write(
        tmp.path(),
        "other.toml",
        &small.replace("seed = 3", "seed = 9"),
    );
    let o = run(&other, &out, &["--resume"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("other.toml") && stderr(&o).contains("differ"),
        "{}",
        stderr(&o)
    );

    // --resume in a new directory simply starts the run.
    let fresh = tmp.path().join("fresh");
    assert!(run(&scen, &fresh, &["--resume"]).status.success());
    assert!(outputs(&fresh) == before);

    // --force and --resume together make no sense.
    let o = run(&scen, &fresh, &["--resume", "--force"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Keller–Segel in 2D at four times the critical mass 8 pi D / |lambda|:
/// events.csv reports the supercritical mass at step 0 and the collapse
/// (rms radius below the bandwidth) when it happens; the default
/// `on_collapse = "stop"` ends the run there with exit status 5 and complete
/// files; "continue" runs to the end.
#[test]
fn a_supercritical_collapse_is_an_event() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
dimension = 2
time_step = 0.01
steps = 40
output_every = 10
seed = 2
[coupling]
strength = -1.0
method = "direct"
softening = 0.01
[density]
bandwidth = 0.05
[solver]
max_iterations = 200
[[species]]
name = "cells"
diffusion = 1.0
mass = 100.53096491487338
particles = 400
initial = { kind = "gaussian", mean = [0.0, 0.0], std = 0.5 }
"#;
    let scen = write(tmp.path(), "ks.toml", text);
    let out = tmp.path().join("stop");
    let o = run(&scen, &out, &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("collapsed at step"), "{}", stderr(&o));
    let ev = records(&out, "events.csv");
    assert_eq!(
        (&ev[0][0], &ev[0][2], &ev[0][3]),
        ("0", "supercritical_mass", "cells")
    );
    assert!((ev[0][4].parse::<f64>().unwrap() - 4.0).abs() < 1e-12);
    let collapse = ev
        .iter()
        .find(|r| &r[2] == "collapse")
        .expect("a collapse event");
    let step: u64 = collapse[0].parse().unwrap();
    assert!(step > 0 && step < 40, "collapse at step {step}");
    assert!(collapse[4].parse::<f64>().unwrap() < 1.0);
    // Complete files up to the collapse step, under their final names.
    let mut r = csv::Reader::from_path(out.join("particles.csv")).unwrap();
    let last: u64 = r
        .records()
        .map(|r| r.unwrap()[0].parse().unwrap())
        .max()
        .unwrap();
    assert_eq!(last, step);
    let rows = csv::Reader::from_path(out.join("energy.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(rows as u64, step + 1);

    // Past the collapse the optimizer struggles (the particles sit within one
    // bandwidth): go on for two more steps only.
    let more = text
        .replace("seed = 2", "seed = 2\non_collapse = \"continue\"")
        .replace("steps = 40", &format!("steps = {}", step + 2));
    let scen = write(tmp.path(), "ks2.toml", &more);
    let out = tmp.path().join("continue");
    let o = run(&scen, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let collapses = records(&out, "events.csv")
        .iter()
        .filter(|r| &r[2] == "collapse")
        .count();
    assert_eq!(collapses, 1, "reported once");
}

/// A step stopped by the iteration cap that lowered the objective is kept,
/// with an `iteration_cap` event and a warning on the terminal.
#[test]
fn steps_at_the_iteration_cap_are_kept_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let text = pnp_2d(3, 1).replace("seed = 3", "seed = 3\n[solver]\nmax_iterations = 1");
    let scen = write(tmp.path(), "s.toml", &text);
    let out = tmp.path().join("out");
    let o = jko()
        .args([
            "run",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("iteration_cap"), "{}", stderr(&o));
    let ev = records(&out, "events.csv");
    assert_eq!(ev.len(), 3);
    assert!(ev.iter().all(|r| &r[2] == "iteration_cap"));
    let mut r = csv::Reader::from_path(out.join("energy.csv")).unwrap();
    let e: Vec<f64> = r
        .records()
        .map(|r| r.unwrap()[2].parse().unwrap())
        .collect();
    assert!(e.windows(2).all(|w| w[1] < w[0]), "{e:?}");
}

/// Relaxing to the steady state (1D Ornstein–Uhlenbeck with h = 1): once the
/// relative tolerance asks for decreases of J below its rounding, a line
/// search can fail ("not a descent direction"); such steps are stationary to
/// rounding and accepted, not rejected (without the rounding floor in
/// `jko.rs` this run logs step_rejected events from step 27 on).
#[test]
fn a_run_at_its_steady_state_rejects_no_step() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
dimension = 1
time_step = 1.0
steps = 40
output_every = 20
seed = 1
[density]
bandwidth = 0.5
[[species]]
name = "p"
particles = 50
potential = { kind = "quadratic", center = [0.0], stiffness = 1.0 }
initial = { kind = "gaussian", mean = [0.8], std = 0.5 }
"#;
    let scen = write(tmp.path(), "eq.toml", text);
    let out = tmp.path().join("out");
    let o = run(&scen, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = records(&out, "events.csv");
    assert!(ev.is_empty(), "{ev:?}");
    let e = records(&out, "energy.csv");
    let last: f64 = e.last().unwrap()[8].parse().unwrap();
    assert!(last < 1e-7, "not at the steady state: residual {last}");
}

/// SIGINT to `jko eulerian`, which keeps no checkpoint: it stops after the
/// step in progress with status 130 and says what its files hold; those are
/// complete, under their final names, up to that step: energy.csv's rows
/// 0..=n, density.csv's frames every 7 steps and the frame of step n added;
/// run.json says interrupted. (Before, the first Ctrl-C killed the run,
/// leaving partial files only, and under Python the run went on to its end.)
#[test]
fn an_interrupted_eulerian_run_keeps_its_files_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let text = data_scenario("pnp_2d")
        .replace("steps = 50", "steps = 5000")
        .replace("output_every = 10", "output_every = 7");
    let scen = write(tmp.path(), "s.toml", &text);
    let out = tmp.path().join("out");
    let child = start(&[
        "eulerian",
        scen.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    // Signal once the run is under way (its files are open; they are
    // buffered, so not the rows): it stops after the step in progress, so
    // at step 1 at the earliest.
    let partial = out.join("energy.csv.partial");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !partial.exists() {
        assert!(Instant::now() < deadline, "no output within 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    kill(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted: the Eulerian run stopped after step")
            && err.contains("run it again"),
        "{err}"
    );
    let energy = records(&out, "energy.csv");
    let n = energy.len() as u64 - 1;
    assert!((1..5000).contains(&n), "stopped at step {n}");
    for (k, row) in energy.iter().enumerate() {
        assert_eq!(row[0].parse::<u64>().unwrap(), k as u64);
    }
    assert!(err.contains(&format!("stopped after step {n} ")), "{err}");
    let mut frames: Vec<u64> = records(&out, "density.csv")
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    frames.dedup();
    let mut expected: Vec<u64> = (0..=n).step_by(7).collect();
    if !n.is_multiple_of(7) {
        expected.push(n);
    }
    assert_eq!(frames, expected);
    let record = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert!(
        record.contains("\"status\": \"interrupted\"") && record.contains("\"exit_code\": 130"),
        "{record}"
    );
    assert!(!partial.exists(), "a partial file left behind");
}

/// SIGINT to `jko equilibrium --grid` (a 1024 x 512 grid: ~20 Newton steps
/// of ~1 s here): it stops at its next Newton step with status 130, says so,
/// and writes nothing (there is no checkpoint; before, the solve ran on).
#[test]
fn an_interrupted_grid_equilibrium_stops_at_its_next_newton_step() {
    let tmp = tempfile::tempdir().unwrap();
    let text = data_scenario("pn_junction_2d").replace("cells = [128, 64]", "cells = [1024, 512]");
    assert!(text.contains("[1024, 512]"));
    let scen = write(tmp.path(), "s.toml", &text);
    let out = tmp.path().join("out");
    let child = start(&[
        "equilibrium",
        "--grid",
        scen.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    kill(&child, "-INT");
    let signalled = Instant::now();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted: the grid equilibrium stopped after")
            && err.contains("nothing was written"),
        "{err}"
    );
    // One Newton step (a second here), with room for a loaded machine.
    assert!(signalled.elapsed() < Duration::from_secs(30));
    assert!(!out.exists(), "an interrupted solve left {}", out.display());
}
