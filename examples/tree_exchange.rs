//! The cost of the multipole tree's exchanges under MPI (issue 20,
//! docs/mpi.md "The locally essential multipoles"), against the
//! `all_gather`s they replaced in session 26, on a uniform cloud.
//!
//!     cargo build --release --features mpi --example tree_exchange
//!     mpirun --bind-to core -n 2 target/release/examples/tree_exchange [D] [N] [REPS]
//!
//! Every rank samples the same cloud (N points in the unit cube, charges
//! +-1, seed 3) and evaluates the tree at accuracy 1e-6 divided among the
//! ranks, REPS times (the first builds the tree; from the second the far
//! field's ownership is the re-split by measured time). Of the last
//! evaluation, rank 0 prints each rank's counts and seconds:
//!
//! - `LET`: the locally essential multipoles' plan (a request per ordered
//!   pair) and exchange, against `gather cells`, the `all_gather` of every
//!   cell's multipole by the ranks' ranges of cells that every evaluation
//!   made before (timed here, best of REPS, each after a one-number gather
//!   that lines the ranks up);
//! - `redistribute`: the far field's values of a rank's near-field
//!   particles, against `gather N (1 + d)`, gather A's values before;
//! - `evaluation`: the whole evaluation (best of REPS).

use std::sync::Arc;

use jko::coupling::TreeCoupling;
use jko::distributed::Mpi;
use jko::util::team::{self, Team, split_even};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};

#[path = "common/mod.rs"]
mod common;
use common::best;

fn run<const D: usize>(team: Arc<dyn Team>, n: usize, reps: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let unit = Uniform::new(0.0, 1.0).unwrap();
    let x: Vec<[f64; D]> = (0..n)
        .map(|_| std::array::from_fn(|_| unit.sample(&mut rng)))
        .collect();
    let q: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut tc = TreeCoupling::<D>::new(1e-3, 1e-6).with_team(team.clone());
    let (mut phi, mut grad) = (vec![0.0; n], vec![[0.0; D]; n]);
    tc.evaluate(&x, &q, &mut phi, &mut grad);
    let evaluation = best(&*team, reps, || {
        tc.evaluate(&x, &q, &mut phi, &mut grad);
    });
    let stats = tc.stats();
    let (size, me) = (team.size(), team.rank());

    // What the old exchanges moved: every cell's multipole (the ranks'
    // ranges of cells are about equal), and N (1 + d) values.
    let terms = {
        let p = tc.params().order;
        (1..=D).fold(1usize, |acc, k| acc * (p + k) / k)
    };
    let mut cells = vec![0.0; stats.cells * terms];
    let gather_cells = best(&*team, reps, || {
        team::share(&*team, &split_even(stats.cells, size), terms, &mut cells)
    });
    let mut values = vec![0.0; n * (1 + D)];
    let gather_values = best(&*team, reps, || {
        team::share(&*team, &split_even(n, size), 1, &mut values[..n]);
        team::share(&*team, &split_even(n, size), D, &mut values[n..]);
    });

    let mine = [
        stats.multipoles_received as f64,
        stats.multipoles_held as f64,
        stats.far_values_received as f64,
        stats.let_seconds,
        stats.redistribute_seconds,
    ];
    let mut all = vec![0.0; 5 * size];
    team.all_gather(&mine, &vec![5; size], &mut all);
    if me == 0 {
        let ms = |t: f64| t * 1e3;
        println!(
            "d = {D}, N = {n}, {size} ranks, {} threads each; {} cells of {terms} numbers; evaluation {:.1} ms",
            rayon::current_num_threads(),
            stats.cells,
            ms(evaluation)
        );
        for (r, v) in all.chunks(5).enumerate() {
            println!(
                "rank {r}: received {} multipoles, holds {} ({:.1}%), far values of {} particles; LET {:.2} ms, redistribute {:.2} ms",
                v[0],
                v[1],
                100.0 * v[1] / stats.cells as f64,
                v[2],
                ms(v[3]),
                ms(v[4])
            );
        }
        println!(
            "before: gather cells {:.2} ms, gather N (1 + d) {:.2} ms",
            ms(gather_cells),
            ms(gather_values)
        );
    }
}

fn main() {
    let mpi = Mpi::init().expect("MPI starts");
    let team = mpi.team();
    let args: Vec<String> = std::env::args().collect();
    let d: usize = args.get(1).map_or(3, |s| s.parse().unwrap());
    let n: usize = args.get(2).map_or(1_000_000, |s| s.parse().unwrap());
    let reps: usize = args.get(3).map_or(5, |s| s.parse().unwrap());
    match d {
        2 => run::<2>(team, n, reps),
        _ => run::<3>(team, n, reps),
    }
}
