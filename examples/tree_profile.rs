//! Multipole tree: time per phase, interaction counts and (optionally) the error
//! against the direct sum, for one cloud and one parameter set.
//!
//!     cargo run --release --example tree_profile -- D KIND N ACCURACY [REPS] [check]
//!     cargo run --release --example tree_profile -- 3 uniform 100000 1e-6 3
//!
//! `direct` also times the direct sum (best of REPS). Optional overrides for tuning:
//! `order=P theta=T leaf=L p2p=K mixed=0|1`, and the cloud's
//! `seed=S` (default 1) and softening `delta=X` (default 1e-3). `check` compares
//! with the direct sum (O(N^2): keep N below ~1e5). `dump=PATH` writes the cloud for
//! the FMM3D driver (`benches/fmm3d/`): N as a little-endian u64, then x, y, z, q
//! (f64) per point (D = 3 only); and `PATH.ours`, phi, gx, gy, gz (f64) per point
//! from the last evaluation, for the driver's agreement check.
#[path = "../tests/support/clouds.rs"]
mod common;

use jko::coupling::tree::params_for_accuracy;
use jko::coupling::{TreeCoupling, direct_evaluate};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let d: usize = args.get(1).map_or(3, |s| s.parse().unwrap());
    match d {
        2 => run::<2>(&args),
        _ => run::<3>(&args),
    }
}

fn run<const D: usize>(args: &[String]) {
    let kind = args.get(2).map_or("uniform", String::as_str);
    let n: usize = args.get(3).map_or(100_000, |s| s.parse().unwrap());
    let acc: f64 = args.get(4).map_or(1e-6, |s| s.parse().unwrap());
    let reps: usize = args.get(5).map_or(3, |s| s.parse().unwrap());
    let mut params = params_for_accuracy::<D>(acc);
    let (mut check, mut direct) = (false, false);
    let (mut seed, mut delta) = (1u64, 1e-3);
    let mut dump: Option<String> = None;
    for a in &args[6.min(args.len())..] {
        match a.split_once('=') {
            Some(("order", v)) => params.order = v.parse().unwrap(),
            Some(("theta", v)) => params.theta = v.parse().unwrap(),
            Some(("leaf", v)) => params.leaf_size = v.parse().unwrap(),
            Some(("p2p", v)) => params.p2p_max_pairs = v.parse().unwrap(),
            Some(("mixed", v)) => params.mixed_precision = v == "1",
            Some(("seed", v)) => seed = v.parse().unwrap(),
            Some(("delta", v)) => delta = v.parse().unwrap(),
            Some(("dump", v)) => dump = Some(v.to_string()),
            None if a == "check" => check = true,
            None if a == "direct" => direct = true,
            _ => panic!("unknown option {a}"),
        }
    }
    let (x, q) = common::cloud::<D>(kind, n, seed);
    if let Some(path) = &dump {
        assert_eq!(D, 3, "dump= is for the 3D FMM3D driver");
        let mut b = (n as u64).to_le_bytes().to_vec();
        for (xi, qi) in x.iter().zip(&q) {
            for v in xi.iter().chain(std::iter::once(qi)) {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        std::fs::write(path, b).unwrap();
    }
    let mut tc = TreeCoupling::<D>::with_params(delta, params);
    let (mut p, mut g) = (vec![0.0; n], vec![[0.0; D]; n]);
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..reps {
        let (t, c) = (Instant::now(), cpu_seconds());
        tc.evaluate(&x, &q, &mut p, &mut g);
        best = best.min(t.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(cpu_seconds() - c);
    }
    if let Some(path) = &dump {
        let mut b = Vec::with_capacity(32 * n);
        for (pi, gi) in p.iter().zip(&g) {
            for v in std::iter::once(pi).chain(gi.iter()) {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        std::fs::write(format!("{path}.ours"), b).unwrap();
    }
    let st = tc.stats();
    let s = st.seconds;
    println!(
        "D={D} {kind} N={n} acc={acc:e} {params:?}\n  best {best:.4} s (CPU {best_cpu:.2} s); last: build {:.4} up {:.4} top {:.4} far {:.4} near {:.4} out {:.4}",
        s[0],
        s[1] - s[0],
        s[2] - s[1],
        s[3] - s[2],
        s[4] - s[3],
        s[5] - s[4]
    );
    println!(
        "  cells {} leaves {} m2l {} p2p pairs {:.3e} ({:.1} per particle)",
        st.cells,
        st.leaves,
        st.m2l,
        st.p2p_pairs as f64,
        st.p2p_pairs as f64 / n as f64
    );
    if direct {
        let (mut pd, mut gd) = (vec![0.0; n], vec![[0.0; D]; n]);
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            direct_evaluate(&x, &q, delta, &mut pd, &mut gd);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("  direct best {best:.4} s");
    }
    if check {
        let (mut pd, mut gd) = (vec![0.0; n], vec![[0.0; D]; n]);
        direct_evaluate(&x, &q, delta, &mut pd, &mut gd);
        println!(
            "  error phi {:.2e} grad {:.2e} (asked {acc:e})",
            common::rel_max(&p, &pd),
            common::rel_max_vec(&g, &gd)
        );
        if std::env::var("DIAG").is_ok() {
            let norm = |v: [f64; D]| v.iter().map(|c| c * c).sum::<f64>().sqrt();
            let gmax = gd.iter().map(|v| norm(*v)).fold(0.0, f64::max);
            let mut worst: Vec<(f64, usize)> = (0..n)
                .map(|i| (norm(std::array::from_fn(|d| g[i][d] - gd[i][d])) / gmax, i))
                .collect();
            worst.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
            for &(e, i) in &worst[..8] {
                let r = norm(x[i]);
                println!(
                    "    i={i} halo={} |x|={r:.3e} err={e:.2e} |g|/gmax={:.2e}",
                    i % 10 == 0,
                    norm(gd[i]) / gmax
                );
            }
        }
    }
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (10 ms
/// resolution; `NaN` where unavailable): comparable between runs on a loaded machine.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}
