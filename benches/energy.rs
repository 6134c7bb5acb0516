//! Criterion benches of the free-energy terms and of whole JKO steps.
//!
//!     cargo bench --bench energy                 # everything
//!     cargo bench --bench energy -- direct       # one group
//!
//! Figures and the machine they were taken on are in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use jko::coupling::{CouplingBackend, DirectSum};
use jko::density::mesh::MeshDensity;
use jko::density::{BlobDensity, DensityEstimator, SortedDensity1d};

fn gaussian_cloud<const D: usize>(n: usize, seed: u64) -> Vec<[f64; D]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| std::array::from_fn(|_| StandardNormal.sample(&mut rng)))
        .collect()
}

fn direct<const D: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("direct_{D}d"));
    g.sample_size(10);
    // "alternating": charges +-1/N in turn, so no pack of eight has one
    // charge (the general case); "species": two species of N/2 equal
    // charges each, as a scenario's cloud is laid out, where the 2D sum takes
    // its logarithms of products (`coupling::direct`).
    for layout in ["alternating", "species"] {
        for &n in &[1_000usize, 10_000] {
            let x = gaussian_cloud::<D>(n, 1);
            let q: Vec<f64> = (0..n)
                .map(|i| {
                    let plus = if layout == "species" {
                        i < n / 2
                    } else {
                        i % 2 == 0
                    };
                    (if plus { 1.0 } else { -1.0 }) / n as f64
                })
                .collect();
            let mut field = vec![[0.0; D]; n];
            let mut sum = DirectSum::<D>::new(0.02);
            // Throughput in unordered pairs: N(N-1)/2 per evaluation.
            g.throughput(Throughput::Elements((n * (n - 1) / 2) as u64));
            g.bench_with_input(BenchmarkId::new(layout, n), &n, |b, _| {
                b.iter(|| black_box(sum.energy_and_field(&x, &q, &mut field)))
            });
        }
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
        // Lists rebuilt each time (Morton order, kd-tree build, searches) in
        // the buffers of the last build, as at the start of every JKO step.
        let mut est = BlobDensity::<D>::new(eps);
        est.compute(&x, &w);
        g.bench_with_input(BenchmarkId::new("build+sum", n), &n, |b, _| {
            b.iter(|| {
                est.reset();
                black_box(est.compute(&x, &w)[0])
            })
        });
        // Reused neighbour list (what the optimizer sees between rebuilds).
        let mut est = BlobDensity::<D>::new(eps);
        est.compute(&x, &w);
        g.bench_with_input(BenchmarkId::new("sum", n), &n, |b, _| {
            b.iter(|| black_box(est.compute(&x, &w)[0]))
        });
        // A kernel 40x wider in neighbours (the width of the diffusion-length
        // floor in the 1e5-per-species PNP bench): the mesh's deposit, FFT
        // convolution and interpolation, and with the gradient pass (what
        // the diffusion term does per evaluation).
        let wide = eps * 40f64.powf(1.0 / D as f64);
        let mut mesh = MeshDensity::<D>::new(wide, usize::MAX);
        let slope = vec![1.0; n];
        let mut grad = vec![[0.0; D]; n];
        g.bench_with_input(BenchmarkId::new("mesh_40x", n), &n, |b, _| {
            b.iter(|| black_box(mesh.compute(&x, &w).unwrap()[0]))
        });
        g.bench_with_input(BenchmarkId::new("mesh_40x+gradient", n), &n, |b, _| {
            b.iter(|| {
                mesh.compute(&x, &w).unwrap();
                mesh.add_gradient(&x, &w, &slope, &mut grad);
                black_box(grad[0])
            })
        });
        if n <= 10_000 {
            // The same width summed over neighbour lists, for comparison.
            let mut est = BlobDensity::<D>::new(wide);
            est.compute(&x, &w);
            g.bench_with_input(BenchmarkId::new("sum_40x", n), &n, |b, _| {
                b.iter(|| black_box(est.compute(&x, &w)[0]))
            });
        }
    }
    g.finish();
}

/// d = 1, the case of issue 19: 4,000 particles (two species of 2,000 on
/// one line) at the fixed bandwidth 0.1 of the 1D PNP bench, density and
/// gradient per evaluation by the neighbour lists and by the sorted sweeps;
/// and the coupling by the direct and the sorted sums (softening 0.05).
fn one_d(c: &mut Criterion) {
    let mut g = c.benchmark_group("one_d");
    g.sample_size(20);
    let n = 4_000;
    let x: Vec<[f64; 1]> = gaussian_cloud::<1>(n, 3)
        .into_iter()
        .map(|p| [0.5 * p[0]])
        .collect();
    let w = vec![1.0 / n as f64; n];
    let slope = vec![1.0; n];
    let mut grad = vec![[0.0; 1]; n];
    let mut lists = BlobDensity::<1>::new(0.1);
    let mut sorted = SortedDensity1d::new(0.1);
    let estimators: [(&str, &mut dyn DensityEstimator<1>); 2] =
        [("lists", &mut lists), ("sorted", &mut sorted)];
    for (name, est) in estimators {
        est.compute(&x, &w).unwrap();
        g.bench_function(
            BenchmarkId::new(format!("density+gradient_{name}"), n),
            |b| {
                b.iter(|| {
                    est.compute(&x, &w).unwrap();
                    est.add_gradient(&x, &w, &slope, &mut grad);
                    black_box(grad[0])
                })
            },
        );
    }
    let q: Vec<f64> = (0..n)
        .map(|i| (if i < n / 2 { 1.0 } else { -1.0 }) / n as f64)
        .collect();
    let mut field = vec![[0.0; 1]; n];
    let mut direct = DirectSum::<1>::new(0.05);
    g.bench_function(BenchmarkId::new("coupling_direct", n), |b| {
        b.iter(|| black_box(direct.energy_and_field(&x, &q, &mut field)))
    });
    let mut fast = jko::coupling::backend::<1>(jko::coupling::CouplingMethod::Auto, 0.05, 1e-6, n);
    g.bench_function(BenchmarkId::new("coupling_sorted", n), |b| {
        b.iter(|| black_box(fast.energy_and_field(&x, &q, &mut field)))
    });
    g.finish();
}

/// Two-species 2D PNP (SPEC §3 example physics), `n` particles per species.
fn pnp_2d(n: usize, method: &str) -> jko::Scenario {
    let text = format!(
        r#"
dimension = 2
time_step = 0.01
steps = 1
seed = 1
[coupling]
strength = 1.0
method = "{method}"
softening = 0.02
accuracy = 1e-6
[density]
bandwidth = "auto"
[[species]]
name = "u"
charge = 1.0
particles = {n}
potential = {{ kind = "quadratic", center = [0.0, 0.0], stiffness = 1.0 }}
initial = {{ kind = "gaussian", mean = [0.5, 0.0], std = 0.3 }}
[[species]]
name = "v"
charge = -1.0
particles = {n}
potential = {{ kind = "quadratic", center = [0.0, 0.0], stiffness = 1.0 }}
initial = {{ kind = "gaussian", mean = [-0.5, 0.0], std = 0.3 }}
"#
    );
    jko::Scenario::from_toml(&text, std::path::Path::new("bench.toml")).unwrap()
}

/// One energy + gradient evaluation of two-species 2D PNP, whole and per term.
fn pnp_evaluation(c: &mut Criterion) {
    let mut g = c.benchmark_group("pnp_2d_evaluation");
    g.sample_size(10);
    for &(n, method) in &[
        (1_000usize, "direct"),
        (10_000, "direct"),
        (10_000, "tree"),
        (100_000, "tree"),
    ] {
        let s = pnp_2d(n, method);
        let sim = jko::Simulation::<2>::new(&s).unwrap();
        let mut energy = jko::stepper::free_energy(&s, &sim.cloud, &sim.plans).unwrap();
        let x = sim.cloud.positions.clone();
        let mut grad = vec![[0.0; 2]; x.len()];
        energy.evaluate(&x, &mut grad); // neighbour lists built once, as inside a JKO step
        g.throughput(Throughput::Elements(x.len() as u64));
        g.bench_function(BenchmarkId::new(format!("all_{method}"), n), |b| {
            b.iter(|| black_box(energy.evaluate(&x, &mut grad)))
        });
        for t in energy.terms_mut() {
            let name = format!("{:?}_{method}", t.part()).to_lowercase();
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| black_box(t.value_and_gradient(&x, &mut grad)))
            });
        }
    }
    g.finish();
}

/// One full JKO step of two-species 2D PNP, after two steps that relax the
/// iid initial sample (the first steps from an iid cloud are the costliest
/// of a run: BENCHMARKS.md); each sample continues from the previous step,
/// so the samples are steps 3 (warm-up), 4, 5, ... of one run (about a
/// minute and a half for the 1e4 direct case, one for 1e5 tree). With the
/// automatic method the 1e4 and 1e5 cases sum their densities on the mesh.
fn pnp_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("pnp_2d_step");
    // Flat sampling: ten samples of equally many steps (criterion's linear
    // default would take 1 + 2 + ... + 10 steps).
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for &(n, method) in &[
        (1_000usize, "direct"),
        (1_000, "tree"),
        (10_000, "direct"),
        (10_000, "tree"),
        (100_000, "tree"),
    ] {
        let s = pnp_2d(n, method);
        let mut sim = jko::Simulation::<2>::new(&s).unwrap();
        for _ in 0..2 {
            sim.advance().unwrap();
        }
        g.bench_function(BenchmarkId::new(method, n), |b| {
            b.iter(|| black_box(sim.advance().unwrap().iterations))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    direct::<2>,
    direct::<3>,
    density::<2>,
    one_d,
    pnp_evaluation,
    pnp_step
);
criterion_main!(benches);
