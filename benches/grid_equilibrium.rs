//! The grid equilibrium (`jko::eulerian::equilibrium`, `jko equilibrium --grid`) of a 1D
//! double layer on 4000 cells: [0, 40] between electrodes at psi = 10 and 0 (lambda = 1,
//! D = 1: 10 thermal units), two ion species z = +-1 of mass 40 (c0 = 1, Debye length
//! 0.71, 5.6 cells per Debye length), with the steric term (v = 0.05: the counter-ion
//! layer packed to 1/v) and without (Gouy–Chapman, wall density c0 e^10). Timed: the
//! whole `solve_equilibrium` of the scenario (initial densities, the box's Poisson
//! operator, the Newton solve) and `equilibrium_to_dir` (the same plus writing
//! density.csv with 16 000 rows and energy.csv to a temporary directory).
//!
//! `cargo bench --bench grid_equilibrium`.

use criterion::{Criterion, criterion_group, criterion_main};
use jko::Scenario;
use jko::eulerian::{equilibrium_to_dir, solve_equilibrium};
use std::path::Path;
use std::time::Duration;

fn layer(steric: bool) -> String {
    format!(
        r#"
dimension = 1
time_step = 0.01
steps = 1
output_every = 1
[coupling]
strength = 1.0
softening = 0.01
[domain]
kind = "box"
lower = [0.0]
upper = [40.0]
[[domain.wall]]
axis = 0
side = "lower"
potential = 10.0
[[domain.wall]]
axis = 0
side = "upper"
potential = 0.0
{}
[[species]]
name = "cation"
charge = 1.0
mass = 40.0
particles = 100
initial = {{ kind = "uniform", lower = [0.0], upper = [40.0] }}
[[species]]
name = "anion"
charge = -1.0
mass = 40.0
particles = 100
initial = {{ kind = "uniform", lower = [0.0], upper = [40.0] }}
[grid]
cells = 4000
"#,
        if steric {
            "[steric]\nvolume = 0.05"
        } else {
            ""
        }
    )
}

fn grid_equilibrium(c: &mut Criterion) {
    let mut g = c.benchmark_group("grid_equilibrium_1d_4000");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    let tmp = tempfile::tempdir().unwrap();
    for steric in [false, true] {
        let s = Scenario::from_toml(&layer(steric), Path::new("layer.toml")).unwrap();
        let name = if steric { "bikerman" } else { "gouy_chapman" };
        let e = solve_equilibrium(&s).unwrap();
        eprintln!(
            "{name}: {} Newton steps, {} GMRES iterations, residual {:.2e}, max v s {:.6}",
            e.iterations, e.krylov_iterations, e.residual, e.max_packing
        );
        g.bench_function(format!("solve/{name}"), |b| {
            b.iter(|| solve_equilibrium(&s).unwrap())
        });
        // equilibrium_to_dir copies the scenario file: it must exist.
        let path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&path, layer(steric)).unwrap();
        let s = Scenario::from_file(&path).unwrap();
        let out = tmp.path().join(name);
        g.bench_function(format!("to_dir/{name}"), |b| {
            b.iter(|| equilibrium_to_dir(&s, &out, true).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, grid_equilibrium);
criterion_main!(benches);
