//! A particle JKO run: the scenario turned into a cloud, a free energy and a
//! stepper, advanced step by step, with output to a directory.

use std::path::Path;

use crate::density::{BlobDensity, auto_bandwidth_for_step};
use crate::energy::{Diffusion, EnergyTerm, FreeEnergy, Interaction, PotentialEnergy};
use crate::error::{Error, Result};
use crate::jko::{JkoStepper, StepReport};
use crate::output::{self, RunWriter};
use crate::particles::Cloud;
use crate::potential;
use crate::scenario::{Bandwidth, Scenario};

/// A particle simulation of a scenario in dimension `D`.
pub struct Simulation<const D: usize> {
    pub scenario: Scenario,
    pub cloud: Cloud<D>,
    /// Kernel standard deviation of each species.
    pub bandwidths: Vec<f64>,
    stepper: JkoStepper<D>,
    /// One estimator per species, for the density column of particles.csv.
    estimators: Vec<BlobDensity<D>>,
    pub step: u64,
    pub time: f64,
}

/// The particle free energy of a scenario for a given cloud and bandwidths.
pub fn free_energy<const D: usize>(
    scenario: &Scenario,
    cloud: &Cloud<D>,
    bandwidths: &[f64],
) -> Result<FreeEnergy<D>> {
    let mut terms: Vec<Box<dyn EnergyTerm<D>>> = Vec::new();
    let diffusion = Diffusion::new(cloud, bandwidths);
    if !diffusion.is_empty() {
        terms.push(Box::new(diffusion));
    }
    let potentials = scenario
        .species
        .iter()
        .map(|s| potential::from_spec::<D>(&s.potential))
        .collect();
    terms.push(Box::new(PotentialEnergy::new(cloud, potentials)));
    if scenario.coupling.strength != 0.0 {
        let c = &scenario.coupling;
        let backend = crate::coupling::backend::<D>(c.method, c.softening, c.accuracy, cloud.len());
        terms.push(Box::new(Interaction::new(
            cloud,
            scenario.coupling.strength,
            backend,
        )));
    }
    Ok(FreeEnergy::new(terms))
}

impl<const D: usize> Simulation<D> {
    /// Set up the run of `scenario` (its dimension must be `D`).
    pub fn new(scenario: &Scenario) -> Result<Self> {
        let cloud = Cloud::<D>::from_scenario(scenario)?;
        Self::from_cloud(scenario, cloud)
    }

    /// Set up a run from an explicit initial cloud.
    pub fn from_cloud(scenario: &Scenario, cloud: Cloud<D>) -> Result<Self> {
        let bandwidths: Vec<f64> = cloud
            .blocks
            .iter()
            .zip(&scenario.species)
            .map(|(b, sp)| match scenario.density.bandwidth {
                Bandwidth::Fixed(eps) => eps,
                Bandwidth::Auto => auto_bandwidth_for_step(
                    &cloud.positions[b.range.clone()],
                    &cloud.weights[b.range.clone()],
                    sp.diffusion,
                    sp.exponent,
                    scenario.time_step,
                ),
            })
            .collect();

        let energy = free_energy(scenario, &cloud, &bandwidths)?;
        let stepper = JkoStepper::new(energy, cloud.weights.clone(), scenario.solver);
        let estimators = bandwidths
            .iter()
            .map(|&eps| BlobDensity::new(eps))
            .collect();
        Ok(Simulation {
            scenario: scenario.clone(),
            cloud,
            bandwidths,
            stepper,
            estimators,
            step: 0,
            time: 0.0,
        })
    }

    /// The report of step 0: the energy of the current cloud, nothing moved.
    pub fn initial_report(&mut self) -> Result<StepReport> {
        let mut grad = vec![[0.0; D]; self.cloud.len()];
        let parts = self.stepper.energy(&self.cloud.positions, &mut grad);
        if !parts.total().is_finite() {
            return Err(Error::Numerical(format!(
                "the initial energy is not finite: {parts:?}"
            )));
        }
        Ok(StepReport {
            parts,
            w2_step: 0.0,
            iterations: 0,
            evaluations: 1,
            gradient_norm: 0.0,
            initial_gradient_norm: 0.0,
            converged: true,
            termination: "initial state".into(),
        })
    }

    /// One JKO step of the scenario's time step.
    pub fn advance(&mut self) -> Result<StepReport> {
        let h = self.scenario.time_step;
        let report = self.stepper.step(&mut self.cloud.positions, h)?;
        self.step += 1;
        self.time = self.step as f64 * h;
        Ok(report)
    }

    /// Each particle's estimated density of its own species.
    pub fn densities(&mut self) -> Vec<f64> {
        let mut out = vec![0.0; self.cloud.len()];
        for (b, est) in self.cloud.blocks.iter().zip(&mut self.estimators) {
            let r = b.range.clone();
            let rho = est.compute(
                &self.cloud.positions[r.clone()],
                &self.cloud.weights[r.clone()],
            );
            out[r].copy_from_slice(rho);
        }
        out
    }

    /// Whether step `n` is written to particles.csv.
    pub fn is_output_step(&self, n: u64) -> bool {
        n == 0 || n % self.scenario.output_every as u64 == 0 || n == self.scenario.steps as u64
    }
}

/// Options of a run to a directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Overwrite the outputs of an earlier run in the directory.
    pub force: bool,
}

/// Receives progress of a run (the CLI draws a progress bar from it).
pub trait Observer {
    fn started(&mut self, _scenario: &Scenario, _bandwidths: &[f64]) {}
    fn step(&mut self, _step: u64, _report: &StepReport) {}
}

impl Observer for () {}

/// Summary of a finished run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub steps: u64,
    pub initial_energy: f64,
    pub final_energy: f64,
    pub total_iterations: u64,
    /// Steps where the optimizer stopped before meeting the tolerance.
    pub unconverged_steps: u64,
    pub bandwidths: Vec<f64>,
}

/// Run a scenario and write its outputs to `dir` (dispatching on the dimension).
pub fn run_to_dir(
    scenario: &Scenario,
    dir: &Path,
    opts: RunOptions,
    obs: &mut dyn Observer,
) -> Result<RunSummary> {
    match scenario.dimension {
        1 => run_dim::<1>(scenario, dir, opts, obs),
        2 => run_dim::<2>(scenario, dir, opts, obs),
        3 => run_dim::<3>(scenario, dir, opts, obs),
        d => unreachable!("dimension {d} was validated"),
    }
}

fn run_dim<const D: usize>(
    s: &Scenario,
    dir: &Path,
    opts: RunOptions,
    obs: &mut dyn Observer,
) -> Result<RunSummary> {
    let mut sim = Simulation::<D>::new(s)?;
    output::prepare_dir(
        dir,
        &[output::PARTICLES, output::ENERGY, output::SCENARIO_COPY],
        opts.force,
    )?;
    let text = std::fs::read(&s.path).map_err(|e| Error::io(&s.path, e))?;
    output::write_atomic(&dir.join(output::SCENARIO_COPY), &text)?;

    obs.started(s, &sim.bandwidths);
    let mut out = RunWriter::create(dir, D)?;
    let first = sim.initial_report()?;
    out.energy(0, 0.0, &first)?;
    let rho = sim.densities();
    out.frame(0, 0.0, &sim.cloud, &rho)?;
    let mut summary = RunSummary {
        steps: 0,
        initial_energy: first.parts.total(),
        final_energy: first.parts.total(),
        total_iterations: 0,
        unconverged_steps: 0,
        bandwidths: sim.bandwidths.clone(),
    };
    for _ in 0..s.steps {
        let report = sim.advance()?;
        let (n, t) = (sim.step, sim.time);
        out.energy(n, t, &report)?;
        if sim.is_output_step(n) {
            let rho = sim.densities();
            out.frame(n, t, &sim.cloud, &rho)?;
        }
        summary.steps = n;
        summary.final_energy = report.parts.total();
        summary.total_iterations += report.iterations;
        summary.unconverged_steps += u64::from(!report.converged);
        obs.step(n, &report);
    }
    out.finish()?;
    Ok(summary)
}
