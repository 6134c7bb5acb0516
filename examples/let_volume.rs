//! The size of the multipole tree's locally essential trees (issue 20,
//! docs/mpi.md §5): for P ranks owning equal ranges of the tree's Morton
//! order, what each would receive from the others for its own targets once
//! positions are distributed: the multipoles of the accepted pairs' source
//! cells that are not wholly its own, and the particles of others in its
//! near-field leaves (`jko::coupling::tree::essential_counts`).
//!
//!     cargo run --release --example let_volume -- [D] [N] [CLOUD] [ACCURACY] [P,P,..]
//!     cargo run --release --example let_volume -- 3 1000000 uniform 1e-6 2,4,8,16,32,64
//!
//! CLOUD is `uniform` (the unit cube) or `gaussian`. Per P: the mean and
//! the largest count over the ranks, and the bytes the largest receives
//! (a multipole is C(p + d, d) numbers, a particle d + 1: position and
//! charge), against its own particles.

use jko::coupling::tree::{essential_counts, params_for_accuracy};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

fn run<const D: usize>(n: usize, cloud: &str, accuracy: f64, parts: &[usize]) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let unit = Uniform::new(0.0, 1.0).unwrap();
    let x: Vec<[f64; D]> = (0..n)
        .map(|_| {
            std::array::from_fn(|_| match cloud {
                "gaussian" => StandardNormal.sample(&mut rng),
                _ => unit.sample(&mut rng),
            })
        })
        .collect();
    let params = params_for_accuracy::<D>(accuracy);
    let terms = (1..=D).fold(1usize, |acc, k| acc * (params.order + k) / k);
    println!(
        "d = {D}, N = {n}, {cloud}, accuracy {accuracy:e}: order {}, theta {}, leaves of <= {}, {terms} numbers per multipole",
        params.order, params.theta, params.leaf_size
    );
    println!(
        "{:>4} {:>10} {:>22} {:>22} {:>22} {:>10}",
        "P", "own", "multipoles mean / max", "leaves mean / max", "particles mean / max", "max MB"
    );
    for &p in parts {
        let counts = essential_counts(&x, &params, p);
        let mean = |f: &dyn Fn(usize) -> usize| (0..p).map(f).sum::<usize>() as f64 / p as f64;
        let max = |f: &dyn Fn(usize) -> usize| (0..p).map(f).max().unwrap_or(0);
        let bytes = counts
            .iter()
            .map(|c| 8 * (c.multipoles * terms + c.particles * (D + 1)))
            .max()
            .unwrap_or(0);
        println!(
            "{p:>4} {:>10} {:>12.0} / {:>7} {:>12.0} / {:>7} {:>12.0} / {:>7} {:>10.1}",
            n / p,
            mean(&|r| counts[r].multipoles),
            max(&|r| counts[r].multipoles),
            mean(&|r| counts[r].leaves),
            max(&|r| counts[r].leaves),
            mean(&|r| counts[r].particles),
            max(&|r| counts[r].particles),
            bytes as f64 / 1e6
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let d: usize = args.get(1).map_or(3, |s| s.parse().unwrap());
    let n: usize = args.get(2).map_or(1_000_000, |s| s.parse().unwrap());
    let cloud = args.get(3).map_or("uniform", |s| s.as_str());
    let accuracy: f64 = args.get(4).map_or(1e-6, |s| s.parse().unwrap());
    let parts: Vec<usize> = args.get(5).map_or(vec![2, 4, 8, 16, 32, 64], |s| {
        s.split(',').map(|p| p.parse().unwrap()).collect()
    });
    match d {
        2 => run::<2>(n, cloud, accuracy, &parts),
        _ => run::<3>(n, cloud, accuracy, &parts),
    }
}
