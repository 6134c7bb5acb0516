//! Issue 14, items 5-7, on the binary and the library: degenerate clouds
//! with the automatic bandwidth, non-finite energies and gradients, and the
//! Eulerian solver on a stiff problem. Each must end in a clear error or a
//! finite result, never in an exit 0 with nonsense numbers or a hang.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::run::{jko, write};

/// One species in 2D with `initial` (and `extra` keys), a quadratic well of
/// stiffness `stiffness`, and `[density]` `density`.
fn scenario(extra: &str, initial: &str, stiffness: f64, density: &str) -> String {
    format!(
        r#"
dimension = 2
time_step = 0.01
steps = 4
seed = 1
{density}
[[species]]
name = "u"
{extra}
potential = {{ kind = "quadratic", center = [0.0, 0.0], stiffness = {stiffness:e} }}
initial = {initial}
"#
    )
}

const GAUSSIAN: &str = r#"{ kind = "gaussian", mean = [0.3, -0.2], std = 0.5 }"#;
const CSV: &str = r#"{ kind = "csv", path = "cloud.csv" }"#;

/// `jko run` of `text` (in a fresh directory holding `cloud`, if any, as
/// cloud.csv) into `out`; the output and the directory.
fn run(text: &str, cloud: Option<&str>) -> (Output, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    if let Some(c) = cloud {
        write(tmp.path(), "cloud.csv", c);
    }
    let scen = write(tmp.path(), "s.toml", text);
    let out = tmp.path().join("out");
    let o = jko()
        .args([
            "run",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    (o, tmp)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit `code`, no panic, every needle in the message, and (a refusal
/// before the run) no output directory left behind.
fn assert_refused(o: &Output, dir: &Path, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
    assert!(
        !dir.join("out").exists(),
        "a refused run leaves no directory"
    );
}

/// A finished run: exit 0, every number of energy.csv finite, and no
/// physical event (a still cloud in a well neither escapes nor collapses).
fn assert_finite_run(o: &Output, dir: &Path) {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    let out = dir.join("out");
    let mut rows = 0;
    for r in csv::Reader::from_path(out.join("energy.csv"))
        .unwrap()
        .records()
    {
        let r = r.unwrap();
        for (c, v) in r.iter().enumerate() {
            let v: f64 = v.parse().unwrap();
            assert!(v.is_finite(), "energy.csv row {rows} column {c}: {v}");
        }
        rows += 1;
    }
    assert_eq!(rows, 5, "steps 0..=4");
    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert_eq!(events.lines().count(), 1, "no events expected: {events}");
    for r in csv::Reader::from_path(out.join("particles.csv"))
        .unwrap()
        .records()
    {
        let r = r.unwrap();
        for v in r.iter().skip(4) {
            let v: f64 = v.parse().unwrap();
            assert!(v.is_finite(), "particles.csv: {r:?}");
        }
    }
}

/// `n` particle rows of weight 1/n, all at (0.4, -0.1).
fn coincident_rows(n: usize) -> String {
    let mut text = "step,time,species,id,x,y,weight\n".to_string();
    for i in 0..n {
        text += &format!("0,0,u,{i},0.4,-0.1,{}\n", 1.0 / n as f64);
    }
    text
}

/// One particle, or several at one point, leave the automatic rule nothing to
/// go by (it gave eps ~ 1e-77, a diffusion energy of ~350, NaN gradient
/// norms and spurious escape events, exit 0): refused, naming
/// `density.bandwidth` and asking for a fixed one.
#[test]
fn degenerate_clouds_with_the_automatic_bandwidth_are_refused() {
    let auto = "[density]\nbandwidth = \"auto\"";
    let needles = ["density.bandwidth", "no spread", "fixed"];
    let (o, tmp) = run(&scenario("particles = 1", GAUSSIAN, 1.0, auto), None);
    assert_refused(&o, tmp.path(), 2, &needles);
    let (o, tmp) = run(&scenario("", CSV, 1.0, auto), Some(&coincident_rows(16)));
    assert_refused(&o, tmp.path(), 2, &needles);
    // The default is "auto" too; a species of eight at one point.
    let (o, tmp) = run(&scenario("", CSV, 1.0, ""), Some(&coincident_rows(8)));
    assert_refused(&o, tmp.path(), 2, &needles);
    // Particles on a line in 2D: a covariance of determinant 0.
    let mut line = "step,time,species,id,x,y,weight\n".to_string();
    for i in 0..10 {
        line += &format!("0,0,u,{i},{},0.5,0.1\n", i as f64 * 0.1);
    }
    let (o, tmp) = run(&scenario("", CSV, 1.0, auto), Some(&line));
    assert_refused(&o, tmp.path(), 2, &needles);
    // A Gaussian far narrower than f64 resolves at its place: refused too.
    let narrow = r#"{ kind = "gaussian", mean = [1.0, 1.0], std = 1e-12 }"#;
    let (o, tmp) = run(&scenario("particles = 50", narrow, 1.0, auto), None);
    assert_refused(&o, tmp.path(), 2, &["density.bandwidth", "resolves"]);
}

/// The same clouds with a fixed bandwidth run, with finite numbers throughout.
#[test]
fn degenerate_clouds_with_a_fixed_bandwidth_run() {
    let fixed = "[density]\nbandwidth = 0.1";
    let (o, tmp) = run(&scenario("particles = 1", GAUSSIAN, 1.0, fixed), None);
    assert_finite_run(&o, tmp.path());
    let (o, tmp) = run(&scenario("", CSV, 1.0, fixed), Some(&coincident_rows(16)));
    assert_finite_run(&o, tmp.path());
}

/// A fixed bandwidth below what f64 resolves at the cloud's coordinates.
#[test]
fn an_unresolvable_fixed_bandwidth_is_refused() {
    let tiny = "[density]\nbandwidth = 1e-12";
    let (o, tmp) = run(&scenario("particles = 20", GAUSSIAN, 1.0, tiny), None);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("density.bandwidth"), "{err}");
    assert!(!tmp.path().join("out").exists());
}

/// A stiffness whose gradient norm overflows f64 (the energy itself is
/// finite): it ran with an infinite gradient norm, nothing moving, exit 0.
/// Now refused at load (naming the key) or before step 1 (status 3, naming
/// the potential), with nothing written.
#[test]
fn a_stiffness_whose_gradient_overflows_is_never_a_result() {
    for stiffness in [1e160, 1e300] {
        let text = scenario("particles = 50", GAUSSIAN, stiffness, "");
        let (o, tmp) = run(&text, None);
        let err = stderr(&o);
        match o.status.code() {
            Some(2) => assert!(err.contains("stiffness"), "{err}"),
            Some(3) => assert!(
                err.contains("potential") && err.contains("gradient"),
                "{err}"
            ),
            c => panic!("stiffness {stiffness:e}: status {c:?}, stderr {err}"),
        }
        assert!(
            !err.contains("panicked") && !err.contains("EnergyParts"),
            "{err}"
        );
        assert!(!tmp.path().join("out").exists(), "{err}");
    }
}

/// The stepper itself, whatever the load-time bounds: a term whose gradient
/// norm overflows (finite components of 1e200) or whose gradient is NaN
/// makes every attempt a rejection naming the term, never a step.
#[test]
fn the_stepper_rejects_non_finite_gradients() {
    use jko::energy::{EnergyTerm, FreeEnergy, Part};
    use jko::stepper::{JkoStepper, StepError};
    struct Steep(f64);
    impl EnergyTerm<1> for Steep {
        fn part(&self) -> Part {
            Part::Interaction
        }
        fn value_and_gradient(&mut self, x: &[[f64; 1]], grad: &mut [[f64; 1]]) -> f64 {
            for (g, p) in grad.iter_mut().zip(x) {
                g[0] += self.0 * p[0].signum();
            }
            x.iter().map(|p| p[0].abs()).sum()
        }
    }
    for slope in [1e200, f64::NAN] {
        let energy = FreeEnergy::new(vec![Box::new(Steep(slope)) as Box<dyn EnergyTerm<1>>]);
        let x0: Vec<[f64; 1]> = (0..8).map(|i| [i as f64 - 3.5]).collect();
        let mut stepper = JkoStepper::new(energy, vec![0.125; 8], Default::default());
        let mut x = x0.clone();
        match stepper.step(&mut x, 0.01) {
            Err(StepError::Rejected(why)) => {
                let why = why.to_string();
                assert!(
                    why.contains("interaction") && why.contains("coupling"),
                    "{why}"
                )
            }
            other => panic!("slope {slope:e}: {other:?}"),
        }
        assert_eq!(x, x0, "a rejected step leaves the positions");
        let mut grad = vec![[0.0]; 8];
        stepper.energy(&x, &mut grad);
        assert!(stepper.non_finite_terms(&x).contains("interaction"));
    }
}

/// A quadratic well of stiffness 1e8 on 64 cells: the explicit sub-step is
/// ~1e-10, 1e8 sub-steps per step. It used to run for hours; now it stops
/// within seconds with status 3, the advice, and complete files.
#[test]
fn a_stiff_eulerian_run_ends_with_advice() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
dimension = 1
time_step = 0.01
steps = 3
[grid]
lower = [-5.0]
upper = [5.0]
cells = [64]
[[species]]
name = "u"
particles = 100
potential = { kind = "quadratic", center = [0.0], stiffness = 1e8 }
initial = { kind = "gaussian", mean = [0.5], std = 1.0 }
"#;
    let scen = write(tmp.path(), "s.toml", text);
    let out = tmp.path().join("out");
    let started = Instant::now();
    // A wall-clock guard: `timeout` ends a hang with status 124.
    let o = std::process::Command::new("timeout")
        .args(["60", env!("CARGO_BIN_EXE_jko"), "eulerian"])
        .args([scen.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "stderr: {err}");
    assert!(started.elapsed() < Duration::from_secs(60));
    for needle in [
        "sub-steps",
        "limit",
        "coarser",
        "does not help",
        "up to step 0",
    ] {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
    // Files complete up to the last full step (step 0), under their names.
    let energy = std::fs::read_to_string(out.join("energy.csv")).unwrap();
    assert_eq!(energy.lines().count(), 2, "{energy}");
    let density = std::fs::read_to_string(out.join("density.csv")).unwrap();
    assert_eq!(density.lines().count(), 65, "header and 64 cells of step 0");
    assert!(!out.join("density.csv.partial").exists());
}

/// The sub-step limit of the solver, through the library: a step that
/// would pass it fails and leaves the solution at the step's start.
#[test]
fn the_eulerian_substep_limit_keeps_the_solution() {
    use jko::eulerian::{EulerianError, EulerianProblem, EulerianSolver, EulerianSpecies, Grid};
    let grid = Grid::new(vec![-1.0], vec![1.0], vec![40]);
    let problem = EulerianProblem {
        species: vec![EulerianSpecies {
            name: "u".into(),
            charge: 0.0,
            diffusion: 1.0,
            exponent: 1.0,
            potential: Box::new(|x: &[f64]| 50.0 * x[0] * x[0]),
            initial: vec![0.5; 40],
        }],
        grid,
        coupling_strength: 0.0,
    };
    let mut solver = EulerianSolver::new(problem).unwrap();
    let before = solver.density(0).to_vec();
    solver.set_max_substeps(20);
    let mut calls = 0;
    match solver.advance_observed(1.0, &mut |_| calls += 1) {
        Err(EulerianError::TooManySubsteps { limit, taken, .. }) => {
            assert_eq!(limit, 20);
            assert!(taken <= 20);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(solver.density(0), &before[..]);
    assert_eq!(solver.time(), 0.0);
    // With room to spare the same step is taken.
    solver.set_max_substeps(jko::eulerian::MAX_SUBSTEPS);
    let stats = solver.advance(0.01).unwrap();
    assert!(stats.substeps > 0);
}

/// A checkpoint whose sub-step level no run of the scenario could reach
/// (here 30: 2^30 sub-steps per step, a resume that never ends) is refused
/// on `--resume` as not belonging to the scenario, before any step.
#[test]
fn a_forged_checkpoint_level_is_refused_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let text = scenario("particles = 20", GAUSSIAN, 1.0, "").replace("steps = 4", "steps = 3");
    let scen = write(tmp.path(), "s.toml", &text);
    let out = tmp.path().join("out");
    let args = [
        "run",
        scen.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    assert!(jko().args(args).status().unwrap().success());
    let (_, mut cp) = jko::io::checkpoint::read(&out).unwrap().unwrap();
    cp.meta.status = jko::io::checkpoint::Status::Running;
    cp.meta.level = 30;
    jko::io::checkpoint::write(&out, &mut cp).unwrap();
    let mut resume = args.to_vec();
    resume.push("--resume");
    let started = Instant::now();
    let o = jko().args(&resume).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("max_halvings") && err.contains("checkpoint"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Finite potential values whose energy overflows (U ~ 1.6e308 times a
/// mass of 2): refused before anything is written, naming the potential,
/// where energy.csv used to start with `inf`.
#[test]
fn an_eulerian_run_with_an_overflowing_energy_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
dimension = 1
time_step = 0.01
steps = 2
[grid]
lower = [-5.0]
upper = [5.0]
cells = [32]
[[species]]
name = "u"
mass = 2.0
particles = 100
potential = { kind = "quadratic", center = [200.0], stiffness = 8e303 }
initial = { kind = "gaussian", mean = [0.0], std = 1.0 }
"#;
    let scen = write(tmp.path(), "s.toml", text);
    let out = tmp.path().join("out");
    let o = jko()
        .args([
            "eulerian",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    // Refused at load (a bound on the keys) or by the solver (the energy).
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("potential") || err.contains("stiffness") || err.contains("center"),
        "{err}"
    );
    assert!(!out.join("energy.csv").exists(), "{err}");
}
