//! `jko compare`: distances between two runs (src/compare.rs).
//!
//! Runs are made by writing SPEC §5 files into temporary directories (exact
//! data with known distances), or by running the library.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jko::compare::{Comparison, compare_runs};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const AXES: [&str; 3] = ["x", "y", "z"];

/// Shortest round-trip text of a float (like the solver's files).
fn num(v: f64) -> String {
    // `{:?}` prints the shortest representation that reads back exactly.
    format!("{v:?}")
}

fn run_dir(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One particle frame: (step, time, species, positions, weights).
type PFrame = (u64, f64, &'static str, Vec<Vec<f64>>, Vec<f64>);

fn write_particles(dir: &Path, d: usize, frames: &[PFrame]) {
    let mut s = String::from("step,time,species,id,");
    for a in AXES.iter().take(d) {
        write!(s, "{a},").unwrap();
    }
    s.push_str("weight,density\n");
    for (step, time, sp, x, w) in frames {
        for (i, (p, wi)) in x.iter().zip(w).enumerate() {
            write!(s, "{step},{},{sp},{i},", num(*time)).unwrap();
            for v in p {
                write!(s, "{},", num(*v)).unwrap();
            }
            writeln!(s, "{},1.0", num(*wi)).unwrap();
        }
    }
    std::fs::write(dir.join("particles.csv"), s).unwrap();
}

/// energy.csv with the given (step, time, energy).
fn write_energy(dir: &Path, rows: &[(u64, f64, f64)]) {
    let mut s = String::from(
        "step,time,energy,diffusion,potential,interaction,w2_step,iterations,gradient_norm\n",
    );
    for (step, t, e) in rows {
        writeln!(s, "{step},{},{},{},0,0,0,0,0", num(*t), num(*e), num(*e)).unwrap();
    }
    std::fs::write(dir.join("energy.csv"), s).unwrap();
}

fn write_scenario(dir: &Path, d: usize, bandwidth: &str) {
    let zeros = format!("[{}]", vec!["0.0"; d].join(", "));
    let text = format!(
        "dimension = {d}\ntime_step = 0.1\nsteps = 1\n\n[density]\nbandwidth = {bandwidth}\n\n\
         [[species]]\nname = \"u\"\nparticles = 10\n\
         initial = {{ kind = \"gaussian\", mean = {zeros}, std = 1.0 }}\n"
    );
    std::fs::write(dir.join("scenario.toml"), text).unwrap();
}

/// A regular grid frame: cells `n` per axis from `lower` with spacing `h`,
/// density `f(cell center)`.
struct GFrame<'a> {
    step: u64,
    time: f64,
    species: &'a str,
    lower: Vec<f64>,
    h: Vec<f64>,
    n: Vec<usize>,
    f: &'a dyn Fn(&[f64]) -> f64,
}

fn write_density(dir: &Path, frames: &[GFrame]) {
    let d = frames[0].lower.len();
    let mut s = String::from("step,time,species,");
    for a in AXES.iter().take(d) {
        write!(s, "{a},").unwrap();
    }
    s.push_str("density\n");
    for g in frames {
        let total: usize = g.n.iter().product();
        for lin in 0..total {
            // Axis 0 slowest here (the reader must not care about the order).
            let mut rem = lin;
            let mut idx = vec![0; d];
            for a in (0..d).rev() {
                idx[a] = rem % g.n[a];
                rem /= g.n[a];
            }
            let c: Vec<f64> = (0..d)
                .map(|a| g.lower[a] + (idx[a] as f64 + 0.5) * g.h[a])
                .collect();
            write!(s, "{},{},{},", g.step, num(g.time), g.species).unwrap();
            for v in &c {
                write!(s, "{},", num(*v)).unwrap();
            }
            writeln!(s, "{}", num((g.f)(&c))).unwrap();
        }
    }
    std::fs::write(dir.join("density.csv"), s).unwrap();
}

/// Cell average of the N(m, s^2) density over [c - h/2, c + h/2], by 8-point
/// Gauss–Legendre (exact to rounding for h <= s/10).
fn gaussian_cell_average(c: f64, h: f64, m: f64, s: f64) -> f64 {
    const X: [f64; 4] = [
        0.183_434_642_495_649_8,
        0.525_532_409_916_329,
        0.796_666_477_413_626_7,
        0.960_289_856_497_536_3,
    ];
    const W: [f64; 4] = [
        0.362_683_783_378_362,
        0.313_706_645_877_887_3,
        0.222_381_034_453_374_5,
        0.101_228_536_290_376_3,
    ];
    let pdf = |x: f64| {
        (-(x - m) * (x - m) / (2.0 * s * s)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
    };
    let mut acc = 0.0;
    for k in 0..4 {
        acc += W[k] * (pdf(c + 0.5 * h * X[k]) + pdf(c - 0.5 * h * X[k]));
    }
    0.5 * acc
}

fn compare(a: &Path, b: &Path) -> Comparison {
    compare_runs(a, b).unwrap_or_else(|e| panic!("compare failed: {e}"))
}

fn err_text(a: &Path, b: &Path) -> String {
    match compare_runs(a, b) {
        Ok(c) => panic!("expected an error, got\n{c}"),
        Err(e) => {
            assert!(
                matches!(e, jko::Error::Input { .. }),
                "not an input error: {e:?}"
            );
            e.to_string()
        }
    }
}

fn gaussian_cloud(n: usize, d: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..d).map(|_| StandardNormal.sample(&mut rng)).collect())
        .collect();
    // Unequal weights summing to 1.
    let raw: Vec<f64> = (0..n)
        .map(|i| 1.0 + 0.5 * ((i as f64) * 0.7).sin())
        .collect();
    let total: f64 = raw.iter().sum();
    (x, raw.iter().map(|w| w / total).collect())
}

// ---------------------------------------------------------------------------

/// Two runs of the library from the same scenario (1D, automatic bandwidth,
/// and 2D, fixed bandwidth): every distance is exactly zero.
#[test]
fn identical_library_runs_have_zero_distances() {
    let tmp = tempfile::tempdir().unwrap();
    for (d, bw) in [(1usize, "\"auto\""), (2, "0.15")] {
        let zeros = format!("[{}]", vec!["0.0"; d].join(", "));
        let lo = format!("[{}]", vec!["-1.0"; d].join(", "));
        let hi = format!("[{}]", vec!["1.0"; d].join(", "));
        let text = format!(
            "dimension = {d}\ntime_step = 0.05\nsteps = 2\noutput_every = 1\nseed = 3\n\n\
             [density]\nbandwidth = {bw}\n\n\
             [[species]]\nname = \"p\"\ndiffusion = 1.0\nparticles = 300\n\
             potential = {{ kind = \"quadratic\", center = {zeros}, stiffness = 1.0 }}\n\
             initial = {{ kind = \"gaussian\", mean = {zeros}, std = 0.5 }}\n\n\
             [[species]]\nname = \"q\"\ndiffusion = 0.5\nparticles = 200\n\
             potential = {{ kind = \"quadratic\", center = {zeros}, stiffness = 2.0 }}\n\
             initial = {{ kind = \"uniform\", lower = {lo}, upper = {hi} }}\n",
        );
        let path = tmp.path().join(format!("s{d}.toml"));
        std::fs::write(&path, &text).unwrap();
        let scenario = jko::Scenario::from_toml(&text, &path).unwrap();
        let a = tmp.path().join(format!("a{d}"));
        let b = tmp.path().join(format!("b{d}"));
        let summary = jko::run_to_dir(
            &scenario,
            &a,
            jko::RunOptions {
                force: true,
                resume: false,
            },
            &mut (),
        )
        .unwrap();
        jko::run_to_dir(
            &scenario,
            &b,
            jko::RunOptions {
                force: true,
                resume: false,
            },
            &mut (),
        )
        .unwrap();
        let c = compare(&a, &b);
        println!("{c}");
        assert_eq!(c.dimension, d);
        assert_eq!(c.rows.len(), 3 * 2, "3 written steps x 2 species");
        assert_eq!(c.energy.len(), 3);
        for r in &c.rows {
            assert_eq!(r.mass_a, r.mass_b);
            assert_eq!(r.mean_distance, 0.0);
            assert_eq!(r.cov_distance, 0.0);
            assert_eq!(r.l1, 0.0);
            assert_eq!(r.energy_diff(), Some(0.0));
            assert!(!r.normalized);
            if d == 1 {
                assert_eq!(r.w1, Some(0.0));
                assert_eq!(r.w2, Some(0.0));
            } else {
                assert_eq!((r.w1, r.w2), (None, None));
            }
        }
        // The bandwidth used is the one the solver reported.
        let eps: Vec<f64> = c.a.bandwidths.values().copied().collect();
        assert_eq!(eps, summary.bandwidths, "species p, q in name order");
    }
}

/// Identical grid runs (1D and 2D): every distance is exactly zero.
#[test]
fn identical_grid_runs_have_zero_distances() {
    let tmp = tempfile::tempdir().unwrap();
    let f1 = |c: &[f64]| (-c[0] * c[0]).exp();
    let f2 = |c: &[f64]| (-c[0] * c[0] - 2.0 * c[1] * c[1]).exp() * (1.0 + 0.3 * c[0]).max(0.0);
    for (d, f) in [(1usize, &f1 as &dyn Fn(&[f64]) -> f64), (2, &f2)] {
        let (a, b) = (
            run_dir(tmp.path(), &format!("a{d}")),
            run_dir(tmp.path(), &format!("b{d}")),
        );
        for dir in [&a, &b] {
            let frames: Vec<GFrame> = [(0u64, 0.0), (10, 0.1)]
                .iter()
                .map(|&(step, time)| GFrame {
                    step,
                    time,
                    species: "u",
                    lower: vec![-3.0; d],
                    h: vec![0.1; d],
                    n: vec![60; d],
                    f,
                })
                .collect();
            write_density(dir, &frames);
            write_energy(dir, &[(0, 0.0, 1.5), (5, 0.05, 1.2), (10, 0.1, 1.0)]);
        }
        let c = compare(&a, &b);
        println!("{c}");
        assert_eq!(c.rows.len(), 2);
        assert_eq!(c.energy.len(), 3);
        for r in &c.rows {
            assert_eq!((r.mean_distance, r.cov_distance, r.l1), (0.0, 0.0, 0.0));
            assert_eq!(r.l1_cells, vec![60; d], "common grid = the runs' grid");
            if d == 1 {
                assert_eq!((r.w1, r.w2), (Some(0.0), Some(0.0)));
            }
            assert_eq!(r.energy_diff(), Some(0.0));
        }
    }
}

/// A cloud shifted by s with the same weights: W1 = W2 = |s|, mean_A - mean_B = -s,
/// covariance unchanged (1D); in 2D |dmean| = |s|.
#[test]
fn shifted_cloud() {
    let tmp = tempfile::tempdir().unwrap();
    let s = 0.37;
    let (x, w) = gaussian_cloud(2000, 1, 7);
    let xs: Vec<Vec<f64>> = x.iter().map(|p| vec![p[0] + s]).collect();
    let (a, b) = (run_dir(tmp.path(), "a"), run_dir(tmp.path(), "b"));
    write_particles(&a, 1, &[(0, 0.0, "u", x.clone(), w.clone())]);
    write_particles(&b, 1, &[(0, 0.0, "u", xs, w.clone())]);
    for dir in [&a, &b] {
        write_energy(dir, &[(0, 0.0, 2.0)]);
        write_scenario(dir, 1, "0.1");
    }
    let c = compare(&a, &b);
    println!("{c}");
    let r = &c.rows[0];
    let (w1, w2) = (r.w1.unwrap(), r.w2.unwrap());
    println!("W1 - s = {:e}, W2 - s = {:e}", w1 - s, w2 - s);
    assert!((w1 - s).abs() < 1e-12, "W1 = {w1}");
    assert!((w2 - s).abs() < 1e-12, "W2 = {w2}");
    assert!((r.mean_b[0] - r.mean_a[0] - s).abs() < 1e-12);
    assert!((r.mean_distance - s).abs() < 1e-12);
    assert!(r.cov_distance < 1e-12, "{}", r.cov_distance);
    assert!(!r.normalized);
    // Same law shifted by 0.37 ~ 0.4 std: the estimates overlap only partly.
    assert!(r.l1 > 0.2 && r.l1 < 2.0, "L1 = {}", r.l1);

    // Same in 2D along (s, -2s).
    let (x2, w2v) = gaussian_cloud(1000, 2, 8);
    let xs2: Vec<Vec<f64>> = x2.iter().map(|p| vec![p[0] + s, p[1] - 2.0 * s]).collect();
    let (a2, b2) = (run_dir(tmp.path(), "a2"), run_dir(tmp.path(), "b2"));
    write_particles(&a2, 2, &[(0, 0.0, "u", x2, w2v.clone())]);
    write_particles(&b2, 2, &[(0, 0.0, "u", xs2, w2v)]);
    for dir in [&a2, &b2] {
        write_energy(dir, &[(0, 0.0, 2.0)]);
        write_scenario(dir, 2, "0.1");
    }
    let c = compare(&a2, &b2);
    let r = &c.rows[0];
    assert!((r.mean_distance - s * 5f64.sqrt()).abs() < 1e-12);
    assert!(r.cov_distance < 1e-12);
    assert_eq!((r.w1, r.w2), (None, None));
}

/// Two 1D Gaussians on fine grids (exact cell averages, h = 0.01 on [-10, 10]):
/// W2^2 = (m1 - m2)^2 + (s1 - s2)^2, and W1 = |m1 - m2| for equal stds.
/// Tolerance: the piecewise-constant laws differ from the Gaussians by
/// O(h^2) in their quantiles (the cell's own variance h^2/12), so 1e-4 = h^2
/// absolute on W1 and W2^2.
#[test]
fn gaussian_grids_wasserstein() {
    let tmp = tempfile::tempdir().unwrap();
    let h = 0.01;
    let cases = [
        (0.0, 1.0, 0.5, 1.5),    // different stds
        (0.0, 0.8, 0.3333, 0.8), // equal stds, shift not a multiple of h
        (-1.2, 0.5, 1.7, 0.7),
    ];
    for (k, &(m1, s1, m2, s2)) in cases.iter().enumerate() {
        let (a, b) = (
            run_dir(tmp.path(), &format!("a{k}")),
            run_dir(tmp.path(), &format!("b{k}")),
        );
        for (dir, m, s) in [(&a, m1, s1), (&b, m2, s2)] {
            let f = move |c: &[f64]| gaussian_cell_average(c[0], h, m, s);
            write_density(
                dir,
                &[GFrame {
                    step: 0,
                    time: 0.0,
                    species: "u",
                    lower: vec![-10.0],
                    h: vec![h],
                    n: vec![2000],
                    f: &f,
                }],
            );
            write_energy(dir, &[(0, 0.0, 0.0)]);
        }
        let c = compare(&a, &b);
        let r = &c.rows[0];
        let (w1, w2) = (r.w1.unwrap(), r.w2.unwrap());
        let w2sq_exact = (m1 - m2) * (m1 - m2) + (s1 - s2) * (s1 - s2);
        println!(
            "case {k}: W2^2 = {:.10} exact {w2sq_exact:.10} (err {:.2e}); W1 = {w1:.10}; masses {} {}",
            w2 * w2,
            w2 * w2 - w2sq_exact,
            r.mass_a,
            r.mass_b
        );
        assert!(
            (w2 * w2 - w2sq_exact).abs() < h * h,
            "W2^2 = {} vs {w2sq_exact}",
            w2 * w2
        );
        if s1 == s2 {
            println!("case {k}: W1 err {:.2e}", w1 - (m1 - m2).abs());
            assert!((w1 - (m1 - m2).abs()).abs() < h * h, "W1 = {w1}");
        }
        assert!(w1 <= w2 + 1e-12, "W1 <= W2");
        // Means and variances by the midpoint rule.
        println!(
            "case {k}: means {} {}, var B {}",
            r.mean_a[0], r.mean_b[0], r.cov_b[0]
        );
        // The box [-10, 10] cuts tails beyond 6.3 std (case 0): 1e-9 of mean shift.
        assert!((r.mean_a[0] - m1).abs() < 1e-8 && (r.mean_b[0] - m2).abs() < 1e-8);
        assert!((r.cov_b[0] - s2 * s2).abs() < h * h);
    }
}

/// Uniform boxes on grids overlapping by a known fraction: L1 = 2 (1 - overlap).
/// Same lattice: exact to rounding. Different spacings (A: 0.05, B: 0.02, the
/// common grid is B's, A is interpolated): A's interpolated edge is a linear
/// ramp over one A cell, symmetric about the true edge, and it lies where B is
/// constant (0 or 1), so its L1 against B equals the sharp edge's: exact to
/// rounding as well (tolerance 1e-12). A wrong interpolation, spacing or box
/// breaks this.
#[test]
fn l1_of_overlapping_boxes() {
    let tmp = tempfile::tempdir().unwrap();
    let inside = |c: &[f64], lo: &[f64], hi: &[f64]| -> f64 {
        if c.iter().zip(lo).zip(hi).all(|((x, l), u)| x > l && x < u) {
            1.0
        } else {
            0.0
        }
    };
    // Box edges on both lattices (h = 0.05 and 0.02 from -0.5).
    // 1D: [0,1] vs [0.2,1.2], overlap 0.8 -> L1 = 0.4.
    // 2D: [0,1]^2 vs [0.5,1.5]x[0.2,1.2], overlap 0.5 * 0.8 -> L1 = 1.2.
    // (d, lower A, upper A, lower B, upper B, expected L1)
    type Case = (usize, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, f64);
    let cases: [Case; 2] = [
        (1, vec![0.0], vec![1.0], vec![0.2], vec![1.2], 0.4),
        (
            2,
            vec![0.0, 0.0],
            vec![1.0, 1.0],
            vec![0.5, 0.2],
            vec![1.5, 1.2],
            1.2,
        ),
    ];
    for (d, lo_a, hi_a, lo_b, hi_b, expected) in cases {
        for (label, ha, hb) in [
            ("same lattice", 0.05, 0.05),
            ("different spacings", 0.05, 0.02),
        ] {
            let tol = 1e-12;
            let (a, b) = (
                run_dir(tmp.path(), &format!("a{d}{ha}{hb}")),
                run_dir(tmp.path(), &format!("b{d}{ha}{hb}")),
            );
            let (la, ua, lb, ub) = (lo_a.clone(), hi_a.clone(), lo_b.clone(), hi_b.clone());
            let fa = move |c: &[f64]| inside(c, &la, &ua);
            let fb = move |c: &[f64]| inside(c, &lb, &ub);
            let na = (2.5f64 / ha).round() as usize;
            let nb = (2.5f64 / hb).round() as usize;
            write_density(
                &a,
                &[GFrame {
                    step: 0,
                    time: 0.0,
                    species: "u",
                    lower: vec![-0.5; d],
                    h: vec![ha; d],
                    n: vec![na; d],
                    f: &fa,
                }],
            );
            write_density(
                &b,
                &[GFrame {
                    step: 0,
                    time: 0.0,
                    species: "u",
                    lower: vec![-0.5; d],
                    h: vec![hb; d],
                    n: vec![nb; d],
                    f: &fb,
                }],
            );
            for dir in [&a, &b] {
                write_energy(dir, &[(0, 0.0, 0.0)]);
            }
            let c = compare(&a, &b);
            let r = &c.rows[0];
            println!(
                "{d}D {label}: L1 = {:.12} expected {expected} (err {:.2e})",
                r.l1,
                r.l1 - expected
            );
            assert!(
                (r.l1 - expected).abs() <= tol,
                "{d}D {label}: L1 = {}",
                r.l1
            );
            assert!(
                (r.mass_a - 1.0).abs() < 1e-12 && (r.mass_b - 1.0).abs() < 1e-12,
                "masses {} {}",
                r.mass_a,
                r.mass_b
            );
            // The finer spacing, as inferred from the cell centers.
            assert!(r.l1_spacing.iter().all(|&h| (h - hb).abs() < 1e-12 * hb));
        }
    }
}

/// A particle run against a grid of the same law (N(0,1) in 1D; the particle
/// side uses the kernel estimate with the run's fixed bandwidth
/// eps = 0.5 N^(-1/5)): L1 small and decreasing from N = 1e3 to 1e4; W1, W2 small.
#[test]
fn particles_against_grid_of_same_law() {
    let tmp = tempfile::tempdir().unwrap();
    let h = 0.01;
    let g = run_dir(tmp.path(), "grid");
    let f = |c: &[f64]| gaussian_cell_average(c[0], h, 0.0, 1.0);
    write_density(
        &g,
        &[GFrame {
            step: 0,
            time: 0.0,
            species: "u",
            lower: vec![-8.0],
            h: vec![h],
            n: vec![1600],
            f: &f,
        }],
    );
    write_energy(&g, &[(0, 0.0, 0.0)]);
    let mut l1s = Vec::new();
    for n in [1_000usize, 10_000] {
        let p = run_dir(tmp.path(), &format!("p{n}"));
        let (x, _) = gaussian_cloud(n, 1, 11);
        let w = vec![1.0 / n as f64; n];
        write_particles(&p, 1, &[(0, 0.0, "u", x, w)]);
        write_energy(&p, &[(0, 0.0, 0.0)]);
        let eps = 0.5 * (n as f64).powf(-0.2);
        write_scenario(&p, 1, &num(eps));
        let c = compare(&p, &g);
        println!("{c}");
        let r = &c.rows[0];
        assert_eq!(c.a.bandwidths["u"], eps);
        println!(
            "N = {n}: L1 = {:.5}, W1 = {:.5}, W2 = {:.5}",
            r.l1,
            r.w1.unwrap(),
            r.w2.unwrap()
        );
        assert!(r.l1 < 0.2, "N = {n}: L1 = {}", r.l1);
        assert!(r.w1.unwrap() < 0.1 && r.w2.unwrap() < 0.1);
        l1s.push(r.l1);
    }
    assert!(l1s[1] < 0.7 * l1s[0], "L1 must decrease with N: {l1s:?}");
}

/// The CSV: header in the documented order, one row per step and species,
/// values that read back exactly; written atomically.
#[test]
fn csv_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, w) = gaussian_cloud(500, 1, 3);
    let xs: Vec<Vec<f64>> = x.iter().map(|p| vec![p[0] + 0.25]).collect();
    let (a, b) = (run_dir(tmp.path(), "a"), run_dir(tmp.path(), "b"));
    write_particles(
        &a,
        1,
        &[
            (0, 0.0, "u", x.clone(), w.clone()),
            (2, 0.2, "u", x.clone(), w.clone()),
        ],
    );
    write_particles(
        &b,
        1,
        &[
            (0, 0.0, "u", xs.clone(), w.clone()),
            (2, 0.2, "u", xs, w.clone()),
        ],
    );
    write_energy(&a, &[(0, 0.0, 2.0), (1, 0.1, 1.5), (2, 0.2, 1.25)]);
    write_energy(&b, &[(0, 0.0, 1.0), (1, 0.1, 1.0), (2, 0.2, 1.0)]);
    for dir in [&a, &b] {
        write_scenario(dir, 1, "\"auto\"");
    }
    let c = compare(&a, &b);
    let out = tmp.path().join("cmp.csv");
    c.write_csv(&out).unwrap();
    assert!(!tmp.path().join("cmp.csv.partial").exists());
    let text = std::fs::read_to_string(&out).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, Comparison::csv_header(1));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    for (rec, r) in rows.iter().zip(&c.rows) {
        assert_eq!(rec[col("w1")].parse::<f64>().unwrap(), r.w1.unwrap());
        assert_eq!(rec[col("l1")].parse::<f64>().unwrap(), r.l1);
        assert!((rec[col("mean_diff_x")].parse::<f64>().unwrap() + 0.25).abs() < 1e-12);
        assert_eq!(&rec[col("normalized")], "false");
    }
    assert_eq!(&rows[0][col("energy_diff")], "1.0");
    assert_eq!(&rows[1][col("energy_diff")], "0.25");
    assert_eq!(c.energy.len(), 3);
    assert_eq!(c.max_energy_diff(), Some(1.0));
    // The table mentions every row and the energy summary.
    let table = c.to_string();
    assert!(
        table.contains("W1") && table.contains("max |E_A - E_B| = 1.0000e0"),
        "{table}"
    );
}

/// Different masses: W1/W2 compare normalized laws, and say so.
#[test]
fn different_masses_are_normalized_for_wasserstein() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, w) = gaussian_cloud(300, 1, 5);
    let w2: Vec<f64> = w.iter().map(|v| 2.0 * v).collect();
    let (a, b) = (run_dir(tmp.path(), "a"), run_dir(tmp.path(), "b"));
    write_particles(&a, 1, &[(0, 0.0, "u", x.clone(), w)]);
    write_particles(&b, 1, &[(0, 0.0, "u", x, w2)]);
    for dir in [&a, &b] {
        write_energy(dir, &[(0, 0.0, 0.0)]);
        write_scenario(dir, 1, "0.2");
    }
    let c = compare(&a, &b);
    let r = &c.rows[0];
    assert!(r.normalized);
    assert!((r.mass_b - 2.0 * r.mass_a).abs() < 1e-12);
    assert!(
        r.w1.unwrap() < 1e-12 && r.w2.unwrap() < 1e-12,
        "same law after normalization"
    );
    assert!(
        (r.l1 - 1.0).abs() < 1e-3,
        "L1 = int |rho - 2 rho| = 1, got {}",
        r.l1
    );
    assert!(c.to_string().contains("normalized"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = run_dir(tmp.path(), "ok1");
    let (x, w) = gaussian_cloud(50, 1, 1);
    write_particles(&ok, 1, &[(0, 0.0, "u", x.clone(), w.clone())]);
    write_energy(&ok, &[(0, 0.0, 0.0)]);
    write_scenario(&ok, 1, "0.2");

    // Missing directory.
    let missing = tmp.path().join("nope");
    let e = err_text(&missing, &ok);
    println!("{e}");
    assert!(e.contains("nope") && e.contains("cannot open"), "{e}");

    // A directory without run files.
    let empty = run_dir(tmp.path(), "empty");
    let e = err_text(&ok, &empty);
    println!("{e}");
    assert!(
        e.contains("empty") && e.contains("neither particles.csv"),
        "{e}"
    );

    // Missing energy.csv.
    let no_energy = run_dir(tmp.path(), "no_energy");
    write_particles(&no_energy, 1, &[(0, 0.0, "u", x.clone(), w.clone())]);
    let e = err_text(&ok, &no_energy);
    println!("{e}");
    assert!(e.contains("energy.csv") && e.contains("missing"), "{e}");

    // Dimension mismatch.
    let two = run_dir(tmp.path(), "two");
    let (x2, w2) = gaussian_cloud(50, 2, 1);
    write_particles(&two, 2, &[(0, 0.0, "u", x2, w2)]);
    write_energy(&two, &[(0, 0.0, 0.0)]);
    let e = err_text(&ok, &two);
    println!("{e}");
    assert!(
        e.contains("two") && e.contains("dimension 2") && e.contains("dimension 1"),
        "{e}"
    );

    // No common step.
    let later = run_dir(tmp.path(), "later");
    write_particles(&later, 1, &[(5, 0.5, "u", x.clone(), w.clone())]);
    write_energy(&later, &[(5, 0.5, 0.0)]);
    write_scenario(&later, 1, "0.2");
    let e = err_text(&ok, &later);
    println!("{e}");
    assert!(
        e.contains("no written step in common") && e.contains("later"),
        "{e}"
    );

    // No common species.
    let other = run_dir(tmp.path(), "other");
    write_particles(&other, 1, &[(0, 0.0, "v", x.clone(), w.clone())]);
    write_energy(&other, &[(0, 0.0, 0.0)]);
    write_scenario(&other, 1, "0.2");
    let e = err_text(&ok, &other);
    println!("{e}");
    assert!(e.contains("no species in common"), "{e}");

    // Times disagree at a common step.
    let slow = run_dir(tmp.path(), "slow");
    write_particles(&slow, 1, &[(0, 1e-3, "u", x.clone(), w.clone())]);
    write_energy(&slow, &[(0, 1e-3, 0.0)]);
    write_scenario(&slow, 1, "0.2");
    let e = err_text(&ok, &slow);
    println!("{e}");
    assert!(e.contains("step 0, column `time`"), "{e}");

    // Irregular grid, and a grid with a hole.
    let irregular = run_dir(tmp.path(), "irregular");
    std::fs::write(
        irregular.join("density.csv"),
        "step,time,species,x,density\n0,0,u,0.05,1\n0,0,u,0.15,1\n0,0,u,0.3,1\n",
    )
    .unwrap();
    write_energy(&irregular, &[(0, 0.0, 0.0)]);
    let e = err_text(&ok, &irregular);
    println!("{e}");
    assert!(
        e.contains("density.csv") && e.contains("not a regular grid") && e.contains("`x`"),
        "{e}"
    );
    let holed = run_dir(tmp.path(), "holed");
    std::fs::write(
        holed.join("density.csv"),
        "step,time,species,x,y,density\n0,0,u,0.5,0.5,1\n0,0,u,1.5,0.5,1\n0,0,u,0.5,1.5,1\n",
    )
    .unwrap();
    write_energy(&holed, &[(0, 0.0, 0.0)]);
    let ok2 = run_dir(tmp.path(), "ok2");
    std::fs::write(
        ok2.join("density.csv"),
        "step,time,species,x,y,density\n0,0,u,0.5,0.5,1\n0,0,u,1.5,0.5,1\n0,0,u,0.5,1.5,1\n0,0,u,1.5,1.5,1\n",
    )
    .unwrap();
    write_energy(&ok2, &[(0, 0.0, 0.0)]);
    compare(&ok2, &ok2);
    let e = err_text(&ok2, &holed);
    println!("{e}");
    assert!(e.contains("not a full box") && e.contains("2 x 2"), "{e}");

    // A non-number in a grid file names the line and column.
    let nan = run_dir(tmp.path(), "nan");
    std::fs::write(
        nan.join("density.csv"),
        "step,time,species,x,density\n0,0,u,0.05,1\n0,0,u,0.15,abc\n",
    )
    .unwrap();
    write_energy(&nan, &[(0, 0.0, 0.0)]);
    let e = err_text(&nan, &ok);
    println!("{e}");
    assert!(e.contains("line 3, column `density`"), "{e}");

    // Header-only particle file.
    let hollow = run_dir(tmp.path(), "hollow");
    std::fs::write(
        hollow.join("particles.csv"),
        "step,time,species,id,x,weight,density\n",
    )
    .unwrap();
    write_energy(&hollow, &[(0, 0.0, 0.0)]);
    let e = err_text(&ok, &hollow);
    println!("{e}");
    assert!(
        e.contains("hollow") && e.contains("no particle rows"),
        "{e}"
    );
}

/// The kernel estimates run in parallel: the same bits on 1 and 2 threads (2D,
/// particle run against a shifted particle run).
#[test]
fn same_bits_on_one_and_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, w) = gaussian_cloud(3000, 2, 21);
    let xs: Vec<Vec<f64>> = x.iter().map(|p| vec![p[0] + 0.2, 1.1 * p[1]]).collect();
    let (a, b) = (run_dir(tmp.path(), "a"), run_dir(tmp.path(), "b"));
    write_particles(&a, 2, &[(0, 0.0, "u", x, w.clone())]);
    write_particles(&b, 2, &[(0, 0.0, "u", xs, w)]);
    for dir in [&a, &b] {
        write_energy(dir, &[(0, 0.0, 0.0)]);
        write_scenario(dir, 2, "\"auto\"");
    }
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| compare(&a, &b))
    };
    let (one, two) = (on(1), on(2));
    assert!(one.rows[0].l1 > 0.01);
    assert_eq!(one.rows, two.rows);
    assert_eq!(one.to_csv(), two.to_csv());
}

/// Exact W1/W2 between a grid law and particles: U[0,1] on a 10-cell grid
/// against one Dirac at 0 (W1 = 1/2, W2^2 = 1/3) and against two Diracs of
/// mass 1/2 at 0 and 1 (W1 = 1/4, W2^2 = 1/12), to rounding.
#[test]
fn grid_against_diracs_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let g = run_dir(tmp.path(), "grid");
    let f = |c: &[f64]| if c[0] > 0.0 && c[0] < 1.0 { 1.0 } else { 0.0 };
    write_density(
        &g,
        &[GFrame {
            step: 0,
            time: 0.0,
            species: "u",
            lower: vec![-0.5],
            h: vec![0.1],
            n: vec![20],
            f: &f,
        }],
    );
    write_energy(&g, &[(0, 0.0, 0.0)]);
    // (positions, weights, W1, W2^2)
    type Case = (Vec<Vec<f64>>, Vec<f64>, f64, f64);
    let cases: [Case; 2] = [
        (vec![vec![0.0]], vec![1.0], 0.5, 1.0 / 3.0),
        (vec![vec![1.0], vec![0.0]], vec![0.5, 0.5], 0.25, 1.0 / 12.0),
    ];
    for (k, (x, w, w1, w2sq)) in cases.into_iter().enumerate() {
        let p = run_dir(tmp.path(), &format!("p{k}"));
        write_particles(&p, 1, &[(0, 0.0, "u", x, w)]);
        write_energy(&p, &[(0, 0.0, 0.0)]);
        write_scenario(&p, 1, "0.05");
        for (a, b) in [(&g, &p), (&p, &g)] {
            let c = compare(a, b);
            let r = &c.rows[0];
            let (v1, v2) = (r.w1.unwrap(), r.w2.unwrap());
            println!(
                "case {k}: W1 = {v1:e} (exact {w1:e}), W2^2 = {:e} (exact {w2sq:e})",
                v2 * v2
            );
            assert!((v1 - w1).abs() < 1e-14, "W1 = {v1}");
            assert!((v2 * v2 - w2sq).abs() < 1e-14, "W2^2 = {}", v2 * v2);
        }
    }
}

/// Interpolation of a coarse grid onto a finer one is multilinear: A (h = 0.1
/// on [0,1]^d) holds samples of f = prod_a max(0, 0.4 - |x_a - 0.45|), whose
/// kinks sit on A's centers, so A's multilinear interpolant is f itself; B
/// (h = 0.02 on the same box) holds f at its centers. L1 = 0 to rounding in 1D
/// and 2D; nearest-cell or any other interpolation gives L1 > 1e-3.
#[test]
fn coarse_grid_is_interpolated_multilinearly() {
    let tmp = tempfile::tempdir().unwrap();
    let f = |c: &[f64]| {
        c.iter()
            .map(|x| (0.4 - (x - 0.45).abs()).max(0.0))
            .product::<f64>()
    };
    for d in [1usize, 2] {
        let (a, b) = (
            run_dir(tmp.path(), &format!("a{d}")),
            run_dir(tmp.path(), &format!("b{d}")),
        );
        for (dir, h, n) in [(&a, 0.1, 10usize), (&b, 0.02, 50)] {
            write_density(
                dir,
                &[GFrame {
                    step: 0,
                    time: 0.0,
                    species: "u",
                    lower: vec![0.0; d],
                    h: vec![h; d],
                    n: vec![n; d],
                    f: &f,
                }],
            );
            write_energy(dir, &[(0, 0.0, 0.0)]);
        }
        let c = compare(&a, &b);
        let r = &c.rows[0];
        println!("{d}D: L1 = {:e} on {:?} cells", r.l1, r.l1_cells);
        assert_eq!(r.l1_cells, vec![50; d]);
        assert!(r.l1 < 1e-14, "{d}D: L1 = {}", r.l1);
    }
}

/// The same in 2D: N(0, I) on a 240 x 240 grid (h = 0.05, cell averages by
/// Gauss–Legendre per axis) against N = 1e3 and 1e4 particles with fixed
/// eps = 0.5 N^(-1/6): L1 small and decreasing.
#[test]
fn particles_against_grid_of_same_law_2d() {
    let tmp = tempfile::tempdir().unwrap();
    let h = 0.05;
    let g = run_dir(tmp.path(), "grid");
    let f = |c: &[f64]| {
        gaussian_cell_average(c[0], h, 0.0, 1.0) * gaussian_cell_average(c[1], h, 0.0, 1.0)
    };
    write_density(
        &g,
        &[GFrame {
            step: 0,
            time: 0.0,
            species: "u",
            lower: vec![-6.0; 2],
            h: vec![h; 2],
            n: vec![240; 2],
            f: &f,
        }],
    );
    write_energy(&g, &[(0, 0.0, 0.0)]);
    let mut l1s = Vec::new();
    for n in [1_000usize, 10_000] {
        let p = run_dir(tmp.path(), &format!("p{n}"));
        let (x, _) = gaussian_cloud(n, 2, 12);
        write_particles(&p, 2, &[(0, 0.0, "u", x, vec![1.0 / n as f64; n])]);
        write_energy(&p, &[(0, 0.0, 0.0)]);
        write_scenario(&p, 2, &num(0.5 * (n as f64).powf(-1.0 / 6.0)));
        let c = compare(&g, &p);
        let r = &c.rows[0];
        println!(
            "2D N = {n}: L1 = {:.5}, |dmean| = {:.2e}, |dcov| = {:.2e}",
            r.l1, r.mean_distance, r.cov_distance
        );
        assert!(r.l1 < 0.4, "N = {n}: L1 = {}", r.l1);
        l1s.push(r.l1);
    }
    assert!(l1s[1] < 0.8 * l1s[0], "L1 must decrease with N: {l1s:?}");
}
