//! Blob density estimate: time per phase of a build (kd-tree, neighbour
//! lists) and of the density sums, for one Gaussian cloud.
//!
//!     cargo run --release --example density_profile -- [D] [N] [REPS] [NEIGHBOUR_FACTOR] [MEMBERS]
//!     cargo run --release --example density_profile -- 2 100000 20
//!
//! Best of REPS for each phase, with the bandwidth of the ~50-neighbour rule
//! (`density::auto_bandwidth`), as in `benches/energy.rs` (`density_2d`),
//! or one with NEIGHBOUR_FACTOR times as many neighbours (10: the cap of the
//! automatic bandwidth, what a JKO step with a long time step sees).
//! Phases: `kd-tree` = kiddo's build alone (on the cloud as given);
//! `lists` = a full neighbour-list build (Morton order, kd-tree, one search
//! per cluster); `sums` = the density sums with the list reused;
//! `build+sum` = lists rebuilt and sums, in the buffers of the last build (as
//! at every JKO step's start; what the criterion bench times); `fresh
//! estimator` = the same with every buffer allocated anew.
//!
//! With MEMBERS > 1, also the ghosts of each member of a division of the
//! sums among MEMBERS (threads standing for MPI ranks, as in the tests):
//! the values each receives per ghost exchange of the diffusion term
//! (`util::ghosts`), against the N numbers of the gather of every
//! density it replaces; and the gradient sums each receives when it wants
//! only the particles of its range of a JKO step's vectors
//! (`stepper::layout`, `DensityEstimator::want`), against the N - own of
//! the gather of every sum. Counts of the geometry, the same under MPI.

use std::hint::black_box;
use std::time::Instant;

use jko::density::neighbours::NeighbourList;
use jko::density::{BlobDensity, DensityEstimator, SKIN_FRACTION};
use jko::model::kernel::{RadialKernel, WendlandC2};
use jko::stepper::layout::Layout;
use jko::util::team::ThreadTeam;
use kiddo::ImmutableKdTree;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn run<const D: usize>(n: usize, reps: usize, factor: f64, members: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x: Vec<[f64; D]> = (0..n)
        .map(|_| std::array::from_fn(|_| StandardNormal.sample(&mut rng)))
        .collect();
    let w = vec![1.0 / n as f64; n];
    let eps = jko::density::auto_bandwidth(&x, &w) * factor.powf(1.0 / D as f64);
    let r = WendlandC2::new(D, eps).support();

    let tree = best(reps, || {
        // The builder of `neighbours.rs` (parallel from 16 384 points).
        let t: ImmutableKdTree<f64, D> = ImmutableKdTree::builder()
            .with_parallel_construction_threshold(16_384)
            .build_from_slice(&x)
            .unwrap();
        black_box(t.size());
    });
    let mut list = NeighbourList::<D>::new(r, SKIN_FRACTION * r);
    let lists = best(reps, || {
        list.invalidate();
        black_box(list.update(&x));
    });
    let mut est = BlobDensity::<D>::new(eps);
    est.compute(&x, &w);
    let sums = best(reps, || {
        black_box(est.compute(&x, &w)[0]);
    });
    let whole = best(reps, || {
        est.reset();
        black_box(est.compute(&x, &w)[0]);
    });
    let fresh = best(reps, || {
        let mut e = BlobDensity::<D>::new(eps);
        black_box(e.compute(&x, &w)[0]);
    });
    let ms = |t: f64| t * 1e3;
    println!(
        "d = {D}, N = {n}, eps = {eps:.4}, {:.1} candidates per particle, {} threads",
        list.mean_candidates(),
        rayon::current_num_threads()
    );
    println!(
        "kd-tree {:.2} ms | lists {:.2} ms | sums {:.2} ms | build+sum {:.2} ms = {:.2e} particles/s | fresh estimator {:.2} ms",
        ms(tree),
        ms(lists),
        ms(sums),
        ms(whole),
        n as f64 / whole,
        ms(fresh)
    );
    if members > 1 {
        let log = |w: f64, r: f64| (w * r.ln(), 1.0 / r);
        let ghosts = ThreadTeam::run(members, |t| {
            let mut e = BlobDensity::<D>::new(eps).with_team(t);
            let mut g = vec![[0.0; D]; n];
            black_box(e.local_functional(&x, &w, &log, &mut g));
            e.ghosts().count()
        });
        let share: Vec<String> = ghosts
            .iter()
            .map(|&g| format!("{g} ({:.1}%)", 100.0 * g as f64 / n as f64))
            .collect();
        println!(
            "{members} members: ghosts per member {} of N = {n}",
            share.join(", ")
        );
        // The gradient sums a member receives when it wants the particles
        // of its range of a JKO step's vectors (`stepper::layout`), against
        // the N - own slots the gather of every sum brings it.
        let layout = Layout::new(&x, &w, 1.0);
        let received = ThreadTeam::run(members, |t| {
            let own = jko::util::shard::Cut::even(n * D, t.size()).own(&*t);
            let wanted = layout.particles_in(own, D);
            let mut e = BlobDensity::<D>::new(eps).with_team(t);
            e.want(Some(&wanted));
            e.frame(Some(&Layout::frame_of(&x)));
            let mut g = vec![[0.0; D]; n];
            black_box(e.local_functional(&x, &w, &log, &mut g));
            (e.wanted_received(), wanted.len())
        });
        let share: Vec<String> = received
            .iter()
            .map(|&(r, own)| {
                format!(
                    "{r} ({:.1}% of the gather's {})",
                    100.0 * r as f64 / (n - own) as f64,
                    n - own
                )
            })
            .collect();
        println!(
            "{members} members wanting their layout range: gradient sums received per member {}",
            share.join(", ")
        );
        // Two species as in PNP: the cloud shifted by +-1/2 along axis 0,
        // one layout over both (the energy's order: u then v), each
        // species' lists keyed in the layout's frame (as in a JKO step)
        // and divided at the counts of the members' wanted particles.
        let shift = |sign: f64| -> Vec<[f64; D]> {
            x.iter()
                .map(|p| std::array::from_fn(|a| p[a] + if a == 0 { 0.5 * sign } else { 0.0 }))
                .collect()
        };
        let (u, v) = (shift(1.0), shift(-1.0));
        let both: Vec<[f64; D]> = u.iter().chain(&v).copied().collect();
        let layout = Layout::new(&both, &vec![1.0; 2 * n], 1.0);
        let received = ThreadTeam::run(members, |t| {
            let own = jko::util::shard::Cut::even(2 * n * D, t.size()).own(&*t);
            let wanted = layout.particles_in(own, D);
            let split = wanted.partition_point(|&i| (i as usize) < n);
            let of_v: Vec<u32> = wanted[split..].iter().map(|&i| i - n as u32).collect();
            let mut counts = Vec::new();
            for (cloud, mine) in [(&u, &wanted[..split]), (&v, &of_v[..])] {
                let mut e = BlobDensity::<D>::new(eps).with_team(t.clone());
                e.want(Some(mine));
                e.frame(Some(&Layout::frame_of(&both)));
                let mut g = vec![[0.0; D]; n];
                black_box(e.local_functional(cloud, &w, &log, &mut g));
                counts.push(e.wanted_received());
            }
            counts
        });
        let share: Vec<String> = received
            .iter()
            .map(|c| {
                format!(
                    "{} + {} ({:.1}% of 2N)",
                    c[0],
                    c[1],
                    50.0 * (c[0] + c[1]) as f64 / n as f64
                )
            })
            .collect();
        println!(
            "{members} members, two species shifted by +-1/2: gradient sums received per member (u + v) {}",
            share.join(", ")
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let d: usize = args.get(1).map_or(2, |s| s.parse().unwrap());
    let n: usize = args.get(2).map_or(100_000, |s| s.parse().unwrap());
    let reps: usize = args.get(3).map_or(20, |s| s.parse().unwrap());
    let factor: f64 = args.get(4).map_or(1.0, |s| s.parse().unwrap());
    let members: usize = args.get(5).map_or(1, |s| s.parse().unwrap());
    match d {
        1 => run::<1>(n, reps, factor, members),
        2 => run::<2>(n, reps, factor, members),
        _ => run::<3>(n, reps, factor, members),
    }
}
