//! The library as a library: a two-species Poisson–Nernst–Planck problem in
//! 2D built in code (no scenario file), stepped, and its energy printed.
//!
//!     cargo run --release --example quickstart

use jko::Simulation;
use jko::model::potential::PotentialSpec;
use jko::particles::InitialSpec;
use jko::stepper::Problem;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let confine = |k: f64| PotentialSpec::Quadratic {
        center: vec![0.0, 0.0],
        stiffness: vec![k, k],
    };
    let problem = Problem::builder(2, 0.01)
        .seed(1)
        // lambda = 1 (like charges repel), Plummer softening 0.05.
        .coupling(1.0, 0.05)
        .species(
            "u",
            2000,
            1.0,
            confine(1.0),
            InitialSpec::Gaussian {
                mean: vec![0.5, 0.0],
                std: vec![0.3, 0.3],
            },
        )
        .species(
            "v",
            2000,
            1.0,
            confine(1.0),
            InitialSpec::Gaussian {
                mean: vec![-0.5, 0.0],
                std: vec![0.3, 0.3],
            },
        )
        .with_last(|v| v.charge = -1.0)
        .build()?;
    // On one of rayon's threads, where a step's parallel calls are cheap.
    jko::util::parallel::on_pool(|| steps(&problem))?;
    Ok(())
}

/// Ten steps of `problem`, with the energy after each.
fn steps(problem: &Problem) -> jko::Result<()> {
    let mut sim = Simulation::<2>::new(problem)?;
    let start = sim.initial_report()?;
    println!(
        "step 0: energy {:.6e}, bandwidths {:?}",
        start.parts.total(),
        sim.bandwidths
    );
    for _ in 0..10 {
        let r = sim.advance()?;
        println!(
            "step {}: energy {:.6e} (diffusion {:.4e}, potential {:.4e}, interaction {:.4e}), {} iterations",
            sim.step,
            r.parts.total(),
            r.parts.diffusion,
            r.parts.potential,
            r.parts.interaction,
            r.iterations
        );
    }
    Ok(())
}
