//! Output directories a user's data live in (README, "Runs that survive"):
//! `--force` reads and checks everything before it touches the old run and
//! keeps it until the new one has its step-0 checkpoint; inputs that live in
//! the directory survive; one process per directory (an advisory lock);
//! a panic cleans up like an error; forged or damaged checkpoints and
//! deleted `.partial` files are refused with advice; odd `--out` paths and
//! run file names that are not regular files are refused.
//! (Needs `--features fault-injection`, as in the README's test command.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::run::{jko, pnp_2d, records, stderr, write};

fn run(scen: &Path, out: &Path, extra: &[&str]) -> Output {
    run_with(scen, out, extra, None)
}

fn run_with(scen: &Path, out: &Path, extra: &[&str], fault: Option<&str>) -> Output {
    let mut c = jko();
    c.args([
        "run",
        scen.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ])
    .args(extra);
    if let Some(f) = fault {
        c.env("JKO_FAULT", f);
    }
    c.output().unwrap()
}

/// Every file of a directory (recursively, hidden ones included) by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// The data files of a run (what a user reads), without jko's lock file.
fn data(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut s = snapshot(dir);
    s.remove(Path::new(".jko.lock"));
    s
}

/// The two snapshots hold the same files with the same bytes (names only in the message).
#[track_caller]
fn assert_same(a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>, what: &str) {
    let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(a), names(b), "{what}: not the same files");
    for (k, v) in a {
        assert!(&b[k] == v, "{what}: {} differs", k.display());
    }
}

fn assert_code(o: &Output, code: i32, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{e}");
    for n in needles {
        assert!(e.contains(n), "expected {n:?} in: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
}

/// A finished 4-step run in `tmp/RUN`, made from `tmp/s.toml`.
fn finished_run(tmp: &Path) -> (PathBuf, PathBuf) {
    let scen = write(tmp, "s.toml", &pnp_2d(4, 2));
    let out = tmp.join("RUN");
    let o = run(&scen, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    (scen, out)
}

/// Item 1: re-running a run from its own copy of the scenario, with --force,
/// gives a complete run again (the same bytes: same scenario, same seed).
#[test]
fn force_rerun_from_the_runs_own_scenario_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = finished_run(tmp.path());
    let before = data(&out);
    let own = out.join("scenario.toml");
    let o = run(&own, &out, &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The checkpoint records the scenario's path, which differs, and run.json
    // the invocation (times, pid): compare the data.
    let csvs = |m: BTreeMap<PathBuf, Vec<u8>>| {
        m.into_iter()
            .filter(|(k, _)| {
                let name = k.to_string_lossy();
                !name.starts_with("checkpoint") && name != "run.json"
            })
            .collect()
    };
    assert_same(
        &csvs(data(&out)),
        &csvs(before),
        "the re-run must give the same files",
    );
    assert!(!out.join(".jko-replaced").exists());
}

/// Item 1: a scenario inside RUN that starts from RUN/particles.csv, run
/// into RUN with --force: its input is read before anything moves, and the
/// new run starts from the old run's last frame.
#[test]
fn force_continue_from_the_runs_own_particles() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = finished_run(tmp.path());
    let old = records(&out, "particles.csv");
    let next = pnp_2d(3, 1)
        .replace(
            "initial = { kind = \"gaussian\", mean = [0.2, 0.0], std = 0.5 }",
            "initial = { kind = \"csv\", path = \"particles.csv\" }",
        )
        .replace(
            "initial = { kind = \"uniform\", lower = [-1.0, -1.0], upper = [1.0, 1.0] }",
            "initial = { kind = \"csv\", path = \"particles.csv\" }",
        );
    assert_eq!(next.matches("kind = \"csv\"").count(), 2);
    let scen = write(&out, "next.toml", &next);
    let o = run(&scen, &out, &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let new = records(&out, "particles.csv");
    // Step 0 of the new run is the last frame (step 4) of the old one.
    let last_old: Vec<_> = old.iter().filter(|r| &r[0] == "4").collect();
    let first_new: Vec<_> = new.iter().filter(|r| &r[0] == "0").collect();
    assert_eq!(last_old.len(), 500);
    assert_eq!(first_new.len(), 500);
    for (a, b) in last_old.iter().zip(&first_new) {
        assert_eq!(
            (&a[2], &a[3], &a[4], &a[5], &a[6]),
            (&b[2], &b[3], &b[4], &b[5], &b[6])
        );
    }
    assert_eq!(new.last().unwrap()[0].to_string(), "3");
    assert!(
        out.join("next.toml").exists(),
        "a foreign file is never touched"
    );
}

/// Item 1: --force with bad input, or a run refused by a later check, leaves
/// the old run exactly as it was.
#[test]
fn force_with_bad_input_leaves_the_old_run_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let (scen, out) = finished_run(tmp.path());
    let before = data(&out);
    let text = std::fs::read_to_string(&scen).unwrap();
    let cases = [
        ("typo.toml", text.replace("time_step", "time_stepp"), 2),
        (
            "missing_csv.toml",
            text.replace(
                "initial = { kind = \"gaussian\", mean = [0.2, 0.0], std = 0.5 }",
                "initial = { kind = \"csv\", path = \"nowhere.csv\" }",
            ),
            2,
        ),
        // Passes the parser, refused by the memory check.
        (
            "huge.toml",
            text.replace("particles = 300", "particles = 3000000000000"),
            2,
        ),
    ];
    for (name, body, code) in cases {
        let bad = write(tmp.path(), name, &body);
        let o = run(&bad, &out, &["--force"]);
        assert_code(&o, code, &[]);
        assert_same(&data(&out), &before, name);
    }
}

/// Item 4: a panic (here: a malformed fault plan, which panics on its first
/// use, after the old run was set aside) reaches the user as a short message
/// and exit status 70; the old run is moved back, and a directory made for
/// the run is removed.
#[test]
fn a_panic_moves_the_old_run_back_and_removes_a_new_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (scen, out) = finished_run(tmp.path());
    let before = data(&out);
    let o = run_with(&scen, &out, &["--force"], Some("bogus"));
    assert_eq!(o.status.code(), Some(70), "{}", stderr(&o));
    assert!(stderr(&o).contains("internal error"), "{}", stderr(&o));
    assert_same(&data(&out), &before, "after a panic");
    let fresh = tmp.path().join("fresh");
    let o = run_with(&scen, &fresh, &[], Some("bogus"));
    assert_eq!(o.status.code(), Some(70), "{}", stderr(&o));
    assert!(!fresh.exists(), "a refused run leaves no directory");
}

/// Item 1: a --force run killed before its step-0 checkpoint leaves the old
/// run aside; the next jko process in the directory moves it back.
#[test]
fn a_force_killed_before_its_first_checkpoint_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (scen, out) = finished_run(tmp.path());
    let before = data(&out);
    let o = run_with(&scen, &out, &["--force"], Some("kill@checkpoint:1"));
    assert!(o.status.code().is_none(), "killed: {}", stderr(&o));
    assert!(out.join(".jko-replaced").is_dir());
    // Any command that locks the directory restores the old run first.
    let o = run(&scen, &out, &[]);
    assert_code(&o, 4, &["finished run"]);
    assert_same(&data(&out), &before, "after the recovery");
}

/// Item 3: two processes on one directory. The second is refused while the
/// first runs (also with --force), naming the first; the first's files are
/// those of a run alone.
#[test]
fn a_directory_in_use_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let scen = write(tmp.path(), "s.toml", &pnp_2d(60, 20));
    let alone = tmp.path().join("alone");
    assert!(run(&scen, &alone, &[]).status.success());

    let out = tmp.path().join("shared");
    let mut first = jko()
        .args([
            "run",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = first.id().to_string();
    // Wait for the first to hold the lock (its lock file names it).
    let t0 = Instant::now();
    while !std::fs::read_to_string(out.join(".jko.lock")).is_ok_and(|t| t.contains(&pid)) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the first run never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut refused = 0;
    for extra in [&[][..], &["--force"], &["--resume"]] {
        let o = run(&scen, &out, extra);
        if first.try_wait().unwrap().is_some() {
            break; // Finished meanwhile: this machine is fast; the refusals counted suffice.
        }
        assert_code(&o, 4, &["in use by another jko process", &pid]);
        refused += 1;
    }
    let status = first.wait().unwrap();
    assert!(status.success());
    assert!(
        refused >= 1,
        "the first run ended before any second one was tried"
    );
    let csvs = |m: BTreeMap<PathBuf, Vec<u8>>| {
        m.into_iter()
            .filter(|(k, _)| k.to_string_lossy().ends_with(".csv"))
            .collect()
    };
    assert_same(
        &csvs(data(&out)),
        &csvs(data(&alone)),
        "the first run's files",
    );
}

/// Item 7 and 8: a forged checkpoint (CRC recomputed) is refused naming the
/// field; a deleted .partial says what to do.
#[test]
fn forged_checkpoints_and_missing_partials_are_refused_with_advice() {
    let tmp = tempfile::tempdir().unwrap();
    let scen = write(tmp.path(), "s.toml", &pnp_2d(6, 2));
    let out = tmp.path().join("RUN");
    let o = run_with(&scen, &out, &[], Some("kill@step:3"));
    assert!(o.status.code().is_none(), "{}", stderr(&o));
    let cp_path = out.join("checkpoint.jko");
    let good = std::fs::read(&cp_path).unwrap();
    let cp = jko::io::checkpoint::Checkpoint::decode(&good).unwrap();

    let forge = |f: &dyn Fn(&mut jko::io::checkpoint::Checkpoint)| {
        let mut c = cp.clone();
        f(&mut c);
        std::fs::write(&cp_path, c.encode()).unwrap();
        std::fs::remove_file(out.join("checkpoint.prev.jko")).ok();
        let o = run(&scen, &out, &["--resume"]);
        std::fs::write(&cp_path, &good).unwrap();
        o
    };
    let o = forge(&|c| c.meta.level = 4_000_000_000);
    assert_code(&o, 2, &["sub-step level 4000000000", "max_halvings"]);
    let o = forge(&|c| c.meta.step = 1 << 40);
    assert_code(&o, 2, &["step 1099511627776"]);
    let o = forge(&|c| c.positions[0] = f64::INFINITY);
    assert_code(&o, 2, &["non-finite positions"]);
    let o = forge(&|c| c.last_move = Some((1e300, vec![0.0; c.positions.len()])));
    assert_code(&o, 2, &["displacement"]);

    let partial = out.join("particles.csv.partial");
    let kept = std::fs::read(&partial).unwrap();
    std::fs::remove_file(&partial).unwrap();
    let o = run(&scen, &out, &["--resume"]);
    assert_code(&o, 2, &["particles.csv.partial", "missing", "--force"]);
    std::fs::write(&partial, &kept).unwrap();
    let o = run(&scen, &out, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Item 2 for run directories, and item 8: --out that cannot be a directory,
/// and run file names that are not regular files, are refused, and what they
/// point to is untouched.
#[test]
fn odd_output_paths_are_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let scen = write(tmp.path(), "s.toml", &pnp_2d(2, 1));
    let dangling = tmp.path().join("dangling");
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), &dangling).unwrap();
    let o = run(&scen, &dangling, &[]);
    assert_code(&o, 4, &["symbolic link to", "does not exist"]);
    assert!(!tmp.path().join("nowhere").exists());

    let file = write(tmp.path(), "file", "precious");
    let o = run(&scen, &file, &[]);
    assert_code(&o, 4, &["not a directory"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");

    // A symlink under a run file's name would be written through.
    let target = write(tmp.path(), "target.txt", "precious");
    let out = tmp.path().join("linked");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&target, out.join("energy.csv.partial")).unwrap();
    for extra in [&[][..], &["--force"]] {
        let o = run(&scen, &out, extra);
        assert_code(&o, 4, &["energy.csv.partial", "symbolic link"]);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }
    // A FIFO would block the run forever.
    let fifo_dir = tmp.path().join("fifo");
    std::fs::create_dir(&fifo_dir).unwrap();
    let made = Command::new("mkfifo")
        .arg(fifo_dir.join("particles.csv.partial"))
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let o = run(&scen, &fifo_dir, &["--force"]);
        assert_code(&o, 4, &["FIFO"]);
    }
}

/// A run whose species mix a sampled law (its count given) and a particle
/// file (its count from the file) resumes: the checkpoint's particle count
/// is checked against the scenario only when every species states one.
#[test]
fn a_run_with_a_csv_species_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, first) = finished_run(tmp.path());
    let text = pnp_2d(6, 2).replace("particles = 200\n", "").replace(
        "initial = { kind = \"uniform\", lower = [-1.0, -1.0], upper = [1.0, 1.0] }",
        &format!(
            "initial = {{ kind = \"csv\", path = \"{}\" }}",
            first.join("particles.csv").display()
        ),
    );
    assert!(text.contains("kind = \"csv\"") && !text.contains("particles = 200"));
    let scen = write(tmp.path(), "mixed.toml", &text);
    let out = tmp.path().join("mixed");
    let o = run_with(&scen, &out, &[], Some("kill@step:3"));
    assert!(o.status.code().is_none(), "{}", stderr(&o));
    let o = run(&scen, &out, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(records(&out, "energy.csv").len(), 7);
}
