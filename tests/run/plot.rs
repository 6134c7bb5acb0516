//! `jko plot` (src/plot): every kind of run directory draws to PNG and SVG,
//! the PNG has the asked size, the SVG holds the labels and legend entries,
//! a known 1D density is drawn through the right pixels, and bad input is
//! refused with exit status 2 and a message naming what is wrong.
//!
//! The runs are tiny (a few steps of a few hundred particles, a grid of a
//! few hundred cells), made once by the `jko` binary and shared by the tests.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use jko::plot::{Format, PanelKind, PlotOptions, StepChoice, render};

use crate::support::run::{jko, stderr, write};

/// 1D, two species, PNP with a [grid] so the same scenario runs on the grid.
const PNP_1D: &str = r#"
dimension = 1
time_step = 0.02
steps = 4
output_every = 2
seed = 1
[coupling]
strength = 1.0
softening = 0.01
[density]
bandwidth = 0.15
[[species]]
name = "u"
charge = 1.0
particles = 200
potential = { kind = "quadratic", center = [0.0], stiffness = 1.0 }
initial = { kind = "gaussian", mean = [0.5], std = 0.5 }
[[species]]
name = "v"
charge = -1.0
particles = 200
potential = { kind = "quadratic", center = [0.0], stiffness = 2.0 }
initial = { kind = "gaussian", mean = [-0.5], std = 0.6 }
[grid]
lower = [-4.0]
upper = [4.0]
cells = 160
"#;

/// 3D, one species in a quadratic well.
const OU_3D: &str = r#"
dimension = 3
time_step = 0.02
steps = 2
output_every = 1
seed = 2
[density]
bandwidth = 0.4
[[species]]
name = "p"
particles = 200
potential = { kind = "quadratic", center = [0.0, 0.0, 0.0], stiffness = 1.0 }
initial = { kind = "gaussian", mean = [0.3, 0.0, 0.0], std = 0.6 }
"#;

/// The shared runs: (1D particles, 1D grid twin, 1D grid equilibrium, 2D, 3D).
struct Runs {
    _root: tempfile::TempDir,
    p1: PathBuf,
    g1: PathBuf,
    eq1: PathBuf,
    p2: PathBuf,
    p3: PathBuf,
}

fn ok(o: Output, what: &str) {
    assert!(o.status.success(), "{what}: {}", stderr(&o));
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let s1 = write(r, "pnp_1d.toml", PNP_1D);
        let s2 = write(r, "pnp_2d.toml", &crate::support::run::pnp_2d(2, 1));
        let s3 = write(r, "ou_3d.toml", OU_3D);
        let (p1, g1, eq1, p2, p3) = (
            r.join("pnp1d"),
            r.join("pnp1d_grid"),
            r.join("pnp1d_eq"),
            r.join("pnp2d"),
            r.join("ou3d"),
        );
        for (cmd, scen, out) in [
            ("run", &s1, &p1),
            ("eulerian", &s1, &g1),
            ("run", &s2, &p2),
            ("run", &s3, &p3),
        ] {
            ok(
                jko()
                    .arg(cmd)
                    .arg(scen)
                    .arg("--out")
                    .arg(out)
                    .arg("-q")
                    .output()
                    .unwrap(),
                cmd,
            );
        }
        ok(
            jko()
                .args(["equilibrium", "--grid", "-q"])
                .arg(&s1)
                .arg("--out")
                .arg(&eq1)
                .output()
                .unwrap(),
            "equilibrium --grid",
        );
        Runs {
            _root: root,
            p1,
            g1,
            eq1,
            p2,
            p3,
        }
    })
}

fn plot(args: &[&OsStr]) -> Output {
    jko().arg("plot").args(args).output().unwrap()
}

/// Width, height and RGB pixels of a PNG.
fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "an RGB image");
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Every kind of run directory, alone and as a pair, through the binary to
/// PNG and SVG: the PNG decodes at the asked (or default) size, the SVG
/// holds the axis labels and legend entries.
#[test]
fn every_kind_of_run_plots_to_png_and_svg() {
    let r = runs();
    let out = tempfile::tempdir().unwrap();
    let cases: [(&str, &Path, Option<&Path>, &[&str]); 6] = [
        (
            "p1",
            &r.p1,
            None,
            &["u", "v", "density ρ_u", "time t", "pnp1d"],
        ),
        (
            "g1",
            &r.g1,
            None,
            &["u", "v", "density ρ_v", "pnp1d_grid", "grid"],
        ),
        (
            "eq1",
            &r.eq1,
            None,
            &["equilibrium", "initial", "step", "pnp1d_eq"],
        ),
        ("p2", &r.p2, None, &["ρ_u", "ρ_v", "x", "y", "pnp2d"]),
        ("p3", &r.p3, None, &["ρ_p", "mid-plane z = ", "ou3d"]),
        (
            "pair",
            &r.p1,
            Some(&r.g1),
            &["pnp1d (solid)", "pnp1d_grid (dashed)", "L1 = ", "W2 = "],
        ),
    ];
    for (name, a, b, must) in cases {
        for (ext, size) in [("png", Some("640x480")), ("svg", None)] {
            let file = out.path().join(format!("{name}.{ext}"));
            let mut args: Vec<&OsStr> = vec![a.as_os_str()];
            if let Some(b) = b {
                args.push(b.as_os_str());
            }
            args.extend([OsStr::new("--out"), file.as_os_str()]);
            if let Some(s) = size {
                args.extend([OsStr::new("--size"), OsStr::new(s)]);
            }
            let o = plot(&args);
            assert!(o.status.success(), "{name}.{ext}: {}", stderr(&o));
            let bytes = std::fs::read(&file).unwrap();
            if ext == "png" {
                let (w, h, _) = decode(&bytes);
                assert_eq!((w, h), (640, 480), "{name}: the asked size");
            } else {
                let svg = String::from_utf8(bytes).unwrap();
                assert!(svg.starts_with("<svg"), "{name}: {}", &svg[..60]);
                for m in must {
                    assert!(svg.contains(m), "{name}.svg lacks \"{m}\"");
                }
                for axis in ["energy", "iterations", "W2 step"] {
                    assert!(svg.contains(axis), "{name}.svg lacks \"{axis}\"");
                }
            }
        }
    }
    // 2D/3D pair: the particle run against itself, side by side, L1 = 0.
    let file = out.path().join("pair2d.png");
    let o = plot(&[
        r.p2.as_os_str(),
        r.p2.as_os_str(),
        OsStr::new("--out"),
        file.as_os_str(),
        OsStr::new("--steps"),
        OsStr::new("last"),
        OsStr::new("--species"),
        OsStr::new("v"),
        OsStr::new("--log"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, h, _) = decode(&std::fs::read(&file).unwrap());
    assert!(w >= 900 && h >= 700, "default size {w} x {h}");
}

/// The figures through the library: the panels the report lists, and a
/// pair's distances in the titles.
#[test]
fn the_report_lists_the_panels() {
    let r = runs();
    let opts = PlotOptions {
        steps: Some(vec![StepChoice::First, StepChoice::Last]),
        ..Default::default()
    };
    let (_, rep) = render(&r.p2, None, &opts, Format::Svg).unwrap();
    let maps = rep
        .panels
        .iter()
        .filter(|p| p.kind == PanelKind::Map)
        .count();
    let bars = rep
        .panels
        .iter()
        .filter(|p| p.kind == PanelKind::ColourBar)
        .count();
    assert_eq!(
        (maps, bars),
        (4, 2),
        "2 species x 2 steps, a bar per species"
    );
    for k in [PanelKind::Energy, PanelKind::W2Step, PanelKind::Iterations] {
        assert!(rep.panels.iter().any(|p| p.kind == k), "{k:?}");
    }
    let (_, rep) = render(&r.p1, Some(&r.g1), &PlotOptions::default(), Format::Svg).unwrap();
    let curves: Vec<_> = rep
        .panels
        .iter()
        .filter(|p| p.kind == PanelKind::Curves)
        .collect();
    assert_eq!(curves.len(), 2);
    for p in curves {
        assert!(
            p.title.contains("L1 = ") && p.title.contains("W2 = "),
            "{}",
            p.title
        );
        assert!(p.series.iter().any(|s| s.dashed) && p.series.iter().any(|s| !s.dashed));
    }
}

/// rho(x) = 1 + 0.5 sin(x) on [0, 2 pi] as a grid run: the drawn curve
/// passes through the pixels of (x, rho(x)), and not through a point off it.
#[test]
fn a_known_density_is_drawn_through_the_right_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("known");
    std::fs::create_dir(&run).unwrap();
    let rho = |x: f64| 1.0 + 0.5 * x.sin();
    let n = 400;
    let h = std::f64::consts::TAU / n as f64;
    let header = jko::io::output::density_header(1).join(",");
    let mut s = format!("{header}\n");
    for (step, time) in [(0u64, 0.0f64), (1, 0.5)] {
        for i in 0..n {
            let x = (i as f64 + 0.5) * h;
            // Step 0 is flat: only step 1 is asked for.
            let v = if step == 0 { 1.0 } else { rho(x) };
            writeln!(s, "{step},{time:?},u,{x:?},{v:?}").unwrap();
        }
    }
    std::fs::write(run.join("density.csv"), s).unwrap();
    let energy = jko::io::output::ENERGY_HEADER.join(",");
    std::fs::write(
        run.join("energy.csv"),
        format!("{energy}\n0,0.0,1.0,1.0,0,0,0,0,0\n1,0.5,0.9,0.9,0,0,0.1,3,0\n"),
    )
    .unwrap();

    let opts = PlotOptions {
        steps: Some(vec![StepChoice::Step(1)]),
        size: Some((1000, 700)),
        ..Default::default()
    };
    let (bytes, rep) = render(&run, None, &opts, Format::Png).unwrap();
    let (w, hgt, px) = decode(&bytes);
    assert_eq!((w, hgt), (1000, 700));
    let panel = rep
        .panels
        .iter()
        .find(|p| p.kind == PanelKind::Curves)
        .expect("a curve panel");
    assert_eq!(panel.series.len(), 1, "{:?}", panel.series);
    let colour = panel.series[0].colour;
    let at = |x: i32, y: i32| -> [u8; 3] {
        let k = 3 * (y as usize * w as usize + x as usize);
        [px[k], px[k + 1], px[k + 2]]
    };
    // The curve's colour within 2 pixels of (px, py) (the line is 2 wide).
    let near =
        |(cx, cy): (i32, i32)| (-2..=2).any(|dx| (-2..=2).any(|dy| at(cx + dx, cy + dy) == colour));
    let (y0, y1) = panel.y_range;
    for x in [0.4, 1.2, 1.6, 2.5, 3.3, 4.7, 5.6] {
        let p = panel.to_pixel(x, rho(x));
        assert!(
            near(p),
            "no curve pixel near ({x}, {}) -> {p:?}: {:?}",
            rho(x),
            at(p.0, p.1)
        );
        // A third of the axis above or below the curve: background.
        let off = rho(x) + if rho(x) > 0.5 * (y0 + y1) { -1.0 } else { 1.0 } * (y1 - y0) / 3.0;
        let q = panel.to_pixel(x, off);
        assert!(
            !near(q),
            "curve colour at ({x}, {off}) -> {q:?}, off the curve"
        );
    }
    // The colour is the curve's own: it covers a fair number of pixels.
    let count = px.chunks(3).filter(|c| *c == colour).count();
    assert!(count > 500, "{count} pixels of the curve's colour");
}

/// Bad input: exit status 2 and a message naming the directory or option.
#[test]
fn bad_input_exits_2_with_a_message() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.png");
    let missing = dir.path().join("no_such_run");
    let jpg = dir.path().join("f.jpg");
    let cases: Vec<(Vec<&OsStr>, &str)> = vec![
        (
            vec![missing.as_os_str(), OsStr::new("--out"), out.as_os_str()],
            "no_such_run",
        ),
        (
            vec![
                r.p1.as_os_str(),
                OsStr::new("--out"),
                out.as_os_str(),
                OsStr::new("--size"),
                OsStr::new("12x"),
            ],
            "--size",
        ),
        (
            vec![
                r.p1.as_os_str(),
                OsStr::new("--out"),
                out.as_os_str(),
                OsStr::new("--size"),
                OsStr::new("50x50"),
            ],
            "--size",
        ),
        (
            vec![
                r.p1.as_os_str(),
                OsStr::new("--out"),
                out.as_os_str(),
                OsStr::new("--species"),
                OsStr::new("u,w"),
            ],
            "--species",
        ),
        (
            vec![
                r.p1.as_os_str(),
                OsStr::new("--out"),
                out.as_os_str(),
                OsStr::new("--steps"),
                OsStr::new("0,x"),
            ],
            "--steps",
        ),
        (
            vec![
                r.p1.as_os_str(),
                OsStr::new("--out"),
                out.as_os_str(),
                OsStr::new("--steps"),
                OsStr::new("3"),
            ],
            "--steps",
        ),
        (
            vec![r.p1.as_os_str(), OsStr::new("--out"), jpg.as_os_str()],
            ".png or .svg",
        ),
    ];
    for (args, want) in cases {
        let o = plot(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(want),
            "{args:?}: message lacks \"{want}\": {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("internal error"),
            "{err}"
        );
    }
    assert!(!out.exists(), "nothing written on bad input");

    // A run still being written (files under their .partial names).
    let half = dir.path().join("half");
    std::fs::create_dir(&half).unwrap();
    for f in ["particles.csv", "energy.csv"] {
        std::fs::copy(r.p1.join(f), half.join(format!("{f}.partial"))).unwrap();
    }
    let o = plot(&[half.as_os_str(), OsStr::new("--out"), out.as_os_str()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not finished") && err.contains("particles.csv.partial"),
        "{err}"
    );

    // A run without energy.csv.
    let no_energy = dir.path().join("no_energy");
    std::fs::create_dir(&no_energy).unwrap();
    std::fs::copy(r.p1.join("particles.csv"), no_energy.join("particles.csv")).unwrap();
    let o = plot(&[no_energy.as_os_str(), OsStr::new("--out"), out.as_os_str()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("energy.csv"), "{err}");
}

/// An existing file is replaced only with --force; a file of the run never.
#[test]
fn the_output_is_not_overwritten_without_force() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.svg");
    std::fs::write(&out, "keep").unwrap();
    let o = plot(&[r.p3.as_os_str(), OsStr::new("--out"), out.as_os_str()]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep");
    let o = plot(&[
        r.p3.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
        OsStr::new("--force"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&out).unwrap().starts_with("<svg"));
    // Never over a file of the run, even with --force.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    for f in ["particles.csv", "energy.csv", "scenario.toml"] {
        std::fs::copy(r.p3.join(f), run.join(f)).unwrap();
    }
    let inside = run.join("particles.csv.svg");
    std::fs::write(&inside, "x").unwrap();
    let o = plot(&[
        run.as_os_str(),
        OsStr::new("--out"),
        inside.as_os_str(),
        OsStr::new("--force"),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("input"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "x");
}
