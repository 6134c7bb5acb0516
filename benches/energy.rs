//! Criterion benches of the free-energy terms and of whole JKO steps.
//!
//!     cargo bench --bench energy                 # everything
//!     cargo bench --bench energy -- direct       # one group
//!
//! Figures and the machine they were taken on are in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use jko::coupling::{CouplingBackend, DirectSum};
use jko::density::BlobDensity;

fn gaussian_cloud<const D: usize>(n: usize, seed: u64) -> Vec<[f64; D]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| std::array::from_fn(|_| StandardNormal.sample(&mut rng)))
        .collect()
}

fn direct<const D: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("direct_{D}d"));
    g.sample_size(10);
    for &n in &[1_000usize, 10_000] {
        let x = gaussian_cloud::<D>(n, 1);
        let q: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } / n as f64)
            .collect();
        let mut field = vec![[0.0; D]; n];
        let mut sum = DirectSum::<D>::new(0.02);
        // Throughput in unordered pairs: N(N-1)/2 per evaluation.
        g.throughput(Throughput::Elements((n * (n - 1) / 2) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(sum.energy_and_field(&x, &q, &mut field)))
        });
    }
    g.finish();
}

fn density<const D: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("density_{D}d"));
    g.sample_size(10);
    for &n in &[10_000usize, 100_000] {
        let x = gaussian_cloud::<D>(n, 2);
        let w = vec![1.0 / n as f64; n];
        // eps giving ~50 neighbours in the support at the Gaussian's mean density.
        let eps = jko::density::auto_bandwidth(&x, &w);
        g.throughput(Throughput::Elements(n as u64));
        // Fresh estimator each time: kd-tree build and search included.
        g.bench_with_input(BenchmarkId::new("build+sum", n), &n, |b, _| {
            b.iter(|| {
                let mut est = BlobDensity::<D>::new(eps);
                black_box(est.compute(&x, &w)[0])
            })
        });
        // Reused neighbour list (what the optimizer sees between rebuilds).
        let mut est = BlobDensity::<D>::new(eps);
        est.compute(&x, &w);
        g.bench_with_input(BenchmarkId::new("sum", n), &n, |b, _| {
            b.iter(|| black_box(est.compute(&x, &w)[0]))
        });
    }
    g.finish();
}

criterion_group!(benches, direct::<2>, direct::<3>, density::<2>);
criterion_main!(benches);
