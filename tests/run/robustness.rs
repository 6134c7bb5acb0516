//! Runs that survive (needs `--features fault-injection`, as in the README's
//! test command): killed runs resume to the same bytes, injected optimizer
//! faults are rejected and retried, a permanent fault and a full disk end
//! cleanly with complete files and the documented exit status.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::run::{OUTPUTS, jko, outputs, pnp_2d, records, stderr};

struct Setup {
    _tmp: tempfile::TempDir,
    scenario: PathBuf,
    root: PathBuf,
}

fn setup(text: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("s.toml");
    std::fs::write(&scenario, text).unwrap();
    let root = tmp.path().to_path_buf();
    Setup {
        _tmp: tmp,
        scenario,
        root,
    }
}

fn run_cmd(s: &Setup, out: &Path, extra: &[&str], fault: Option<&str>, threads: usize) -> Command {
    let mut c = jko();
    c.args([
        "run",
        s.scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ])
    .args(extra)
    .env("RAYON_NUM_THREADS", threads.to_string())
    .env_remove("JKO_FAULT");
    if let Some(f) = fault {
        c.env("JKO_FAULT", f);
    }
    c
}

fn run(s: &Setup, out: &Path, extra: &[&str], fault: Option<&str>) -> Output {
    run_cmd(s, out, extra, fault, 2).output().unwrap()
}

/// No file under a final name may differ from the uninterrupted run's.
fn finals_are_whole(dir: &Path, reference: &[Vec<u8>]) {
    for (n, r) in OUTPUTS.iter().zip(reference) {
        if let Ok(bytes) = std::fs::read(dir.join(n)) {
            assert!(
                &bytes == r,
                "{n} exists under its final name but is not the whole file"
            );
        }
    }
}

/// Resume on `threads` threads; the run must then complete.
fn resume_to_end(s: &Setup, out: &Path, threads: usize) {
    let o = run_cmd(s, out, &["--resume"], None, threads)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "resume failed: {:?} {}",
        o.status,
        stderr(&o)
    );
}

/// SIGKILL at chosen points (inside a frame, between writing a checkpoint and
/// renaming it, between its two renames, after a step) and at random times,
/// then `--resume`: the three CSVs are byte-identical to an uninterrupted run,
/// whatever the thread counts, and no final name ever holds a partial file.
#[test]
fn killed_runs_resume_to_the_same_bytes() {
    let s = setup(&pnp_2d(40, 4));
    let reference_dir = s.root.join("reference");
    let o = run(&s, &reference_dir, &[], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = outputs(&reference_dir);

    let points = [
        "kill@frame:1",
        "kill@frame:4",
        "kill@frame:11",
        "kill@checkpoint:1",
        "kill@checkpoint:5",
        "kill@checkpoint:11",
        "kill@rename:2",
        "kill@rename:7",
        "kill@step:1",
        "kill@step:13",
        "kill@step:40",
    ];
    for (k, point) in points.iter().enumerate() {
        let out = s.root.join(format!("kill{k}"));
        let o = run_cmd(&s, &out, &[], Some(point), 1 + k % 2)
            .output()
            .unwrap();
        assert_eq!(
            o.status.signal(),
            Some(9),
            "{point}: not killed: {}",
            stderr(&o)
        );
        finals_are_whole(&out, &reference);
        if !point.ends_with(":1") && !point.ends_with(":2") {
            // A real resume, not a restart: a checkpoint past step 0.
            let (_, cp) = jko::io::checkpoint::read(&out).unwrap().unwrap();
            assert!(cp.meta.step > 0, "{point}: checkpoint at step 0");
        }
        // On the other thread count than the killed run.
        resume_to_end(&s, &out, 2 - k % 2);
        assert!(
            outputs(&out) == reference,
            "{point}: resumed output differs"
        );
    }

    // Random times: a fixed list of delays spread over the run's duration,
    // each run killed twice.
    let t0 = Instant::now();
    let o = run(&s, &s.root.join("timing"), &[], None);
    assert!(o.status.success());
    let duration = t0.elapsed().as_secs_f64();
    let fractions = [
        (0.07, 0.5),
        (0.31, 0.12),
        (0.55, 0.8),
        (0.8, 0.3),
        (0.95, 0.6),
    ];
    for (k, (f1, f2)) in fractions.iter().enumerate() {
        let out = s.root.join(format!("random{k}"));
        for (j, f) in [f1, f2].iter().enumerate() {
            let mut cmd = if j == 0 {
                run_cmd(&s, &out, &[], None, 2)
            } else {
                run_cmd(&s, &out, &["--resume"], None, 1)
            };
            let mut child = cmd.spawn().unwrap();
            std::thread::sleep(Duration::from_secs_f64(**f * duration));
            let _ = child.kill(); // SIGKILL; the run may have finished already
            child.wait().unwrap();
            finals_are_whole(&out, &reference);
        }
        resume_to_end(&s, &out, 2);
        assert!(
            outputs(&out) == reference,
            "random kill {k}: resumed output differs"
        );
    }
}

/// A NaN energy, a failing evaluation, or a gradient of the wrong sign in the
/// first attempt at step 3: the attempt is rejected (logged in events.csv),
/// the step is redone as two half steps, the run completes with every step
/// and energy still decreasing; the steps before 3 are untouched.
#[test]
fn a_transient_fault_is_rejected_and_retried() {
    let s = setup(&pnp_2d(40, 4));
    let reference_dir = s.root.join("reference");
    assert!(run(&s, &reference_dir, &[], None).status.success());
    let reference = records(&reference_dir, "energy.csv");
    for fault in ["nan@3", "error@3", "flip@3"] {
        let out = s.root.join(fault.replace('@', "_"));
        let o = run(&s, &out, &[], Some(fault));
        assert!(o.status.success(), "{fault}: {}", stderr(&o));
        let ev = records(&out, "events.csv");
        assert_eq!(ev.len(), 1, "{fault}: {ev:?}");
        assert_eq!((&ev[0][0], &ev[0][2]), ("3", "step_rejected"), "{fault}");
        assert_eq!(
            ev[0][4].parse::<f64>().unwrap(),
            0.01,
            "{fault}: sub-step size"
        );
        let rows = records(&out, "energy.csv");
        assert_eq!(rows.len(), 41, "{fault}");
        assert_eq!(
            rows[..3],
            reference[..3],
            "{fault}: steps before the fault changed"
        );
        let e: Vec<f64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
        assert!(
            e.windows(2).all(|w| w[1] <= w[0] + 1e-9 * w[0].abs()),
            "{fault}: energy rose"
        );
        for n in OUTPUTS {
            assert!(!out.join(format!("{n}.partial")).exists());
        }
    }
}

/// A fault at every attempt from step 3 on: each halving is tried and
/// rejected, then the run ends with exit status 3, a message that says what to
/// try, and complete files holding steps 0-2 (the last good frame included).
#[test]
fn a_permanent_fault_ends_cleanly() {
    let s = setup(&pnp_2d(40, 10));
    let out = s.root.join("out");
    let o = run(&s, &out, &[], Some("nan@3+"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let msg = stderr(&o);
    for needle in [
        "step 3",
        "every attempt failed",
        "complete up to step 2",
        "smaller time_step",
    ] {
        assert!(msg.contains(needle), "`{needle}` not in: {msg}");
    }
    let ev = records(&out, "events.csv");
    let rejected = ev.iter().filter(|r| &r[2] == "step_rejected").count();
    assert_eq!(rejected, 7, "h, h/2, ..., h/64: {ev:?}");
    assert_eq!(&ev.last().unwrap()[2], "step_failed");
    assert_eq!(records(&out, "energy.csv").len(), 3);
    let mut r = csv::Reader::from_path(out.join("particles.csv")).unwrap();
    let steps: std::collections::BTreeSet<String> =
        r.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(steps.into_iter().collect::<Vec<_>>(), ["0", "2"]);
    // Nothing to resume: refused with a clear message.
    let o = run(&s, &out, &["--resume"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("ended early at step 2"),
        "{}",
        stderr(&o)
    );
}

/// Writes fail with "no space left" after a budget of bytes: a clear I/O
/// error naming the file and exit status 4; the last checkpoint is intact;
/// once space is back, --resume completes to the same bytes.
#[test]
fn a_full_disk_fails_cleanly_and_resumes_identically() {
    let s = setup(&pnp_2d(40, 4));
    let reference_dir = s.root.join("reference");
    assert!(run(&s, &reference_dir, &[], None).status.success());
    let reference = outputs(&reference_dir);
    let total: usize = reference.iter().map(Vec::len).sum();
    for fraction in [0.2, 0.5, 0.9] {
        let out = s.root.join(format!("full{fraction}"));
        let budget = (fraction * total as f64) as usize;
        let o = run(&s, &out, &[], Some(&format!("disk={budget}")));
        assert_eq!(o.status.code(), Some(4), "budget {budget}: {}", stderr(&o));
        let msg = stderr(&o);
        assert!(msg.contains("No space left on device"), "{msg}");
        assert!(
            msg.contains(out.to_str().unwrap()),
            "the message names no file: {msg}"
        );
        let (_, cp) = jko::io::checkpoint::read(&out)
            .unwrap()
            .expect("a checkpoint survives");
        assert_eq!(cp.meta.status, jko::io::checkpoint::Status::Running);
        finals_are_whole(&out, &reference);
        resume_to_end(&s, &out, 1);
        assert!(
            outputs(&out) == reference,
            "budget {budget}: resumed output differs"
        );
    }
}
