//! The size of the multipole tree's locally essential trees (issue 20,
//! docs/mpi.md §5): for P ranks owning equal ranges of the tree's Morton
//! order, what each would receive from the others for its own targets once
//! positions are distributed: the multipoles of the accepted pairs' source
//! cells that are not wholly its own, and the particles of others in its
//! near-field leaves (`jko::coupling::tree::essential_counts`).
//!
//!     cargo run --release --example let_volume -- [D] [N] [CLOUD] [ACCURACY] [P,P,..] [exchange]
//!     cargo run --release --example let_volume -- 3 1000000 uniform 1e-6 2,4,8,16,32,64
//!
//! CLOUD is `uniform` (the unit cube) or `gaussian`. Per P: the mean and
//! the largest count over the ranks, and the bytes the largest receives
//! (a multipole is C(p + d, d) numbers, a particle d + 1: position and
//! charge), against its own particles.
//!
//! With `exchange`, also what the divided evaluation exchanges today
//! (session 26): P members of a team of threads (standing for ranks)
//! evaluate the tree twice (the second with the ownership re-split by the
//! first's measured times) and report the multipoles each received from the
//! others (`FmmStats::multipoles_received`: its locally essential
//! multipoles, the frontier cells under the top included), against the
//! other members' cells the `all_gather` of the multipoles sent each before,
//! and the multipoles each holds (`multipoles_held`: its own range of
//! cells, the top and those received), against every cell's; and the
//! particles whose far-field values a member received for its near-field
//! tasks (`far_values_received`), where a gather sent each all N; and,
//! with each member wanting the gradients of its range of a JKO step's
//! vectors only (`TreeCoupling::want`, session 27), the gradients it
//! received at gather B (`gradients_received`), where the gather sent each
//! the N - own of the others.

use jko::coupling::TreeCoupling;
use jko::coupling::tree::{FmmParams, essential_counts, params_for_accuracy};
use jko::stepper::layout::Layout;
use jko::util::team::ThreadTeam;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

fn run<const D: usize>(n: usize, cloud: &str, accuracy: f64, parts: &[usize], exchange: bool) {
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
    if exchange {
        exchanged(&x, &params, parts);
    }
}

/// The multipoles each member of a team of P receives per evaluation.
fn exchanged<const D: usize>(x: &[[f64; D]], params: &FmmParams, parts: &[usize]) {
    let n = x.len();
    let q: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    println!("multipoles received per evaluation (the divided tree's exchange):");
    println!(
        "{:>4} {:>8} {:>22} {:>22} {:>22} {:>12} {:>26}",
        "P",
        "cells",
        "received mean / max",
        "of the gather's (max)",
        "held mean / max",
        "of all (max)",
        "far values received (max)",
    );
    let layout = Layout::new(x, &vec![1.0; n], 1.0);
    for &p in parts {
        let got = ThreadTeam::run(p, |team| {
            let wanted = layout.particles_in(
                jko::util::shard::Cut::even(n * D, team.size()).own(&*team),
                D,
            );
            let mut tc = TreeCoupling::<D>::with_params(1e-3, *params).with_team(team);
            let (mut phi, mut grad) = (vec![0.0; n], vec![[0.0; D]; n]);
            tc.evaluate(x, &q, &mut phi, &mut grad);
            tc.evaluate(x, &q, &mut phi, &mut grad);
            let s = tc.stats();
            tc.want(Some(&wanted));
            tc.evaluate(x, &q, &mut phi, &mut grad);
            (
                s.multipoles_received,
                s.cells,
                s.multipoles_held,
                s.far_values_received,
                (tc.stats().gradients_received, n - wanted.len()),
            )
        });
        let far_max = got.iter().map(|g| g.3).max().unwrap_or(0);
        let cells = got[0].1;
        let max = got.iter().map(|g| g.0).max().unwrap_or(0);
        let mean = got.iter().map(|g| g.0).sum::<usize>() as f64 / p as f64;
        let held_max = got.iter().map(|g| g.2).max().unwrap_or(0);
        let held_mean = got.iter().map(|g| g.2).sum::<usize>() as f64 / p as f64;
        // The gather sent each member the others' cells: about (P - 1) / P of them.
        let gather = cells * (p - 1) / p;
        println!(
            "{p:>4} {cells:>8} {mean:>12.0} / {max:>7} {:>21.1}% {held_mean:>12.0} / {held_max:>7} {:>11.1}% {far_max:>12} ({:.2}% of N)",
            100.0 * max as f64 / gather as f64,
            100.0 * held_max as f64 / cells as f64,
            100.0 * far_max as f64 / n as f64
        );
        let received: Vec<String> = got
            .iter()
            .map(|g| format!("{} ({:.2}%)", g.4.0, 100.0 * g.4.0 as f64 / g.4.1 as f64))
            .collect();
        println!(
            "     gradients received at gather B, wanting the layout's range (of the gather's N - own): {}",
            received.join(", ")
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
    let exchange = args.get(6).is_some_and(|s| s == "exchange");
    match d {
        2 => run::<2>(n, cloud, accuracy, &parts, exchange),
        _ => run::<3>(n, cloud, accuracy, &parts, exchange),
    }
}
