//! The cost of the diffusion term's ghost exchange under MPI (issue 20,
//! docs/mpi.md "The ghost exchange"), against the gather of every density
//! it replaced, on a Gaussian cloud divided among the ranks.
//!
//!     cargo build --release --features mpi --example ghost_exchange
//!     mpirun -n 2 target/release/examples/ghost_exchange [D] [N] [REPS] [NEIGHBOUR_FACTOR]
//!
//! Every rank samples the same cloud (N points, seed 2; the bandwidth of
//! the ~50-neighbour rule times NEIGHBOUR_FACTOR^(1/d), as
//! `density_profile`), builds the neighbour lists and its ghosts with one
//! evaluation of the local functional sum_i w_i log rho_i, then times,
//! best of REPS, each after a one-number gather that lines the ranks up:
//!
//! - `gather N`: the `all_gather` of N numbers by the ranks' slot ranges,
//!   what every evaluation exchanged per species before (the densities);
//! - `ghosts`: one ghost exchange of the slopes (`util::ghosts`);
//! - `chunk sums`: the `all_gather` of the N / 1024 chunk energies;
//! - `evaluation`: the whole local functional with the lists kept (the
//!   densities, the exchange, the gradient sums and their gather of N d
//!   numbers), against `compute` + `add_gradient`, the path of before.
//!
//! Rank 0 prints each rank's ghosts and the times.

use std::hint::black_box;
use std::sync::Arc;

use jko::density::{BlobDensity, DensityEstimator};
use jko::distributed::Mpi;
use jko::util::parallel::CHUNK;
use jko::util::team::{self, Team};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

#[path = "common/mod.rs"]
mod common;
use common::best;

fn run<const D: usize>(team: Arc<dyn Team>, n: usize, reps: usize, factor: f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x: Vec<[f64; D]> = (0..n)
        .map(|_| std::array::from_fn(|_| StandardNormal.sample(&mut rng)))
        .collect();
    let w = vec![1.0 / n as f64; n];
    let eps = jko::density::auto_bandwidth(&x, &w) * factor.powf(1.0 / D as f64);
    let log = |w: f64, r: f64| (w * r.ln(), 1.0 / r);
    let mut est = BlobDensity::<D>::new(eps).with_team(team.clone());
    let mut g = vec![[0.0; D]; n];
    black_box(est.local_functional(&x, &w, &log, &mut g));
    let (size, me) = (team.size(), team.rank());

    // Each rank's slot range, from the chunk sums' sizes: the ranges of
    // the gather of before.
    let mine = {
        let mut counts = vec![0.0; size];
        let own = est.list().built_chunks();
        let slots = (own.start * CHUNK).min(n)..(own.end * CHUNK).min(n);
        team.all_gather(&[slots.len() as f64], &vec![1; size], &mut counts);
        counts
    };
    let mut start = 0;
    let ranges: Vec<_> = mine
        .iter()
        .map(|&c| {
            let r = start..start + c as usize;
            start = r.end;
            r
        })
        .collect();
    let mut values = vec![1.0; n];
    let gather = best(&*team, reps, || {
        team::share(&*team, &ranges, 1, &mut values)
    });
    let mut ghosts = est.ghosts().clone();
    let exchange = best(&*team, reps, || ghosts.exchange(&*team, &mut values, 1));
    let chunks: Vec<_> = ranges
        .iter()
        .map(|r| r.start / CHUNK..r.end.div_ceil(CHUNK))
        .collect();
    let mut sums = vec![0.0; n.div_ceil(CHUNK)];
    let chunk_sums = best(&*team, reps, || team::share(&*team, &chunks, 1, &mut sums));
    let fused = best(&*team, reps, || {
        g.iter_mut().for_each(|v| *v = [0.0; D]);
        black_box(est.local_functional(&x, &w, &log, &mut g));
    });
    let mut slope = vec![0.0; n];
    let before = best(&*team, reps, || {
        g.iter_mut().for_each(|v| *v = [0.0; D]);
        let rho = BlobDensity::compute(&mut est, &x, &w);
        slope.iter_mut().zip(rho).for_each(|(s, r)| *s = 1.0 / r);
        est.add_gradient(&x, &w, &slope, &mut g);
    });

    let mut counts = vec![0.0; size];
    team.all_gather(&[ghosts.count() as f64], &vec![1; size], &mut counts);
    if me == 0 {
        let ms = |t: f64| t * 1e3;
        let per: Vec<String> = counts
            .iter()
            .map(|&c| format!("{c} ({:.1}%)", 100.0 * c / n as f64))
            .collect();
        println!(
            "d = {D}, N = {n}, eps = {eps:.4}, {size} ranks, {} threads each; ghosts per rank {}",
            rayon::current_num_threads(),
            per.join(", ")
        );
        println!(
            "gather N {:.3} ms | ghosts {:.3} ms | chunk sums {:.3} ms | evaluation: local functional {:.2} ms, compute + add_gradient {:.2} ms",
            ms(gather),
            ms(exchange),
            ms(chunk_sums),
            ms(fused),
            ms(before)
        );
    }
}

fn main() {
    let mpi = Mpi::init().expect("MPI starts");
    let args: Vec<String> = std::env::args().collect();
    let d: usize = args.get(1).map_or(2, |s| s.parse().unwrap());
    let n: usize = args.get(2).map_or(200_000, |s| s.parse().unwrap());
    let reps: usize = args.get(3).map_or(20, |s| s.parse().unwrap());
    let factor: f64 = args.get(4).map_or(1.0, |s| s.parse().unwrap());
    let team = mpi.team();
    match d {
        1 => run::<1>(team, n, reps, factor),
        2 => run::<2>(team, n, reps, factor),
        _ => run::<3>(team, n, reps, factor),
    }
}
