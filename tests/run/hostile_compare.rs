//! Issue 14, the `jko compare` and particle/density file parts, on the binary:
//! what `--out` will and will not overwrite (item 2), and inputs that cannot
//! be compared: non-finite or overflowing values, negative densities, frames
//! cut short, clouds without spread (items 5 and 6).
//!
//! Runs are hand-written SPEC §5 files (a few particles, two written steps),
//! so every case takes milliseconds.

use std::fmt::Write as _;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::run::{jko, stderr, write};

/// A 1D particle run in `root/name`: `n` particles of species u at steps 0
/// and 2, energy.csv with steps 0..=2, a scenario with a fixed bandwidth.
fn particle_run(root: &Path, name: &str, shift: f64, n: usize) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = String::from("step,time,species,id,x,weight,density\n");
    for (step, time) in [(0, 0.0), (2, 0.02)] {
        for i in 0..n {
            let x = shift + i as f64 / n as f64 + 0.01 * step as f64;
            writeln!(s, "{step},{time:?},u,{i},{x:?},{:?},1.0", 1.0 / n as f64).unwrap();
        }
    }
    write(&dir, "particles.csv", &s);
    write_energy(&dir, &[(0, 0.0, 1.0), (1, 0.01, 0.9), (2, 0.02, 0.8)]);
    write(
        &dir,
        "scenario.toml",
        "dimension = 1\ntime_step = 0.01\nsteps = 2\n\n[density]\nbandwidth = 0.2\n\n\
         [[species]]\nname = \"u\"\nparticles = 10\n\
         initial = { kind = \"gaussian\", mean = [0.0], std = 1.0 }\n",
    );
    dir
}

fn write_energy(dir: &Path, rows: &[(u64, f64, f64)]) {
    let mut s = String::from(
        "step,time,energy,diffusion,potential,interaction,w2_step,iterations,gradient_norm\n",
    );
    for (step, t, e) in rows {
        writeln!(s, "{step},{t:?},{e:?},{e:?},0,0,0,0,0").unwrap();
    }
    write(dir, "energy.csv", &s);
}

/// A 2D grid run in `root/name`: 4 x 3 cells of density 1 at steps 0 and 1.
fn grid_run(root: &Path, name: &str, rho: impl Fn(u64, usize) -> String) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = String::from("step,time,species,x,y,density\n");
    for step in 0..2u64 {
        for j in 0..3 {
            for i in 0..4 {
                let (x, y) = (0.125 + 0.25 * i as f64, 0.5 + j as f64);
                writeln!(
                    s,
                    "{step},{:?},u,{x:?},{y:?},{}",
                    step as f64 * 0.1,
                    rho(step, 4 * j + i)
                )
                .unwrap();
            }
        }
    }
    write(&dir, "density.csv", &s);
    write_energy(&dir, &[(0, 0.0, 1.0), (1, 0.1, 0.5)]);
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `jko ARGS` must exit with `code`, print no panic, and name every needle.
fn expect_failure(args: &[&str], code: i32, needles: &[&str]) -> String {
    let o = jko().args(args).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "args {args:?}: stderr {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "args {args:?}: `{n}` not in: {err}");
    }
    err
}

fn compare_ok(a: &Path, b: &Path, extra: &[&str]) {
    let mut args = vec!["compare", s(a), s(b)];
    args.extend_from_slice(extra);
    let o = jko().args(&args).output().unwrap();
    assert!(o.status.success(), "args {args:?}: {}", stderr(&o));
}

/// No temporary file of a compare is left in `dir`.
fn no_partial_in(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".partial"), "stray temporary file {name}");
    }
}

fn two_runs(root: &Path) -> (PathBuf, PathBuf) {
    (
        particle_run(root, "a", 0.0, 20),
        particle_run(root, "b", 0.1, 20),
    )
}

#[test]
fn out_refuses_a_fifo() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_runs(tmp.path());
    let fifo = tmp.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for force in [false, true] {
        let mut args = vec!["compare", s(&a), s(&b), "--out", s(&fifo)];
        if force {
            args.push("--force");
        }
        expect_failure(&args, 4, &["pipe", "FIFO"]);
        let t = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(t.is_fifo(), "the FIFO was replaced");
    }
    no_partial_in(tmp.path());
}

#[test]
fn out_refuses_symlinks_live_dangling_and_to_a_device() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_runs(tmp.path());
    let target = write(tmp.path(), "target.txt", "precious\n");
    let cases = [
        ("live", target.clone(), "symbolic link"),
        (
            "dangling",
            tmp.path().join("nowhere.csv"),
            "dangling symbolic link",
        ),
        ("device", PathBuf::from("/dev/null"), "symbolic link"),
    ];
    for (name, to, needle) in &cases {
        let link = tmp.path().join(name);
        std::os::unix::fs::symlink(to, &link).unwrap();
        for force in [false, true] {
            let mut args = vec!["compare", s(&a), s(&b), "--out", s(&link)];
            if force {
                args.push("--force");
            }
            expect_failure(&args, 4, &[name, needle]);
            let m = std::fs::symlink_metadata(&link).unwrap();
            assert!(m.file_type().is_symlink(), "{name}: the link was replaced");
            assert_eq!(&std::fs::read_link(&link).unwrap(), to);
        }
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    assert!(
        !tmp.path().join("nowhere.csv").exists(),
        "written through a dangling link"
    );
    let null = std::fs::metadata("/dev/null").unwrap().file_type();
    assert!(null.is_char_device());
    no_partial_in(tmp.path());
}

#[test]
fn out_refuses_a_directory_and_a_missing_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_runs(tmp.path());
    let dir = tmp.path().join("tables");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "keep.txt", "x");
    expect_failure(
        &["compare", s(&a), s(&b), "--out", s(&dir), "--force"],
        4,
        &["tables", "is a directory"],
    );
    assert!(dir.is_dir());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let orphan = tmp.path().join("no/such/dir/t.csv");
    expect_failure(
        &["compare", s(&a), s(&b), "--out", s(&orphan)],
        4,
        &["t.csv", "no/such/dir"],
    );
}

#[test]
fn out_never_overwrites_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_runs(tmp.path());
    let link = tmp.path().join("hard.csv");
    std::fs::hard_link(a.join("energy.csv"), &link).unwrap();
    let before: Vec<Vec<u8>> = ["particles.csv", "energy.csv", "scenario.toml"]
        .iter()
        .flat_map(|n| {
            [
                std::fs::read(a.join(n)).unwrap(),
                std::fs::read(b.join(n)).unwrap(),
            ]
        })
        .collect();
    let sneaky = a.join("..").join("a").join("particles.csv");
    let targets = [
        a.join("particles.csv"),
        b.join("energy.csv"),
        b.join("scenario.toml"),
        sneaky,
        link.clone(),
        // Run files that do not exist yet are a run's too.
        a.join("checkpoint.jko"),
        b.join("density.csv"),
    ];
    for t in &targets {
        expect_failure(
            &["compare", s(&a), s(&b), "--out", s(t), "--force"],
            4,
            &["input"],
        );
    }
    let after: Vec<Vec<u8>> = ["particles.csv", "energy.csv", "scenario.toml"]
        .iter()
        .flat_map(|n| {
            [
                std::fs::read(a.join(n)).unwrap(),
                std::fs::read(b.join(n)).unwrap(),
            ]
        })
        .collect();
    assert_eq!(before, after);
    assert!(!a.join("checkpoint.jko").exists() && !b.join("density.csv").exists());
    no_partial_in(&a);
    no_partial_in(&b);
    // Any other name inside a run directory is fine.
    compare_ok(&a, &b, &["--out", s(&a.join("vs_b.csv"))]);
}

#[test]
fn out_replaces_an_existing_file_only_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_runs(tmp.path());
    let out = write(tmp.path(), "table.csv", "old table\n");
    expect_failure(
        &["compare", s(&a), s(&b), "--out", s(&out)],
        4,
        &["table.csv", "already exists", "--force"],
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old table\n");

    // The target is checked before the comparison: with a broken run B the
    // refusal is still about --out (exit 4), not the input (exit 2).
    std::fs::remove_file(b.join("energy.csv")).unwrap();
    expect_failure(
        &["compare", s(&a), s(&b), "--out", s(&out)],
        4,
        &["already exists"],
    );
    let b = particle_run(tmp.path(), "b2", 0.1, 20);

    compare_ok(&a, &b, &["--out", s(&out), "--force"]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("step,time,species,"), "{text}");
    assert_eq!(text.lines().count(), 3, "header and steps 0, 2: {text}");
    // A new file needs no --force; no temporary file stays behind.
    compare_ok(&a, &b, &["--out", s(&tmp.path().join("new.csv"))]);
    no_partial_in(tmp.path());
}

// ---------------------------------------------------------------------------
// Item 6: inputs that cannot be compared, results that would not be finite
// ---------------------------------------------------------------------------

/// Replace line `line` (1-based, header = 1) of `dir/file`.
fn edit_line(dir: &Path, file: &str, line: usize, text: &str) {
    let p = dir.join(file);
    let old = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = old.lines().map(String::from).collect();
    lines[line - 1] = text.to_string();
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
}

#[test]
fn non_finite_and_overflowing_coordinates_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = two_runs(tmp.path());
    for (k, (x, needles)) in [
        ("inf", &["line 4", "`x`", "finite"][..]),
        ("1e400", &["line 4", "`x`", "finite"][..]),
        ("1e200", &["line 4", "`x`", "1e150"][..]),
        ("-3e160", &["line 4", "`x`", "overflow"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let b = particle_run(tmp.path(), &format!("far{k}"), 0.0, 20);
        edit_line(&b, "particles.csv", 4, &format!("0,0.0,u,2,{x},0.05,1.0"));
        let mut all = vec!["particles.csv"];
        all.extend_from_slice(needles);
        expect_failure(&["compare", s(&a), s(&b)], 2, &all);
    }
    // The same bound for a grid's cell centers.
    let g = grid_run(tmp.path(), "g", |_, _| "1".into());
    edit_line(&g, "density.csv", 2, "0,0.0,u,1e200,0.5,1");
    expect_failure(
        &["compare", s(&g), s(&g)],
        2,
        &["density.csv", "line 2", "`x`"],
    );
}

#[test]
fn overflowing_sums_are_an_error_not_a_result() {
    let tmp = tempfile::tempdir().unwrap();
    let a = particle_run(tmp.path(), "a", 0.0, 20);
    // Two weights of 1e308: the mass overflows to inf, the mean to NaN.
    let b = particle_run(tmp.path(), "b", 0.0, 20);
    edit_line(&b, "particles.csv", 2, "0,0.0,u,0,0.0,1e308,1.0");
    edit_line(&b, "particles.csv", 3, "0,0.0,u,1,0.05,1e308,1.0");
    expect_failure(
        &["compare", s(&a), s(&b)],
        3,
        &["step 0", "species \"u\"", "not a finite number"],
    );
    // Energies of opposite signs near the top of f64: dE overflows.
    let c = particle_run(tmp.path(), "c", 0.0, 20);
    let d = particle_run(tmp.path(), "d", 0.0, 20);
    write_energy(&c, &[(0, 0.0, 1.7e308), (2, 0.02, 1.0)]);
    write_energy(&d, &[(0, 0.0, -1.7e308), (2, 0.02, 1.0)]);
    expect_failure(
        &["compare", s(&c), s(&d)],
        3,
        &["step 0", "energy", "not a finite number"],
    );
}

#[test]
fn a_density_must_be_a_non_negative_measure() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = grid_run(tmp.path(), "ok", |_, _| "1".into());
    compare_ok(&ok, &ok, &[]);
    let neg = grid_run(tmp.path(), "neg", |step, c| {
        if step == 1 && c == 5 {
            "-0.5".into()
        } else {
            "1".into()
        }
    });
    expect_failure(
        &["compare", s(&ok), s(&neg)],
        2,
        &["density.csv", "line 19", "`density`", "cannot be negative"],
    );
    let nan = grid_run(tmp.path(), "nan", |_, c| {
        if c == 0 { "NaN".into() } else { "1".into() }
    });
    expect_failure(
        &["compare", s(&nan), s(&ok)],
        2,
        &["density.csv", "line 2", "finite"],
    );
    // Zero mass at a step: nothing to normalize.
    let zero = grid_run(tmp.path(), "zero", |step, _| {
        if step == 1 { "0".into() } else { "1".into() }
    });
    expect_failure(
        &["compare", s(&ok), s(&zero)],
        2,
        &["zero", "step 1", "mass"],
    );
}

/// The particle file of `particle_run` with the last `cut` rows removed.
fn cut_particles(dir: &Path, cut: usize) {
    let p = dir.join("particles.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&p, lines[..lines.len() - cut].join("\n") + "\n").unwrap();
}

#[test]
fn a_truncated_last_frame_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let a = particle_run(tmp.path(), "a", 0.0, 20);
    let b = particle_run(tmp.path(), "b", 0.0, 20);
    cut_particles(&b, 7);
    expect_failure(
        &["compare", s(&a), s(&b)],
        2,
        &["particles.csv", "step 2", "13 rows", "20 at step 0"],
    );

    // The last frame lost a whole species.
    let two = tmp.path().join("two");
    std::fs::create_dir_all(&two).unwrap();
    write(
        &two,
        "particles.csv",
        "step,time,species,id,x,weight,density\n0,0,u,0,0.1,0.5,1\n0,0,u,1,0.2,0.5,1\n\
         0,0,v,0,0.1,1,1\n2,0.02,u,0,0.1,0.5,1\n2,0.02,u,1,0.2,0.5,1\n",
    );
    write_energy(&two, &[(0, 0.0, 1.0), (2, 0.02, 1.0)]);
    expect_failure(
        &["compare", s(&a), s(&two)],
        2,
        &["particles.csv", "species \"v\"", "step 2"],
    );

    // Same count but another particle: an id repeated in the frame.
    let dup = particle_run(tmp.path(), "dup", 0.0, 20);
    edit_line(&dup, "particles.csv", 41, "2,0.02,u,0,0.5,0.05,1.0");
    expect_failure(
        &["compare", s(&a), s(&dup)],
        2,
        &["line 41", "duplicate id 0", "step 2"],
    );

    // A grid run whose last frame stops after full rows: still a box, but not the grid.
    let g = grid_run(tmp.path(), "g", |_, _| "1".into());
    let p = g.join("density.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&p, lines[..lines.len() - 4].join("\n") + "\n").unwrap();
    let full = grid_run(tmp.path(), "full", |_, _| "1".into());
    expect_failure(
        &["compare", s(&full), s(&g)],
        2,
        &[
            "density.csv",
            "step 1",
            "8 cells (4 x 2)",
            "12 cells (4 x 3)",
        ],
    );
}

/// The same reader loads `initial = { kind = "csv" }`: a cut last frame is
/// refused there too (the default frame is the last one).
#[test]
fn a_truncated_initial_particle_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = particle_run(tmp.path(), "src", 0.0, 20);
    cut_particles(&src, 3);
    let scen = write(
        tmp.path(),
        "s.toml",
        "dimension = 1\ntime_step = 0.01\nsteps = 1\n\n[density]\nbandwidth = 0.2\n\n\
         [[species]]\nname = \"u\"\n\
         initial = { kind = \"csv\", path = \"src/particles.csv\" }\n",
    );
    let out = tmp.path().join("out");
    expect_failure(
        &["run", s(&scen), "--out", s(&out), "-q"],
        2,
        &["particles.csv", "step 2", "17 rows"],
    );
}

/// One particle, or particles all at one point, with the automatic
/// bandwidth: refused, naming `density.bandwidth` (no eps of 1e-77).
#[test]
fn a_cloud_without_spread_needs_a_fixed_bandwidth() {
    let tmp = tempfile::tempdir().unwrap();
    let a = particle_run(tmp.path(), "a", 0.0, 20);
    for (name, n, same) in [("one", 1, false), ("coincident", 5, true)] {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::from("step,time,species,id,x,weight,density\n");
        for step in [0, 2] {
            for i in 0..n {
                let x = if same { 0.3 } else { 0.3 + i as f64 };
                writeln!(
                    text,
                    "{step},{},u,{i},{x:?},{:?},1",
                    step as f64 * 0.01,
                    1.0 / n as f64
                )
                .unwrap();
            }
        }
        write(&dir, "particles.csv", &text);
        write_energy(&dir, &[(0, 0.0, 1.0), (2, 0.02, 1.0)]);
        // Without a scenario.toml the automatic rule is used.
        expect_failure(
            &["compare", s(&a), s(&dir)],
            2,
            &[name, "density.bandwidth", "fixed"],
        );
        write(
            &dir,
            "scenario.toml",
            "dimension = 1\ntime_step = 0.01\nsteps = 2\n\n[density]\nbandwidth = \"auto\"\n\n\
             [[species]]\nname = \"u\"\nparticles = 5\n\
             initial = { kind = \"gaussian\", mean = [0.0], std = 1.0 }\n",
        );
        expect_failure(
            &["compare", s(&a), s(&dir)],
            2,
            &["scenario.toml", "density.bandwidth"],
        );
        // A fixed bandwidth makes it comparable.
        write(
            &dir,
            "scenario.toml",
            "dimension = 1\ntime_step = 0.01\nsteps = 2\n\n[density]\nbandwidth = 0.1\n\n\
             [[species]]\nname = \"u\"\nparticles = 5\n\
             initial = { kind = \"gaussian\", mean = [0.0], std = 1.0 }\n",
        );
        compare_ok(&a, &dir, &[]);
    }
}

/// A fixed bandwidth too narrow for f64 at the run's coordinates is refused
/// the same way (not an L1 of inf or NaN).
#[test]
fn a_fixed_bandwidth_below_f64_resolution_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = particle_run(tmp.path(), "a", 0.0, 20);
    let b = particle_run(tmp.path(), "b", 0.0, 20);
    let p = b.join("scenario.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("bandwidth = 0.2", "bandwidth = 1e-300")).unwrap();
    expect_failure(
        &["compare", s(&a), s(&b)],
        2,
        &["b/scenario.toml", "density.bandwidth", "1e-300"],
    );
}
