//! Two-species PNP, mesh-free against the grid: how far the particle JKO run
//! is from a fine Eulerian reference as N grows and h shrinks.
//!
//! ```sh
//! cargo run --release --example particles_vs_grid            # d = 1 and d = 2
//! cargo run --release --example particles_vs_grid -- --dim 1 --levels 6
//! ```
//!
//! The problem (cations u, charge +1, and anions v, charge -1, m = 1, D = 0.5,
//! common quadratic well, lambda = 2, like charges repel) is solved once by
//! `jko eulerian` on a fine grid and then by particle runs along three
//! refinement paths, each from `level` 0 to `levels - 1`:
//!
//! * **joint**: N = N0 2^k particles per species, h = h0 / 2^k;
//! * **N only**: h fixed at its finest value, N = N0 2^k;
//! * **h only**: N fixed at its largest value, h = h0 / 2^k.
//!
//! The kernel bandwidth follows N as eps = eps0 (N / N0)^(-1/(d+4)) (the
//! classical bias–variance balance of a kernel estimate). Every run is
//! compared with the reference by `jko::compare` at t = T: the L1 distance of
//! the densities (particles through the solver's kernel estimate), in d = 1
//! the exact W2 distance, and the distance of the means and covariances; the
//! largest over the two species is printed. The observed rate between two
//! levels is log2(e_k / e_{k+1}) (per halving of h, per doubling of N).
//!
//! The grid reference is run once per time step h (the grid solver sub-steps
//! for stability, so h only sets the written steps, which `compare` matches).
//! All runs go through the library's `run_to_dir` into a temporary directory,
//! exactly as `jko run` / `jko eulerian` would write them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;

use jko::RunOptions;
use jko::Scenario;
use jko::compare::compare_runs;

#[derive(Parser)]
#[command(
    about = "Particle JKO vs Eulerian reference for two-species PNP, as N grows and h shrinks"
)]
struct Args {
    /// Dimension (1 or 2); both when omitted.
    #[arg(long)]
    dim: Option<usize>,
    /// Refinement levels (default: 5 in 1D, 4 in 2D).
    #[arg(long)]
    levels: Option<u32>,
    /// Skip the "N only" and "h only" paths.
    #[arg(long)]
    joint_only: bool,
}

/// Initial laws: u ~ N(U_MEAN, U_STD^2 I), v ~ N(V_MEAN, V_STD^2 I) (first d components).
const U_MEAN: [f64; 2] = [0.6, 0.2];
const U_STD: f64 = 0.4;
const V_MEAN: [f64; 2] = [-0.6, -0.2];
const V_STD: f64 = 0.5;

/// The standard normal quantile Phi^-1(p), by bisection on
/// Phi(x) = erfc(-x / sqrt 2) / 2 (to 1e-15; only used to place particles).
fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-12.0f64, 12.0f64);
    while hi - lo > 1e-15 * (1.0 + lo.abs().max(hi.abs())) {
        let mid = 0.5 * (lo + hi);
        if 0.5 * libm::erfc(-mid / std::f64::consts::SQRT_2) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The initial clouds of both species, N particles each of weight 1/N,
/// written as a SPEC §5 particle file. The particles are the images under
/// the Gaussian quantile map of a low-discrepancy point set: midpoints
/// (i + 1/2)/N in 1D, the rank-1 lattice ((i + 1/2)/N, frac((i + 1/2) g)),
/// g = (sqrt 5 - 1)/2, in 2D. An iid sample would put an O(N^-1/2) Monte
/// Carlo error in every moment, hiding the discretization errors this study
/// measures; these clouds have moment errors near O(1/N) (1D: O(1/N^2)
/// for the mean by symmetry).
fn write_initial_cloud(dir: &Path, d: usize, n: usize) -> jko::Result<PathBuf> {
    use std::fmt::Write as _;
    let path = dir.join(format!("initial_d{d}_n{n}.csv"));
    let axes = ["x", "y"];
    let mut text = format!("step,time,species,id,{},weight\n", axes[..d].join(","));
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for (name, mean, std) in [("u", U_MEAN, U_STD), ("v", V_MEAN, V_STD)] {
        for i in 0..n {
            let u = [(i as f64 + 0.5) / n as f64, ((i as f64 + 0.5) * g).fract()];
            let _ = write!(text, "0,0,{name},{i}");
            for a in 0..d {
                let _ = write!(text, ",{:?}", mean[a] + std * normal_quantile(u[a]));
            }
            let _ = writeln!(text, ",{:?}", 1.0 / n as f64);
        }
    }
    std::fs::write(&path, text).map_err(|e| jko::Error::io(&path, e))?;
    Ok(path)
}

/// Problem and discretization constants of one dimension.
struct Setup {
    d: usize,
    final_time: f64,
    n0: usize,
    h0: f64,
    eps0: f64,
    levels: u32,
    /// Reference grid: cells per axis on [-L, L]^d.
    grid_cells: usize,
    half_width: f64,
}

impl Setup {
    fn vec(&self, v: &[f64]) -> String {
        let s: Vec<String> = v[..self.d].iter().map(|x| format!("{x:?}")).collect();
        format!("[{}]", s.join(", "))
    }

    /// The scenario text; `cloud` = a particle file holding both species'
    /// initial clouds (particle runs), or None for the Gaussian laws
    /// themselves (the grid reference, which averages them exactly on cells).
    fn scenario(&self, n: usize, h: f64, eps: f64, cloud: Option<&Path>) -> String {
        let initial = |mean: &str, std: f64| match cloud {
            Some(p) => format!("{{ kind = \"csv\", path = {:?} }}", p.display().to_string()),
            None => format!("{{ kind = \"gaussian\", mean = {mean}, std = {std:?} }}"),
        };
        let count = if cloud.is_some() {
            String::new()
        } else {
            format!("particles = {n}")
        };
        let steps = (self.final_time / h).round() as u64;
        let zero = self.vec(&[0.0, 0.0]);
        let lower = self.vec(&[-self.half_width; 2]);
        let upper = self.vec(&[self.half_width; 2]);
        let cells = vec![self.grid_cells.to_string(); self.d].join(", ");
        format!(
            r#"# Two-species PNP: particles_vs_grid example.
dimension = {d}
time_step = {h:?}
steps = {steps}
output_every = {steps}
seed = 7

[coupling]
strength = 2.0
softening = 0.02
accuracy = 1e-6

[density]
bandwidth = {eps:?}

[[species]]
name = "u"
charge = 1.0
diffusion = 0.5
{count}
potential = {{ kind = "quadratic", center = {zero}, stiffness = 1.0 }}
initial = {iu}

[[species]]
name = "v"
charge = -1.0
diffusion = 0.5
{count}
potential = {{ kind = "quadratic", center = {zero}, stiffness = 1.0 }}
initial = {iv}

[grid]
lower = {lower}
upper = {upper}
cells = [{cells}]
"#,
            d = self.d,
            iu = initial(&self.vec(&U_MEAN), U_STD),
            iv = initial(&self.vec(&V_MEAN), V_STD),
        )
    }

    fn n(&self, level: u32) -> usize {
        self.n0 << level
    }

    fn h(&self, level: u32) -> f64 {
        self.h0 / f64::from(1u32 << level)
    }

    fn eps(&self, n: usize) -> f64 {
        self.eps0 * (n as f64 / self.n0 as f64).powf(-1.0 / (self.d as f64 + 4.0))
    }
}

/// Distances of one particle run from the reference at the final time
/// (largest over the species).
#[derive(Clone, Copy)]
struct Distance {
    l1: f64,
    w2: Option<f64>,
    mean: f64,
    cov: f64,
}

fn write_scenario(dir: &Path, name: &str, text: &str) -> jko::Result<Scenario> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| jko::Error::io(&path, e))?;
    Scenario::from_file(&path)
}

fn particle_distance(
    setup: &Setup,
    root: &Path,
    reference: &Path,
    n: usize,
    h: f64,
) -> jko::Result<(Distance, f64)> {
    let tag = format!("d{}_n{n}_h{h:e}", setup.d);
    let cloud = write_initial_cloud(root, setup.d, n)?;
    let s = write_scenario(
        root,
        &format!("{tag}.toml"),
        &setup.scenario(n, h, setup.eps(n), Some(&cloud)),
    )?;
    let out = root.join(&tag);
    let t = Instant::now();
    jko::run_to_dir(
        &s,
        &out,
        RunOptions {
            force: true,
            ..Default::default()
        },
        &mut (),
    )?;
    let seconds = t.elapsed().as_secs_f64();
    let c = compare_runs(&out, reference)?;
    let last = c.rows.iter().map(|r| r.step).max().unwrap_or(0);
    let mut dist = Distance {
        l1: 0.0,
        w2: None,
        mean: 0.0,
        cov: 0.0,
    };
    for r in c.rows.iter().filter(|r| r.step == last) {
        dist.l1 = dist.l1.max(r.l1);
        dist.w2 = r.w2.map(|w| w.max(dist.w2.unwrap_or(0.0)));
        dist.mean = dist.mean.max(r.mean_distance);
        dist.cov = dist.cov.max(r.cov_distance);
    }
    std::fs::remove_dir_all(&out).map_err(|e| jko::Error::io(&out, e))?;
    Ok((dist, seconds))
}

fn rate(prev: Option<f64>, now: f64) -> String {
    match prev {
        Some(p) if p > 0.0 && now > 0.0 => format!("{:5.2}", (p / now).log2()),
        _ => "    -".into(),
    }
}

fn path(
    setup: &Setup,
    refs: &mut References,
    title: &str,
    points: &[(usize, f64)],
) -> jko::Result<()> {
    println!("\n{title} (d = {}, T = {})", setup.d, setup.final_time);
    let w2_head = if setup.d == 1 { "        W2  rate" } else { "" };
    println!(
        "      N        h       eps        L1  rate{w2_head}   |dmean|  rate  |dcov|_F  rate   time[s]"
    );
    let mut prev: Option<Distance> = None;
    for &(n, h) in points {
        let reference = refs.get(setup, h)?;
        let root = refs.root.clone();
        let (dist, seconds) = particle_distance(setup, &root, &reference, n, h)?;
        let w2 = match dist.w2 {
            Some(w) => format!("  {w:.2e} {}", rate(prev.and_then(|p| p.w2), w)),
            None => String::new(),
        };
        println!(
            "{n:7} {h:8.5} {:9.2e}  {:.2e} {}{w2}  {:.2e} {}  {:.2e} {}  {seconds:8.1}",
            setup.eps(n),
            dist.l1,
            rate(prev.map(|p| p.l1), dist.l1),
            dist.mean,
            rate(prev.map(|p| p.mean), dist.mean),
            dist.cov,
            rate(prev.map(|p| p.cov), dist.cov),
        );
        prev = Some(dist);
    }
    Ok(())
}

/// The grid reference runs, one per time step h (`jko compare` matches runs
/// by step number, so the reference writes the same steps as the particle run).
struct References {
    root: PathBuf,
    runs: std::collections::BTreeMap<u64, PathBuf>,
}

impl References {
    fn get(&mut self, setup: &Setup, h: f64) -> jko::Result<PathBuf> {
        if let Some(p) = self.runs.get(&h.to_bits()) {
            return Ok(p.clone());
        }
        let tag = format!("reference_h{h:e}");
        let s = write_scenario(
            &self.root,
            &format!("{tag}.toml"),
            &setup.scenario(setup.n0, h, setup.eps0, None),
        )?;
        let dir = self.root.join(tag);
        let t = Instant::now();
        let summary = jko::eulerian::run::run_to_dir(
            &s,
            &dir,
            RunOptions {
                force: true,
                ..Default::default()
            },
        )?;
        eprintln!(
            "  (reference h = {h}: {} cells per axis on [-{w}, {w}], {} sub-steps, {:.1} s)",
            setup.grid_cells,
            summary.substeps,
            t.elapsed().as_secs_f64(),
            w = setup.half_width
        );
        self.runs.insert(h.to_bits(), dir.clone());
        Ok(dir)
    }
}

fn study(setup: &Setup, joint_only: bool) -> jko::Result<()> {
    let tmp =
        tempfile::tempdir().map_err(|e| jko::Error::io(Path::new("temporary directory"), e))?;
    let mut refs = References {
        root: tmp.path().to_path_buf(),
        runs: Default::default(),
    };
    let last = setup.levels - 1;
    println!(
        "\nd = {}: reference = `jko eulerian` on {} cells per axis over [-{w}, {w}]^d",
        setup.d,
        setup.grid_cells,
        w = setup.half_width
    );

    let joint: Vec<(usize, f64)> = (0..setup.levels)
        .map(|k| (setup.n(k), setup.h(k)))
        .collect();
    path(setup, &mut refs, "joint: N doubles and h halves", &joint)?;
    if !joint_only {
        let n_only: Vec<(usize, f64)> = (0..setup.levels)
            .map(|k| (setup.n(k), setup.h(last)))
            .collect();
        path(setup, &mut refs, "N only: h at its finest", &n_only)?;
        let h_only: Vec<(usize, f64)> = (0..setup.levels)
            .map(|k| (setup.n(last), setup.h(k)))
            .collect();
        path(setup, &mut refs, "h only: N at its largest", &h_only)?;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let dims: Vec<usize> = args.dim.map_or(vec![1, 2], |d| vec![d]);
    for d in dims {
        let setup = match d {
            1 => Setup {
                d,
                final_time: 0.5,
                n0: 250,
                h0: 0.05,
                eps0: 0.15,
                levels: args.levels.unwrap_or(5),
                grid_cells: 1600,
                half_width: 5.0,
            },
            2 => Setup {
                d,
                final_time: 0.2,
                n0: 500,
                h0: 0.04,
                eps0: 0.2,
                levels: args.levels.unwrap_or(4),
                grid_cells: 256,
                half_width: 4.0,
            },
            _ => {
                eprintln!("particles_vs_grid: --dim must be 1 or 2");
                return std::process::ExitCode::from(2);
            }
        };
        if let Err(e) = study(&setup, args.joint_only) {
            eprintln!("particles_vs_grid: {e}");
            return std::process::ExitCode::from(e.exit_code() as u8);
        }
    }
    std::process::ExitCode::SUCCESS
}
