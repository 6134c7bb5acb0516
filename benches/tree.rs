//! Potential + gradient timings: tree (FMM) for N = 1e4, 1e5, 1e6 at accuracy 1e-6 and
//! 1e-3 on a uniform cube/square and a dense-core-plus-halo cloud, D = 2, 3; the direct
//! sum backend (`DirectSum`) for N = 1e3, 1e4, and both side by side (crossover). One evaluator is reused across iterations
//! (as in an optimizer: buffers kept, tree refitted).
//!
//! `cargo bench --bench tree` (all), or e.g. `cargo bench --bench tree -- tree3d/uniform`.
#[path = "../tests/support/clouds.rs"]
mod common;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jko::coupling::{CouplingBackend, DirectSum, TreeCoupling};
use std::time::Duration;

fn tree_group<const D: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("tree{D}d"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for kind in ["uniform", "core_halo"] {
        for n in [10_000usize, 100_000, 1_000_000] {
            let (x, q) = common::cloud::<D>(kind, n, 1);
            for acc in [1e-6, 1e-3] {
                let mut tc = TreeCoupling::<D>::new(1e-3, acc);
                let (mut p, mut gr) = (vec![0.0; n], vec![[0.0; D]; n]);
                g.bench_function(BenchmarkId::new(format!("{kind}/acc{acc:e}"), n), |b| {
                    b.iter(|| tc.evaluate(&x, &q, &mut p, &mut gr))
                });
            }
        }
    }
    g.finish();
}

fn direct_group<const D: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("direct{D}d"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    for n in [1_000usize, 10_000] {
        let (x, q) = common::cloud::<D>("uniform", n, 1);
        let (mut sum, mut field) = (DirectSum::<D>::new(1e-3), vec![[0.0; D]; n]);
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| sum.energy_and_field(&x, &q, &mut field))
        });
    }
    g.finish();
}

/// Tree (accuracy 1e-6) and direct sum side by side at small N, on the
/// Gaussian cloud of a typical run: where `method = "auto"` should switch
/// (`jko::coupling::AUTO_CROSSOVER`).
fn crossover_group<const D: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("crossover{D}d"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for n in [500usize, 1_000, 2_000, 4_000, 8_000, 16_000] {
        let (x, mixed) = common::cloud::<D>("gaussian", n, 1);
        // Charges as a run has them: one value per species, species contiguous
        // (two species of opposite sign here), which lets the direct sum
        // group its logarithms in 2D; `mixed` (random signs) does not.
        let species: Vec<f64> = (0..n)
            .map(|i| if i < n / 2 { 1.0 } else { -1.0 } / n as f64)
            .collect();
        for (charges, q) in [("species", &species), ("mixed", &mixed)] {
            let (mut p, mut gr) = (vec![0.0; n], vec![[0.0; D]; n]);
            // The backend of `method = "direct"` (not the reference sum of the tests).
            let (mut sum, mut field) = (DirectSum::<D>::new(1e-3), vec![[0.0; D]; n]);
            g.bench_function(BenchmarkId::new(format!("direct/{charges}"), n), |b| {
                b.iter(|| sum.energy_and_field(&x, q, &mut field))
            });
            let mut tc = TreeCoupling::<D>::new(1e-3, 1e-6);
            g.bench_function(BenchmarkId::new(format!("tree/{charges}"), n), |b| {
                b.iter(|| tc.evaluate(&x, q, &mut p, &mut gr))
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    crossover_group::<2>,
    crossover_group::<3>,
    direct_group::<3>,
    direct_group::<2>,
    tree_group::<3>,
    tree_group::<2>
);
criterion_main!(benches);
