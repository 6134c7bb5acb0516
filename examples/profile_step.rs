//! Where the time of a JKO step goes: cost of one energy+gradient evaluation
//! per term, and evaluations/iterations per step, for a scenario file.
//!
//!     cargo run --release --example profile_step -- data/scenarios/pnp_2d.toml [steps]

use std::time::Instant;

use jko::energy::FreeEnergy;
use jko::{Scenario, Simulation};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("data/scenarios/pnp_2d.toml");
    let steps: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let s = Scenario::from_file(path.as_ref())?;
    match s.dimension {
        1 => profile::<1>(&s, steps),
        2 => profile::<2>(&s, steps),
        _ => profile::<3>(&s, steps),
    }
}

fn profile<const D: usize>(s: &Scenario, steps: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut sim = Simulation::<D>::new(s)?;
    println!("N = {}, density estimates {:?}", sim.cloud.len(), sim.plans);
    for (b, plan) in sim.cloud.blocks.iter().zip(&sim.plans) {
        if let jko::density::Estimator::Mesh { .. } = plan.estimator {
            let x = &sim.cloud.positions[b.range.clone()];
            println!(
                "  mesh cells of the initial cloud: {}",
                jko::density::mesh::cells_needed(x, plan.eps)
            );
        }
    }
    // Time each term separately on the initial cloud.
    let x = sim.cloud.positions.clone();
    let mut grad = vec![[0.0; D]; x.len()];
    let mut energy: FreeEnergy<D> = jko::stepper::free_energy(s, &sim.cloud, &sim.plans)?;
    let reps = 20;
    for t in energy.terms_mut() {
        t.value_and_gradient(&x, &mut grad); // warm-up (neighbour lists)
        let t0 = Instant::now();
        for _ in 0..reps {
            t.value_and_gradient(&x, &mut grad);
        }
        println!(
            "{:?}: {:.3} ms per evaluation",
            t.part(),
            t0.elapsed().as_secs_f64() * 1e3 / reps as f64
        );
    }
    for _ in 0..steps {
        let t0 = Instant::now();
        let r = sim.advance()?;
        println!(
            "step {}: {:.3} s, {} iterations, {} evaluations, |r| {:.3e} -> {:.3e}, {}",
            sim.step,
            t0.elapsed().as_secs_f64(),
            r.iterations,
            r.evaluations,
            r.initial_gradient_norm,
            r.gradient_norm,
            r.termination
        );
    }
    Ok(())
}
