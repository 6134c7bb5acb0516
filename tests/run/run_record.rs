//! `DIR/run.json` (issue 18): written by every command that makes a run
//! directory, its figures agreeing with the run's own files (the iterations
//! with energy.csv's column, the steps with its last row, the checksum with
//! the scenario's bytes), kept up to date at every checkpoint so that a
//! killed run has one, and carried over by `--resume`.

use std::path::Path;

use serde_json::Value;
use sha2::Digest;

use crate::support::run::{jko, pnp_2d, records, stderr, write};

const GRID: &str = "\n[grid]\nlower = [-3.0, -3.0]\nupper = [3.0, 3.0]\ncells = [24, 24]\n";

fn record(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("run.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("run.json does not parse: {e}\n{text}"))
}

/// Sum of energy.csv's `iterations` column and its last step.
fn energy_totals(dir: &Path) -> (u64, u64) {
    let rows = records(dir, "energy.csv");
    let sum = rows.iter().map(|r| r[7].parse::<u64>().unwrap()).sum();
    let last = rows.last().unwrap()[0].parse().unwrap();
    (sum, last)
}

fn sha256(path: &Path) -> String {
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fields every record has, whatever the command, checked against the
/// run and the invocation.
fn check_common(r: &Value, command: &str, scenario: &Path, threads: u64) {
    assert_eq!(r["format"], 1);
    assert_eq!(r["jko_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["command"], command);
    let line: Vec<&str> = r["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(line.contains(&scenario.to_str().unwrap()), "{line:?}");
    assert_eq!(r["scenario"]["sha256"], sha256(scenario));
    assert_eq!(
        r["scenario"]["bytes"],
        std::fs::metadata(scenario).unwrap().len()
    );
    assert_eq!(r["seed"], 3);
    assert_eq!(r["dimension"], 2);
    assert_eq!(r["threads"], threads);
    assert!(!r["host"].as_str().unwrap().is_empty());
    let w = &r["wall_time_s"];
    let part = |k: &str| w[k].as_f64().unwrap();
    for k in ["setup", "steps", "output"] {
        assert!(part(k) >= 0.0, "{k}: {w}");
    }
    // The phases partition the total (up to the rounding of three sums).
    let sum = part("setup") + part("steps") + part("output");
    assert!(
        (sum - part("total")).abs() <= 1e-6 * part("total").max(1.0),
        "{w}"
    );
    let (started, ended) = (r["started"].as_str().unwrap(), r["ended"].as_str());
    if let Some(ended) = ended {
        // RFC 3339 UTC at one-second resolution: the strings order as the times.
        assert!(started <= ended, "{started} > {ended}");
    }
}

#[test]
fn every_kind_of_run_records_how_it_was_made() {
    let tmp = tempfile::tempdir().unwrap();
    let text = pnp_2d(6, 3) + GRID + "[equilibrium]\nmax_stages = 40\ntolerance = 1e-3\n";
    let s = write(tmp.path(), "s.toml", &text);
    let go = |args: &[&str], out: &str| {
        let dir = tmp.path().join(out);
        let o = jko()
            .args(args)
            .args([s.to_str().unwrap(), "--out", dir.to_str().unwrap(), "-q"])
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        dir
    };
    for (args, out, command) in [
        (&["run"][..], "run", "run"),
        (&["eulerian"][..], "grid", "eulerian"),
        (&["equilibrium"][..], "eq", "equilibrium"),
        (&["equilibrium", "--grid"][..], "eqgrid", "equilibrium_grid"),
    ] {
        let dir = go(args, out);
        let r = record(&dir);
        check_common(&r, command, &s, 1);
        assert_eq!(r["status"], "complete", "{command}");
        assert_eq!(r["exit_code"], 0);
        assert!(r["error"].is_null());
        let (iterations, last) = energy_totals(&dir);
        assert_eq!(r["iterations"], iterations, "{command}: iterations");
        assert!(
            r["evaluations"].as_u64().unwrap() >= iterations.min(1),
            "{command}"
        );
        match command {
            "run" | "eulerian" => assert_eq!(r["steps_done"], last, "{command}"),
            // The equilibrium's steps are its stages; its energy.csv has 0 and 1.
            _ => assert!(r["steps_done"].as_u64().unwrap() >= 1),
        }
        if command == "run" {
            // L-BFGS evaluates at least once per iteration.
            assert!(r["evaluations"].as_u64().unwrap() >= iterations);
            assert_eq!(r["particles"], 500);
        }
        // How the particle runs computed their energy; the grid's has none.
        let methods = &r["methods"];
        if command == "run" || command == "equilibrium" {
            assert_eq!(methods["coupling"], "direct sum (exact)", "{command}");
            let density = methods["density"].as_array().unwrap();
            assert_eq!(density.len(), 2);
            for (d, name) in density.iter().zip(["u", "v"]) {
                assert_eq!(d["species"], name);
                // "auto" at 300 and 200 particles: the neighbour lists.
                assert_eq!(d["estimator"], "neighbour lists");
                assert_eq!(d["reflected"], false);
                assert!(d["bandwidth"].as_f64().unwrap() > 0.0);
            }
        } else {
            assert!(methods.is_null(), "{command}: {methods}");
        }
    }
    // What "tree" and a mesh make.
    let text = pnp_2d(1, 1).replace("method = \"direct\"", "method = \"tree\"")
        + "[density]\nmethod = \"mesh\"\n";
    let s = write(tmp.path(), "tree.toml", &text);
    let dir = tmp.path().join("tree");
    let o = jko()
        .args([
            "run",
            s.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let methods = &record(&dir)["methods"];
    let coupling = methods["coupling"].as_str().unwrap();
    assert!(coupling.starts_with("multipole tree (order "), "{coupling}");
    assert_eq!(methods["density"][1]["estimator"], "particle mesh");
}

#[test]
fn a_failed_equilibrium_records_its_error_and_exit_status() {
    let tmp = tempfile::tempdir().unwrap();
    let text = pnp_2d(6, 3) + "[equilibrium]\nmax_stages = 1\ntolerance = 1e-12\n";
    let s = write(tmp.path(), "s.toml", &text);
    let dir = tmp.path().join("eq");
    let o = jko()
        .args(["equilibrium", s.to_str().unwrap(), "--out"])
        .arg(&dir)
        .arg("-q")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let r = record(&dir);
    assert_eq!(r["status"], "not_converged");
    assert_eq!(r["exit_code"], 6);
    let msg = r["error"].as_str().unwrap();
    assert!(
        stderr(&o).contains(msg),
        "the record's error is the message the user saw:\n{msg}\n{}",
        stderr(&o)
    );
}

#[test]
fn a_refused_run_leaves_another_runs_record_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write(tmp.path(), "s.toml", &pnp_2d(2, 1));
    let dir = tmp.path().join("run");
    let run = || {
        jko()
            .args(["run", s.to_str().unwrap(), "--out"])
            .arg(&dir)
            .arg("-q")
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    let before = std::fs::read(dir.join("run.json")).unwrap();
    let o = run();
    assert_eq!(o.status.code(), Some(4), "a finished run is refused");
    assert_eq!(std::fs::read(dir.join("run.json")).unwrap(), before);
}

/// Killed after step 5 (checkpoints every 2 steps): the record says
/// "running" as of step 4; the resume completes it and keeps the killed
/// invocation under `previous`.
#[cfg(feature = "fault-injection")]
#[test]
fn a_killed_run_has_a_record_and_its_resume_extends_it() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let s = write(tmp.path(), "s.toml", &pnp_2d(8, 2));
    let dir = tmp.path().join("run");
    let cmd = |extra: &[&str]| {
        let mut c = jko();
        c.args(["run", s.to_str().unwrap(), "--out"])
            .arg(&dir)
            .arg("-q")
            .args(extra)
            .env("RAYON_NUM_THREADS", "2");
        c
    };
    let o = cmd(&[]).env("JKO_FAULT", "kill@step:5").output().unwrap();
    assert_eq!(o.status.signal(), Some(9), "{}", stderr(&o));
    let r = record(&dir);
    check_common(&r, "run", &s, 2);
    assert_eq!(r["status"], "running");
    assert!(r["ended"].is_null() && r["exit_code"].is_null());
    assert_eq!(r["steps_done"], 4, "as of the last checkpoint");

    let o = cmd(&["--resume"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = record(&dir);
    assert_eq!(r["status"], "complete");
    assert_eq!(r["resumed_from"], 4);
    assert_eq!(r["steps_done"], 8);
    let (iterations, _) = energy_totals(&dir);
    assert_eq!(r["iterations"], iterations, "steps redone are counted once");
    let previous = r["previous"].as_array().unwrap();
    assert_eq!(previous.len(), 1);
    assert_eq!(previous[0]["status"], "running");
    assert_ne!(previous[0]["pid"], r["pid"]);
}
