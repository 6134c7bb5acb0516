//! The `jko` binary end to end: output columns (SPEC §5) and bad input.

use std::path::Path;

use crate::support::run::{jko, outputs, records, stderr, write};

fn vec_of(d: usize, v: f64) -> String {
    format!("[{}]", vec![format!("{v:?}"); d].join(", "))
}

fn small_scenario(d: usize) -> String {
    format!(
        r#"
dimension = {d}
time_step = 0.01
steps = 5
output_every = 2
seed = 4
[coupling]
strength = 1.0
method = "direct"
softening = 0.1
[[species]]
name = "u"
charge = 1.0
particles = 30
potential = {{ kind = "quadratic", center = {z}, stiffness = 1.0 }}
initial = {{ kind = "gaussian", mean = {z}, std = 0.5 }}
[[species]]
name = "v"
charge = -1.0
particles = 20
initial = {{ kind = "uniform", lower = {lo}, upper = {hi} }}
"#,
        z = vec_of(d, 0.0),
        lo = vec_of(d, -1.0),
        hi = vec_of(d, 1.0),
    )
}

#[test]
fn output_columns_match_the_spec_in_every_dimension() {
    for d in 1..=3usize {
        let tmp = tempfile::tempdir().unwrap();
        let scen = write(tmp.path(), "s.toml", &small_scenario(d));
        let out = tmp.path().join("out");
        let st = jko()
            .args([
                "run",
                scen.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-q",
            ])
            .status()
            .unwrap();
        assert!(st.success());
        let axes = ["x", "y", "z"];
        let mut want: Vec<&str> = vec!["step", "time", "species", "id"];
        want.extend_from_slice(&axes[..d]);
        want.extend_from_slice(&["weight", "density"]);
        let mut rdr = csv::Reader::from_path(out.join("particles.csv")).unwrap();
        assert_eq!(
            rdr.headers().unwrap().iter().collect::<Vec<_>>(),
            want,
            "d = {d}"
        );
        let mut steps = std::collections::BTreeMap::<u64, usize>::new();
        for r in rdr.records() {
            let r = r.unwrap();
            *steps.entry(r[0].parse().unwrap()).or_default() += 1;
            for c in [1, 4, 4 + d, 5 + d] {
                let v: f64 = r[c].parse().unwrap();
                assert!(v.is_finite());
            }
            let w: f64 = r[4 + d].parse().unwrap();
            assert!(w == 1.0 / 30.0 || w == 1.0 / 20.0);
        }
        // Step 0, every output_every-th step, and the last; all 50 particles each.
        assert_eq!(steps.keys().copied().collect::<Vec<_>>(), vec![0, 2, 4, 5]);
        assert!(steps.values().all(|&c| c == 50));

        let mut rdr = csv::Reader::from_path(out.join("energy.csv")).unwrap();
        assert_eq!(
            rdr.headers().unwrap().iter().collect::<Vec<_>>(),
            [
                "step",
                "time",
                "energy",
                "diffusion",
                "potential",
                "interaction",
                "w2_step",
                "iterations",
                "gradient_norm"
            ]
        );
        let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 6);
        for (n, r) in rows.iter().enumerate() {
            assert_eq!(r[0].parse::<u64>().unwrap(), n as u64);
            let parts: Vec<f64> = (2..6).map(|c| r[c].parse().unwrap()).collect();
            // energy = diffusion + potential + interaction, as written (round-trip exact).
            assert_eq!(parts[0], parts[1] + parts[2] + parts[3]);
            let _: u64 = r[7].parse().unwrap();
        }
        // No temporary files remain.
        for e in std::fs::read_dir(&out).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(!name.ends_with(".partial"), "{name}");
        }
    }
}

/// The outputs of `jko run` on `text` with `threads` rayon threads.
fn run_bytes(dir: &Path, name: &str, text: &str, threads: usize) -> (Vec<u8>, Vec<u8>) {
    let scen = write(dir, &format!("{name}.toml"), text);
    let out = dir.join(format!("{name}_t{threads}"));
    let st = jko()
        .env("RAYON_NUM_THREADS", threads.to_string())
        .args([
            "run",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    (
        std::fs::read(out.join("particles.csv")).unwrap(),
        std::fs::read(out.join("energy.csv")).unwrap(),
    )
}

/// Same scenario and seed: byte-identical output, on 1 or 2 threads, with the
/// direct, tree (2D, 3D) and sorted (1D) couplings: every sum over particles
/// is reduced in fixed chunks combined in order. A different seed differs.
/// (A rerun on the same thread count is checked against recorded bytes by
/// `same_bytes` and under MPI by `a_rerun_on_two_ranks_writes_the_same_bytes`.)
#[test]
fn same_seed_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    for d in 1..=3 {
        // The coupling backends, and the densities on the mesh.
        for method in ["direct", "tree", "mesh"] {
            // Enough particles for several parallel chunks (util::parallel::CHUNK
            // = 1024), three steps: every evaluation crosses the chunks.
            let text = small_scenario(d)
                .replace("particles = 30", "particles = 3000")
                .replace("steps = 5", "steps = 3");
            let text = match method {
                "mesh" => text.replace("seed = 4", "seed = 4\n[density]\nmethod = \"mesh\""),
                _ => text.replace("method = \"direct\"", &format!("method = \"{method}\"")),
            };
            let name = format!("d{d}_{method}");
            let one = run_bytes(tmp.path(), &name, &text, 1);
            let two = run_bytes(tmp.path(), &name, &text, 2);
            assert!(one == two, "d = {d}, {method}: 1 and 2 threads differ");
            if method == "direct" {
                let other = run_bytes(
                    tmp.path(),
                    &format!("{name}_seed"),
                    &text.replace("seed = 4", "seed = 5"),
                    2,
                );
                assert!(
                    other.0 != one.0,
                    "d = {d}: another seed gave the same particles"
                );
            }
        }
    }
}

/// Run the binary on a bad input; it must fail with `code` and a message
/// containing every one of `needles`.
fn expect_failure(args: &[&str], code: i32, needles: &[&str]) {
    let out = jko().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "args {args:?}: stderr {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "args {args:?}: `{n}` not in: {stderr}");
    }
}

/// The scenario text with `from` replaced by `to` must be refused, naming `needles`.
fn bad_scenario(from: &str, to: &str, needles: &[&str]) {
    let good = small_scenario(2);
    assert!(
        good.contains(from),
        "test bug: `{from}` not in the scenario"
    );
    refused_run("bad.toml", &good.replacen(from, to, 1), needles);
}

/// `jko run` on the scenario `text` (written as `name`) must exit 2 with a
/// message naming the file and every one of `needles`, and write no output.
fn refused_run(name: &str, text: &str, needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let scen = write(tmp.path(), name, text);
    let out = tmp.path().join("out");
    let mut all = vec![name];
    all.extend_from_slice(needles);
    expect_failure(
        &[
            "run",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ],
        2,
        &all,
    );
    assert!(
        !out.exists(),
        "a refused run leaves no output directory behind"
    );
}

/// A cloud that fits, with a bandwidth whose neighbour lists would not (1e6
/// particles, each kernel holding all of them: ~1e13 bytes): refused once
/// the cloud is drawn, before any list is built, naming the bandwidths.
/// (`method = "auto"` would take the mesh, which fits.)
#[test]
fn neighbour_lists_that_cannot_fit_are_refused_before_they_are_built() {
    let text = small_scenario(2)
        .replacen("particles = 30", "particles = 1000000", 1)
        .replacen(
            "seed = 4",
            "seed = 4\n[density]\nbandwidth = 5.0\nmethod = \"neighbours\"",
            1,
        );
    refused_run(
        "wide.toml",
        &text,
        &[
            "species.particles",
            "density estimates",
            "neighbour rule's lists",
            "bandwidths",
            "available",
        ],
    );
}

#[test]
fn bad_scenarios_are_refused_with_a_clear_message() {
    bad_scenario(
        "kind = \"gaussian\",",
        "kind = \"gaussian\", sampling = \"sobol\",",
        &[
            "species[0].initial.sampling",
            "\"random\" or \"quasi\"",
            "sobol",
        ],
    );
    bad_scenario(
        "kind = \"gaussian\",",
        "kind = \"gaussian\", sampling = 1,",
        &["species[0].initial.sampling"],
    );
    bad_scenario(
        "time_step = 0.01",
        "time_step = -0.01",
        &["time_step", "positive"],
    );
    bad_scenario(
        "time_step = 0.01",
        "time_step = nan",
        &["time_step", "finite"],
    );
    bad_scenario(
        "dimension = 2",
        "dimension = 4",
        &["dimension", "1, 2 or 3"],
    );
    bad_scenario("seed = 4", "seed = 4\nsede = 5", &["sede"]);
    bad_scenario("steps = 5", "steps = [", &["TOML"]);
    bad_scenario(
        "stiffness = 1.0 }",
        "stiffness = 1.0, stifness = 2.0 }",
        &["species[0].potential", "stifness"],
    );
    bad_scenario(
        "std = 0.5 }",
        "std = 0.5, sd = 1 }",
        &["species[0].initial", "sd"],
    );
    bad_scenario(
        "mean = [0.0, 0.0]",
        "mean = [0.0]",
        &["species[0].initial.mean", "2 component"],
    );
    bad_scenario(
        "kind = \"quadratic\"",
        "kind = \"cubic\"",
        &["species[0].potential.kind", "cubic"],
    );
    bad_scenario(
        "kind = \"uniform\"",
        "kind = \"unifrom\"",
        &["species[1].initial.kind", "unifrom"],
    );
    bad_scenario("particles = 30\n", "", &["species[0].particles", "missing"]);
    bad_scenario(
        "particles = 30",
        "particles = 0",
        &["species[0].particles", "positive"],
    );
    bad_scenario(
        "name = \"v\"",
        "name = \"u\"",
        &["species[1].name", "duplicate"],
    );
    bad_scenario(
        "name = \"v\"",
        "name = \"v w\"",
        &["species[1].name", "valid species name"],
    );
    bad_scenario(
        "charge = -1.0",
        "charge = -1.0\nexponent = 0.5",
        &["species[1].exponent", ">= 1"],
    );
    bad_scenario(
        "softening = 0.1",
        "softening = 0.0",
        &["coupling.softening", "> 0"],
    );
    bad_scenario(
        "method = \"direct\"",
        "method = \"fast\"",
        &["coupling.method", "fast"],
    );
    bad_scenario("output_every = 2", "output_every = 0", &["output_every"]);
    bad_scenario(
        "std = 0.5",
        "std = -0.5",
        &["species[0].initial.std", "positive"],
    );
    bad_scenario(
        "upper = [1.0, 1.0]",
        "upper = [-2.0, 1.0]",
        &["species[1].initial.upper", "exceed"],
    );
    bad_scenario(
        "seed = 4",
        "seed = 4\n[density]\nbandwidth = \"wide\"",
        &["density.bandwidth", "auto"],
    );
    bad_scenario(
        "seed = 4",
        "seed = 4\n[density]\nbandwidth = -1.0",
        &["density.bandwidth", "positive"],
    );
    bad_scenario(
        "seed = 4",
        "seed = 4\n[density]\nmethod = \"grid\"",
        &["density.method", "\"grid\"", "neighbours", "mesh"],
    );
    bad_scenario("steps = 5", "steps = -3", &["steps", ">= 0"]);
    bad_scenario(
        "seed = 4",
        "seed = 4\n[solver]\ntolerance = 2.0",
        &["solver.tolerance", "< 1"],
    );
    bad_scenario(
        "seed = 4",
        "seed = 4\n[solver]\nmax_halvings = 50",
        &["solver.max_halvings", "at most 20"],
    );
    bad_scenario(
        "seed = 4",
        "seed = 4\non_collapse = \"explode\"",
        &["on_collapse", "explode"],
    );
    bad_scenario(
        "charge = -1.0",
        "charge = inf",
        &["species[1].charge", "finite"],
    );
    // Beyond what any machine holds: refused by the count check...
    bad_scenario(
        "particles = 30",
        "particles = 1000000000000",
        &["species[0].particles"],
    );
    // ... or by the memory estimate, before anything is allocated.
    bad_scenario(
        "particles = 30",
        "particles = 2000000000",
        &["species.particles", "of memory", "available"],
    );
    bad_scenario(
        "seed = 4",
        "seed = 4\n[outputs]\nevery = 3",
        &["unknown field `outputs`"],
    );
    bad_scenario(
        "seed = 4",
        "seed = 4\n[output]\nevery = 3",
        &["unknown field `every`, expected `vtk`"],
    );
    bad_scenario(
        "softening = 0.1",
        "softening = 0.1\naccuracy = 2.0",
        &["coupling.accuracy"],
    );
    bad_scenario(
        "stiffness = 1.0 }",
        "stiffness = [1.0, 2.0, 3.0] }",
        &["species[0].potential.stiffness", "2 component"],
    );
    bad_scenario(
        "kind = \"quadratic\", center = [0.0, 0.0], stiffness = 1.0",
        "kind = \"double_well\", radius = -1.0, depth = 1.0",
        &["species[0].potential.radius", "positive"],
    );
}

#[test]
fn missing_or_unreadable_scenario() {
    expect_failure(
        &["run", "no/such/file.toml", "--out", "/tmp/unused"],
        2,
        &["no/such/file.toml", "cannot open"],
    );
    let tmp = tempfile::tempdir().unwrap();
    expect_failure(
        &["run", tmp.path().to_str().unwrap(), "--out", "/tmp/unused"],
        2,
        &["not a regular file"],
    );
}

/// A scenario whose species "u" starts from a particle file with `rows`.
fn bad_particle_file(header: &str, rows: &[&str], extra: &str, needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = header.to_string() + "\n";
    for r in rows {
        text += r;
        text += "\n";
    }
    write(tmp.path(), "cloud.csv", &text);
    let scen = small_scenario(2)
        .replacen("particles = 30\n", extra, 1)
        .replacen(
            "initial = { kind = \"gaussian\", mean = [0.0, 0.0], std = 0.5 }",
            "initial = { kind = \"csv\", path = \"cloud.csv\" }",
            1,
        );
    let scen = write(tmp.path(), "s.toml", &scen);
    let out = tmp.path().join("out");
    let mut all = vec!["cloud.csv"];
    all.extend_from_slice(needles);
    expect_failure(
        &[
            "run",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ],
        2,
        &all,
    );
}

#[test]
fn bad_particle_files_are_refused_with_a_clear_message() {
    let h = "step,time,species,id,x,y,weight,density";
    let ok = "0,0,u,0,0.1,0.2,0.5,1.0";
    let ok2 = "0,0,u,1,0.3,0.2,0.5,1.0";
    bad_particle_file(h, &[], "", &["no particle rows"]);
    bad_particle_file(
        h,
        &[ok, "0,0,u,1,NaN,0.2,0.5,1.0"],
        "",
        &["line 3", "`x`", "finite"],
    );
    bad_particle_file(
        h,
        &[ok, "0,0,u,1,abc,0.2,0.5,1.0"],
        "",
        &["line 3", "not a number"],
    );
    bad_particle_file(
        h,
        &[ok, "0,0,u,1,0.3,0.2,-0.5,1.0"],
        "",
        &["line 3", "weight", "positive"],
    );
    bad_particle_file(h, &[ok, "0,0,u,0,0.3,0.2,0.5,1.0"], "", &["duplicate id 0"]);
    bad_particle_file(
        "step,time,species,id,x,weight",
        &[ok],
        "",
        &["missing coordinate column `y`"],
    );
    bad_particle_file(
        "step,time,species,id,x,y,z,weight",
        &["0,0,u,0,0.1,0.2,0.3,0.5"],
        "",
        &["`z`", "dimension is 2"],
    );
    bad_particle_file(
        "step,time,species,id,x,y,density",
        &["0,0,u,0,0.1,0.2,1"],
        "",
        &["missing required column `weight`"],
    );
    bad_particle_file(h, &[ok, "0,0,u,1,0.3"], "", &["line 3"]);
    bad_particle_file(
        h,
        &["0,0,w,0,0.1,0.2,0.5,1.0"],
        "",
        &["no rows for species \"u\""],
    );
    bad_particle_file(
        h,
        &[ok, ok2],
        "particles = 3\n",
        &["species[0].particles", "2 rows"],
    );
    bad_particle_file(
        h,
        &[ok, ok2],
        "mass = 2.0\n",
        &["species[0].mass", "sum to 1"],
    );
    bad_particle_file(
        h,
        &[ok, "-1,0,u,1,0.3,0.2,0.5,1.0"],
        "",
        &["line 3", "`step`"],
    );
    bad_particle_file(
        h,
        &[ok, "0,0,u,1,0.3,0.2,inf,1.0"],
        "",
        &["line 3", "`weight`", "finite"],
    );
    bad_particle_file(
        h,
        &[ok, "0,0,u,1,0.3,0.2,0.0,1.0"],
        "",
        &["line 3", "weight", "positive"],
    );
    bad_particle_file(h, &[ok, "0,0,u,1,0.3,0.2,0.5,1.0,7"], "", &["line 3"]);
    bad_particle_file(
        "step,time,species,id,x,x,y,weight",
        &["0,0,u,0,0.1,0.1,0.2,0.5"],
        "",
        &["`x` appears twice"],
    );
    bad_particle_file("", &[], "", &["empty file"]);
}

/// The particle file named by the scenario is missing, or is a directory.
#[test]
fn a_missing_particle_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("adir.csv")).unwrap();
    for (path, needle) in [
        ("nowhere.csv", "cannot open"),
        ("adir.csv", "not a regular file"),
    ] {
        let scen = small_scenario(2).replacen(
            "initial = { kind = \"gaussian\", mean = [0.0, 0.0], std = 0.5 }",
            &format!("initial = {{ kind = \"csv\", path = \"{path}\" }}"),
            1,
        );
        let scen = write(
            tmp.path(),
            "s.toml",
            &scen.replacen("particles = 30\n", "", 1),
        );
        let out = tmp.path().join("out");
        expect_failure(
            &[
                "run",
                scen.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-q",
            ],
            2,
            &[path, needle],
        );
    }
}

#[test]
fn an_earlier_run_is_not_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let scen = write(tmp.path(), "s.toml", &small_scenario(1));
    let out = tmp.path().join("out");
    let args = [
        "run",
        scen.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    assert!(jko().args(args).status().unwrap().success());
    expect_failure(&args, 4, &["already exists", "--force"]);
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(jko().args(&forced).status().unwrap().success());
}

#[test]
fn help_explains_with_an_example() {
    for args in [vec!["--help"], vec!["run", "--help"]] {
        let out = jko().args(&args).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example") && text.contains("jko run"),
            "{text}"
        );
    }
}

#[test]
fn eulerian_run_writes_the_spec_density_file() {
    let tmp = tempfile::tempdir().unwrap();
    let text = small_scenario(2)
        + "\n[grid]\nlower = [-3.0, -3.0]\nupper = [3.0, 3.0]\ncells = [24, 20]\n";
    let scen = write(tmp.path(), "s.toml", &text);
    let out = tmp.path().join("grid");
    let st = jko()
        .args([
            "eulerian",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let mut rdr = csv::Reader::from_path(out.join("density.csv")).unwrap();
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        ["step", "time", "species", "x", "y", "density"]
    );
    let mut per_step = std::collections::BTreeMap::<u64, f64>::new();
    for r in rdr.records() {
        let r = r.unwrap();
        let rho: f64 = r[5].parse().unwrap();
        assert!(rho >= 0.0);
        // Cell area 0.25 * 0.3: mass of each species is 1.
        *per_step.entry(r[0].parse().unwrap()).or_default() += rho * 0.25 * 0.3;
    }
    assert_eq!(
        per_step.keys().copied().collect::<Vec<_>>(),
        vec![0, 2, 4, 5]
    );
    for m in per_step.values() {
        assert!((m - 2.0).abs() < 1e-6, "total mass {m}");
    }
    let rows = csv::Reader::from_path(out.join("energy.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(rows, 6);

    // Without a [grid] section the run is refused with a message naming it.
    let scen = write(tmp.path(), "nogrid.toml", &small_scenario(2));
    expect_failure(
        &[
            "eulerian",
            scen.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        2,
        &["nogrid.toml", "grid", "missing"],
    );
}

#[test]
fn compare_puts_a_particle_run_beside_a_grid_run() {
    let tmp = tempfile::tempdir().unwrap();
    let text = small_scenario(1) + "\n[grid]\nlower = [-5.0]\nupper = [5.0]\ncells = [200]\n";
    let scen = write(tmp.path(), "s.toml", &text);
    let parts = tmp.path().join("parts");
    let grid = tmp.path().join("grid");
    for (cmd, out) in [("run", &parts), ("eulerian", &grid)] {
        let st = jko()
            .args([
                cmd,
                scen.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-q",
            ])
            .status()
            .unwrap();
        assert!(st.success(), "{cmd}");
    }
    let table = tmp.path().join("cmp.csv");
    let o = jko()
        .args([
            "compare",
            parts.to_str().unwrap(),
            grid.to_str().unwrap(),
            "--out",
            table.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!o.stdout.is_empty(), "a table on the terminal");
    let mut rdr = csv::Reader::from_path(&table).unwrap();
    let h: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let col = |name: &str| {
        h.iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    let (step, mass_diff, l1, w2) = (col("step"), col("mass_diff"), col("l1"), col("w2"));
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    // Steps 0, 2, 4, 5 for each of the two species.
    assert_eq!(rows.len(), 8);
    for r in &rows {
        // Both solvers conserve mass exactly (to rounding of the sums).
        assert!(r[mass_diff].parse::<f64>().unwrap().abs() < 1e-9);
        let (l1, w2): (f64, f64) = (r[l1].parse().unwrap(), r[w2].parse().unwrap());
        // Same initial law and a short run: close, but 30 and 20 random particles
        // against a grid (measured: L1 <= 0.33, W2 <= 0.15, largest at step 0 from
        // the sampling error; two unit masses that do not overlap are at L1 = 2).
        assert!(l1 < 0.5 && w2 < 0.2, "step {}: l1 {l1}, w2 {w2}", &r[step]);
    }

    // A run against itself: zero distances.
    let o = jko()
        .args([
            "compare",
            parts.to_str().unwrap(),
            parts.to_str().unwrap(),
            "--out",
            table.to_str().unwrap(),
            // The table of the first comparison is replaced only on request.
            "--force",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut rdr = csv::Reader::from_path(&table).unwrap();
    for r in rdr.records().map(Result::unwrap) {
        assert_eq!(r[l1].parse::<f64>().unwrap(), 0.0);
        assert_eq!(r[w2].parse::<f64>().unwrap(), 0.0);
    }

    // A directory that is not a run is refused, naming it.
    expect_failure(
        &[
            "compare",
            parts.to_str().unwrap(),
            tmp.path().to_str().unwrap(),
        ],
        2,
        &[tmp.path().to_str().unwrap()],
    );
}

/// `sampling = "quasi"` from a scenario file: step 0 of particles.csv is the
/// scrambled Sobol set through the inverse normal CDF, whose mean and
/// variance sit far inside the random draws' standard errors (0.5/sqrt(N)
/// = 0.011 for the mean at N = 2048); the same bytes on 1 and 2 threads; and
/// "random" is the default (the bytes of a scenario without the key).
#[test]
fn quasi_sampling_from_a_scenario_file() {
    let tmp = tempfile::tempdir().unwrap();
    let text = |sampling: &str| {
        format!(
            "dimension = 2\ntime_step = 0.01\nsteps = 1\nseed = 4\n[[species]]\nname = \"u\"\n\
             particles = 2048\npotential = {{ kind = \"quadratic\", stiffness = 1.0 }}\n\
             initial = {{ kind = \"gaussian\", mean = [1.0, -1.0], std = 0.5{sampling} }}\n"
        )
    };
    let run = |name: &str, sampling: &str, threads: &str| {
        let s = write(tmp.path(), &format!("{name}.toml"), &text(sampling));
        let out = tmp.path().join(name);
        let o = jko()
            .args([
                "run",
                s.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-q",
            ])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    let quasi = run("quasi", ", sampling = \"quasi\"", "1");
    let rows: Vec<_> = records(&quasi, "particles.csv")
        .into_iter()
        .filter(|r| &r[0] == "0")
        .collect();
    assert_eq!(rows.len(), 2048);
    for (a, m) in [(4, 1.0), (5, -1.0)] {
        let x: Vec<f64> = rows.iter().map(|r| r[a].parse().unwrap()).collect();
        let mean = x.iter().sum::<f64>() / 2048.0;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2048.0;
        assert!((mean - m).abs() < 1e-3, "mean {mean}");
        assert!((var / 0.25 - 1.0).abs() < 3e-3, "variance {var}");
    }
    let again = run("quasi2", ", sampling = \"quasi\"", "2");
    assert!(
        outputs(&quasi) == outputs(&again),
        "thread count changed the bytes"
    );
    let (random, default) = (
        run("random", ", sampling = \"random\"", "2"),
        run("default", "", "2"),
    );
    assert!(outputs(&random) == outputs(&default));
    assert!(outputs(&random) != outputs(&quasi));
}

/// A build without the `mpi` feature started by `mpirun` as several
/// processes (simulated here by the launcher's variables) refuses to run,
/// rather than let every process write DIR: status 2, said by rank 0 only.
/// (Under the `mpi` feature these variables make `jko run` start MPI, so
/// the test is for the default build; tests/run/mpi.rs has its MPI twin.)
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_under_mpirun_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write(tmp.path(), "s.toml", &small_scenario(2));
    let out = tmp.path().join("out");
    for (rank, said) in [("0", 1), ("1", 0)] {
        let o = jko()
            .args(["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .env("OMPI_COMM_WORLD_SIZE", "2")
            .env("OMPI_COMM_WORLD_RANK", rank)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(
            err.matches("built without the `mpi` feature").count(),
            said,
            "{err}"
        );
        assert!(!out.exists());
    }
    // A PMIx launcher (`srun --mpi=pmix`) says the rank only; Slurm adds the
    // size. Without it rank 0 cannot know (it runs, alone), rank 1 speaks.
    for (rank, slurm_size, said) in [
        ("0", Some("2"), 1),
        ("1", Some("2"), 0),
        ("1", None, 1),
        ("3", None, 0),
    ] {
        let mut cmd = jko();
        cmd.args(["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .env("PMIX_RANK", rank);
        if let Some(n) = slurm_size {
            cmd.env("SLURM_STEP_NUM_TASKS", n);
        }
        let o = cmd.output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "rank {rank}: {err}");
        assert_eq!(
            err.matches("built without the `mpi` feature").count(),
            said,
            "rank {rank}: {err}"
        );
        assert!(!out.exists());
    }
}
