//! One evaluation (energy and field) of the box's particle-mesh Poisson
//! solver (`jko::coupling::box_mesh`) in 2D: the nanochannel's box
//! [0, 4] x [0, 1] with electrodes on the x walls and insulating y walls
//! (a DST axis and a DCT axis), a uniform cloud of N = 1e3 (the mesh
//! solve alone), 2e5 and 1e6
//! particles of charges +-1/N, softening delta = 0.01 and 0.005 (meshes of
//! 864 x 216 and 1728 x 432 cells at two cells per Gaussian width). One
//! solver is reused across iterations, as in an optimizer.
//!
//! `cargo bench --bench box_mesh`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jko::coupling::CouplingBackend;
use jko::coupling::box_mesh::BoxMesh;
use jko::model::domain::{BoxDomain, Side, WallCondition};
use rand::{RngExt, SeedableRng};
use std::time::Duration;

fn nanochannel() -> BoxDomain {
    BoxDomain::insulating(vec![0.0, 0.0], vec![4.0, 1.0])
        .with_wall(0, Side::Lower, WallCondition::Electrode { potential: 0.0 })
        .with_wall(0, Side::Upper, WallCondition::Electrode { potential: 1.0 })
}

fn box_mesh_2d(c: &mut Criterion) {
    let mut g = c.benchmark_group("box_mesh2d");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    let domain = nanochannel();
    for n in [1_000usize, 200_000, 1_000_000] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let x: Vec<[f64; 2]> = (0..n)
            .map(|_| [4.0 * rng.random::<f64>(), rng.random::<f64>()])
            .collect();
        let q: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } / n as f64)
            .collect();
        let mut field = vec![[0.0; 2]; n];
        for delta in [0.01, 0.005] {
            let mut mesh = BoxMesh::<2>::new(&domain, delta).unwrap();
            g.bench_function(BenchmarkId::new(format!("delta{delta}"), n), |b| {
                b.iter(|| mesh.energy_and_field(&x, &q, &mut field))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, box_mesh_2d);
criterion_main!(benches);
